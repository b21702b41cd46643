"""Scenario packs as plug-in folders: `<folder>/<pack>/manifest.yaml`, with a README.

The packs shipped with CityOps live next to this module; a city adds its own folders (each
holding pack folders, or being one). Loading is strict: a manifest must decode exactly into a
`ScenarioPack`, and then make sense against the device kinds and departments of the city. Every
problem names the file and the field, as `scenarios/noise/manifest.yaml: rules[0].above: ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from cityops.domain.city import DeviceKind
from cityops.domain.scenarios import spec
from cityops.domain.scenarios.spec import ScenarioPack
from cityops.scenarios.checks import check_pack, split_validation_error, untranslated
from cityops.scenarios.yamlfile import load_yaml

BUILTIN_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.yaml"

# The department codes the built-in packs are written for (SPEC section 2). A city lacking one
# still loads them: the work falls to the local authority of the place (act side).
STANDARD_DEPARTMENTS = frozenset({
    "police", "fire", "ambulance", "city_management", "environment", "water_affairs",
    "transport", "housing_construction", "market_regulation", "civil_affairs", "sanitation",
    "greening", "utilities_power", "utilities_gas", "utilities_water", "hotline_12345",
})

# The languages every page is written in besides English (static/locales): a pack shipped with
# CityOps names its category and titles its cases in each. A city's own packs may name them in
# English only; their cases then read in English on every page.
BUILTIN_LANGUAGES = ("zh-CN",)


class ScenarioError(ValueError):
    """A pack that cannot be loaded. `problems` lists every `file: field: message` found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def load_scenarios(
    dirs: list[Path] | None = None,
    *,
    kinds: dict[str, DeviceKind],
    departments: set[str] | None = None,
    builtin: bool = True,
) -> list[ScenarioPack]:
    """The built-in packs (unless `builtin=False`) and those in `dirs`, checked.

    `departments`, when given, are the city's department codes; a pack may name those and the
    standard ones. Raises `ScenarioError` with every problem found.
    """
    folders = ([BUILTIN_DIR] if builtin else []) + [Path(d) for d in dirs or []]
    known_departments = None if departments is None else set(departments) | STANDARD_DEPARTMENTS
    problems: list[str] = []
    loaded: list[tuple[str, spec.ScenarioPack]] = []
    for folder in folders:
        for manifest in _manifests(folder, problems):
            label = _label(manifest)
            pack = _decode(manifest, label, problems)
            if pack is None:
                continue
            problems += [f"{label}: {path}: {message}"
                         for path, message in check_pack(pack, kinds, known_departments)]
            if folder == BUILTIN_DIR:
                problems += [f"{label}: {path}: {message}" for language in BUILTIN_LANGUAGES
                             for path, message in untranslated(pack, language)]
            loaded.append((label, pack))
    problems += _check_together(loaded)
    if problems:
        raise ScenarioError(problems)
    return [pack for _, pack in loaded]


def _manifests(folder: Path, problems: list[str]) -> list[Path]:
    if not folder.is_dir():
        problems.append(f"{folder}: scenario folder does not exist")
        return []
    if (folder / MANIFEST).is_file():
        return [folder / MANIFEST]
    out = []
    for sub in sorted(folder.iterdir()):
        if not sub.is_dir() or sub.name.startswith((".", "_")):
            continue
        manifest = sub / MANIFEST
        if manifest.is_file():
            out.append(manifest)
        else:
            # A misnamed manifest would otherwise silently switch the pack off.
            stray = sorted(p.name for p in sub.iterdir() if p.suffix in (".yaml", ".yml"))
            if stray:
                problems.append(f"{_label(manifest)}: missing (found {', '.join(stray)}; "
                                f"the manifest must be called {MANIFEST})")
    return out


def _label(manifest: Path) -> str:
    """How errors name a manifest: relative to the package for built-in packs."""
    try:
        return str(manifest.resolve().relative_to(BUILTIN_DIR.parent))
    except ValueError:
        return str(manifest)


def _decode(manifest: Path, label: str, problems: list[str]) -> spec.ScenarioPack | None:
    try:
        doc = load_yaml(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{label}: cannot be read: {exc}")
        return None
    except Exception as exc:  # yaml.YAMLError and friends: the parser's message is the help
        problems.append(f"{label}: not valid YAML: {' '.join(str(exc).split())}")
        return None
    if not isinstance(doc, dict):
        problems.append(f"{label}: must be a mapping (name, version, title, category, "
                        f"departments, rules ...), got {type(doc).__name__}")
        return None
    try:
        return msgspec.convert(doc, spec.ScenarioPack)
    except msgspec.ValidationError as exc:
        message, path = split_validation_error(exc)
        problems.append(f"{label}: {path}: {message}" if path else f"{label}: {message}")
        return None


def _check_together(loaded: list[tuple[str, spec.ScenarioPack]]) -> list[str]:
    """Pack names unique across folders; composite rules name rules that exist."""
    problems: list[str] = []
    by_name: dict[str, str] = {}
    for label, pack in loaded:
        if pack.name in by_name:
            problems.append(f"{label}: name: pack {pack.name!r} is already loaded from "
                            f"{by_name[pack.name]}")
        else:
            by_name[pack.name] = label
    rules = {f"{pack.name}.{rule.id}": rule for _, pack in loaded for rule in pack.rules}
    for label, pack in loaded:
        for i, rule in enumerate(pack.rules):
            if not isinstance(rule, spec.Composite):
                continue
            for j, ref in enumerate(rule.all_of):
                full = ref if "." in ref else f"{pack.name}.{ref}"
                target = rules.get(full)
                where = f"{label}: rules[{i}].all_of[{j}]"
                if target is None:
                    problems.append(f"{where}: no rule {full!r} is loaded")
                elif target is rule:
                    problems.append(f"{where}: a composite cannot include itself")
                elif isinstance(target, spec.Composite):
                    problems.append(f"{where}: {full!r} is a composite; combine the rules it "
                                    f"combines instead")
    return problems


def pack_summary(pack: spec.ScenarioPack) -> dict[str, Any]:
    """A pack as the API shows it: what it raises, for whom, when, and each rule's settings."""
    common = {"id", "title", "titles", "kind", "channel", "severity", "when", "where", "states"}
    rules = []
    for rule in pack.rules:
        # Every parameter, defaults included: the operator should see what is in force.
        params = {f.encode_name: msgspec.to_builtins(getattr(rule, f.name))
                  for f in msgspec.structs.fields(rule) if f.name not in common}
        rules.append({
            "id": rule.id,
            "ref": f"{pack.name}.{rule.id}",
            "type": type(rule).__struct_config__.tag,
            "title": rule.title,
            "titles": dict(rule.titles),
            "kind": rule.kind,
            "channel": rule.channel,
            "severity": rule.severity,
            "when": msgspec.to_builtins(rule.when),
            "where": msgspec.to_builtins(rule.where),
            "params": params,
            "states": msgspec.to_builtins(rule.states),
        })
    return {
        "name": pack.name,
        "version": pack.version,
        "title": pack.title,
        "titles": dict(pack.titles),
        "description": pack.description,
        "category": msgspec.to_builtins(pack.category),
        "departments": list(pack.departments),
        "urgency": pack.urgency,
        "states": list(pack.states),
        "auto_register": pack.auto_register,
        "rules": rules,
    }
