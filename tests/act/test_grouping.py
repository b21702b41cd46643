"""Alert groups on the act side: alerts of one group join one case while the group's latest
alert is recent enough, a later one opens a new case; silenced and inhibited alerts open
nothing; alerts of one group filed at once from several lanes still make one case."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec
import pytest

from cityops.act.desk import IncidentDesk
from cityops.act.intake import AlertIntake, lane_key
from cityops.domain.alerts import Alert, AlertEvent
from cityops.domain.city import WorkCalendar
from cityops.domain.geo import CityMap
from cityops.domain.incidents.categories import CategoryTable
from cityops.domain.incidents.workflow import Rules
from cityops.domain.workclock import WorkClock
from cityops.notify.memory import MemoryNotifier
from cityops.packs.categories_file import default_categories
from cityops.packs.grid import generate as grid_city
from cityops.store.base import IncidentFilter, open_store
from cityops.store.memory import MemoryStore
from tests.clock_kit import Clock
from tests.store.conftest import fresh_postgres_url  # noqa: F401 (a fixture)

TZ = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ).timestamp()
FAULT = "component.iot_device.fault"
VILLAGE_1 = "990001001001"  # lat 31.10-31.20, lon 121.40-121.50
VILLAGE_2 = "990001001002"  # lat 31.20-31.30


@pytest.fixture
def city() -> CityMap:
    return CityMap.from_pack(grid_city(devices={"noise": 2}))


def intake_on(store, city: CityMap) -> AlertIntake:
    departments = ["city_management", "police", "fire", "sanitation"]
    rules = Rules(CategoryTable(default_categories(departments)),
                  WorkClock(WorkCalendar(timezone="Asia/Shanghai")), district="990001")
    desk = IncidentDesk(store, rules, MemoryNotifier(), city=city, clock=Clock(T0))
    return AlertIntake(desk, bus=None)


@pytest.fixture
def intake(city: CityMap) -> AlertIntake:
    return intake_on(MemoryStore(), city)


@pytest.fixture(params=["sqlite", "postgres"])
async def durable_intake(request, tmp_path, city: CityMap):
    """On a store that really waits (a writer thread, a server), so concurrent filings
    interleave: the memory store never yields between a read and a write."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state.db"
    else:
        url = request.getfixturevalue("fresh_postgres_url")()
    store = open_store(url)
    await store.open()
    yield intake_on(store, city)
    await store.close()


def alert(city: CityMap, n: int, at: float, lat: float, lon: float = 121.45, *,
          group: str | None = None, **more) -> AlertEvent:
    areas = city.resolve(lat, lon)
    assert areas is not None
    return AlertEvent("raised", Alert(
        id=f"a{n}", scenario="device_health", rule="device_health.offline_noise",
        category=FAULT, severity="minor", urgency="low", departments=["city_management"],
        subject=f"noise-{n:06d}", title="Sensor silent", lat=lat, lon=lon, areas=areas,
        first_seen=at, last_seen=at,
        group=f"{FAULT}|{areas.village}" if group is None else group, **more))


async def cases(intake: AlertIntake):
    return await intake.desk.store.list_incidents(IncidentFilter(), limit=1000)


async def test_alerts_of_one_group_join_one_case_within_its_window(intake, city):
    # Far apart (several km: no merge by place), one village, within ten minutes of each
    # other: one case, with every alert listed in it.
    await intake.take(alert(city, 1, T0, 31.11))
    await intake.take(alert(city, 2, T0 + 300, 31.15, 121.42))
    await intake.take(alert(city, 3, T0 + 590, 31.19, 121.48))
    (case,) = await cases(intake)
    assert case.group == f"{FAULT}|{VILLAGE_1}" and case.reports == 3 and case.grouped == 3
    reports = await intake.desk.store.incident_reports(case.id)
    assert sorted(r.key for r in reports) == ["alert:a1", "alert:a2", "alert:a3"]
    events = await intake.desk.store.incident_events(case.id)
    merges = [e for e in events if e.action == "merge"]
    assert [e.reason for e in merges] == [
        f"grouped with 1 alert of device_health.offline_noise in {VILLAGE_1}",
        f"grouped with 2 alerts of device_health.offline_noise in {VILLAGE_1}"]
    assert merges[-1].detail["alerts"] == 3
    # Ten minutes and a bit after the group's latest alert: a new case for the group.
    await intake.take(alert(city, 4, T0 + 590 + 601, 31.12))
    assert sorted(c.reports for c in await cases(intake)) == [1, 3]


async def test_two_villages_make_two_cases(intake, city):
    await intake.take(alert(city, 1, T0, 31.15))
    await intake.take(alert(city, 2, T0 + 10, 31.25))
    await intake.take(alert(city, 3, T0 + 20, 31.16, 121.41))
    found = {c.areas.village: c.reports for c in await cases(intake)}
    assert found == {VILLAGE_1: 2, VILLAGE_2: 1}


async def test_an_alert_without_a_group_opens_its_own_case(intake, city):
    await intake.take(alert(city, 1, T0, 31.11, group=""))
    await intake.take(alert(city, 2, T0 + 10, 31.19, group=""))
    assert sorted(c.reports for c in await cases(intake)) == [1, 1]


async def test_silenced_and_inhibited_alerts_open_nothing_until_raised_again(intake, city):
    await intake.take(alert(city, 1, T0, 31.11, silenced_by="sil-1"))
    await intake.take(alert(city, 2, T0, 31.12, inhibited_by="outage-1"))
    cleared = alert(city, 3, T0, 31.13, silenced_by="sil-1")
    await intake.take(AlertEvent("cleared", cleared.alert))
    assert await cases(intake) == []
    assert intake.stats["silenced"] == 2 and intake.stats["inhibited"] == 1
    assert intake.stats["filed"] == 0 and intake.desk.stats["reports"] == 0
    # The silence ended with the alert still firing: it comes again as raised, held by
    # nothing, and is filed as new.
    again = msgspec.structs.replace(alert(city, 1, T0, 31.11).alert, silenced_by=None)
    await intake.take(AlertEvent("raised", again))
    (case,) = await cases(intake)
    assert case.alert_id == "a1" and intake.stats["filed"] == 1


async def test_a_group_filed_at_once_from_many_lanes_makes_one_case(durable_intake, city):
    intake = durable_intake
    # Forty alerts of one group all over the village: they fall in several lanes (H3 cells
    # of about 6 km), which are filed side by side and race to open the group's case.
    events = [alert(city, n, T0 + n, 31.101 + (n % 8) * 0.012, 121.401 + (n // 8) * 0.019)
              for n in range(40)]
    assert len({lane_key(e) for e in events}) >= 3
    assert {e.alert.areas.village for e in events} == {VILLAGE_1}
    await intake.take_all(events)
    (case,) = await cases(intake)
    assert case.reports == 40 and case.grouped == 40
    assert len(await intake.desk.store.incident_reports(case.id)) == 40
    assert intake.stats["filed"] == 40 and intake.stats["failed"] == 0


async def test_concurrent_group_filings_race_on_the_group_case(durable_intake, city):
    intake = durable_intake
    # The same race without lanes: every alert filed at the same moment.
    desk = intake.desk
    from cityops.act.intake import report_of
    events = [alert(city, n, T0 + n, 31.11 + n * 0.001) for n in range(12)]
    await asyncio.gather(*(desk.async_report(report_of(e), FAULT, areas=e.alert.areas)
                           for e in events))
    (case,) = await cases(intake)
    assert case.reports == 12


async def test_two_desks_on_one_store_file_one_group_into_one_case(durable_intake, city):
    # Two act nodes (a cluster) share the store: neither's lock keeps the other out, the
    # group record and the case's version do.
    from cityops.act.intake import report_of
    one = durable_intake.desk
    two = IncidentDesk(one.store, one.rules, MemoryNotifier(), city=city, clock=Clock(T0))
    events = [alert(city, n, T0 + n, 31.11 + n * 0.001) for n in range(16)]
    await asyncio.gather(*((one if n % 2 else two).async_report(
        report_of(e), FAULT, areas=e.alert.areas) for n, e in enumerate(events)))
    (case,) = await cases(durable_intake)
    assert case.reports == 16 and case.grouped == 16
