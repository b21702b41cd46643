"""A city pack on disk: one folder of plain files (the format is in docs/city-packs.md).

    city.yaml         CityInfo: name, time zone, centre, H3 resolution        required
    areas.geojson     districts, towns, villages as a FeatureCollection        required
    departments.yaml  the units and the areas they serve                      required
    kinds.yaml        device kinds beyond (or replacing) the built-in ones     optional
    devices.jsonl     one Device per line                                      optional
    staff.jsonl       one Staff per line                                       optional
    vehicles.jsonl    one Vehicle per line                                     optional
    cell_owners.json  {H3 cell: responsible unit}                              optional
    calendar.yaml     working hours, weekend, public holidays                  optional
    zones.geojson     places rules refer to: forbidden zones, routes, lanes   optional
    categories.yaml   case categories: departments, urgency, time limits     optional
    services.yaml     one-stop service items, e-licence types, bundles        optional
    policies.yaml     eligibility policies: benefits granted without applying optional
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from cityops.domain.city import (
    CityInfo,
    CityPack,
    Department,
    Device,
    DeviceKind,
    Staff,
    Vehicle,
)
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.packs import (
    areas_file,
    calendar_file,
    categories_file,
    policies_file,
    services_file,
    zones_file,
)
from cityops.packs.checks import check_pack
from cityops.packs.codec import (
    convert,
    decode_json,
    dump_yaml,
    encode_json,
    load_yaml,
    read_bytes,
    read_jsonl,
    write_jsonl,
)
from cityops.packs.errors import PackError

__all__ = ["PackError", "load_pack", "save_pack", "check_pack", "PACK_FILES"]

CITY = "city.yaml"
AREAS = areas_file.NAME
DEPARTMENTS = "departments.yaml"
KINDS = "kinds.yaml"
DEVICES = "devices.jsonl"
STAFF = "staff.jsonl"
VEHICLES = "vehicles.jsonl"
CELL_OWNERS = "cell_owners.json"
CALENDAR = calendar_file.NAME
ZONES = zones_file.NAME
CATEGORIES = categories_file.NAME
SERVICES = services_file.NAME
POLICIES = policies_file.NAME
PACK_FILES = (CITY, AREAS, DEPARTMENTS, KINDS, DEVICES, STAFF, VEHICLES, CELL_OWNERS, CALENDAR,
              ZONES, CATEGORIES, SERVICES, POLICIES)


def load_pack(path: str | os.PathLike[str]) -> CityPack:
    """Read and check a city-pack folder. Raises PackError naming the file and field at fault."""
    folder = Path(path)
    if not folder.is_dir():
        raise PackError(f"{folder}: not a city-pack folder (it should hold {CITY}, {AREAS} ...)")
    info = _struct(_yaml_mapping(folder, CITY), CityInfo, CITY)
    areas = areas_file.areas_from_geojson(read_bytes(folder, AREAS, required=True) or b"")
    departments = _yaml_items(folder, DEPARTMENTS, Department, "department", required=True)
    kinds = dict(BUILTIN_KINDS)
    kinds.update((k.name, k) for k in _yaml_items(folder, KINDS, DeviceKind, "kind"))
    calendar_data = read_bytes(folder, CALENDAR, required=False)
    calendar = calendar_file.calendar_from_yaml_obj(
        load_yaml(calendar_data, CALENDAR) if calendar_data is not None else None, info.timezone
    )
    zones_data = read_bytes(folder, ZONES, required=False)
    categories_data = read_bytes(folder, CATEGORIES, required=False)
    categories = (
        categories_file.categories_from_yaml(categories_data)
        if categories_data is not None
        else categories_file.default_categories([d.code for d in departments])
    )
    pack = CityPack(
        info=info,
        areas=areas,
        departments=departments,
        kinds=kinds,
        devices=_jsonl(folder, DEVICES, Device),
        staff=_jsonl(folder, STAFF, Staff),
        vehicles=_jsonl(folder, VEHICLES, Vehicle),
        cell_owners=_cell_owners(folder),
        calendar=calendar,
        zones=zones_file.zones_from_geojson(zones_data) if zones_data is not None else [],
        categories=categories,
    )
    # Without the files, None: the default sets, fitted to the departments when used
    # (services_file.services_of, policies_file.policies_of).
    services_data = read_bytes(folder, SERVICES, required=False)
    if services_data is not None:
        pack.services = services_file.services_from_yaml(services_data)
    policies_data = read_bytes(folder, POLICIES, required=False)
    if policies_data is not None:
        pack.policies = policies_file.policies_from_yaml(policies_data)
    check_pack(pack)
    return pack


def save_pack(pack: CityPack, path: str | os.PathLike[str], *, check: bool = True) -> None:
    """Write `pack` into folder `path` (created if needed), replacing the pack files there.

    The output is deterministic: the same pack gives the same bytes in every file.
    """
    if check:
        check_pack(pack)
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise PackError(f"{folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    custom_kinds = [k for name, k in sorted(pack.kinds.items()) if BUILTIN_KINDS.get(name) != k]
    files: dict[str, bytes | None] = {
        CITY: dump_yaml(_city_yaml_obj(pack.info)),
        AREAS: areas_file.areas_to_geojson(pack.areas),
        DEPARTMENTS: dump_yaml([_without_empty_names(_plain(d)) for d in pack.departments]),
        KINDS: dump_yaml([_plain(k) for k in custom_kinds]) if custom_kinds else None,
        DEVICES: write_jsonl(pack.devices),
        STAFF: write_jsonl(pack.staff),
        VEHICLES: write_jsonl(pack.vehicles),
        CELL_OWNERS: encode_json(dict(sorted(pack.cell_owners.items()))),
        CALENDAR: (
            dump_yaml(calendar_file.calendar_to_yaml_obj(pack.calendar))
            if pack.calendar is not None
            else None
        ),
        ZONES: zones_file.zones_to_geojson(pack.zones) if pack.zones else None,
        CATEGORIES: (categories_file.categories_to_yaml(pack.categories)
                     if pack.categories else None),
        SERVICES: (services_file.services_to_yaml(pack.services)
                   if pack.services is not None else None),
        POLICIES: (policies_file.policies_to_yaml(pack.policies)
                   if pack.policies is not None else None),
    }
    for name, data in files.items():
        target = folder / name
        if data is None:
            # A stale optional file from an earlier pack would otherwise be loaded with this one.
            target.unlink(missing_ok=True)
            continue
        partial = folder / f".{name}.partial"
        partial.write_bytes(data)
        os.replace(partial, target)


def _city_yaml_obj(info: CityInfo) -> dict[str, Any]:
    # Every field written out, defaults included: the file doubles as documentation.
    return {
        "name": info.name,
        "timezone": info.timezone,
        "center": list(info.center),
        "h3_resolution": info.h3_resolution,
        "country": info.country,
        "version": info.version,
        "generator": _plain(info.generator),
        # Only when there are some: packs without translations keep their bytes.
        **({"names": dict(info.names)} if info.names else {}),
        **({"language": info.language} if info.language != "en" else {}),
    }


def _without_empty_names(item: dict[str, Any]) -> dict[str, Any]:
    if not item.get("names"):
        item.pop("names", None)
    return item


def _plain(obj: Any) -> Any:
    return msgspec.to_builtins(obj)


def _yaml_mapping(folder: Path, name: str) -> dict[str, Any]:
    doc = load_yaml(read_bytes(folder, name, required=True) or b"", name)
    if not isinstance(doc, dict):
        raise PackError(f"{name}: must be a mapping of field: value")
    return doc


def _struct(item: dict[str, Any], kind: type, where: str) -> Any:
    """Convert one mapping, refusing unknown fields: a misspelt optional field would otherwise
    be dropped without a word."""
    unknown = sorted(str(key) for key in item if key not in kind.__struct_fields__)
    if unknown:
        known = ", ".join(kind.__struct_fields__)
        raise PackError(f"{where}: unknown field '{unknown[0]}' (fields: {known})")
    return convert(item, kind, where)


def _yaml_items(
    folder: Path, name: str, kind: type, noun: str, *, required: bool = False
) -> list:
    data = read_bytes(folder, name, required=required)
    if data is None:
        return []
    doc = load_yaml(data, name)
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise PackError(f"{name}: must be a list of {noun}s")
    items = []
    for i, item in enumerate(doc):
        label = (item.get("code") or item.get("name")) if isinstance(item, dict) else None
        where = f"{name}: {noun} {i}" + (f" ({label})" if isinstance(label, str) else "")
        if not isinstance(item, dict):
            raise PackError(f"{where}: must be a mapping of field: value")
        items.append(_struct(item, kind, where))
    return items


def _jsonl(folder: Path, name: str, kind: type) -> list:
    data = read_bytes(folder, name, required=False)
    return [] if data is None else read_jsonl(data, kind, name)


def _cell_owners(folder: Path) -> dict[str, str]:
    data = read_bytes(folder, CELL_OWNERS, required=False)
    if data is None:
        return {}
    doc = decode_json(data, CELL_OWNERS)
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise PackError(f"{CELL_OWNERS}: must be an object mapping H3 cell to owner code")
    return doc
