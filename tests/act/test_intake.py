"""Alerts from detection become incidents by themselves: dispatched at once when the pack
says so, waiting for an operator otherwise; a redelivered alert never opens a second case."""

from __future__ import annotations

import asyncio
import time

import msgspec

from cityops.domain.alerts import AlertEvent
from cityops.store.base import IncidentFilter

PACKS = {
    "loud": """
name: loud
version: 1
title: Very loud
category: {code: event.test.loud, kind: event, major: test, minor: loud, name: Loud,
           names: {zh-CN: 噪声}}
departments: [environment, police]
urgency: high
rules:
  - id: over_80
    type: threshold
    kind: noise
    above: 80
    clear_below: 70
    severity: major
    title: Noise over 80 dB(A)
    titles: {zh-CN: 噪声超过80分贝}
""",
    "hum": """
name: hum
version: 1
title: Low hum, checked by an operator first
titles: {zh-CN: 低频嗡嗡声}
category: {code: event.test.hum, kind: event, major: test, minor: hum, name: Hum}
departments: [environment]
auto_register: false
rules:
  - id: over_60
    type: threshold
    kind: noise
    above: 60
    clear_below: 50
""",
}


async def wait_for(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        if time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)
    return result


async def test_alerts_become_incidents(tmp_path, grid_pack, live_node):
    packs = tmp_path / "packs"
    for name, text in PACKS.items():
        (packs / name).mkdir(parents=True)
        (packs / name / "manifest.yaml").write_text(text)
    async with live_node(grid_pack, tmp_path / "data", scenario_dirs=[packs],
                         notify_url="memory:") as live:
        store = live.node.store
        device = live.node.registry.get("noise-000003")
        key = await live.key("device")
        now = time.time() - 30
        async with live.client(key) as c:
            r = await c.post("/api/v1/readings", content=msgspec.json.encode(
                [{"device_id": device.id, "ts": now + i, "value": 85.0} for i in range(3)]))
            assert r.status_code == 202

        async def both():
            found = await store.list_incidents(IncidentFilter())
            return found if len(found) == 2 else None

        found = {i.category: i for i in await wait_for(both)}
        loud, hum = found["event.test.loud"], found["event.test.hum"]
        assert loud.status == "dispatched" and hum.status == "collected"
        # Titled by the rule (hum's rule has none: the pack's title), in Chinese beside it.
        assert (loud.title, loud.titles) == ("Noise over 80 dB(A)", {"zh-CN": "噪声超过80分贝"})
        assert (hum.title, hum.titles) == ("Low hum, checked by an operator first",
                                           {"zh-CN": "低频嗡嗡声"})
        # The city's table lacks the category: the desk files it under the pack's name.
        named = live.node.act.rules.categories.resolve("event.test.loud")
        assert (named.name, named.names) == ("Loud", {"zh-CN": "噪声"})
        assert sorted(o.department for o in loud.orders) == ["environment", "police"]
        assert loud.source == "sensor" and loud.alert_id is not None
        assert loud.areas == device.areas and loud.lat == device.lat
        notifier = live.node.act.notifier
        assert sorted(n.recipient for n in notifier.sent if n.kind == "order.dispatched") == [
            "environment", "police"]
        assert all(n.data["titles"] == {"zh-CN": "噪声超过80分贝"} for n in notifier.sent
                   if n.kind == "order.dispatched")
        summary = live.node.act.intake.summary()
        assert summary["filed"] == 2 and summary["dispatch_latency_p99_ms"] is not None

        # The bus may deliver an alert again (a restart, a redelivery): still one case.
        alert = await store.get_alert(loud.alert_id)
        await live.node.act.intake.take(AlertEvent("raised", alert))
        assert len(await store.list_incidents(IncidentFilter())) == 2
        assert live.node.act.desk.stats["repeated"] == 1


async def test_a_burst_is_filed_side_by_side_across_categories_in_order_within_one(
        tmp_path, grid_pack, live_node):
    """Two categories' alerts in one burst are filed concurrently; within a category they go in
    order, so the second report of a place merges into the case the first one opened."""
    from cityops.domain.alerts import Alert

    async with live_node(grid_pack, tmp_path / "data", notify_url="memory:") as live:
        intake, store = live.node.act.intake, live.node.store
        order: list[str] = []
        take = intake.take

        async def spy(event):
            order.append(f"start {event.alert.id}")
            await take(event)
            order.append(f"end {event.alert.id}")

        intake.take = spy
        now = time.time()

        def alert(i: str, category: str, lat: float) -> AlertEvent:
            return AlertEvent("raised", Alert(
                id=i, scenario="t", rule="t.r", category=category, severity="minor",
                urgency="normal", departments=["environment"], subject=f"dev-{i}", title=i,
                lat=lat, lon=121.45, areas=live.node.city.resolve(lat, 121.45),
                cell=live.node.city.cell_of(lat, 121.45), first_seen=now, last_seen=now))

        await intake.take_all([alert("a1", "event.test.a", 31.15),
                               alert("b1", "event.test.b", 31.15),
                               alert("far", "event.test.a", 31.25),
                               alert("a2", "event.test.a", 31.1501)])
        assert order.index("start b1") < order.index("end a1")  # side by side
        assert order.index("start far") < order.index("end a1")  # 11 km away: its own lane
        assert order.index("end a1") < order.index("start a2")  # in order where they may merge
        cases = await store.list_incidents(IncidentFilter())
        assert sorted((c.category, c.reports) for c in cases) == [
            ("event.test.a", 1), ("event.test.a", 2), ("event.test.b", 1)]


async def test_an_episode_seen_only_as_cleared_is_still_filed_once(tmp_path, grid_pack,
                                                                   live_node):
    from cityops.domain.alerts import Alert

    async with live_node(grid_pack, tmp_path / "data", notify_url="memory:") as live:
        intake, store = live.node.act.intake, live.node.store
        now = time.time()
        a = Alert(id="short-1", scenario="t", rule="t.r", category="event.test.short",
                  severity="minor", urgency="normal", departments=["environment"],
                  subject="noise-000001", title="short spell", lat=31.15, lon=121.45,
                  areas=live.node.city.resolve(31.15, 121.45), first_seen=now - 5,
                  last_seen=now - 1, cleared_at=now, active=False)
        await intake.take(AlertEvent("cleared", a))  # raised and cleared in one evaluation
        await intake.take(AlertEvent("cleared", a))  # redelivered
        await intake.take(AlertEvent("updated", a))  # updates file nothing
        cases = await store.list_incidents(IncidentFilter())
        assert [(c.alert_id, c.reports) for c in cases] == [("short-1", 1)]
