"""What makes a city pack consistent, checked on the pack in memory.

Messages point at the file and the record an integrator would open to fix it: features of
areas.geojson and items of YAML lists are counted from 0 (their index), lines of JSON-lines
files from 1 (what an editor shows).
"""

from __future__ import annotations

import functools
import math
import re
import zoneinfo

import h3
import numpy as np
import shapely
from shapely.geometry import shape

from cityops.domain.calendar import parse_hours
from cityops.domain.city import CODE_LENGTH, LEVELS, Area, CityPack, Level
from cityops.domain.geo import AUTHORITY_ROLES, geometry_of
from cityops.domain.incidents.categories import CategoryError, check_categories
from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.onestop.catalogue import CatalogueError, check_catalogue
from cityops.domain.onestop.policies import PolicyError, check_policies
from cityops.packs.codec import line_of
from cityops.packs.errors import PackError

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def check_pack(pack: CityPack) -> None:
    """Raise PackError on the first inconsistency found."""
    _check_info(pack)
    _check_areas(pack.areas)
    codes = {a.code for a in pack.areas}
    _check_departments(pack, codes)
    _check_kinds(pack)
    device_ids = _check_devices(pack)
    _check_staff(pack, device_ids, codes)
    _check_vehicles(pack, device_ids)
    _check_cell_owners(pack, codes)
    _check_zones(pack, device_ids)
    _check_categories(pack)
    _check_services(pack)
    if pack.calendar is not None:
        _check_timezone(pack.calendar.timezone, "calendar.yaml")


def _check_categories(pack: CityPack) -> None:
    try:
        check_categories(pack.categories, {d.code for d in pack.departments})
    except CategoryError as error:
        raise PackError(f"categories.yaml: {error}") from None


def _check_services(pack: CityPack) -> None:
    departments = {d.code for d in pack.departments}
    types = None
    if pack.services is not None:
        try:
            check_catalogue(pack.services, departments)
        except CatalogueError as error:
            raise PackError(f"services.yaml: {error}") from None
        types = {t.code for t in pack.services.licences}
    if pack.policies is not None:
        try:
            check_policies(pack.policies, departments, types)
        except PolicyError as error:
            raise PackError(f"policies.yaml: {error}") from None


@functools.cache
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_timezone(name: str, file: str) -> None:
    known = _known_timezones()
    if known and name not in known:  # no tz database at all: nothing to check against
        raise PackError(f"{file}: field 'timezone': {name!r} is not an IANA time zone name")


def _check_info(pack: CityPack) -> None:
    info = pack.info
    if not info.name.strip():
        raise PackError("city.yaml: field 'name' must not be empty")
    _check_timezone(info.timezone, "city.yaml")
    lat, lon = info.center
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise PackError(f"city.yaml: field 'center' must be [lat, lon], got [{lat}, {lon}]")
    if not 0 <= info.h3_resolution <= 15:
        raise PackError(
            f"city.yaml: field 'h3_resolution' must be 0..15, got {info.h3_resolution}"
        )


def _check_areas(areas: list[Area]) -> None:
    name = "areas.geojson"
    position: dict[str, int] = {}
    for i, area in enumerate(areas):
        if area.code in position:
            raise PackError(
                f"{name}: feature {i}: property 'code' {area.code} is already used by "
                f"feature {position[area.code]}"
            )
        position[area.code] = i
    by_code = {a.code: a for a in areas}
    for i, area in enumerate(areas):
        where = f"{name}: feature {i} ({area.code})"
        if len(area.code) != CODE_LENGTH[area.level] or not area.code.isdigit():
            raise PackError(
                f"{where}: property 'code' must have {CODE_LENGTH[area.level]} digits for a "
                f"{area.level}"
            )
        if area.level is Level.DISTRICT:
            if area.parent is not None:
                raise PackError(f"{where}: property 'parent' must be null for a district")
            continue
        parent = by_code.get(area.parent or "")
        above = LEVELS[LEVELS.index(area.level) - 1]
        if parent is None:
            raise PackError(
                f"{where}: property 'parent' {area.parent!r} is not the code of any area"
            )
        if parent.level is not above:
            raise PackError(
                f"{where}: property 'parent' {parent.code} is a {parent.level}; a {area.level}'s "
                f"parent must be a {above}"
            )
        if not area.code.startswith(parent.code):
            raise PackError(
                f"{where}: property 'code' must start with its parent's code {parent.code}"
            )
    if not any(a.level is Level.VILLAGE for a in areas):
        raise PackError(f"{name}: no village-level areas; the finest level must be villages")
    geometries = np.array([geometry_of(a) for a in areas], dtype=object)
    valid = shapely.is_valid(geometries)
    if not valid.all():
        i = int(np.flatnonzero(~valid)[0])
        reason = shapely.is_valid_reason(geometries[i])
        raise PackError(f"{name}: feature {i} ({areas[i].code}): 'geometry' is invalid: {reason}")


def _check_departments(pack: CityPack, codes: set[str]) -> None:
    seen: set[str] = set()
    for i, department in enumerate(pack.departments):
        where = f"departments.yaml: department {i} ({department.code})"
        if not _SNAKE.match(department.code):
            raise PackError(f"{where}: field 'code' must be snake_case, like city_management")
        if department.code in seen:
            raise PackError(f"{where}: field 'code' {department.code!r} appears twice")
        seen.add(department.code)
        for code in department.service_areas:
            if code not in codes:
                raise PackError(
                    f"{where}: field 'service_areas': {code!r} is not the code of any area"
                )


def _check_kinds(pack: CityPack) -> None:
    for name, kind in pack.kinds.items():
        where = f"kinds.yaml: kind {name!r}"
        if kind.name != name or not _SNAKE.match(name):
            raise PackError(f"{where}: field 'name' must be snake_case and match its key")
        if not 1 <= len(kind.channels) <= MAX_CHANNELS:
            raise PackError(f"{where}: field 'channels' must have 1 to {MAX_CHANNELS} channels")
        if not (math.isfinite(kind.period_s) and kind.period_s > 0):
            raise PackError(f"{where}: field 'period_s' must be a positive number of seconds")
        for channel in kind.channels:
            if not channel.min < channel.max:
                raise PackError(
                    f"{where}: channel {channel.name!r}: 'min' must be below 'max'"
                )


def _check_devices(pack: CityPack) -> set[str]:
    name = "devices.jsonl"
    ids: dict[str, int] = {}
    kinds = pack.kinds
    departments = {d.code for d in pack.departments}
    for i, device in enumerate(pack.devices):
        if device.id in ids:
            raise PackError(
                f"{line_of(name, i)}: field 'id' {device.id!r} is already used on line "
                f"{ids[device.id] + 1}"
            )
        ids[device.id] = i
        if not device.id:
            raise PackError(f"{line_of(name, i)}: field 'id' must not be empty")
        if device.kind not in kinds:
            raise PackError(
                f"{line_of(name, i)}: field 'kind': unknown device kind {device.kind!r} "
                f"(known: {', '.join(sorted(kinds))})"
            )
        if not (-90 <= device.lat <= 90 and -180 <= device.lon <= 180):  # also false for NaN
            raise PackError(
                f"{line_of(name, i)}: fields 'lat', 'lon': ({device.lat}, {device.lon}) is not "
                f"a place on Earth"
            )
        if device.owner is not None and device.owner not in departments:
            raise PackError(
                f"{line_of(name, i)}: field 'owner': {device.owner!r} is not a department code"
            )
    return set(ids)


def _check_staff(pack: CityPack, device_ids: set[str], codes: set[str]) -> None:
    name = "staff.jsonl"
    departments = {d.code for d in pack.departments}
    seen: set[str] = set()
    for i, person in enumerate(pack.staff):
        if person.id in seen:
            raise PackError(f"{line_of(name, i)}: field 'id' {person.id!r} appears twice")
        seen.add(person.id)
        if person.department not in departments:
            raise PackError(
                f"{line_of(name, i)}: field 'department': {person.department!r} is not a "
                f"department code"
            )
        if person.device_id not in device_ids:
            raise PackError(
                f"{line_of(name, i)}: field 'device_id': {person.device_id!r} is not in "
                f"devices.jsonl"
            )
        if person.home_area not in codes:
            raise PackError(
                f"{line_of(name, i)}: field 'home_area': {person.home_area!r} is not an area code"
            )


def _check_vehicles(pack: CityPack, device_ids: set[str]) -> None:
    name = "vehicles.jsonl"
    seen: set[str] = set()
    for i, vehicle in enumerate(pack.vehicles):
        if vehicle.id in seen:
            raise PackError(f"{line_of(name, i)}: field 'id' {vehicle.id!r} appears twice")
        seen.add(vehicle.id)
        if vehicle.device_id not in device_ids:
            raise PackError(
                f"{line_of(name, i)}: field 'device_id': {vehicle.device_id!r} is not in "
                f"devices.jsonl"
            )


def _check_cell_owners(pack: CityPack, codes: set[str]) -> None:
    name = "cell_owners.json"
    departments = {d.code for d in pack.departments}
    roles = {role: level for level, role in AUTHORITY_ROLES.items()}
    resolution = pack.info.h3_resolution
    for cell, owner in pack.cell_owners.items():
        if not h3.is_valid_cell(cell):
            raise PackError(f"{name}: {cell!r} is not an H3 cell")
        if h3.get_resolution(cell) != resolution:
            raise PackError(
                f"{name}: cell {cell} is at H3 resolution {h3.get_resolution(cell)}, the city "
                f"uses {resolution} (city.yaml h3_resolution)"
            )
        if owner in departments:
            continue
        role, _, code = owner.partition(":")
        if role in roles and code in codes and len(code) == CODE_LENGTH[roles[role]]:
            continue
        raise PackError(
            f"{name}: cell {cell}: owner {owner!r} is neither a department code nor a local "
            f"authority like 'station:<village code>'"
        )


def _check_zones(pack: CityPack, device_ids: set[str]) -> None:
    name = "zones.geojson"
    position: dict[str, int] = {}
    for i, zone in enumerate(pack.zones):
        where = f"{name}: feature {i} ({zone.id})"
        if zone.id in position:
            raise PackError(
                f"{where}: property 'id' is already used by feature {position[zone.id]}"
            )
        position[zone.id] = i
        if not _SNAKE.match(zone.kind):
            raise PackError(f"{where}: property 'kind' must be snake_case, like muck_forbidden")
        hours = zone.meta.get("hours")
        if hours is not None and not _is_hours(hours):
            raise PackError(
                f"{where}: property 'meta.hours': {hours!r} is not a period like \"07:00-22:00\""
            )
        vehicles = zone.meta.get("vehicles")
        if vehicles is not None:
            if not isinstance(vehicles, list) or not all(isinstance(v, str) for v in vehicles):
                raise PackError(f"{where}: property 'meta.vehicles' must be a list of device ids")
            unknown = [v for v in vehicles if v not in device_ids]
            if unknown:
                raise PackError(
                    f"{where}: property 'meta.vehicles': {unknown[0]!r} is not in devices.jsonl"
                )
    if not pack.zones:
        return
    geometries = np.array([shape(z.geometry) for z in pack.zones], dtype=object)
    valid = shapely.is_valid(geometries) & (shapely.length(geometries) > 0)
    if not valid.all():
        i = int(np.flatnonzero(~valid)[0])
        reason = shapely.is_valid_reason(geometries[i])
        if reason == "Valid Geometry":
            reason = "it has no extent"
        raise PackError(f"{name}: feature {i} ({pack.zones[i].id}): 'geometry' is invalid: "
                        f"{reason}")


def _is_hours(text: object) -> bool:
    """Hours as rules write them ("07:00-22:00", may wrap past midnight, comma-separated)."""
    if not isinstance(text, str):
        return False
    try:
        parse_hours(text)
    except ValueError:
        return False
    return True
