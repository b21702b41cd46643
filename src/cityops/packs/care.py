"""Elderly-care data of a city pack, made up plausibly from a seed: residents aged 60 and over
per community, the homes they live in, the elderly-care service points, and (for a pack with
no street map) a street grid to walk on.

Generated, not stored: the same pack gives the same figures, byte for byte, on every node, and
a pack generated before this existed has them too. The Pudong preset is scaled to the real
district's size; any other pack (the grid test city) gets the same kind of figures unscaled.

Facts the figures follow (and nothing else here is real):
  * Pudong New Area had about 5.68 million permanent residents at the 2020 census (the 7th
    national census, as Shanghai's statistics published it); the synthetic total is scaled
    to 5,681,512.
  * Shanghai's residents aged 60 and over were 23.4 % of its permanent residents at the 2020
    census (5.82 million; Shanghai Statistics Bureau, May 2021) and 25 % in 2022 (Shanghai
    Statistics Bureau, March 2023). Communities here draw their share around 25 %, rural
    villages (older, as the young move to town) around 29 %.
  * Service points: an assumption, not a figure: seven communities in ten and a little under
    half the rural villages have a station inside them, so about one per one or two
    communities, with gaps to find.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import shapely

from cityops.domain.care import split_residents
from cityops.domain.city import CityPack, Level
from cityops.domain.geo import geometry_of
from cityops.analytics.walk import walk_ways
from cityops.routing.osm import WayRefs

PUDONG_RESIDENTS = 5_681_512
SHARE_60_COMMUNITY = 0.25
SHARE_60_VILLAGE = 0.29
CARE_CHANCE_COMMUNITY = 0.7  # of a community having a service point inside it
CARE_CHANCE_VILLAGE = 0.45
RESIDENTS_60_PER_HOME = 60  # a residential block's worth: a home point stands for a block
GRID_SPACING_M = 150.0  # between parallel streets of the generated grid
GRID_GAPS = 0.12  # share of grid segments left out (walls, canals, gated blocks)
M_PER_DEG_LAT = 110_574.0


@dataclass(frozen=True, slots=True)
class CarePoint:
    id: str
    name: str
    lat: float
    lon: float
    area: str  # the community it stands in


@dataclass(frozen=True, slots=True)
class Community:
    code: str
    name: str
    town: str
    residents: int
    residents_60: int


@dataclass(frozen=True, slots=True)
class CareData:
    communities: list[Community]
    home_lat: np.ndarray
    home_lon: np.ndarray
    home_area: np.ndarray  # index into communities
    home_60: np.ndarray  # residents 60+ at the home point
    points: list[CarePoint]


def _rng(pack: CityPack, salt: str) -> np.random.Generator:
    seed = int(pack.info.generator.get("seed", 0) or 0)
    return np.random.default_rng([seed, zlib.crc32(salt.encode())])


def _is_pudong(pack: CityPack) -> bool:
    return pack.info.generator.get("preset") == "pudong"


def sample_inside(rng: np.random.Generator, shape: shapely.Geometry, n: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """`n` points spread uniformly inside a polygon (drawn in its box, kept when inside)."""
    x0, y0, x1, y1 = shape.bounds
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    have = 0
    for _ in range(50):
        x = rng.uniform(x0, x1, 4 * n + 8)
        y = rng.uniform(y0, y1, 4 * n + 8)
        inside = shapely.contains_xy(shape, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        have += int(inside.sum())
        if have >= n:
            break
    if have < n:  # a sliver: its representative point, repeated
        p = shape.representative_point()
        xs.append(np.full(n, p.x))
        ys.append(np.full(n, p.y))
    return np.concatenate(ys)[:n], np.concatenate(xs)[:n]


def care_data(pack: CityPack) -> CareData:
    """The pack's elderly-care data (see the module's docstring for the figures)."""
    rng = _rng(pack, "elderly-care")
    villages = sorted((a for a in pack.areas if a.level is Level.VILLAGE), key=lambda a: a.code)
    rural = np.array([a.name.endswith(" Village") for a in villages], dtype=bool)
    # Residents: lognormal around 9,000 a community and 3,500 a village (spread 0.35).
    residents = np.exp(rng.normal(np.where(rural, np.log(3500), np.log(9000)), 0.35))
    if _is_pudong(pack) and len(villages):
        residents *= PUDONG_RESIDENTS / residents.sum()
    residents = np.round(residents).astype(np.int64)
    share = np.clip(rng.normal(np.where(rural, SHARE_60_VILLAGE, SHARE_60_COMMUNITY), 0.04),
                    0.12, 0.45)
    r60 = np.round(residents * share).astype(np.int64)
    communities = [Community(a.code, a.name, a.parent or "", int(r), int(o))
                   for a, r, o in zip(villages, residents, r60, strict=True)]

    lats: list[np.ndarray] = []
    lons: list[np.ndarray] = []
    idx: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    points: list[CarePoint] = []
    for i, (area, c) in enumerate(zip(villages, communities, strict=True)):
        shape = geometry_of(area)
        n = int(np.clip(c.residents_60 // RESIDENTS_60_PER_HOME, 6, 40))
        la, lo = sample_inside(rng, shape, n)
        lats.append(la)
        lons.append(lo)
        idx.append(np.full(n, i, dtype=np.int64))
        weights.append(split_residents(c.residents_60, n))
        if rng.random() < (CARE_CHANCE_VILLAGE if rural[i] else CARE_CHANCE_COMMUNITY):
            (pla,), (plo,) = sample_inside(rng, shape, 1)
            points.append(CarePoint(f"care-{area.code}", f"{area.name} elderly-care station",
                                    round(float(pla), 6), round(float(plo), 6), area.code))
    empty = np.zeros(0)
    return CareData(communities,
                    np.concatenate(lats) if lats else empty,
                    np.concatenate(lons) if lons else empty,
                    np.concatenate(idx) if idx else empty.astype(np.int64),
                    np.concatenate(weights) if weights else empty.astype(np.int64),
                    points)


def street_grid(pack: CityPack, spacing_m: float = GRID_SPACING_M) -> WayRefs:
    """A street grid over the pack's villages, for a pack with no street map: streets every
    `spacing_m` each way, nodes jittered a little, and some segments missing so that a walk
    is not always the straight grid line (the walking network keeps the connected part)."""
    rng = _rng(pack, "street-grid")
    villages = [geometry_of(a) for a in pack.areas if a.level is Level.VILLAGE]
    land = shapely.union_all(villages)
    x0, y0, x1, y1 = land.bounds
    mid = np.radians((y0 + y1) / 2)
    dy = spacing_m / M_PER_DEG_LAT
    dx = spacing_m / (M_PER_DEG_LAT * np.cos(mid))
    xs = np.arange(x0, x1 + dx, dx)
    ys = np.arange(y0, y1 + dy, dy)
    gx, gy = np.meshgrid(xs, ys)  # rows: latitude, columns: longitude
    gx = gx + rng.uniform(-0.15, 0.15, gx.shape) * dx
    gy = gy + rng.uniform(-0.15, 0.15, gy.shape) * dy
    keep = shapely.contains_xy(land, gx, gy)
    ids = np.arange(gx.size, dtype=np.int64).reshape(gx.shape) + 1
    pairs = []
    for a, b, ka, kb in ((ids[:, :-1], ids[:, 1:], keep[:, :-1], keep[:, 1:]),
                         (ids[:-1, :], ids[1:, :], keep[:-1, :], keep[1:, :])):
        both = ka & kb
        pairs.append(np.column_stack((a[both], b[both])))
    seg = np.concatenate(pairs)
    seg = seg[rng.random(len(seg)) >= GRID_GAPS]
    if len(seg) == 0:
        raise ValueError("the pack's villages are too small for a street grid")
    node = seg.reshape(-1)
    flat_x, flat_y = gx.reshape(-1), gy.reshape(-1)
    n = len(seg)
    return walk_ways(node, flat_y[node - 1], flat_x[node - 1],
                     np.repeat(np.arange(n, dtype=np.int64), 2),
                     np.arange(1, n + 1, dtype=np.int64))
