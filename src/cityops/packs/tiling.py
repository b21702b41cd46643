"""Geometry for synthetic cities: tilings of a region and random places inside it.

Everything takes a numpy Generator, so a seed fixes the outcome. Coordinates are lon/lat
degrees; areas and distances that must mean something on the ground use `km2` and `KM`.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
import shapely.affinity

# Degrees to kilometres near latitude 31 N: one degree of latitude, one of longitude.
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON_AT_31N = 111.320 * math.cos(math.radians(31.0))


def km2(geometry: shapely.Geometry) -> float:
    """Approximate area in square kilometres near 31 N (good to a fraction of a percent)."""
    return float(shapely.area(geometry)) * KM_PER_DEG_LAT * KM_PER_DEG_LON_AT_31N


def disk(lon: float, lat: float, radius_km: float) -> shapely.Polygon:
    """A circle on the ground (an ellipse in degrees)."""
    circle = shapely.Point(0.0, 0.0).buffer(radius_km, quad_segs=8)
    return shapely.affinity.affine_transform(
        circle, [1 / KM_PER_DEG_LON_AT_31N, 0, 0, 1 / KM_PER_DEG_LAT, lon, lat]
    )


def voronoi_tiling(region: shapely.Geometry, seeds: np.ndarray) -> list[shapely.Geometry]:
    """Cells of `seeds` (n x 2, lon/lat) clipped to `region`, in seed order; together they
    cover the region exactly. A cell cut into pieces by a bend of the region keeps the piece
    holding its seed; the others go to the neighbour sharing most border with them."""
    cells = shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=region, ordered=True
    )
    clipped = list(shapely.intersection(shapely.get_parts(cells), region))
    return _reattach_detached_pieces(clipped, seeds)


def _reattach_detached_pieces(cells: list[shapely.Geometry], seeds: np.ndarray) -> list:
    strays: list[tuple[int, shapely.Geometry]] = []
    for i, cell in enumerate(cells):
        parts = [p for p in shapely.get_parts(cell) if p.geom_type == "Polygon"]
        if len(parts) <= 1:
            cells[i] = parts[0] if parts else cell
            continue
        seed = shapely.points(seeds[i])
        home = max(parts, key=lambda p: (p.intersects(seed), p.area))
        cells[i] = home
        strays.extend((i, p) for p in parts if p is not home)
    for owner, piece in strays:
        # Longest shared border, never back to the cell it was cut from.
        best, best_length = owner, -1.0
        for j, cell in enumerate(cells):
            if j == owner or not cell.intersects(piece):
                continue
            length = shapely.length(shapely.intersection(cell.boundary, piece.boundary))
            if length > best_length:
                best, best_length = j, float(length)
        cells[best] = shapely.union(cells[best], piece)
    return cells


def relaxed_seeds(
    rng: np.random.Generator, region: shapely.Geometry, count: int, rounds: int = 2
) -> np.ndarray:
    """`count` seed points spread over `region`: uniform, then moved to the centres of their
    cells a few times (Lloyd's method), which evens out cell sizes the way real boundaries are."""
    seeds = points_in(rng, region, count)
    for _ in range(rounds):
        if count < 3:
            break
        cells = voronoi_tiling(region, seeds)
        centres = shapely.centroid(np.array(cells, dtype=object))
        inside = shapely.contains(region, centres)
        fallback = shapely.point_on_surface(np.array(cells, dtype=object))
        chosen = np.where(inside, centres, fallback)
        seeds = shapely.get_coordinates(chosen)
    return seeds


def points_in(rng: np.random.Generator, region: shapely.Geometry, count: int) -> np.ndarray:
    """`count` uniform random points (n x 2, lon/lat) strictly inside `region`."""
    if count <= 0:
        return np.empty((0, 2))
    minx, miny, maxx, maxy = region.bounds
    shapely.prepare(region)
    share = max(float(region.area) / ((maxx - minx) * (maxy - miny)), 0.02)
    found: list[np.ndarray] = []
    have = 0
    while have < count:
        n = int((count - have) / share * 1.3) + 16
        xs = rng.uniform(minx, maxx, n)
        ys = rng.uniform(miny, maxy, n)
        keep = shapely.contains_xy(region, xs, ys)
        batch = np.column_stack([xs[keep], ys[keep]])
        found.append(batch)
        have += len(batch)
    return np.concatenate(found)[:count]


def points_along(
    rng: np.random.Generator, lines: list[shapely.LineString], count: int
) -> tuple[np.ndarray, np.ndarray]:
    """`count` points spread uniformly along `lines` by length; also which line each is on."""
    lengths = np.array([line.length for line in lines])
    which = rng.choice(len(lines), size=count, p=lengths / lengths.sum())
    distances = rng.uniform(0.0, lengths[which])
    points = shapely.line_interpolate_point(np.array(lines, dtype=object)[which], distances)
    return shapely.get_coordinates(points), which


def spread_points(rng: np.random.Generator, region: shapely.Geometry, count: int) -> np.ndarray:
    """`count` points inside `region` kept far apart (greedy farthest-point picking from many
    uniform candidates): sparse networks such as rain gauges cover the city evenly."""
    candidates = points_in(rng, region, max(count * 10, 100))
    scale = np.array([KM_PER_DEG_LON_AT_31N, KM_PER_DEG_LAT])
    xy = candidates * scale
    chosen = [0]
    nearest = np.linalg.norm(xy - xy[0], axis=1)
    for _ in range(count - 1):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(xy - xy[pick], axis=1))
    return candidates[chosen]
