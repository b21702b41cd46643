"""Where things are: the city's areas as a spatial index, its grid cells and who owns them.

Pure domain code: built from `Area` records already in memory, it never touches files or the
network. Lookups go through the village polygons only, because the finest level tiles the city
and a village's code carries its town and district (codes nest by prefix).

Responsible units are named by strings. A department is its code ("transport"); the local
authority of an area is `"<role>:<area code>"`: `station:<village>` for a village or community
linkage station, `subcentre:<town>` for a street/town sub-centre and `centre:<district>` for the
district centre, which is also the order in which unfinished work escalates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import h3
import msgspec
import numpy as np
import shapely
from shapely.geometry import shape

from cityops.domain.city import (
    CODE_LENGTH,
    LEVELS,
    Area,
    AreaCodes,
    CityPack,
    Department,
    Device,
    Level,
    level_of_code,
)

ArrayLike = np.ndarray | Sequence[float]

# How far outside every village polygon a point may lie and still count as inside the nearest:
# about 0.1 mm, far below any survey's precision, far above floating-point noise.
BORDER_TOLERANCE_DEG = 1e-9

AUTHORITY_ROLES: dict[Level, str] = {
    Level.VILLAGE: "station",
    Level.TOWN: "subcentre",
    Level.DISTRICT: "centre",
}


def local_authority(code: str) -> str:
    """The unit that holds the territory of area `code`, e.g. "station:310115001001"."""
    return f"{AUTHORITY_ROLES[level_of_code(code)]}:{code}"


def escalation_chain(codes: AreaCodes) -> list[str]:
    """Local authorities from the village station up to the district centre."""
    return [local_authority(codes.village), local_authority(codes.town),
            local_authority(codes.district)]


def geometry_of(area: Area) -> shapely.Geometry:
    return shape(area.geometry)


def to_geojson_geometry(geometry: shapely.Geometry) -> dict[str, Any]:
    """A polygonal shapely geometry as an RFC 7946 geometry dict: plain lists, outer rings
    counter-clockwise, so it survives a JSON round trip unchanged."""
    oriented = shapely.orient_polygons(geometry, exterior_cw=False)
    plain: dict[str, Any] = msgspec.json.decode(
        msgspec.json.encode(shapely.geometry.mapping(oriented)))
    return plain


class CityMap:
    """The areas of one city, indexed for point lookups, plus grid cells and their owners."""

    def __init__(
        self,
        areas: Iterable[Area],
        *,
        cell_owners: Mapping[str, str] | None = None,
        h3_resolution: int = 9,
        departments: Iterable[Department] = (),
        name: str = "the city",
    ) -> None:
        if not 0 <= h3_resolution <= 15:
            raise ValueError(f"H3 resolution {h3_resolution} is not between 0 and 15")
        self.name = name
        self.h3_resolution = h3_resolution
        self.cell_owners: dict[str, str] = dict(cell_owners or {})
        self.departments: dict[str, Department] = {d.code: d for d in departments}
        self._areas: dict[str, Area] = {}
        for area in sorted(areas, key=lambda a: a.code):
            if area.code in self._areas:
                raise ValueError(f"area code {area.code} appears twice")
            self._areas[area.code] = area
        self._children: dict[str, list[str]] = {code: [] for code in self._areas}
        for area in self._areas.values():
            self._check_place_in_hierarchy(area)
            if area.parent is not None:
                self._children[area.parent].append(area.code)
        self._village_codes = [a.code for a in self._areas.values() if a.level is Level.VILLAGE]
        if not self._village_codes:
            raise ValueError(f"{name} has no villages; points can only resolve to villages")
        self._places = [self._codes_of(code) for code in self._village_codes]
        self._village_geoms = np.array(
            [geometry_of(self._areas[code]) for code in self._village_codes], dtype=object
        )
        shapely.prepare(self._village_geoms)
        # Tree positions are the code-sorted village order, so the smallest hit is the lowest code.
        self._tree = shapely.STRtree(self._village_geoms)

    @classmethod
    def from_pack(cls, pack: CityPack) -> CityMap:
        return cls(
            pack.areas,
            cell_owners=pack.cell_owners,
            h3_resolution=pack.info.h3_resolution,
            departments=pack.departments,
            name=pack.info.name,
        )

    def _check_place_in_hierarchy(self, area: Area) -> None:
        if len(area.code) != CODE_LENGTH[area.level] or not area.code.isdigit():
            raise ValueError(
                f"area {area.code}: a {area.level} code has {CODE_LENGTH[area.level]} digits"
            )
        if area.level is Level.DISTRICT:
            if area.parent is not None:
                raise ValueError(f"area {area.code}: a district has no parent")
            return
        parent = self._areas.get(area.parent or "")
        if parent is None:
            raise ValueError(f"area {area.code}: parent {area.parent!r} is not an area")
        if LEVELS.index(parent.level) != LEVELS.index(area.level) - 1:
            raise ValueError(
                f"area {area.code}: a {area.level}'s parent must be one level up, "
                f"{parent.code} is a {parent.level}"
            )
        if not area.code.startswith(parent.code):
            raise ValueError(
                f"area {area.code}: code does not start with its parent's code {parent.code}"
            )

    def _codes_of(self, village: str) -> AreaCodes:
        town = self._areas[village].parent
        district = self._areas[town].parent  # type: ignore[index]
        return AreaCodes(district=district, town=town, village=village)  # type: ignore[arg-type]

    # -- hierarchy ---------------------------------------------------------------------------

    def area(self, code: str) -> Area:
        try:
            return self._areas[code]
        except KeyError:
            raise KeyError(f"no area with code {code!r} in {self.name}") from None

    def children(self, code: str) -> list[Area]:
        self.area(code)
        return [self._areas[c] for c in self._children[code]]

    def ancestors(self, code: str) -> list[Area]:
        """The areas above `code`, district first; empty for a district."""
        chain: list[Area] = []
        parent = self.area(code).parent
        while parent is not None:
            chain.append(self._areas[parent])
            parent = self._areas[parent].parent
        chain.reverse()
        return chain

    def level_of(self, code: str) -> Level:
        return self.area(code).level

    def areas_at(self, level: Level | str) -> list[Area]:
        level = Level(level)
        return [a for a in self._areas.values() if a.level is level]

    def __contains__(self, code: object) -> bool:
        return code in self._areas

    def __len__(self) -> int:
        return len(self._areas)

    def geometry(self, code: str) -> shapely.Geometry:
        return geometry_of(self.area(code))

    # -- point lookups -----------------------------------------------------------------------

    def village_indices(self, lats: ArrayLike, lons: ArrayLike) -> np.ndarray:
        """For each point, the position of its village in code order (`villages`), or -1
        outside the city. A point on a shared border goes to the lowest village code."""
        lats = np.asarray(lats, dtype=np.float64)
        lons = np.asarray(lons, dtype=np.float64)
        if lats.shape != lons.shape or lats.ndim != 1:
            raise ValueError(
                f"lats and lons must be 1-d and equally long, got {lats.shape} and {lons.shape}"
            )
        points = shapely.points(lons, lats)
        hits_in, hits_tree = self._tree.query(points, predicate="intersects")
        none = len(self._village_codes)
        out = np.full(len(lats), none, dtype=np.int64)
        np.minimum.at(out, hits_in, hits_tree)
        missed = np.flatnonzero((out == none) & np.isfinite(lats) & np.isfinite(lons))
        if len(missed):
            # Neighbours computed separately can leave slivers a few ulps wide along a shared
            # border; a point in one still belongs to the village a hair's breadth away.
            near_in, near_tree = self._tree.query_nearest(
                points[missed], max_distance=BORDER_TOLERANCE_DEG, all_matches=True
            )
            np.minimum.at(out, missed[near_in], near_tree)
        out[out == none] = -1
        return out

    @property
    def villages(self) -> list[str]:
        """Village codes in the order `village_indices` refers to."""
        return list(self._village_codes)

    def resolve(self, lat: float, lon: float) -> AreaCodes | None:
        index = int(self.village_indices([lat], [lon])[0])
        return None if index < 0 else self._places[index]

    def resolve_many(self, lats: ArrayLike, lons: ArrayLike) -> list[AreaCodes | None]:
        places = self._places
        return [None if i < 0 else places[i] for i in self.village_indices(lats, lons).tolist()]

    def cell_of(self, lat: float, lon: float) -> str:
        cell: str = h3.latlng_to_cell(lat, lon, self.h3_resolution)
        return cell

    def cells_of(self, lats: ArrayLike, lons: ArrayLike) -> list[str]:
        res = self.h3_resolution
        to_cell = h3.latlng_to_cell
        lats = np.asarray(lats, dtype=np.float64).tolist()
        lons = np.asarray(lons, dtype=np.float64).tolist()
        return [to_cell(lat, lon, res) for lat, lon in zip(lats, lons, strict=True)]

    # -- ownership ---------------------------------------------------------------------------

    def owner_of_cell(self, cell: str) -> str:
        """The unit responsible for a grid cell: its explicit owner, else the station of the
        village holding the territory (the village containing the cell's centre, or for a
        cell whose centre lies outside the city, the village covering most of it).

        Raises ValueError for a string that is not an H3 cell or a cell entirely outside.
        """
        owner = self.cell_owners.get(cell)
        if owner:
            return owner
        return local_authority(self.territory_of_cell(cell))

    def territory_of_cell(self, cell: str) -> str:
        """The village a grid cell belongs to: the one containing its centre, or for a cell
        whose centre lies outside the city, the one covering most of it. ValueError as
        `owner_of_cell`."""
        if not isinstance(cell, str) or not h3.is_valid_cell(cell):
            raise ValueError(f"{cell!r} is not an H3 cell")
        lat, lon = h3.cell_to_latlng(cell)
        index = int(self.village_indices([lat], [lon])[0])
        if index < 0:
            index = self._village_covering_most_of(cell)
        return self._village_codes[index]

    def _village_covering_most_of(self, cell: str) -> int:
        hexagon = shapely.Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(cell)])
        hits = np.sort(self._tree.query(hexagon, predicate="intersects"))
        if len(hits) == 0:
            raise ValueError(f"cell {cell} lies outside {self.name}")
        shares = shapely.area(shapely.intersection(self._village_geoms[hits], hexagon))
        return int(hits[int(np.argmax(shares))])  # argmax keeps the first, i.e. lowest, code

    def departments_serving(self, place: AreaCodes) -> list[Department]:
        return [d for d in self.departments.values()
                if any(place.within(code) for code in d.service_areas)]

    # -- devices -----------------------------------------------------------------------------

    def resolve_device(self, device: Device) -> Device:
        """A copy of `device` with `areas` and `cell` filled in; ValueError when it lies outside."""
        resolved, errors = self.resolve_devices([device])
        if errors:
            raise ValueError(errors[0][1])
        return resolved[0]

    def resolve_devices(
        self, devices: Sequence[Device]
    ) -> tuple[list[Device], list[tuple[int, str]]]:
        """Resolve many devices at once. Returns the resolved devices (in input order, without
        the failures) and `(index in the input, message)` for each device that failed."""
        lats = np.fromiter((d.lat for d in devices), dtype=np.float64, count=len(devices))
        lons = np.fromiter((d.lon for d in devices), dtype=np.float64, count=len(devices))
        valid = np.isfinite(lats) & np.isfinite(lons) & (np.abs(lats) <= 90) & (np.abs(lons) <= 180)
        indices = self.village_indices(np.where(valid, lats, np.nan), np.where(valid, lons, np.nan))
        resolved: list[Device] = []
        errors: list[tuple[int, str]] = []
        replace = msgspec.structs.replace
        to_cell = h3.latlng_to_cell
        res = self.h3_resolution
        places = self._places
        rows = zip(devices, indices.tolist(), valid.tolist(), strict=True)
        for i, (device, index, ok) in enumerate(rows):
            if not ok:
                errors.append((i, f"device {device.id!r} has invalid coordinates "
                                  f"lat {device.lat}, lon {device.lon}"))
            elif index < 0:
                errors.append((i, f"device {device.id!r} at lat {device.lat}, lon {device.lon} "
                                  f"lies outside {self.name}"))
            else:
                resolved.append(replace(device, areas=places[index],
                                        cell=to_cell(device.lat, device.lon, res)))
        return resolved, errors

