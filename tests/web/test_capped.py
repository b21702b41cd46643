"""Issue 14: the big screen said "3,000 open" while the store held 6,434. With the snapshot's
list capped (here at 3 open cases), the screen and the console show the store's counts and say
that their list is capped."""

from __future__ import annotations

import time

import pytest

from cityops.api import live as live_module
from cityops.domain.city import AreaCodes
from cityops.domain.incidents.model import Incident, Status

from .conftest import VILLAGE11, signed_in


@pytest.fixture(scope="module", autouse=True)
def small_cap():
    before = live_module.SNAPSHOT_OPEN, live_module.SNAPSHOT_RECENT
    live_module.SNAPSHOT_OPEN, live_module.SNAPSHOT_RECENT = 3, 2
    try:
        yield
    finally:
        live_module.SNAPSHOT_OPEN, live_module.SNAPSHOT_RECENT = before


def _case(n: int, now: float, late: bool) -> Incident:
    return Incident(id=f"inc-cap{n:03d}", category="event.sanitation.exposed_garbage",
                    kind="event", title=f"Rubbish {n}", source="inspector",
                    status=Status.REGISTERED,
                    areas=AreaCodes(VILLAGE11[:6], VILLAGE11[:9], VILLAGE11),
                    lat=31.15 + n * 1e-3, lon=121.45, reported_at=now - 600 + n,
                    updated_at=now - 600 + n,
                    close_due=now - 60 if late else now + 86_400)


def test_the_screen_and_the_console_say_their_lists_are_capped(web_node, browser, artifacts):
    now = time.time()
    web_node.call(web_node.node.store.insert_incidents(
        [_case(n, now, late=n < 2) for n in range(7)]))
    key = web_node.keys["operator"]

    context, page = signed_in(browser, web_node.url, key, "/screen")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_function("window.cityops && window.cityops.world.counts", timeout=20_000)
    page.wait_for_function(
        "document.querySelector('#open-count').dataset.capped === '1'", timeout=10_000)
    text = page.locator("#open-count").inner_text()
    assert text.startswith("7 open · 2 overdue"), text
    assert "showing 3 of 7" in text, text
    assert "showing 3 of 7 open" in page.locator("#by-dept").inner_text()
    page.screenshot(path=str(artifacts / "screen-capped.png"))
    assert errors == []
    context.close()

    context, page = signed_in(browser, web_node.url, key, "/console")
    page.wait_for_selector("#conn.live", timeout=20_000)
    page.wait_for_function(
        "document.querySelector('#queue-count').textContent.includes('showing')",
        timeout=10_000)
    text = page.locator("#queue-count").inner_text()
    assert "7 open · 2 overdue" in text and "showing 3 of 7 open" in text, text
    page.screenshot(path=str(artifacts / "console-capped.png"))
    context.close()
