"""A village going dark in a cluster with two detect workers: each worker judges the devices
it owns, and their outage alerts of the village (same rule, same subject, so the same group
key) meet in one case; the devices' own offline alerts are all inhibited and none is filed.

Noise meters report every 2 s here (the city pack's kinds are the cluster's own), so the
whole outage plays out in seconds of real time: the detect workers tick on their own clocks.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import msgspec
import pytest

from tests.cluster.test_nodes import asgi, nodes, until

pytestmark = pytest.mark.services

PERIOD_S = 2.0


def fast_noise(pack) -> None:
    pack.kinds["noise"] = msgspec.structs.replace(pack.kinds["noise"], period_s=PERIOD_S)


def dark_village(devices) -> str:
    """A village holding at most half its town's noise meters: its outage is a village's."""
    villages = Counter(d.areas.village for d in devices)
    towns = Counter(d.areas.village[:9] for d in devices)
    return min((v for v in villages if villages[v] >= 6), key=lambda v: villages[v] / towns[v[:9]])


@pytest.mark.timeout(150)
async def test_two_detect_workers_make_one_outage_case_and_no_device_case(cluster):
    fast_noise(cluster.pack)
    key = {"data_key_file": cluster.root / "data.key"}
    specs = (("web", ["web"], key), ("act", ["act"], key),
             ("det0", ["detect"], {**key, "worker": 0, "workers": 2}),
             ("det1", ["detect"], {**key, "worker": 1, "workers": 2}))
    async with nodes(cluster, *specs) as (web, act, det0, det1):
        meters = [d for d in web.registry.devices if d.kind == "noise"]
        village = dark_village(meters)
        dark = {d.id for d in meters if d.areas.village == village}
        async with asgi(web, cluster.device_key) as sensors, \
                asgi(web, cluster.admin_key) as ops:
            step = 0

            async def report(but: set[str]) -> None:
                nonlocal step
                step += 1
                now = time.time()
                rows = [{"device_id": d.id, "ts": now, "value": 45.0 + (i + step) % 5}
                        for i, d in enumerate(meters) if d.id not in but]
                r = await sensors.post("/api/v1/readings", content=msgspec.json.encode(rows))
                assert r.status_code == 202, r.text
                await asyncio.sleep(PERIOD_S / 4)

            for _ in range(12):  # everyone heard: the devices become active
                await report(set())

            async def outage_case():
                await report(dark)
                items = (await ops.get("/api/v1/incidents", params={"limit": 100})).json()
                cases = [c for c in items["items"] if c["category"].endswith("network_outage")]
                offline = (await ops.get("/api/v1/alerts", params={"limit": 1000})).json()
                silent = [a for a in offline["items"]
                          if a["rule"].startswith("device_health.offline") and a["active"]]
                # Done once every dark meter's own silence (3 periods) has been judged too.
                return (cases, offline["items"]) if cases and \
                    {a["subject"] for a in silent} >= dark else None

            cases, alerts = await until(outage_case, 90, "the outage case")
            for _ in range(8):  # a few more periods: nothing else may be filed meanwhile
                await report(dark)
            items = (await ops.get("/api/v1/incidents", params={"limit": 100})).json()["items"]
            alerts = (await ops.get("/api/v1/alerts", params={"limit": 1000})).json()["items"]

    outages = [a for a in alerts if a["rule"] == "network.area_outage"]
    assert {a["subject"] for a in outages} == {f"outage:village:{village}"}
    assert 1 <= len(outages) <= 2  # one per worker that owns some of its meters
    assert [c["category"] for c in items] == ["component.iot_device.network_outage"]
    offline = [a for a in alerts if a["rule"].startswith("device_health.offline")]
    assert {a["subject"] for a in offline} == dark
    assert {a["inhibited_by"] for a in offline} <= {a["id"] for a in outages}
    assert all(a["inhibited_by"] for a in offline)
