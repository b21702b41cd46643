"""Community analytics on the big screen, in a real browser: the garbage-sorting panel lists
the worst communities of the key's scope (below the 90 % target in red), and the elderly-care
gaps are a layer on the map."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from .conftest import TOWN1, TOWN2, signed_in

POLLED = "window.cityopsCommunity && window.cityopsCommunity.polls >= 1"
LAYER = ("window.cityops && window.cityops.view && window.cityops.view.map && "
         "window.cityops.view.map.getLayer('care-gaps') && window.cityopsCommunity.gaps > 0")


def _post(web_node, area: str, correct: int) -> None:
    with web_node.client("admin") as c:
        r = c.post("/api/v1/sorting/inspections",
                   json={"area": area, "stream": "wet", "checked": 100, "correct": correct,
                         "at": time.time() - 3600})
        assert r.status_code == 201, r.text


def test_sorting_panel_and_care_gaps_layer(web_node, browser, artifacts):
    _post(web_node, f"{TOWN1}001", 97)
    _post(web_node, f"{TOWN1}002", 80)
    _post(web_node, f"{TOWN2}001", 95)
    context, screen = signed_in(browser, web_node.url, web_node.keys["operator"], "/screen")
    screen.wait_for_function(POLLED, timeout=20_000)
    panel = screen.locator("#sorting")
    panel.wait_for(state="visible", timeout=10_000)
    rows = panel.locator(".bar")
    assert rows.count() == 3
    first = rows.nth(0)
    assert "Town 1 Village 2" in first.inner_text() and "80.0%" in first.inner_text()
    assert "below" in (first.get_attribute("class") or "")
    assert "below" not in (rows.nth(1).get_attribute("class") or "")
    assert "1 of 2 streets <90%" in panel.locator("h2 small").inner_text()
    screen.wait_for_function(LAYER, timeout=30_000)
    screen.screenshot(path=str(artifacts / "screen-community.png"))
    context.close()

    # A key of town 2 sees town 2's community alone.
    other, theirs = signed_in(browser, web_node.url, web_node.keys["operator_town2"], "/screen")
    theirs.wait_for_function(POLLED, timeout=20_000)
    theirs.locator("#sorting").wait_for(state="visible", timeout=10_000)
    assert theirs.locator("#sorting .bar").count() == 1
    assert "Town 2 Village 1" in theirs.locator("#sorting .bar").inner_text()
    other.close()

    # In Chinese the communities go by the pack's Chinese names, as on the map.
    # The map's areas (where the Chinese names come from) are held back until the panel has
    # been drawn: a ranking that comes first is drawn again once the map has them.
    zh = browser.new_context(viewport={"width": 1920, "height": 1080}, bypass_csp=True,
                             locale="zh-CN")
    page = zh.new_page()
    held = []
    page.route("**/api/v1/areas.geojson", lambda route: held.append(route))
    page.goto(f"{web_node.url}/screen#key={web_node.keys['operator']}")
    page.wait_for_function(POLLED, timeout=20_000)
    page.locator("#sorting .bar").first.wait_for(state="visible", timeout=10_000)
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("#sorting .bar").first).to_contain_text("第1街镇第2居村",
                                                                 timeout=10_000)
    assert "Village" not in page.locator("#sorting").inner_text()
    zh.close()
