"""The screen reconnects by itself when the server restarts, and resyncs from a snapshot."""

from __future__ import annotations

import time

from .conftest import signed_in


def test_screen_comes_back_after_a_server_restart(web_node, browser):
    context, page = signed_in(browser, web_node.url, web_node.keys["operator"], "/screen")
    page.wait_for_function("window.cityops && window.cityops.stats.snapshots >= 1", timeout=20_000)
    web_node.restart()
    page.wait_for_function("window.cityops.stats.snapshots >= 2", timeout=20_000)
    assert page.locator("#conn").inner_text().strip() == "● LIVE"
    # And it is live again: a move made after the restart reaches the map.
    web_node.send([{"device_id": "gps-000001", "ts": time.time(),
                    "values": {"lat": 31.19, "lon": 121.41}}])
    page.wait_for_function("""() => {
        const p = window.cityops.layers.staff.position(1);
        return p && Math.abs(p[1] - 31.19) < 1e-4;
    }""", timeout=5_000)
    context.close()
