"""The storm banner in a real browser: hidden while no storm is going on, shown on the big
screen and the console once the storm guard holds a category's cases in a town, with the
number held and a link to the storm case."""

from __future__ import annotations

from cityops.domain.city import AreaCodes
from cityops.domain.incidents.model import Report

from .conftest import TOWN1, VILLAGE11, signed_in

POLLED = "window.cityopsStorms && window.cityopsStorms.polls >= 1"


async def _storm(node, extra: int) -> str:
    """As many exposed-garbage alerts in town 1 as the guard lets through, and `extra` more
    (held); their points left out, so that none merges into another."""
    desk = node.act.desk
    now = node.clock()
    result = None
    for i in range(desk.storm.cases + extra):
        report = Report(f"alert:banner-{i}", "sensor", now + i / 1000, text="bin full")
        result = await desk.async_report(report, "event.sanitation.exposed_garbage",
                                         areas=AreaCodes(TOWN1[:6], TOWN1, VILLAGE11),
                                         auto_register=True)
    assert result is not None and result.incident.id.startswith("storm-")
    return result.incident.id


def test_the_banner_shows_a_storm_and_only_then(web_node, browser, artifacts):
    context, screen = signed_in(browser, web_node.url, web_node.keys["operator"], "/screen")
    screen.wait_for_function(POLLED, timeout=20_000)
    assert screen.locator("#storm-banner").is_hidden()

    storm_id = web_node.call(_storm(web_node.node, 3))
    banner = screen.locator("#storm-banner")
    banner.wait_for(state="visible", timeout=15_000)
    text = banner.inner_text()
    assert "Storm guard: 3 Exposed garbage cases in Town 1 held for a supervisor" in text
    link = banner.locator("a")
    assert link.inner_text() == "open the case"
    assert link.get_attribute("href") == f"/console#incident={storm_id}"
    screen.screenshot(path=str(artifacts / "screen-storm.png"))

    # The console shows it too; the link opens the storm case there.
    page = context.new_page()  # a tab of its own: signed in by its own link
    page.goto(f"{web_node.url}/console#key={web_node.keys['operator']}")
    page.locator("#storm-banner").wait_for(state="visible", timeout=15_000)
    page.locator("#storm-banner a").click()
    page.wait_for_function(f"location.hash.includes({storm_id!r})")
    page.wait_for_selector("text=storm: 3 Exposed garbage cases", timeout=10_000)
    page.screenshot(path=str(artifacts / "console-storm.png"))

    # A key of the other town sees no storm of town 1.
    other, theirs = signed_in(browser, web_node.url, web_node.keys["operator_town2"], "/screen")
    theirs.wait_for_function(POLLED, timeout=20_000)
    assert theirs.locator("#storm-banner").is_hidden()
    other.close()
    context.close()
