"""The base map in Debian's Chromium: a node whose archive was built from the real Helsinki
extract draws its streets (a pixel check on a known street, gone when the road layers are
hidden), names, and the citizen page's light street map for picking a place."""

from __future__ import annotations

import io

import numpy as np
import pytest
import shapely
from PIL import Image

from cityops.maps.archive import archive_path
from cityops.maps.osm import read_osm
from cityops.maps.style import PALETTE
from cityops.maps.tiling import mercator_to_lonlat
from tests.maps.map_kit import HELSINKI, build_helsinki, helsinki_pack
from tests.web.conftest import WebNode, signed_in

KEYS = {"operator": ("operator", None, "duty operator"), "citizen": ("citizen", None, "c-1")}


@pytest.fixture(scope="module")
def map_node(tmp_path_factory):
    data = tmp_path_factory.mktemp("basemap") / "data"
    node = WebNode(helsinki_pack(), data, KEYS)
    build_helsinki(archive_path(data))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def street():
    """The middle of Pohjoisesplanadi (primary), as lon/lat, from the extract itself."""
    ways = [f for f in read_osm(HELSINKI) if f.layer == "roads"
            and f.properties.get("name") == "Pohjoisesplanadi"]
    longest = max(ways, key=lambda f: f.geometry.length)
    middle = shapely.line_interpolate_point(longest.geometry, 0.5, normalized=True)
    return mercator_to_lonlat(middle.x, middle.y), longest.properties["class"]


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _near(image: Image.Image, box, colour, tolerance=10) -> int:
    """Pixels within `box` (left, top, right, bottom) within `tolerance` of `colour`."""
    crop = np.asarray(image.crop(box).convert("RGB"), dtype=int)
    return int((np.abs(crop - np.array(colour)) <= tolerance).all(axis=2).sum())


def _settle(page, expr: str) -> None:
    page.wait_for_function(f"(() => {{ const m = {expr}; return m.loaded() && "
                           f"m.areTilesLoaded() && !m.isMoving(); }})()", timeout=60_000)


def _shot(page, selector: str) -> Image.Image:
    return Image.open(io.BytesIO(page.locator(selector).screenshot()))


def test_the_screen_draws_the_streets_of_helsinki(map_node, browser, artifacts, street):
    (lon, lat), cls = street
    road = _hex(PALETTE["dark"]["road"][cls])
    context, page = signed_in(browser, map_node.url, map_node.keys["operator"], "/screen")
    try:
        page.wait_for_function("window.cityops && window.cityops.view && "
                               "window.cityops.view.base && window.cityops.view.focusCode",
                               timeout=60_000)
        view = "window.cityops.view.map"
        page.evaluate(f"{view}.jumpTo({{ center: [{lon}, {lat}], zoom: 16 }})")
        _settle(page, view)
        shot = _shot(page, "#map")
        shot.save(artifacts / "base-map-screen.png")
        x, y = page.evaluate(f"(() => {{ const p = {view}.project([{lon}, {lat}]); "
                             "return [p.x, p.y]; })()")
        around = (int(x) - 6, int(y) - 6, int(x) + 7, int(y) + 7)
        assert _near(shot, around, road) > 10, "no road colour on Pohjoisesplanadi"
        everywhere = (0, 0, shot.width, shot.height)
        drawn = _near(shot, everywhere, road)
        # The data's licence is credited on the map.
        assert "OpenStreetMap" in page.locator(".maplibregl-ctrl-attrib-inner").text_content()
        # The streets' names are drawn too, with the node's own glyphs.
        assert page.evaluate(f"{view}.queryRenderedFeatures({{ layers: ['base-labels-roads'] }})"
                             ".some(f => f.properties.name === 'Pohjoisesplanadi')")
        page.evaluate(f"""{view}.getStyle().layers.filter(l => l.id.startsWith('base-roads'))
            .forEach(l => {view}.setLayoutProperty(l.id, 'visibility', 'none'))""")
        page.evaluate(f"{view}.triggerRepaint()")
        _settle(page, view)
        hidden = _shot(page, "#map")
        hidden.save(artifacts / "base-map-screen-roads-hidden.png")
        assert _near(hidden, around, road) == 0
        assert _near(hidden, everywhere, road) < drawn / 20
    finally:
        context.close()


def test_the_citizen_picks_a_place_on_a_light_street_map(map_node, browser, artifacts,
                                                         street):
    (lon, lat), cls = street
    road = _hex(PALETTE["light"]["road"][cls])
    context, page = signed_in(browser, map_node.url, map_node.keys["citizen"], "/citizen",
                              viewport=(412, 915))
    try:
        page.wait_for_selector("#map[data-ready='1']", timeout=60_000)
        view = "window.cityops.state.map"
        page.evaluate(f"{view}.jumpTo({{ center: [{lon}, {lat}], zoom: 16 }})")
        _settle(page, view)
        shot = _shot(page, "#map")
        shot.save(artifacts / "base-map-citizen.png")
        x, y = page.evaluate(f"(() => {{ const p = {view}.project([{lon}, {lat}]); "
                             "return [p.x, p.y]; })()")
        assert _near(shot, (int(x) - 6, int(y) - 6, int(x) + 7, int(y) + 7), road) > 10
        assert "OpenStreetMap" in page.locator(
            "#map .maplibregl-ctrl-attrib-inner").text_content()
        # Tapping the street puts the report's place on it.
        page.locator("#map canvas").click(position={"x": x, "y": y})
        picked = page.evaluate("[Number(document.querySelector('#report-form').lat.value), "
                               "Number(document.querySelector('#report-form').long.value)]")
        assert picked == pytest.approx([lat, lon], abs=2e-4)
    finally:
        context.close()


def test_one_name_per_area_the_page_labels_its_own(map_node, browser):
    """The screen names the focused area's children with its own labels; the base map names
    the rest (the villages when the district is focused), never the same area twice."""
    from cityops.maps.pack import pack_features

    village = next(f for f in pack_features(helsinki_pack(), streets=False)
                   if f.layer == "places" and f.properties["code"] == "990001001001")
    lon, lat = mercator_to_lonlat(village.geometry.x, village.geometry.y)
    context, page = signed_in(browser, map_node.url, map_node.keys["operator"], "/screen")
    try:
        page.wait_for_function("window.cityops && window.cityops.view && "
                               "window.cityops.view.base && window.cityops.view.focusCode",
                               timeout=60_000)
        view = "window.cityops.view.map"
        page.evaluate(f"{view}.jumpTo({{ center: [{lon}, {lat}], zoom: 14 }})")
        _settle(page, view)
        codes = page.evaluate(f"""{view}.queryRenderedFeatures({{ layers:
            ['base-labels-villages', 'base-labels-towns'] }}).map(f => f.properties.code)""")
        assert "990001001001" in codes
        assert not {"990001001", "990001002"} & set(codes)  # the page's own labels
        marked = page.evaluate("[...document.querySelectorAll('.area-label')]"
                               ".map(e => e.textContent)")
        assert "Town 1" in marked or "第1街镇" in marked
    finally:
        context.close()
