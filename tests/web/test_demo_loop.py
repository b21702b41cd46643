"""The demo's loop closes on the big screen (issue 17, acceptance): with the simulated
departments and field staff at work on a node's simulated clock, the screen shows staff en
route, then closed cases, an on-time closure rate, and the seed's joint case measured against
the same case dispatched one department after another. The clock only moves when the test
moves it; the page is polled with generous timeouts, never timed."""

from __future__ import annotations

import time

import pytest

from cityops.sim import jointcase
from cityops.sim.fieldwork import Fieldwork
from tests.clock_kit import Clock
from tests.loop_kit import loop_city
from tests.web.conftest import WebNode, signed_in

STEP_S = 30.0
WAIT_MS = 45_000  # the joint-case panel looks for the case every 15 s

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def loop_node(tmp_path_factory):
    clock = Clock(time.time())
    node = WebNode(loop_city(), tmp_path_factory.mktemp("loop") / "data",
                   {"operator": ("operator", None, "duty operator")}, clock=clock)
    node.start()

    async def make():
        return Fieldwork(node.node, seed=5)

    node.work = node.call(make())
    node.sim_clock = clock
    try:
        yield node
    finally:
        node.stop()


def advance(node, until, limit_s: float = 3 * 3600.0) -> None:
    """Simulated time on, a step at a time, until `until()` holds."""
    end = node.sim_clock.now + limit_s
    while not until():
        assert node.sim_clock.now < end, f"not reached: {dict(node.work.phases())}"
        node.sim_clock.now += STEP_S
        node.call(node.work.tick(), timeout=30)


def test_the_loop_closes_on_the_screen(loop_node, browser, artifacts):
    node, work = loop_node, loop_node.work
    node.call(work.tick())  # the trackers' first fixes
    with node.client("operator") as c:
        for k, (lat, lon) in enumerate([(31.13, 121.44), (31.15, 121.43), (31.14, 121.46)]):
            r = c.post("/api/v1/incidents", json={
                "category": "event.sanitation.exposed_garbage", "lat": lat, "lon": lon,
                "title": f"Garbage by the road {k}", "key": f"loop-{k}"})
            assert r.status_code == 201, r.text
    case = node.call(jointcase.stage(work, key="loop-test"))
    context, page = signed_in(browser, node.url, node.keys["operator"], "/screen")
    try:
        page.wait_for_function("() => window.cityops && window.cityops.stats.snapshots > 0",
                               timeout=WAIT_MS)
        # Someone sets out: the screen shows a dot en route.
        advance(node, lambda: bool(work.en_route()))
        page.wait_for_function(
            "() => window.cityops.world.staffStatus.includes('en_route')", timeout=WAIT_MS)
        page.screenshot(path=str(artifacts / "demo-loop-en-route.png"))

        # On until the joint case and another are closed; the panel measures the joint one.
        def closed() -> set[str]:
            with node.client("operator") as c:
                items = c.get("/api/v1/incidents", params={"status": "closed"}).json()["items"]
            return {i["id"] for i in items}

        advance(node, lambda: case in (done := closed()) and len(done) >= 2)
        page.wait_for_function(
            "() => { const j = window.cityopsJointCase;"
            " return j && j.joint_s !== null && j.sequential_s > j.joint_s; }",
            timeout=WAIT_MS)
        shown = page.evaluate("() => window.cityopsJointCase")
        assert shown["id"] == case and shown["status"] == "closed"
        assert {leg["department"] for leg in shown["legs"]} == set(jointcase.DEPARTMENTS)
        assert page.locator("#jointcase .legs .row").count() == 4
        assert any(ch.isdigit() for ch in page.locator("#jointcase b.sequential").text_content())
        # The on-time closure rate is a figure now, not a dash.
        page.reload()
        page.wait_for_function(
            "() => { const t = document.getElementById('ontime-rate').textContent;"
            " return /[0-9]/.test(t); }", timeout=WAIT_MS)
        page.screenshot(path=str(artifacts / "demo-loop-closed.png"))
    finally:
        context.close()
