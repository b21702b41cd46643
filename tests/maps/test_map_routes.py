"""The base map over HTTP on a running node: tiles (gzip or not, 204, ETag, bad coordinates),
the style in both looks and languages, glyphs, the sprite, and a node without an archive."""

from __future__ import annotations

import json
import shutil

import mapbox_vector_tile
import pytest

from cityops.maps.archive import archive_path
from cityops.maps.glyphs import parse_range, render_range
from tests.maps.map_kit import build_helsinki, tile_of


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("map") / "map.pmtiles"
    build_helsinki(out)
    return out


@pytest.fixture
async def with_map(live, built):
    shutil.copy(built, archive_path(live.node.settings.data_dir))
    return live


async def test_a_node_without_a_base_map_says_so_and_still_serves_the_rest(live):
    async with live.client() as c:
        style = await c.get("/map/style.json")
        tile = await c.get("/tiles/14/9326/4742.mvt")
        sprite = await c.get("/map/sprite.json")
        page = await c.get("/screen")
    assert style.status_code == 404 and style.json()["code"] == "map_not_built"
    assert tile.status_code == 404 and tile.json()["code"] == "map_not_built"
    assert sprite.status_code == 200 and page.status_code == 200


async def test_tiles_gzip_aware_with_etag_and_empty_tiles(with_map):
    x, y = tile_of(24.944, 60.170, 14)
    async with with_map.client() as c:
        zipped = await c.get(f"/tiles/14/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
        plain = await c.get(f"/tiles/14/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
        again = await c.get(f"/tiles/14/{x}/{y}.mvt",
                            headers={"If-None-Match": zipped.headers["etag"]})
        empty = await c.get("/tiles/14/0/0.mvt")
    assert zipped.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert "max-age" in zipped.headers["cache-control"]
    assert "content-encoding" not in plain.headers
    # httpx undoes the gzip: both bodies are the same tile.
    assert zipped.content == plain.content
    layers = mapbox_vector_tile.decode(plain.content)
    assert {"roads", "places", "buildings"} <= set(layers)
    assert again.status_code == 304 and not again.content
    assert empty.status_code == 204 and not empty.content


@pytest.mark.parametrize("path, code", [
    ("/tiles/3/8/0.mvt", "bad_tile"),  # column beyond 2^3 - 1
    ("/tiles/23/0/0.mvt", "bad_tile"),
    ("/tiles/x/0/0.mvt", "bad_tile"),
    ("/tiles/-1/0/0.mvt", "bad_tile"),
    ("/tiles/0/³/0.mvt", "bad_tile"),  # a digit to str.isdigit, not to int() (the fuzzer's find)
    ("/tiles/0/0/١.mvt", "bad_tile"),  # an Arabic-Indic digit: not a tile row either
    ("/map/fonts/Sans%20Regular/0-100.pbf", "bad_glyph_range"),
    ("/map/fonts/Sans%20Regular/65536-65791.pbf", "bad_glyph_range"),
    ("/map/style.json?theme=neon", "invalid_query"),
    ("/map/style.json?lang=fr", "invalid_query"),
])
async def test_bad_requests_name_what_is_wrong(with_map, path, code):
    async with with_map.client() as c:
        r = await c.get(path)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code


async def test_the_style_same_origin_in_both_looks_and_languages(with_map):
    async with with_map.client() as c:
        dark = (await c.get("/map/style.json")).json()
        light = (await c.get("/map/style.json", params={"theme": "light", "lang": "zh-CN"}))
    assert light.status_code == 200
    light = light.json()
    source = dark["sources"]["base"]
    # Relative: the page resolves them on its own origin, which its CSP allows.
    assert source["tiles"] == ["/tiles/{z}/{x}/{y}.mvt"]
    assert dark["glyphs"].startswith("/map/fonts/") and dark["sprite"] == "/map/sprite"
    assert source["maxzoom"] == 14 and source["attribution"] == "© OpenStreetMap contributors"
    assert source["bounds"][0] == pytest.approx(24.934, abs=0.002)
    ids = [layer["id"] for layer in dark["layers"]]
    assert ids[0] == "base-background" and "base-roads-primary" in ids
    assert "base-water" in ids and ids.index("base-water") < ids.index("base-roads-minor")
    colour = {la["id"]: la["paint"].get("background-color") for la in dark["layers"]}
    assert colour["base-background"] != {la["id"]: la["paint"].get("background-color")
                                         for la in light["layers"]}["base-background"]
    towns = next(la for la in light["layers"] if la["id"] == "base-labels-towns")
    assert towns["layout"]["text-field"] == ["coalesce", ["get", "name_zh"], ["get", "name"]]
    # Every font a layer names is one the node makes glyphs for.
    fonts = {f for la in dark["layers"] for f in la.get("layout", {}).get("text-font", [])}
    assert fonts <= {"Sans Regular", "Sans Bold"}


async def test_glyphs_and_sprites(with_map):
    async with with_map.client() as c:
        latin = await c.get("/map/fonts/Sans%20Regular/0-255.pbf")
        fallback = await c.get("/map/fonts/Open%20Sans%20Regular,Arial/0-255.pbf")
        index = await c.get("/map/sprite@2x.json")
        png = await c.get("/map/sprite@2x.png")
    assert latin.status_code == 200
    assert latin.headers["content-type"] == "application/x-protobuf"
    assert latin.content == fallback.content  # an unknown stack is drawn in sans
    glyphs = _glyphs(latin.content)
    assert {ord("A"), ord("ä"), ord("ö"), ord(" ")} <= set(glyphs)
    width, height, advance, bitmap = glyphs[ord("A")]
    assert len(bitmap) == (width + 6) * (height + 6)  # the 3 px border all round
    assert 12 <= advance <= 20 and max(bitmap) > 191 > min(bitmap)  # edge at 192
    assert glyphs[ord(" ")][3] == b"" and glyphs[ord(" ")][2] > 0
    sprite = json.loads(index.content)
    assert sprite["town"]["pixelRatio"] == 2 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def _glyphs(pbf: bytes) -> dict[int, tuple[int, int, int, bytes]]:
    """Decode the glyphs protobuf by hand: {code point: (width, height, advance, bitmap)}."""

    def fields(buf):
        i = 0
        while i < len(buf):
            key, i = _varint(buf, i)
            number, kind = key >> 3, key & 7
            if kind == 2:
                size, i = _varint(buf, i)
                yield number, buf[i:i + size]
                i += size
            else:
                value, i = _varint(buf, i)
                yield number, value

    out = {}
    for _, stack in fields(pbf):
        for number, glyph in fields(stack):
            if number == 3:
                g = dict(fields(glyph))
                out[g[1]] = (g[3], g[4], g[7], g.get(2, b""))
    return out


def _varint(buf, i):
    shift = value = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def test_glyph_ranges_are_256_code_points():
    assert parse_range("256-511") == 256
    assert ord("B") in _glyphs(render_range("Sans Bold", 0))  # made without a node


async def test_a_rebuilt_archive_is_served_at_once(with_map, tmp_path):
    import os

    import shapely

    from cityops.maps.build import build_archive
    from cityops.maps.features import Feature
    from cityops.maps.tiling import project

    async with with_map.client() as c:
        before = await c.get("/map/style.json")
        # Another city's map replaces this one while the node runs (as `cityops map build`
        # does: written beside, renamed over).
        fresh = tmp_path / "fresh.pmtiles"
        build_archive([Feature("places", project(shapely.Point(121.5, 31.2)), 8,
                               {"class": "town", "name": "Elsewhere"})], fresh)
        os.replace(fresh, archive_path(with_map.node.settings.data_dir))
        after = await c.get("/map/style.json")
    assert before.headers["etag"] != after.headers["etag"]
    assert after.json()["sources"]["base"]["bounds"][0] == pytest.approx(121.5, abs=0.01)
