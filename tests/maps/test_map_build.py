"""`cityops.maps.build`: tiles built from the Helsinki OSM extract and from the grid test pack,
read back from the archive and decoded: roads where the extract has them, names, water,
zoom rules, the buffer, and the archive's header and metadata."""

from __future__ import annotations

import shapely

from cityops.maps.archive import TileArchive
from cityops.maps.build import NothingToDraw, build_archive
from cityops.maps.features import Feature
from cityops.maps.osm import read_osm
from cityops.maps.pack import pack_features
from cityops.maps.tiling import mercator_to_lonlat, project
from cityops.packs.grid import generate
from tests.maps.map_kit import HELSINKI, build_helsinki, decode, tile_of

import pytest


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory):
    out = tmp_path_factory.mktemp("map") / "map.pmtiles"
    built = build_helsinki(out)
    archive = TileArchive(out)
    yield built, archive
    archive.close()


@pytest.fixture(scope="module")
def osm_features():
    return list(read_osm(HELSINKI))


def _named(features, name, layer="roads"):
    return [f for f in features if f.layer == layer and f.properties.get("name") == name]


def test_a_street_of_the_extract_is_in_its_tile_where_it_runs(helsinki, osm_features):
    _, archive = helsinki
    street = max(_named(osm_features, "Aleksanterinkatu"), key=lambda f: f.geometry.length)
    middle = shapely.line_interpolate_point(street.geometry, 0.5, normalized=True)
    lon, lat = mercator_to_lonlat(middle.x, middle.y)
    x, y = tile_of(lon, lat, 14)
    roads = decode(archive, 14, x, y)["roads"]
    near = [r for r in roads if r["properties"].get("name") == "Aleksanterinkatu"
            and r["geometry"].distance(middle) < 3.0]  # metres: quantized to 0.6 m at z14
    assert near, "Aleksanterinkatu is not drawn where the extract has it"
    assert near[0]["properties"]["class"] == street.properties["class"]
    # Nothing of the street is drawn where it is not: every piece lies on the source line.
    for piece in near:
        assert piece["geometry"].hausdorff_distance(
            shapely.clip_by_rect(street.geometry, *piece["geometry"].bounds)) < 3.0


def test_roads_by_class_and_zoom(helsinki):
    _, archive = helsinki
    lon, lat = 24.944, 60.170
    classes = {}
    for z in (11, 14):
        x, y = tile_of(lon, lat, z)
        classes[z] = {r["properties"]["class"] for r in decode(archive, z, x, y)["roads"]}
    assert {"minor", "primary", "path", "service", "rail"} <= classes[14]
    # A city-wide view carries its arterials, not every footway.
    assert "primary" in classes[11] and not {"minor", "path", "service"} & classes[11]


def test_names_places_water_and_buildings(helsinki):
    _, archive = helsinki
    x, y = tile_of(24.944, 60.170, 14)
    tile = decode(archive, 14, x, y)
    places = {p["properties"].get("name"): p["properties"] for p in tile["places"]}
    assert places["Helsinki"]["class"] == "city"
    assert places["Helsinki"]["name_zh"] == "赫爾辛基"
    # The pack's villages are named places too, with the Chinese name the pack gives.
    assert any(p.get("code") == "990001001001" and p.get("name_zh") for p in places.values()
               if p.get("code"))
    assert tile["water"] and tile["buildings"] and tile["parks"]
    assert {a["properties"]["level"] for a in tile["areas"]} >= {"district", "town"}
    x11, y11 = tile_of(24.944, 60.170, 11)
    assert "buildings" not in decode(archive, 11, x11, y11)  # footprints at the top zoom only


def test_archive_header_metadata_and_empty_tiles(helsinki):
    built, archive = helsinki
    west, south, east, north = archive.bounds()
    assert 24.93 < west < 24.94 and 60.18 < north < 60.19 and east < 24.96 and south > 60.16
    assert archive.header["min_zoom"] == 8 and archive.header["max_zoom"] == 14
    meta = archive.metadata()
    assert meta["attribution"] == "© OpenStreetMap contributors"
    assert {layer["id"] for layer in meta["vector_layers"]} >= {"roads", "places", "water"}
    assert built.tiles > 0 and built.bytes == archive.path.stat().st_size
    assert archive.tile(14, 0, 0) is None  # the far side of the world: no tile stored
    assert archive.tile(2, 2, 1) is None  # below the archive's zooms


def test_the_grid_pack_alone_draws_areas_names_and_its_streets(tmp_path):
    pack = generate()  # 0.2 degrees square near Shanghai, four villages
    built = build_archive(pack_features(pack), tmp_path / "grid.pmtiles")
    archive = TileArchive(tmp_path / "grid.pmtiles")
    try:
        lon, lat = pack.info.center[1] + 0.03, pack.info.center[0] + 0.03
        x, y = tile_of(lon, lat, 13)
        tile = decode(archive, 13, x, y)
        assert {r["properties"]["class"] for r in tile["roads"]} == {"minor"}
        # Streets are joined along the grid's lines: long runs, not 150 m pieces.
        assert max(r["geometry"].length for r in tile["roads"]) > 1_000
        x9, y9 = tile_of(lon, lat, 9)
        low = decode(archive, 9, x9, y9)
        assert "roads" not in low  # two towns: no arterials, and the streets start at 12
        names = {p["properties"]["name"] for p in low["places"]}
        assert {"Town 1", "Town 2"} <= names
        assert set(built.features) == {"areas", "roads", "places"}
    finally:
        archive.close()


def test_a_feature_near_a_tile_edge_is_in_the_next_tile_too(tmp_path):
    # A point 10 m west of the edge between two z14 tiles lies in the east tile's buffer.
    from cityops.maps.tiling import tile_bounds

    minx, miny, maxx, maxy = tile_bounds(14, 13700, 6700)
    point = shapely.Point(maxx - 10, (miny + maxy) / 2)
    build_archive([Feature("places", point, 8, {"class": "town", "name": "Edge"})],
                  tmp_path / "edge.pmtiles")
    archive = TileArchive(tmp_path / "edge.pmtiles")
    try:
        assert decode(archive, 14, 13700, 6700)["places"][0]["properties"]["name"] == "Edge"
        assert decode(archive, 14, 13701, 6700)["places"][0]["geometry"].distance(point) < 2
    finally:
        archive.close()


def test_nothing_to_draw_is_an_error_not_an_empty_archive(tmp_path):
    with pytest.raises(NothingToDraw):
        build_archive([], tmp_path / "empty.pmtiles")
    assert not (tmp_path / "empty.pmtiles").exists()


def test_pack_names_in_both_languages_reach_the_features():
    pack = generate()
    town = next(f for f in pack_features(pack, streets=False)
                if f.layer == "places" and f.properties["code"] == "990001001")
    assert town.properties["name"] == "Town 1"
    zh = next(a for a in pack.areas if a.code == "990001001").names.get("zh-CN")
    if zh:  # packs made before names in other languages have only `name`
        assert town.properties["name_zh"] == zh


def test_projection_and_tile_grid_agree():
    from cityops.maps.tiling import HALF, tile_bounds, tiles_covering

    assert tile_bounds(0, 0, 0) == pytest.approx((-HALF, -HALF, HALF, HALF))
    p = project(shapely.Point(24.944, 60.171))
    assert mercator_to_lonlat(p.x, p.y) == pytest.approx((24.944, 60.171))
    xs, ys = tiles_covering((p.x, p.y, p.x, p.y), 14)
    assert (xs[0], ys[0]) == tile_of(24.944, 60.171, 14)
