"""Issue 17 item 5 in the browser: 120,000 trucks on the test city. The whole city shows H3
bins that count every truck; zoomed into a street the trucks there are single points, moved by
partial binary updates; a town's key bins only its own town's trucks."""

from __future__ import annotations

import time

import msgspec
import numpy as np
import pytest

from cityops.domain.city import Vehicle
from cityops.domain.kinds import MAX_CHANNELS
from cityops.packs.grid import generate as grid_city

from .conftest import TOWN2, WebNode, signed_in

TRUCKS = 120_000  # past the 50,000 a view may hold as points; a node of more starts too slowly here
KEYS = {"admin": ("admin", None, "wall"), "device": ("device", None, "trackers"),
        "town2": ("operator", TOWN2, "town 2 operator")}


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    pack = grid_city(devices={"gps": TRUCKS})
    pack = msgspec.structs.replace(pack, vehicles=[
        Vehicle(f"truck-{i:06d}", f"沪B·{i:06d}", "muck_truck", d.id)
        for i, d in enumerate(pack.devices)])
    node = WebNode(pack, tmp_path_factory.mktemp("crowded") / "data", KEYS)
    node.start()
    lat = np.array([d.lat for d in pack.devices])
    lon = np.array([d.lon for d in pack.devices])
    # Placed straight into the history's latest values (what the intake would leave there):
    # this test is about the screen, and 120,000 readings through HTTP take minutes here.
    series = np.arange(TRUCKS, dtype=np.int64)[:, None] * MAX_CHANNELS + np.array([0, 1])
    node.call(_place(node, series.reshape(-1), np.column_stack([lat, lon]).reshape(-1)))
    node.lat, node.lon, node.ids = lat, lon, [d.id for d in pack.devices]
    try:
        yield node
    finally:
        node.stop()


async def _place(node: WebNode, series: np.ndarray, values: np.ndarray) -> None:
    state = node.node.history.state
    state.reserve(TRUCKS)
    state.restore_latest(series, np.full(len(series), int(time.time() * 1e6)), values)


STATE = """() => {
    const o = window.cityops.objects, l = window.cityops.layers;
    if (!o || !o.header) return null;
    let points = 0;
    for (let i = 0; i < l.vehicles.count; i++) if (l.vehicles.position(i)) points++;
    return {mode: o.mode, total: o.header.total, inView: o.header.in_view, res: o.header.res,
            bins: l.bins.bins.size, binned: l.bins.total(), points: points,
            zoom: window.cityops.view.map.getZoom()};
}"""


def _state(page, condition: str) -> dict:
    page.wait_for_function(f"() => {{ const s = ({STATE})(); return s && ({condition}); }}",
                           timeout=90_000)
    return page.evaluate(STATE)


def test_bins_for_the_city_points_in_a_street_and_a_town_key_bins_its_town(crowded, browser,
                                                                             artifacts):
    context, page = signed_in(browser, crowded.url, crowded.keys["admin"], "/screen")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_function("window.cityops && window.cityops.stats.firstRender !== null",
                           timeout=90_000)
    city = _state(page, "s.mode === 'bins' && s.binned === s.total")
    # Every truck is counted in a hexagon, none drawn as a dot.
    assert city["total"] == TRUCKS and city["binned"] == TRUCKS and city["points"] == 0
    assert city["bins"] > 50 and 4 <= city["res"] <= 9
    page.screenshot(path=str(artifacts / "screen-objects-bins.png"))

    # Into a street: the view holds a few hundred trucks, each a point, the hexagons gone.
    page.evaluate("window.cityops.view.map.jumpTo({center: [121.45, 31.15], zoom: 15.5})")
    street = _state(page, "s.mode === 'points' && s.zoom > 15")
    assert 0 < street["points"] == street["inView"] < 5_000
    assert street["bins"] == 0
    bounds = page.evaluate("""() => {
        const o = window.cityops.objects, l = window.cityops.layers.vehicles;
        const [w, s, e, n] = o.asked.bbox;
        let outside = 0;
        for (const slot of o.slotOf.values()) {
            const [x, y] = l.position(slot);
            // float32 map coordinates: a few metres of slack at the edges
            if (x < w - 1e-4 || x > e + 1e-4 || y < s - 1e-4 || y > n + 1e-4) outside++;
        }
        return outside;
    }""")
    assert bounds == 0  # only the view's (padded) trucks were sent
    page.screenshot(path=str(artifacts / "screen-objects-points.png"))

    # One truck in view moves: only it travels, and its dot follows.
    mover = page.evaluate("[...window.cityops.objects.slotOf.keys()][0]")
    frames = page.evaluate("window.cityops.objects.frames")
    crowded.send([{"device_id": crowded.ids[mover], "ts": time.time() + 1, "values": {
        "lat": float(crowded.lat[mover]) + 0.0003, "lon": float(crowded.lon[mover])}}])
    page.wait_for_function(f"""() => {{
        const o = window.cityops.objects;
        const p = window.cityops.layers.vehicles.position(o.slotOf.get({mover}));
        return p && Math.abs(p[1] - {crowded.lat[mover] + 0.0003}) < 2e-5;
    }}""", timeout=30_000)
    assert page.evaluate("window.cityops.objects.frames") > frames
    assert errors == []
    context.close()

    # A town's operator: hexagons of its own town's trucks only.
    context, page = signed_in(browser, crowded.url, crowded.keys["town2"], "/screen")
    page.wait_for_function("window.cityops && window.cityops.stats.firstRender !== null",
                           timeout=90_000)
    # Town 2 is east of 121.5 degrees; positions travel in 1e-5 degree, and a truck on the
    # border itself belongs to town 1 (the lower code).
    town = int(np.count_nonzero(np.round(crowded.lon * 1e5) > 12_150_000))
    mine = _state(page, "s.mode === 'bins' || s.mode === 'points'")
    assert mine["total"] == town and mine["binned"] + mine["points"] == town
    context.close()
