"""One merged form for several items: each field and each material asked once.

Fields are unified by their code (the catalogue refuses one code with two definitions), a field
is required when any item requires it, and each answer goes to every item that asks it. The
same holds for materials. For a given citizen the form comes filled in from the registry, and
materials the government holds are marked attached instead of asked.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from cityops.domain.citizens import Citizen
from cityops.domain.onestop.catalogue import Catalogue, FormField, Material, ServiceItem
from cityops.domain.onestop.licences import Licence, MaterialState, decide_materials


class FormConflict(ValueError):
    pass


class MergedField(msgspec.Struct, frozen=True, omit_defaults=True):
    field: FormField
    items: list[str]  # the items that ask it
    required: bool


class MergedMaterial(msgspec.Struct, frozen=True, omit_defaults=True):
    material: Material
    items: list[str]
    required: bool


class MergedForm(msgspec.Struct, frozen=True):
    items: list[str]
    fields: list[MergedField]
    materials: list[MergedMaterial]

    def field_codes(self) -> set[str]:
        return {f.field.code for f in self.fields}


def merge_form(items: Iterable[ServiceItem]) -> MergedForm:
    """The form of `items` together; first-asked order. Raises FormConflict when two items
    define one field or material code differently (a catalogue that loaded never does)."""
    items = list(items)
    fields: dict[str, tuple[FormField, list[str], bool]] = {}
    materials: dict[str, tuple[Material, list[str], bool]] = {}
    for item in items:
        for f in item.fields:
            known = fields.get(f.code)
            if known is None:
                fields[f.code] = (f, [item.code], f.required)
                continue
            if known[0].definition() != f.definition():
                raise FormConflict(f"field {f.code!r} is defined differently by items "
                                   f"{known[1][0]!r} and {item.code!r}")
            fields[f.code] = (known[0], known[1] + [item.code], known[2] or f.required)
        for m in item.materials:
            known_m = materials.get(m.code)
            if known_m is None:
                materials[m.code] = (m, [item.code], m.required)
                continue
            if known_m[0].definition() != m.definition():
                raise FormConflict(f"material {m.code!r} is defined differently by items "
                                   f"{known_m[1][0]!r} and {item.code!r}")
            materials[m.code] = (known_m[0], known_m[1] + [item.code],
                                 known_m[2] or m.required)
    return MergedForm(
        items=[i.code for i in items],
        fields=[MergedField(f, who, req) for f, who, req in fields.values()],
        materials=[MergedMaterial(m, who, req) for m, who, req in materials.values()],
    )


def issued_within(items: Iterable[ServiceItem]) -> dict[str, tuple[str, str]]:
    """Licence types the items' own results will issue: the first item issuing each."""
    out: dict[str, tuple[str, str]] = {}
    for item in items:
        if item.issues is not None:
            out.setdefault(item.issues.type, (item.code, item.name))
    return out


def material_states(form: MergedForm, items: list[ServiceItem], licences: Iterable[Licence],
                    citizen: Citizen | None, day: dt.date, cat: Catalogue
                    ) -> list[MaterialState]:
    """Each material of the merged form as this citizen stands on `day`."""
    pending = issued_within(items)
    merged = [msgspec.structs.replace(m.material, required=m.required) for m in form.materials]
    states = decide_materials(merged, licences, citizen, day, cat, pending)
    # An item never waits for its own result: what it would issue itself is asked.
    owners = {m.material.code: m.items for m in form.materials}
    out = []
    for s in states:
        if s.status == "pending" and s.pending_item in owners[s.code]:
            s = msgspec.structs.replace(s, status="asked", pending_item="", reason="")
        out.append(s)
    return out


def prefilled(form: MergedForm, citizen: Citizen | None) -> dict[str, Any]:
    """Answers the registry already gives."""
    if citizen is None:
        return {}
    out: dict[str, Any] = {}
    for mf in form.fields:
        if mf.field.prefill:
            value = getattr(citizen, mf.field.prefill, None)
            if isinstance(value, dt.date):
                value = value.isoformat()
            if value not in (None, ""):
                out[mf.field.code] = value
    return out


def check_answers(form: MergedForm, answers: Mapping[str, Any],
                  defaults: Mapping[str, Any] | None = None
                  ) -> tuple[dict[str, Any], list[str]]:
    """The answers cleaned (dates as ISO text, registry values where none was given), and
    every problem found, each naming the field."""
    problems: list[str] = []
    known = form.field_codes()
    for code in answers:
        if code not in known:
            problems.append(f"field {code!r} is not on this form")
    clean: dict[str, Any] = {}
    for mf in form.fields:
        f = mf.field
        value = answers.get(f.code)
        if _blank(value) and defaults and not _blank(defaults.get(f.code)):
            # The registry's own facts are its to check, not the form's: taken as held.
            clean[f.code] = defaults[f.code]
            continue
        if _blank(value):
            if mf.required:
                problems.append(f"field {f.code!r} ({f.label}) is required")
            continue
        try:
            clean[f.code] = _check_value(f, value)
        except ValueError as error:
            problems.append(f"field {f.code!r} ({f.label}): {error}")
    return clean, problems


def hand_in(states: list[MaterialState], provided: Mapping[str, str], known: set[str]
            ) -> tuple[list[MaterialState], list[str]]:
    """Materials after the citizen handed in `provided` ({code: reference}). What the
    government holds is never taken from the citizen (a reference given for it is ignored);
    a required material still asked is a problem."""
    problems = [f"material {code!r} is not asked on this form" for code in provided
                if code not in known]
    out = []
    for s in states:
        ref = provided.get(s.code)
        if s.status in ("asked", "provided") and isinstance(ref, str) and ref.strip():
            s = msgspec.structs.replace(s, status="provided", ref=ref.strip())
        elif s.status == "asked" and s.required:
            why = f": {s.reason}" if s.reason else ""
            problems.append(f"material {s.code!r} ({s.name}) is required{why}")
        out.append(s)
    return out, problems


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


_PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,18}[0-9]$")
_PRC_ID = re.compile(r"^[0-9]{17}[0-9X]$")
_OTHER_ID = re.compile(r"^[A-Za-z0-9-]{4,32}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _check_value(f: FormField, value: Any) -> Any:
    kind = f.type
    if kind in ("text", "address"):
        if not isinstance(value, str):
            raise ValueError("must be text")
        return value.strip()
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"{value!r} is not a number")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not true or false")
        return value
    if kind == "date":
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError(f"{value!r} is not a date like 2026-11-23") from None
    if kind == "choice":
        if value not in f.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(map(str, f.choices))}")
        return value
    if kind == "phone":
        if not isinstance(value, str) or not _PHONE.match(value.strip()):
            raise ValueError(f"{value!r} is not a phone number")
        return value.strip()
    if kind == "id_number":
        text = str(value).strip().upper()
        if not valid_id_number(text):
            raise ValueError("not a valid identity number (check the last character)")
        return text
    raise ValueError(f"unknown field type {kind!r}")  # the catalogue check rules this out


def valid_id_number(text: str) -> bool:
    """A PRC resident identity number's check character (GB 11643-1999); other countries'
    numbers are only checked for shape."""
    if _PRC_ID.match(text):
        total = sum(int(c) * w for c, w in zip(text[:17], _ID_WEIGHTS, strict=True))
        return _ID_CHECK[total % 11] == text[17]
    return bool(_OTHER_ID.match(text)) and not (len(text) == 18 and text[:17].isdigit())
