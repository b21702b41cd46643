"""Replay real noise data (Dublin City Council, 9 monitors, hourly LAeq) through the normal
intake into the detect engine: night-time exceedances raise the noise pack's alerts, gaps of
silence raise device-offline alerts, and the file's empty cells crash nothing.

The file's times are read as Dublin local time (Europe/Dublin, with summer time).
"""

from __future__ import annotations

import csv
import datetime as dt
from zoneinfo import ZoneInfo

import msgspec

from cityops.domain.city import ChannelSpec, DeviceKind
from cityops.domain.scenarios.spec import seconds
from cityops.packs.grid import generate
from tests.clock_kit import Clock as ReplayClock

DUBLIN = ZoneInfo("Europe/Dublin")
START = dt.datetime(2015, 1, 1)
END = dt.datetime(2015, 4, 1)  # three months: includes the spring change to summer time


def load_rows(path):
    """[(epoch seconds, {monitor: LAeq or None})] between START and END, in time order."""
    rows = []
    with open(path, newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        monitors = [h.removeprefix("laeq_") for h in header[2:]]
        for line in reader:
            local = dt.datetime.fromisoformat(line[1])
            if not START <= local < END:
                continue
            ts = local.replace(tzinfo=DUBLIN).timestamp()
            values = {m: (float(v) if v.strip() else None) for m, v in zip(monitors, line[2:])}
            rows.append((ts, values))
    rows.sort(key=lambda r: r[0])
    return monitors, rows


def dublin_pack(monitors):
    pack = generate(towns=3, villages=3, devices={"noise": len(monitors)}, center=(53.35, -6.26))
    # The monitors report hourly LAeq: their kind's period says so (absence is 3 periods).
    hourly = DeviceKind("noise", "Noise monitor (hourly LAeq)",
                        [ChannelSpec("laeq", "dB(A)", 0.0, 150.0)], 3600)
    devices = [msgspec.structs.replace(d, id=m, name=f"Dublin noise monitor {m}",
                                       meta={"setting": "residential"})
               for d, m in zip(pack.devices, monitors)]
    info = msgspec.structs.replace(pack.info, name="Dublin (noise monitors)",
                                   timezone="Europe/Dublin")
    return msgspec.structs.replace(pack, info=info, devices=devices,
                                   kinds={**pack.kinds, "noise": hourly})


async def test_dublin_noise_replay(tmp_path, live_node, shared_data):
    monitors, rows = load_rows(shared_data / "dublin_noise_hourly_laeq_2015-2021.tsv")
    pack = dublin_pack(monitors)
    clock = ReplayClock(rows[0][0])
    async with live_node(pack, tmp_path / "data", clock=clock, max_age_s=20 * 365 * 86400.0,
                         detect_tick_s=3600.0) as live:
        engine = live.node.detect
        night = next(r for p in engine.scenarios if p.name == "noise" for r in p.rules
                     if r.when is not None and r.when.hours)
        offline = next(r for p in engine.scenarios if p.name == "device_health" for r in p.rules
                       if type(r).__name__ == "Absence")
        key = await live.key("device")
        sent = stored_expected = 0
        rejected_empty = 0
        async with live.client(key) as c:
            for ts, values in rows:
                clock.now = ts
                # Empty cells go in as they are (value null): refused by index, nothing lost.
                body = [{"device_id": m, "ts": ts, "value": v} for m, v in values.items()]
                r = await c.post("/api/v1/readings", content=msgspec.json.encode(body))
                assert r.status_code == 202, r.text
                answer = r.json()
                empty = [i for i, (m, v) in enumerate(values.items()) if v is None]
                assert [x["index"] for x in answer["rejected"]] == empty
                rejected_empty += len(empty)
                sent += len(body)
                stored_expected += len(body) - len(empty)
                assert await engine.caught_up()
                clock.now = ts + 3599
                await engine.tick()
        admin = await live.key("admin")
        async with live.client(admin) as c:
            count = (await c.get("/api/v1/history/count")).json()["readings"]
            alerts = await _all_alerts(c)
    assert count == stored_expected and rejected_empty > 0

    # Night-time exceedances: every noise alert starts at night, above the limit.
    threshold = night.above
    start_h, end_h = (int(x.split(":")[0]) for x in night.when.hours.split("-"))
    noise_alerts = [a for a in alerts if a["rule"] == f"noise.{night.id}"]
    assert noise_alerts, "three winter months of Dublin nights raised no noise alert"
    for a in noise_alerts:
        local = dt.datetime.fromtimestamp(a["first_seen"], DUBLIN)
        assert local.hour >= start_h or local.hour < end_h, local
        assert a["evidence"] and max(e[3] for e in a["evidence"]) > threshold
    # ... and a monitor with a long run of loud night hours has one.
    hold = seconds(night.for_)
    for monitor in monitors:
        runs = _loud_night_runs(rows, monitor, threshold, start_h, end_h)
        has_alert = any(a["subject"] == monitor for a in noise_alerts)
        if any(length * 3600 > hold + 3600 for length in runs):
            assert has_alert, monitor
        if not runs:
            assert not has_alert, monitor

    # Gaps of silence longer than the absence limit raise device-offline alerts: a new one, or
    # the episode of a gap shortly before resumed (flapping: back for a few hours, then
    # silent again, is one episode; its last_seen is then the new gap's raise).
    limit_h = offline.periods  # periods of one hour
    offline_alerts = [a for a in alerts if a["rule"] == f"device_health.{offline.id}"]

    def raised_in(a: dict, start: float, end: float) -> bool:
        return start <= a["first_seen"] <= end or (a["flaps"] > 0
                                                     and start <= a["last_seen"] <= end)

    for monitor in monitors:
        gaps = _gaps(rows, monitor)
        mine = [a for a in offline_alerts if a["subject"] == monitor]
        for start, hours in gaps:
            if hours >= limit_h + 2:
                assert any(raised_in(a, start, start + hours * 3600) for a in mine), (
                    monitor, dt.datetime.fromtimestamp(start, DUBLIN), hours)
        for a in mine:  # never offline while it was reporting
            assert any(start <= a["first_seen"] <= start + (hours + 1) * 3600
                       for start, hours in gaps), (monitor, a["first_seen"])
    print(f"\nDublin replay {START:%Y-%m-%d}..{END:%Y-%m-%d}: {sent} cells, {rejected_empty} "
          f"empty, {count} stored; {len(noise_alerts)} night noise alerts, "
          f"{len(offline_alerts)} offline alerts")


async def _all_alerts(client):
    out, cursor = [], None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/alerts", params=params)).json()
        out += page["items"]
        cursor = page["next"]
        if not cursor:
            return out


def _loud_night_runs(rows, monitor, threshold, start_h, end_h):
    runs, length = [], 0
    for ts, values in rows:
        hour = dt.datetime.fromtimestamp(ts, DUBLIN).hour
        v = values[monitor]
        if v is not None and v > threshold and (hour >= start_h or hour < end_h):
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs + ([length] if length else [])


def _gaps(rows, monitor):
    """(start ts, hours) of every run of missing readings."""
    gaps, start, hours = [], None, 0
    for ts, values in rows:
        if values[monitor] is None:
            start = ts if start is None else start
            hours += 1
        elif start is not None:
            gaps.append((start, hours))
            start, hours = None, 0
    return gaps
