"""Issue 14: the big screen said "3,000 open" while the store held 6,434, because it counted
the snapshot's capped list. Counts in the live feed come from the store (at most every few
seconds), and a capped list says it is capped and of how many."""

from __future__ import annotations

import msgspec

from cityops.api import live as live_module
from cityops.api.live import LiveHub
from cityops.domain.access import Principal, Role, Scope
from cityops.domain.city import AreaCodes
from cityops.domain.incidents.model import Incident, Status

from .conftest import MONDAY_10, VILLAGE, Clock

OTHER_VILLAGE = "990001002001"  # town 2


def _case(n: int, *, status: Status = Status.REGISTERED, village: str = VILLAGE,
          close_due: float | None = None) -> Incident:
    return Incident(id=f"inc-{n:06d}", category="event.sanitation.exposed_garbage",
                    kind="event", title=f"case {n}", source="inspector", status=status,
                    areas=AreaCodes(village[:6], village[:9], village), lat=31.15, lon=121.45,
                    reported_at=MONDAY_10 - 3600 + n, updated_at=MONDAY_10 - 3600 + n,
                    close_due=close_due)


CASES = [
    *(_case(n, close_due=MONDAY_10 + 86_400) for n in range(5)),
    _case(5, close_due=MONDAY_10 - 60),  # overdue
    _case(6, status=Status.DISPATCHED, close_due=MONDAY_10 - 60),  # overdue
    _case(7, status=Status.CLOSED),
    _case(8, village=OTHER_VILLAGE, close_due=MONDAY_10 + 86_400),
]


async def test_the_snapshot_counts_from_the_store_and_says_its_list_is_capped(
        tmp_path, city, live_node, monkeypatch):
    monkeypatch.setattr(live_module, "SNAPSHOT_OPEN", 3)
    monkeypatch.setattr(live_module, "SNAPSHOT_RECENT", 2)
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        await live.node.store.insert_incidents(CASES)
        op = live.client(await live.key("operator"))
        snap = (await op.get("/api/v1/live")).json()
        assert snap["counts"] == {"open": 8, "overdue": 2, "status": {
            "collected": 0, "registered": 7, "dispatched": 1, "accepted": 0, "handled": 0,
            "verified": 0}}
        shown = [i for i in snap["incidents"] if i["status"] not in ("closed", "cancelled")]
        assert len(shown) == 3
        assert snap["incidents_open"] == {"capped": True, "shown": 3, "total": 8}
        # The store's count is the list filter's: ?overdue=true finds the same two.
        listed = (await op.get("/api/v1/incidents", params={"overdue": "true"})).json()
        assert len(listed["items"]) == snap["counts"]["overdue"]

        # A key of town 2 counts its own case only; its list holds it all: not capped.
        town2 = live.client(await live.key("operator", "990001002"))
        snap = (await town2.get("/api/v1/live")).json()
        assert snap["counts"]["open"] == 1 and snap["counts"]["overdue"] == 0
        assert snap["incidents_open"] == {"capped": False, "shown": 1, "total": 1}
        await op.aclose()
        await town2.aclose()


class CountingStore:
    """The node's store with its count calls counted."""

    def __init__(self, store) -> None:
        self.store = store
        self.calls = 0

    async def count_incidents(self, f):
        self.calls += 1
        return await self.store.count_incidents(f)

    def __getattr__(self, name):
        return getattr(self.store, name)


async def test_the_hub_counts_at_most_every_few_seconds_and_sends_changes(
        tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        node = live.node
        await node.store.insert_incidents(CASES)
        counting = CountingStore(node.store)
        node.store = counting
        hub = LiveHub(node, tick_s=3600, counts_every_s=5.0)
        mono = [1000.0]
        hub.monotonic = lambda: mono[0]
        viewer = hub.join(Principal("k_test", Role.OPERATOR, Scope()))
        first = await hub.snapshot_body(viewer, "connect")
        asked = counting.calls
        assert asked and first["counts"]["open"] == 8
        # Many viewers connecting, resyncs, ticks within the period: no new count.
        for _ in range(5):
            await hub.snapshot_body(viewer, "resync")
            await hub.refresh_counts()
        assert counting.calls == asked
        hub._tick()
        while not viewer.queue.empty():  # the first figures of the KPIs, but no counts
            assert b'"counts"' not in viewer.queue.get_nowait()
        # A new case in the store; once the period is over, the tick loop's refresh counts
        # again and the change goes out in a delta.
        await node.store.insert_incidents([_case(20, close_due=MONDAY_10 - 1)])
        mono[0] += 5.0
        await hub.refresh_counts()
        assert counting.calls == 2 * asked
        hub._tick()
        frame = viewer.queue.get_nowait()
        body = msgspec.json.decode(frame.split(b"data: ", 1)[1].strip())
        assert body["counts"]["open"] == 9 and body["counts"]["overdue"] == 3
        node.store = counting.store
