"""The big screen in a real browser: offline, live, drill-down."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from .conftest import TOWN1, signed_in


def _wait_live(page) -> None:
    page.wait_for_function("window.cityops && window.cityops.stats && "
                           "window.cityops.stats.firstRender !== null", timeout=20_000)


def test_screen_is_offline_live_and_drills_down(web_node, browser, artifacts):
    key = web_node.keys["operator"]
    context, page = signed_in(browser, web_node.url, key, "/screen")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.reload()  # the key is in the session now; record every request from the start
    _wait_live(page)

    # Nothing from any other host: every request went to this node (workers are blob:/self).
    own = urlsplit(web_node.url).netloc
    foreign = [u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
               and urlsplit(u).netloc != own]
    assert foreign == [], foreign
    assert any("/api/v1/live" in u for u in requests)
    assert not any(key in u for u in requests), "the key must never travel in a URL"
    assert key not in page.url
    # The joint-disposal panel is the demo's staged case: a city without one never shows it.
    page.wait_for_function("window.cityopsJointCase && window.cityopsJointCase.polls > 0")
    assert page.locator("#jointcase").is_hidden()

    # The areas and the dots: two towns labelled, five people and three trucks drawn.
    page.wait_for_selector(".area-label")
    assert sorted(page.locator(".area-label").all_inner_texts()) == ["Town 1", "Town 2"]
    assert page.locator("#crumbs").inner_text().strip() == "Grid District"
    drawn = page.evaluate("""() => {
        const l = window.cityops.layers;
        const count = (layer) => [...Array(layer.count).keys()].filter(i => layer.position(i)).length;
        return {staff: count(l.staff), vehicles: count(l.vehicles), first: l.staff.position(0)};
    }""")
    assert drawn["staff"] == 5 and drawn["vehicles"] == 3
    assert abs(drawn["first"][0] - 121.45) < 1e-4 and abs(drawn["first"][1] - 31.15) < 1e-4
    page.wait_for_timeout(600)
    page.screenshot(path=str(artifacts / "screen-city.png"))

    # A dot moves when its person's position changes.
    web_node.send([{"device_id": "gps-000000", "ts": time.time(),
                    "values": {"lat": 31.18, "lon": 121.46}}])
    page.wait_for_function("""() => {
        const p = window.cityops.layers.staff.position(0);
        return p && Math.abs(p[1] - 31.18) < 1e-4 && Math.abs(p[0] - 121.46) < 1e-4;
    }""", timeout=5_000)

    # A new incident is on the screen within 2 s of its alert (a manhole cover lifted).
    manhole = next(d for d in web_node.pack.devices if d.kind == "manhole_tilt")
    before = page.evaluate("window.cityops.world.incidents.size")
    started = time.monotonic()
    web_node.send([{"device_id": manhole.id, "ts": time.time(), "value": 35.0}])
    page.wait_for_function(f"window.cityops.world.incidents.size > {before}", timeout=2_000)
    took = time.monotonic() - started
    assert took < 2.0
    page.wait_for_selector("#feed-list li.new", timeout=2_000)
    assert "Manhole" in page.locator("#feed-list li").first.inner_text() or \
        "manhole" in page.locator("#feed-list li").first.inner_text().lower()

    # Drill down into Town 1 by clicking it, then up again with the breadcrumbs.
    spot = page.evaluate(f"""() => {{
        const v = window.cityops.view;
        const f = v.features.get("{TOWN1}");
        const p = v.map.project(f.properties.label);
        const r = v.map.getCanvas().getBoundingClientRect();
        return [p.x + r.left, p.y + r.top + 30];
    }}""")
    page.mouse.click(*spot)
    page.wait_for_function("document.querySelector('#crumbs').innerText.includes('Town 1')")
    page.wait_for_function("document.querySelectorAll('.area-label').length === 2 && "
                           "[...document.querySelectorAll('.area-label')].every("
                           "e => e.textContent.startsWith('Town 1 Village'))")
    page.wait_for_timeout(900)
    page.screenshot(path=str(artifacts / "screen-town.png"))
    page.locator("#crumbs button", has_text="Grid District").click()
    page.wait_for_function("document.querySelector('#crumbs').innerText.trim() === 'Grid District'")
    assert sorted(page.locator(".area-label").all_inner_texts()) == ["Town 1", "Town 2"]
    assert errors == []
    context.close()

