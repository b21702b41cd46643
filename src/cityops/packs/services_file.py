"""services.yaml: the one-stop service catalogue of a city (see `cityops.domain.onestop`).

    licences:  e-licence types and who issues them
    fields:    shared form fields, named by code from items
    materials: shared materials, named by code from items
    items:     the service items; `fields` and `materials` hold codes or whole definitions
    bundles:   "one thing, done once": items of several departments behind one form

A pack without the file gets the default set (`packs/services.yaml`), fitted to the pack's
departments: an item of a department the city lacks is left out, and a bundle left with fewer
than two items too.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import msgspec

from cityops.domain.city import CityPack
from cityops.domain.onestop.catalogue import (
    Bundle,
    Catalogue,
    CatalogueError,
    FormField,
    LicenceType,
    Material,
    ServiceItem,
    check_catalogue,
)
from cityops.packs.codec import describe, dump_yaml, load_yaml
from cityops.packs.errors import PackError

NAME = "services.yaml"
SECTIONS = ("licences", "fields", "materials", "items", "bundles")


def services_from_yaml(data: bytes, name: str = NAME,
                       departments: set[str] | None = None) -> Catalogue:
    doc = load_yaml(data, name)
    if doc is None:
        return Catalogue()
    if not isinstance(doc, dict):
        raise PackError(f"{name}: must be a mapping with the sections {', '.join(SECTIONS)}")
    unknown = [k for k in doc if k not in SECTIONS]
    if unknown:
        raise PackError(f"{name}: unknown section {unknown[0]!r} (sections: "
                        f"{', '.join(SECTIONS)})")
    licences = _list(doc, "licences", LicenceType, name)
    fields = {f.code: f for f in _list(doc, "fields", FormField, name)}
    materials = {m.code: m for m in _list(doc, "materials", Material, name)}
    items = []
    for i, raw in enumerate(_section(doc, "items", name)):
        where = _where(name, "items", i, raw)
        if not isinstance(raw, dict):
            raise PackError(f"{where}: must be a mapping of field: value")
        raw = dict(raw)
        raw["fields"] = _resolve(raw.get("fields", []), fields, FormField, f"{where}: field "
                                 "'fields'")
        raw["materials"] = _resolve(raw.get("materials", []), materials, Material,
                                    f"{where}: field 'materials'")
        items.append(_convert(raw, ServiceItem, where))
    bundles = _list(doc, "bundles", Bundle, name)
    cat = Catalogue(licences=licences, items=items, bundles=bundles)
    try:
        check_catalogue(cat, departments)
    except CatalogueError as error:
        raise PackError(f"{name}: {error}") from None
    return cat


def services_to_yaml(cat: Catalogue) -> bytes:
    """Definitions written out in full inside each item: the file loads back to the same
    catalogue."""
    return dump_yaml(msgspec.to_builtins(cat))


@functools.cache
def _defaults() -> Catalogue:
    data = resources.files("cityops.packs").joinpath(NAME).read_bytes()
    return services_from_yaml(data, f"cityops/packs/{NAME}")


def default_services(departments: list[str]) -> Catalogue:
    """The default catalogue, fitted to a city with these department codes."""
    return _defaults().fitted(set(departments))


def default_for(pack: CityPack) -> Catalogue:
    return default_services([d.code for d in pack.departments])


def services_of(pack: CityPack) -> Catalogue:
    """The pack's catalogue, or the default one for a pack made in code without one."""
    return pack.services if pack.services is not None else default_for(pack)


def _section(doc: dict[str, Any], key: str, name: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise PackError(f"{name}: section '{key}' must be a list")
    return value


def _where(name: str, key: str, i: int, raw: Any) -> str:
    label = raw.get("code") if isinstance(raw, dict) else None
    return f"{name}: {key}[{i}]" + (f" ({label})" if isinstance(label, str) else "")


def _list(doc: dict[str, Any], key: str, kind: type, name: str) -> list:
    return [_convert(raw, kind, _where(name, key, i, raw))
            for i, raw in enumerate(_section(doc, key, name))]


def _convert(raw: Any, kind: type, where: str) -> Any:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as error:
        raise PackError(f"{where}: {describe(error)}") from None


def _resolve(refs: Any, shared: dict[str, Any], kind: type, where: str) -> list[Any]:
    """Codes of shared definitions become the definitions; whole definitions stay."""
    if not isinstance(refs, list):
        raise PackError(f"{where} must be a list")
    out = []
    for j, ref in enumerate(refs):
        if isinstance(ref, str):
            if ref not in shared:
                raise PackError(f"{where}[{j}]: {ref!r} is not defined in the top-level "
                                f"'{'fields' if kind is FormField else 'materials'}' section")
            out.append(msgspec.to_builtins(shared[ref]))
        else:
            out.append(ref)
    return out
