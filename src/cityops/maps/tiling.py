"""Web Mercator arithmetic for the tile pyramid: projecting lon/lat, a tile's bounds, the
tiles a box covers, and how much a line may be simplified at a zoom.

Geometry is projected once to EPSG:3857 metres: clipping and simplifying in metres keeps the
tolerance the same number of pixels at every latitude of the map, which degrees would not.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

HALF = 20037508.342789244  # half the Web Mercator world's width in metres
EXTENT = 4096  # tile units across a tile (the MVT default)
BUFFER = 64  # tile units drawn beyond each edge, so strokes and labels meet across tiles
TILE_PX = 512  # CSS pixels a vector tile covers in MapLibre


def lonlat_to_mercator(coords: np.ndarray) -> np.ndarray:
    """(n, 2) lon/lat to (n, 2) metres; latitudes clamped to the square world's edge."""
    lon = coords[:, 0]
    lat = np.clip(coords[:, 1], -85.05112878, 85.05112878)
    x = np.radians(lon) * 6378137.0
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * 6378137.0
    return np.column_stack((x, y))


def project(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geometry, lonlat_to_mercator)


def tile_size(z: int) -> float:
    return 2 * HALF / (1 << z)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """minx, miny, maxx, maxy in metres (tile rows count down from the north, XYZ)."""
    size = tile_size(z)
    minx = -HALF + x * size
    maxy = HALF - y * size
    return minx, maxy - size, minx + size, maxy


def tiles_covering(bounds: tuple[float, float, float, float], z: int
                   ) -> tuple[range, range]:
    """The columns and rows of zoom z whose tiles meet the box (metres)."""
    size = tile_size(z)
    top = (1 << z) - 1
    x0 = max(0, min(top, math.floor((bounds[0] + HALF) / size)))
    x1 = max(0, min(top, math.floor((bounds[2] + HALF) / size)))
    y0 = max(0, min(top, math.floor((HALF - bounds[3]) / size)))
    y1 = max(0, min(top, math.floor((HALF - bounds[1]) / size)))
    return range(x0, x1 + 1), range(y0, y1 + 1)


def pixel(z: int) -> float:
    """Metres a CSS pixel spans at zoom z."""
    return tile_size(z) / TILE_PX


def mercator_to_lonlat(x: float, y: float) -> tuple[float, float]:
    lon = math.degrees(x / 6378137.0)
    lat = math.degrees(2 * math.atan(math.exp(y / 6378137.0)) - math.pi / 2)
    return lon, lat
