"""The tile pyramid: features in, one PMTiles archive of gzipped Mapbox Vector Tiles out.

Zoom by zoom, every layer is simplified once to half a pixel of that zoom (a road is not
simplified again for each tile it crosses), features below the zoom's first are left out, and
an STR tree finds what meets each tile. Each tile takes its features clipped to its bounds
plus a buffer of 64 units (of 4,096), so strokes join and labels are not cut at tile edges.
Tiles are written in tile-id order, which the PMTiles writer keeps in a temporary file: in
memory there is the features and one zoom's simplified copy, never the tiles.

Empty tiles are not stored: the server answers 204 for them (`cityops.maps.archive`).
"""

from __future__ import annotations

import gzip
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import numpy as np
import shapely
from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from cityops.maps.features import LAYERS, Feature, bounds_of
from cityops.maps.tiling import (
    BUFFER,
    EXTENT,
    mercator_to_lonlat,
    pixel,
    tile_bounds,
    tile_size,
    tiles_covering,
)

MINZOOM = 8
MAXZOOM = 14  # MapLibre draws deeper zooms from these tiles (overzoom)

Progress = Callable[[int, int], None]  # tiles done, tiles in all


class NothingToDraw(Exception):
    """No feature fell in any tile."""


@dataclass(frozen=True)
class Built:
    path: Path
    tiles: int  # tiles stored (empty ones are not)
    bytes: int
    seconds: float
    features: dict[str, int]  # by layer


@dataclass
class _Zoom:
    """One layer at one zoom: simplified geometries, their tree and properties."""

    geoms: np.ndarray
    props: list[dict[str, Any]]
    tree: shapely.STRtree


def _prepare(features: Sequence[Feature], z: int, maxzoom: int) -> dict[str, _Zoom]:
    px = pixel(z)
    out: dict[str, _Zoom] = {}
    for layer in LAYERS:
        chosen = [f for f in features if f.layer == layer and f.minzoom <= z]
        if not chosen:
            continue
        geoms = np.array([f.geometry for f in chosen], dtype=object)
        if z < maxzoom:
            # Below the top zoom a polygon smaller than a couple of pixels is noise.
            kind = shapely.get_type_id(geoms)
            tiny = (kind >= 3) & (shapely.area(geoms) < 4 * px * px)
            keep = ~tiny
            geoms = geoms[keep]
            chosen = [f for f, k in zip(chosen, keep, strict=True) if k]
        geoms = shapely.simplify(geoms, px / 2, preserve_topology=True)
        out[layer] = _Zoom(geoms, [f.properties for f in chosen], shapely.STRtree(geoms))
    return out


def encode_tile(zoom: dict[str, _Zoom], z: int, x: int, y: int) -> bytes | None:
    """The tile's MVT bytes (not compressed), None when nothing falls in it."""
    bounds = tile_bounds(z, x, y)
    pad = tile_size(z) * BUFFER / EXTENT
    box = (bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad)
    query = shapely.box(*box)
    layers = []
    for name, data in zoom.items():
        hits = data.tree.query(query, predicate="intersects")
        if not len(hits):
            continue
        hits.sort()  # the data's order (a stable draw order within a layer)
        clipped = shapely.clip_by_rect(data.geoms[hits], *box)
        feats = [{"geometry": g, "properties": data.props[i]}
                 for g, i in zip(clipped, hits, strict=True) if not shapely.is_empty(g)]
        if feats:
            layers.append({"name": name, "features": feats})
    if not layers:
        return None
    return bytes(mapbox_vector_tile.encode(layers, default_options={
        "quantize_bounds": bounds, "extents": EXTENT,
        "on_invalid_geometry": on_invalid_geometry_make_valid}))


def build_archive(features: Sequence[Feature], out: Path, *, minzoom: int = MINZOOM,
                  maxzoom: int = MAXZOOM, name: str = "", attribution: str = "",
                  progress: Progress | None = None) -> Built:
    """Write the archive to `out` (atomically: a half-built file never replaces a good one)."""
    if not 0 <= minzoom <= maxzoom <= 18:
        raise ValueError(f"zooms {minzoom}-{maxzoom}: need 0 <= min <= max <= 18")
    started = time.perf_counter()
    box = bounds_of(features)
    if box is None:
        raise NothingToDraw("no features to draw")
    plan = [(z, _tiles(features, z)) for z in range(minzoom, maxzoom + 1)]
    total = sum(len(tiles) for _, tiles in plan)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    stored = done = 0
    with open(partial, "wb") as f, warnings.catch_warnings():
        # mapbox-vector-tile 2.2 calls shapely.ops.transform, deprecated in Shapely 2.1:
        # once per feature of every tile, it would bury any other warning.
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                module="mapbox_vector_tile")
        writer = Writer(f)
        for z, tiles in plan:
            zoom = _prepare(features, z, maxzoom)
            for tile_id, x, y in tiles:
                data = encode_tile(zoom, z, x, y) if zoom else None
                if data is not None:
                    writer.write_tile(tile_id, gzip.compress(data, compresslevel=6, mtime=0))
                    stored += 1
                done += 1
                if progress is not None:
                    progress(done, total)
        if not stored:
            raise NothingToDraw("no feature fell in any tile")
        writer.finalize(_header(box, minzoom, maxzoom), _metadata(features, name, attribution,
                                                                   minzoom, maxzoom))
    os.replace(partial, out)
    counts = {layer: sum(1 for f in features if f.layer == layer) for layer in LAYERS}
    return Built(out, stored, out.stat().st_size, time.perf_counter() - started,
                 {k: v for k, v in counts.items() if v})


def _tiles(features: Sequence[Feature], z: int) -> list[tuple[int, int, int]]:
    """(tile id, x, y) of every tile some feature drawn at z may touch, in id order: the
    union of each feature's box, not the box of them all (a pack and an extract of two
    places far apart would otherwise ask for every tile between them)."""
    geoms = [f.geometry for f in features if f.minzoom <= z]
    if not geoms:
        return []
    boxes = shapely.bounds(np.array(geoms, dtype=object))
    pad = tile_size(z) * BUFFER / EXTENT
    wanted: set[tuple[int, int]] = set()
    for box in boxes:
        xs, ys = tiles_covering((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), z)
        wanted.update((x, y) for x in xs for y in ys)
    return sorted((zxy_to_tileid(z, x, y), x, y) for x, y in wanted)


def _header(box: tuple[float, float, float, float], minzoom: int, maxzoom: int
            ) -> dict[str, Any]:
    west, south = mercator_to_lonlat(box[0], box[1])
    east, north = mercator_to_lonlat(box[2], box[3])
    return {
        "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
        "min_lon_e7": int(west * 1e7), "min_lat_e7": int(south * 1e7),
        "max_lon_e7": int(east * 1e7), "max_lat_e7": int(north * 1e7),
        "center_zoom": min(maxzoom, max(minzoom, 11)),
        "center_lon_e7": int((west + east) / 2 * 1e7),
        "center_lat_e7": int((south + north) / 2 * 1e7),
    }


def _metadata(features: Sequence[Feature], name: str, attribution: str, minzoom: int,
              maxzoom: int) -> dict[str, Any]:
    layers = []
    for layer in LAYERS:
        keys: dict[str, str] = {}
        zooms = []
        for f in features:
            if f.layer == layer:
                zooms.append(f.minzoom)
                for k, v in f.properties.items():
                    keys.setdefault(k, "Number" if isinstance(v, (int, float)) else "String")
        if zooms:
            layers.append({"id": layer, "fields": keys, "minzoom": max(minzoom, min(zooms)),
                           "maxzoom": maxzoom})
    # The TileJSON-like metadata the PMTiles spec asks for; the style reads the attribution.
    return {"name": name, "format": "pbf", "attribution": attribution,
            "vector_layers": layers, "generator": "cityops map build",
            "json": json.dumps({"vector_layers": layers})}
