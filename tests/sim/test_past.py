"""The simulated city's past vital signs: the live simulator's own values, hour by hour for
four weeks, and a node that starts on them judges the first live hour against a baseline."""

from __future__ import annotations

import datetime as dt

import msgspec
import numpy as np

from cityops.domain.registry import DeviceRegistry
from cityops.history.backfill import Backfill
from cityops.history.imports import import_batch
from cityops.packs.grid import generate as grid_city
from cityops.packs.pudong_kpis import series
from cityops.sim.past import kpi_history
from cityops.sim.simulator import Simulator

END = dt.datetime(2026, 11, 30, 15, 20, tzinfo=dt.UTC).timestamp()


def _kpi_city():
    city = grid_city(devices={"noise": 1})
    return msgspec.structs.replace(city, devices=[*city.devices, *series(city.areas)])


def _registry(city):
    registry = DeviceRegistry(city.kinds)
    registry.add(city.devices)
    return registry


def test_four_weeks_of_the_simulators_own_values():
    city = _kpi_city()
    registry = _registry(city)
    past = kpi_history(city, registry, END, weeks=4, seed=0)
    kpis = [d for d in city.devices if d.kind == "kpi"]
    hourly = [d for d in kpis if d.meta["kpi"] != "sorting_accuracy"]
    daily = [d for d in kpis if d.meta["kpi"] == "sorting_accuracy"]
    assert hourly and daily
    assert len(past) == len(hourly) * 28 * 24 + len(daily) * 28
    assert past.ts.max() < END * 1e6 and past.ts.min() >= (END - 28 * 86400 - 3600) * 1e6
    # The live simulator, asked for the same device in the same hour, reports the same count.
    sim = Simulator(city, seed=0, start_ts=END - 3 * 86400)
    group = next(g for g in sim.groups if g.kind.name == "kpi")
    member = next(i for i, d in enumerate(group.ids.tolist()) if d == hourly[0].id)
    hour = int(END // 3600) * 3600 - 5 * 3600
    offset = sim.clock.offset_s(hour)
    live = group.model.values(np.array([member]), np.array([hour + 1234.0]),
                              np.array([hour + 1234.0 + offset]))[0, 0]
    device = registry.index[hourly[0].id]
    mine = past.value[(past.device == device) & (past.ts == hour * 1_000_000)]
    assert mine.tolist() == [round(float(live), 2)]


async def test_a_node_starting_on_that_past_has_its_baselines(tmp_path, live_node):
    city = _kpi_city()
    registry = _registry(city)
    data = tmp_path / "data"
    journal = import_batch(kpi_history(city, registry, END, weeks=4),
                           Backfill(data / "history", registry), key="demo", source="test")
    assert journal.stored > 0
    again = import_batch(kpi_history(city, registry, END, weeks=4),
                         Backfill(data / "history", registry), key="demo", source="test")
    assert again.stored == journal.stored  # done once
    async with live_node(city, data, clock=lambda: END, max_age_s=1e9) as live:
        key = await live.key("admin")
        noise = next(d.id for d in city.devices if d.kind == "noise")
        async with live.client(key) as client:
            sent = await client.post("/api/v1/readings", json=[
                {"device_id": noise, "ts": END - 60, "value": 48.0}])
            assert sent.status_code in (200, 202), sent.text
            assert await live.node.detect.caught_up()
            signs = (await client.get("/api/v1/vital-signs")).json()["items"]
        # The API lists every series a baseline watches; the screen's feed only the KPIs.
        assert noise in {s["device_id"] for s in signs}
        kpis = live.node.detect.vital_signs("kpi")
        assert kpis and all(live.node.registry.get(s["device_id"]).kind == "kpi" for s in kpis)
    hourly = {s["device_id"]: s for s in signs if s["rule"].startswith("vital_signs.")}
    assert hourly, signs
    for sign in hourly.values():
        # Four weeks of each hour of the week, three needed: judged, not learning.
        assert sign["history"] == 3 and sign["status"] != "learning"
        assert sign["baseline"] is not None
