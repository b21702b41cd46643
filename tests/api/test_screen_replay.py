"""Issue 16 item 7: the big screen replays a past window. GET /api/v1/screen/replay answers
where each mover was, which cases were open (as their stored timeline says) and the vital
signs at every frame; scoped like the live screen; bounded."""

from __future__ import annotations

import msgspec
import pytest

from cityops.domain.alerts import Alert
from cityops.domain.city import AreaCodes, Device, Vehicle
from cityops.domain.incidents.model import Event, Incident, Status

from .conftest import MONDAY_10, VILLAGE, Clock

DAY = MONDAY_10 - 86_400  # the day replayed: Sunday 10:00 in Shanghai
T = DAY + 1800  # the moment the test looks at
TOWN1, TOWN2 = "990001001", "990001002"
TOWN2_VILLAGE = "990001002001"


@pytest.fixture
def replay_city(city):
    kpis = [Device("kpi-calls-t1", "kpi", 31.15, 121.45, name="110 calls, town 1",
                   meta={"kpi": "calls_110", "area": TOWN1}),
            Device("kpi-calls-t2", "kpi", 31.15, 121.55, name="110 calls, town 2",
                   meta={"kpi": "calls_110", "area": TOWN2})]
    return msgspec.structs.replace(
        city, devices=[*city.devices, *kpis],
        vehicles=[Vehicle("truck-01", "沪B·12345", "muck_truck", "gps-000002")])


def _track(device: str, start: float, lat0: float, lon: float, n: int) -> list[dict]:
    """A fix every 10 minutes, moving north 0.001 degree each time."""
    return [{"device_id": device, "ts": start + 600 * k,
             "values": {"lat": round(lat0 + 0.001 * k, 6), "lon": lon}} for k in range(n)]


def _case(name: str, village: str, changes: list[tuple[float, Status]]) -> tuple:
    reported = changes[0][0]
    inc = Incident(id=name, category="event.sanitation.exposed_garbage", kind="event",
                   title=name, source="inspector", status=changes[-1][1],
                   areas=AreaCodes(village[:6], village[:9], village), lat=31.15, lon=121.45,
                   reported_at=reported, updated_at=changes[-1][0])
    events, before = [], ""
    for at, status in changes:
        events.append(Event(at=at, actor="system", action="move", before=before,
                            after=status.value))
        before = status.value
    return inc, events


CASES = [
    # Open at T: reported before, closed after.
    _case("open-at-t", VILLAGE, [(DAY + 600, Status.COLLECTED), (DAY + 900, Status.REGISTERED),
                                 (DAY + 3000, Status.CLOSED)]),
    # Closed before T.
    _case("closed-before", VILLAGE, [(DAY - 3600, Status.COLLECTED),
                                     (DAY + 300, Status.CLOSED)]),
    # Reported after T.
    _case("opened-after", VILLAGE, [(DAY + 4200, Status.COLLECTED)]),
    # Closed, then reopened: open again at T.
    _case("reopened", VILLAGE, [(DAY - 600, Status.COLLECTED), (DAY + 60, Status.CLOSED),
                                (DAY + 1200, Status.REGISTERED)]),
    # Open at T, in town 2.
    _case("town2", TOWN2_VILLAGE, [(DAY + 100, Status.COLLECTED)]),
]


def _alert(name: str, village: str, first: float, cleared: float | None) -> Alert:
    return Alert(id=name, scenario="noise", rule="noise.loud", category="event.noise",
                 severity="warning", urgency="normal", departments=["environment"],
                 subject="noise-000000", title=name,
                 areas=AreaCodes(village[:6], village[:9], village), lat=31.15, lon=121.45,
                 first_seen=first, last_seen=cleared or first, cleared_at=cleared,
                 active=cleared is None)


ALERTS = [_alert("alarm-at-t", VILLAGE, DAY + 1200, DAY + 2400),
          _alert("cleared-before", VILLAGE, DAY + 60, DAY + 1500),
          _alert("raised-after", VILLAGE, DAY + 4000, DAY + 5000),
          _alert("still-active", VILLAGE, DAY - 7200, None),
          _alert("town2-alarm", TOWN2_VILLAGE, DAY + 900, None),
          _alert("long-gone", VILLAGE, DAY - 3 * 86_400, DAY - 2 * 86_400)]


def status_at(case: dict, t: float) -> str | None:
    before = [s for at, s in case["changes"] if at <= t]
    return before[-1] if before else None


def frame_of(body: dict, t: float) -> int:
    k = round((t - body["start"]) / body["step"])
    assert body["start"] + k * body["step"] == t
    return k


async def _setup(live) -> None:
    readings = (_track("gps-000000", DAY, 31.15, 121.45, 12)  # san-01, town 1
                + _track("gps-000002", DAY, 31.15, 121.55, 12)  # the truck, in town 2
                + [{"device_id": "kpi-calls-t1", "ts": DAY + 3600 * h, "value": 10.0 + h}
                   for h in range(-1, 3)]
                + [{"device_id": "kpi-calls-t2", "ts": DAY, "value": 99.0}])
    device = live.client(await live.key("device"))
    r = await device.post("/api/v1/readings", json=readings)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == len(readings)
    for inc, events in CASES:
        await live.node.store.save_incident(inc, events)
    await live.node.store.upsert_alerts(ALERTS)


def alarms_at(body: dict, t: float) -> set[str]:
    return {a["id"] for a in body["alerts"]
            if a["first_seen"] <= t and (a["cleared_at"] is None or t < a["cleared_at"])}


async def test_the_replay_shows_movers_cases_and_vital_signs_as_they_were(
        tmp_path, replay_city, live_node, monkeypatch):
    from cityops.api import replay_screen

    monkeypatch.setattr(replay_screen, "ALERT_PAGE", 2)  # the alert list read in pages
    async with live_node(replay_city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        await _setup(live)
        op = live.client(await live.key("operator"))
        r = await op.get("/api/v1/screen/replay",
                         params={"from": str(DAY), "to": str(DAY + 7200), "step": "60"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["steps"] == 120 and body["step"] == 60 and body["q"] == 100_000
        k = frame_of(body, T)

        # san-01 at T: the fix of DAY + 1800 (its fourth: 31.153); at T - 60 the one before.
        staff = body["staff"]
        san = staff["id"].index("san-01")
        assert staff["lat"][san][k] == 3_115_300 and staff["lon"][san][k] == 12_145_000
        assert staff["lat"][san][k - 1] == 3_115_200
        # san-02 never reported: no dot at any frame.
        assert set(staff["lat"][staff["id"].index("san-02")]) == {None}
        truck = body["vehicles"]
        assert truck["id"] == ["truck-01"] and truck["lat"][0][k] == 3_115_300

        # The cases open at T as the timeline says: not the one closed before, nor the one
        # reported after; the reopened one is open again.
        cases = {c["id"]: c for c in body["incidents"]}
        open_now = {c for c, case in cases.items()
                    if status_at(case, T) not in (None, "closed", "cancelled")}
        assert open_now == {"open-at-t", "reopened", "town2"}
        assert status_at(cases["open-at-t"], T) == "registered"
        assert status_at(cases["open-at-t"], DAY + 3000) == "closed"
        assert body["open"][k] == 3
        assert body["open"][frame_of(body, DAY + 4200)] == 3  # one closed, one reported
        assert not body["incidents_capped"]

        # The alerts in force at T (raised before it, cleared after it or not at all); the
        # ones of the window are listed, not one cleared two days before.
        assert alarms_at(body, T) == {"alarm-at-t", "still-active", "town2-alarm"}
        assert {a["id"] for a in body["alerts"]} == {a.id for a in ALERTS} - {"long-gone"}
        assert all(a["device"] for a in body["alerts"]) and not body["alerts_capped"]

        # The vital signs: the hourly value as it stood (held for two periods).
        vital = {v["id"]: v for v in body["kpi"]}
        assert vital["kpi-calls-t1"]["values"][k] == 10.0
        assert vital["kpi-calls-t1"]["values"][frame_of(body, DAY + 3600)] == 11.0
        assert vital["kpi-calls-t1"]["values"][frame_of(body, DAY + 3540)] == 10.0
        assert vital["kpi-calls-t2"]["values"][k] == 99.0
        assert vital["kpi-calls-t1"]["kpi"] == "calls_110"

        # A scoped key of town 2 sees its own: the truck (it drives in town 2), its case and
        # vital sign, no town 1 person.
        town2 = live.client(await live.key("operator", TOWN2))
        r = await town2.get("/api/v1/screen/replay",
                            params={"from": str(DAY), "to": str(DAY + 7200), "step": "60"})
        assert r.status_code == 200, r.text
        scoped = r.json()
        assert scoped["staff"]["id"] == []
        assert scoped["vehicles"]["id"] == ["truck-01"]
        assert [c["id"] for c in scoped["incidents"]] == ["town2"]
        assert [v["id"] for v in scoped["kpi"]] == ["kpi-calls-t2"]
        assert scoped["open"][k] == 1
        assert alarms_at(scoped, T) == {"town2-alarm"}

        # A town 1 key sees san-01 but not the truck, which never entered town 1.
        town1 = live.client(await live.key("operator", TOWN1))
        scoped = (await town1.get("/api/v1/screen/replay",
                                  params={"from": str(DAY), "to": str(DAY + 7200)})).json()
        assert "san-01" in scoped["staff"]["id"] and scoped["vehicles"]["id"] == []
        assert "town2" not in {c["id"] for c in scoped["incidents"]}

        # A field key with no area: its own dot only, no vehicle (its cases are what the
        # desk's scope check lets it see, as on the live screen).
        field = live.client(await live.key("field", None, "san-01"))
        mine = (await field.get("/api/v1/screen/replay",
                                params={"from": str(DAY), "to": str(DAY + 7200)})).json()
        assert mine["staff"]["id"] == ["san-01"] and mine["vehicles"]["id"] == []


async def test_the_replay_is_bounded_and_says_why(tmp_path, replay_city, live_node):
    async with live_node(replay_city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        op = live.client(await live.key("operator"))

        async def ask(**params):
            return await op.get("/api/v1/screen/replay",
                                params={k.rstrip("_"): str(v) for k, v in params.items()})

        r = await ask(from_=DAY, to=DAY + 2 * 86_400)
        assert r.status_code == 400 and "at most 86400 s" in r.json()["error"]
        r = await ask(from_=DAY, to=DAY + 86_400, step=1)
        assert r.status_code == 400 and "frames" in r.text
        r = await ask(from_=DAY + 60, to=DAY)
        assert r.status_code == 400 and "`from` must be before `to`" in r.text
        r = await ask(from_="yesterday", to=DAY)
        assert r.status_code == 400 and "from" in r.text
        r = await ask(from_=DAY, to=DAY + 60, step=0)
        assert r.status_code == 400 and "step" in r.text
        # The default: the last hour before now, in 360 frames.
        r = await op.get("/api/v1/screen/replay")
        assert r.status_code == 200
        assert r.json()["start"] == MONDAY_10 - 3600 and r.json()["steps"] == 360


async def test_the_points_bound_counts_every_series(tmp_path, replay_city, live_node,
                                                    monkeypatch):
    from cityops.api import replay_screen

    monkeypatch.setattr(replay_screen, "MAX_POINTS", 100)
    async with live_node(replay_city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        # 2 people, 1 truck and 2 vital signs: 5 series x 20 frames fit, 21 do not.
        ok = await op.get("/api/v1/screen/replay", params={"from": str(DAY),
                                                           "to": str(DAY + 20), "step": "1"})
        assert ok.status_code == 200, ok.text
        r = await op.get("/api/v1/screen/replay", params={"from": str(DAY),
                                                          "to": str(DAY + 21), "step": "1"})
        assert r.status_code == 400 and "105 values; at most 100" in r.text
