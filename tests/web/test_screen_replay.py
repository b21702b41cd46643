"""The big screen's replay in a real browser (issue 16 item 7): a past hour loaded from the
pickers, the slider moved, played at x3600; the replayed time is shown under a REPLAY badge
and the map draws the dots and cases the API answers for that moment; back to live in one
click."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

from cityops.domain.alerts import Alert
from cityops.domain.city import AreaCodes
from cityops.domain.incidents.model import Event, Incident, Status

from .conftest import VILLAGE11, signed_in

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the grid city's time zone

COUNT_DOTS = """(name) => {
    const l = window.cityops.replay[name];
    return [...Array(l.count).keys()].filter(i => l.position(i)).length;
}"""


def _wall(t: float, fmt: str) -> str:
    return dt.datetime.fromtimestamp(t, SHANGHAI).strftime(fmt)


def _case(name: str, changes: list[tuple[float, Status]]):
    inc = Incident(id=name, category="event.sanitation.exposed_garbage", kind="event",
                   title=name, source="inspector", status=changes[-1][1],
                   areas=AreaCodes(VILLAGE11[:6], VILLAGE11[:9], VILLAGE11), lat=31.15,
                   lon=121.45, reported_at=changes[0][0], updated_at=changes[-1][0])
    events, before = [], ""
    for at, status in changes:
        events.append(Event(at=at, actor="system", action="move", before=before,
                            after=status.value))
        before = status.value
    return inc, events


def _past_hour(web_node) -> int:
    """An hour two hours ago: two people and a truck tracked all along, a third person from
    its 40th minute; a case open from 5 to 33 minutes, one from 25, one from 42; a noise meter
    in alarm from 16 to 43 minutes."""
    h0 = int(time.time()) // 3600 * 3600 - 2 * 3600
    readings = []
    for k in range(13):
        at = h0 + 300 * k
        for device, lat, lon in (("gps-000000", 31.15, 121.45), ("gps-000001", 31.17, 121.43),
                                 ("gps-000004", 31.25, 121.55)):
            readings.append({"device_id": device, "ts": at,
                             "values": {"lat": round(lat + 0.0005 * k, 6), "lon": lon}})
        if at >= h0 + 2400:
            readings.append({"device_id": "gps-000002", "ts": at,
                             "values": {"lat": 31.16, "lon": 121.47}})
    web_node.send(readings)
    cases = [_case("replay-a", [(h0 + 300, Status.COLLECTED), (h0 + 600, Status.REGISTERED),
                                (h0 + 2000, Status.CLOSED)]),
             _case("replay-b", [(h0 + 1500, Status.COLLECTED)]),
             _case("replay-c", [(h0 + 2520, Status.COLLECTED)])]
    for inc, events in cases:
        web_node.call(web_node.node.store.save_incident(inc, events))
    meter = next(d for d in web_node.pack.devices if d.kind == "noise")
    alarm = Alert(id="replay-alarm", scenario="noise", rule="noise.loud", category="event.noise",
                  severity="warning", urgency="normal", departments=["environment"],
                  subject=meter.id, title="loud", areas=AreaCodes(VILLAGE11[:6], VILLAGE11[:9],
                                                                  VILLAGE11),
                  lat=meter.lat, lon=meter.lon, first_seen=h0 + 960, last_seen=h0 + 2580,
                  cleared_at=h0 + 2580, active=False)
    web_node.call(web_node.node.store.upsert_alerts([alarm]))
    return h0


def _api_at(web_node, h0: int, t: float, step: int) -> dict:
    with web_node.client("operator") as c:
        r = c.get("/api/v1/screen/replay", params={"from": h0, "to": h0 + 3600, "step": step})
        r.raise_for_status()
        body = r.json()
    k = min(body["steps"] - 1, int((t - body["start"]) // body["step"]))

    def status_at(case):
        before = [s for at, s in case["changes"] if at <= t]
        return before[-1] if before else None

    return {"staff": sum(row[k] is not None for row in body["staff"]["lat"]),
            "vehicles": sum(row[k] is not None for row in body["vehicles"]["lat"]),
            "incidents": sum(status_at(c) not in (None, "closed", "cancelled")
                             for c in body["incidents"]),
            "alarms": sum(a["device"] and a["first_seen"] <= t
                          and (a["cleared_at"] is None or t < a["cleared_at"])
                          for a in body["alerts"]),
            "open_at_frame": body["open"][k]}


def _drawn(page) -> dict:
    shown = page.evaluate("window.cityops.replay.shown")
    return {"staff": page.evaluate(COUNT_DOTS, "staff"),
            "vehicles": page.evaluate(COUNT_DOTS, "vehicles"),
            "incidents": shown["drawnIncidents"], "alarms": shown["alarms"], "t": shown["t"]}


def test_the_screen_replays_a_past_hour(web_node, browser, artifacts):
    h0 = _past_hour(web_node)
    context, page = signed_in(browser, web_node.url, web_node.keys["operator"], "/screen")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_function("window.cityops && window.cityops.replay && "
                           "window.cityops.stats.firstRender !== null", timeout=20_000)
    assert page.locator("#replay-clock").is_hidden()

    page.locator("#replay-open").click()
    page.locator("#replay-from").fill(_wall(h0, "%Y-%m-%dT%H:%M"))
    page.locator("#replay-to").fill(_wall(h0 + 3600, "%Y-%m-%dT%H:%M"))
    page.locator("#replay-load").click()
    page.wait_for_function(f"window.cityops.replay.shown && window.cityops.replay.shown.t === {h0}",
                           timeout=10_000)
    # Live is out of sight: its clock and dots are hidden, the REPLAY badge is shown.
    assert page.locator("#replay-clock .badge").inner_text() == "REPLAY"
    assert page.locator("#clock").is_hidden()
    assert page.evaluate("window.cityops.layers.staff.visible") is False

    # The slider to the 30th minute (the default speed, x60, steps of 15 s).
    t = h0 + 1800
    page.locator("#replay-slider").fill("1800")
    page.wait_for_function(f"window.cityops.replay.shown.t === {t}", timeout=10_000)
    assert page.locator("#replay-time").inner_text() == _wall(t, "%Y-%m-%d %H:%M:%S")
    drawn = _drawn(page)
    want = _api_at(web_node, h0, t, 15)
    assert want == {"staff": 2, "vehicles": 1, "incidents": 2, "open_at_frame": 2, "alarms": 1}
    assert (drawn["staff"], drawn["vehicles"], drawn["incidents"], drawn["alarms"]) == (2, 1, 2, 1)
    first = page.evaluate("window.cityops.replay.staff.position(0)")
    assert abs(first[1] - (31.15 + 0.0005 * 6)) < 1e-4 and abs(first[0] - 121.45) < 1e-4
    page.screenshot(path=str(artifacts / "screen-replay.png"))

    # Played at x3600, the rest of the hour takes half a second; it stops at the end.
    page.locator("#replay [data-speed='3600']").click()
    page.locator("#replay-play").click()
    page.wait_for_function(f"!window.cityops.replay.playing && "
                           f"window.cityops.replay.shown.t === {h0 + 3600}", timeout=10_000)
    assert page.locator("#replay-time").inner_text() == _wall(h0 + 3600, "%Y-%m-%d %H:%M:%S")
    drawn = _drawn(page)
    shown = page.evaluate("window.cityops.replay.shown")
    frame_t = shown["chunkStart"] + shown["frame"] * shown["step"]
    want = _api_at(web_node, h0, frame_t, shown["step"])
    assert (drawn["staff"], drawn["vehicles"]) == (want["staff"], want["vehicles"]) == (3, 1)
    # At the end of the hour: b and c are open, a closed; the meter quiet again.
    end = _api_at(web_node, h0, h0 + 3590, 10)
    assert drawn["incidents"] == end["incidents"] == 2
    assert drawn["alarms"] == end["alarms"] == 0

    # Back to live in one click: the live dots and clock again, no badge.
    page.locator("#replay-live").click()
    assert page.locator("#replay-clock").is_hidden() and page.locator("#clock").is_visible()
    assert page.evaluate("window.cityops.layers.staff.visible") is True
    assert page.evaluate("window.cityops.replay.staff.visible") is False
    assert errors == []
    context.close()
