"""A village going dark on a live node: one "area outage" case for the network, the devices'
own offline alerts recorded as inhibited by it and filed as no case; once the outage clears,
a device still silent is a fault of its own again and opens its case."""

from __future__ import annotations

import time

from cityops.packs.grid import generate
from tests.clock_kit import Clock
from tests.detect.node_kit import STEP_S, listing, post_all, settled


def city():
    # 2 towns x 2 villages, 40 noise meters (a report a minute): about 10 per village.
    return generate(devices={"noise": 40})


def dark_village(devices) -> str:
    """A village holding at most half its town's devices: its going dark is a village's
    outage, not its town's (a town mostly dark is one, rightly)."""
    from collections import Counter

    villages = Counter(d.areas.village for d in devices)
    towns = Counter(d.areas.town for d in devices)
    return min((v for v in villages if villages[v] >= 5),
               key=lambda v: villages[v] / towns[v[:9]])


async def test_a_dark_village_is_one_outage_case_and_its_devices_open_none(live_node,
                                                                           tmp_path):
    pack = city()
    clock = Clock(time.time())
    async with live_node(pack, tmp_path / "d", clock=clock, detect_tick_s=3600.0) as live:
        node = live.node
        village = dark_village(node.registry.devices)
        dark = {d.id for d in node.registry.devices if d.areas.village == village}
        assert len(dark) >= 5
        device_key, admin = await live.key("device"), await live.key("admin")
        async with live.client(device_key) as sensors, live.client(admin) as ops:
            await post_all(live, sensors, clock)
            for _ in range(int(600 / STEP_S)):  # ten minutes: far past 3 reporting periods
                clock.now += STEP_S
                await post_all(live, sensors, clock, but=dark)
            await settled(live)

            alerts = await listing(ops, "/api/v1/alerts")
            outages = [a for a in alerts if a["rule"] == "network.area_outage"]
            assert [(a["subject"], a["active"]) for a in outages] == \
                [(f"outage:village:{village}", True)]
            outage = outages[0]
            offline = [a for a in alerts if a["rule"].startswith("device_health.offline")]
            assert {a["subject"] for a in offline} == dark
            assert {a["inhibited_by"] for a in offline} == {outage["id"]}

            cases = await listing(ops, "/api/v1/incidents")
            assert [(c["category"], c["status"]) for c in cases] == \
                [("component.iot_device.network_outage", "dispatched")]
            assert node.act.intake.stats["inhibited"] == len(dark)

            # Power back for all but one device: the outage clears. The one still silent gets
            # the time its own rule allows (3 periods) to report after the recovery, then is
            # judged on its own: its offline alert is told again as new and opens a case.
            still = sorted(dark)[0]
            for _ in range(4):
                clock.now += STEP_S
                await post_all(live, sensors, clock, but={still})
            await settled(live)
            alerts = await listing(ops, "/api/v1/alerts")
            assert not next(a for a in alerts if a["id"] == outage["id"])["active"]
            lone = [a for a in alerts if a["subject"] == still and a["active"]]
            assert [a["inhibited_by"] for a in lone] == [outage["id"]]
            assert len(await listing(ops, "/api/v1/incidents")) == 1
            for _ in range(4):
                clock.now += STEP_S
                await post_all(live, sensors, clock, but={still})
            await settled(live)
            alerts = await listing(ops, "/api/v1/alerts")
            lone = [a for a in alerts if a["subject"] == still and a["active"]]
            assert [a["inhibited_by"] for a in lone] == [None]
            cases = await listing(ops, "/api/v1/incidents")
            assert sorted(c["category"] for c in cases) == [
                "component.iot_device.fault", "component.iot_device.network_outage"]
