from __future__ import annotations

import datetime as dt

import pytest

from cityops.domain.access import Role, Scope
from cityops.domain.city import AreaCodes, WorkCalendar
from cityops.domain.incidents.categories import CategoryTable
from cityops.domain.incidents.model import Report
from cityops.domain.incidents.workflow import Actor, Rules
from cityops.domain.workclock import WorkClock
from cityops.packs.categories_file import default_categories

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
# Monday 23 November 2026, 10:00 in Shanghai: inside working hours.
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI).timestamp()
PLACE = AreaCodes("310115", "310115001", "310115001001")
DEPARTMENTS = ["police", "fire", "ambulance", "city_management", "sanitation", "transport",
               "greening", "environment", "water_affairs", "housing_construction"]

OPERATOR = Actor("k_op", Role.OPERATOR, Scope(), "operator")
TOWN_OPERATOR = Actor("k_town", Role.OPERATOR, Scope(area="310115001"), "town operator")
OTHER_OPERATOR = Actor("k_other", Role.OPERATOR, Scope(area="310115002"), "other town")
SANITATION = Actor("k_san", Role.DEPARTMENT, Scope(department="sanitation"), "sanitation")
POLICE = Actor("k_pol", Role.DEPARTMENT, Scope(department="police"), "police")
STATION = Actor("k_sta", Role.STATION, Scope(area="310115001001"), "village station")
INSPECTOR = Actor("k_ins", Role.FIELD, Scope(area="310115001"), "ins-01")
CITIZEN = Actor("k_cit", Role.CITIZEN, Scope(), "citizen")


def at(hours: float) -> float:
    return MONDAY_10 + hours * 3600


@pytest.fixture
def rules() -> Rules:
    calendar = WorkCalendar(timezone="Asia/Shanghai")
    return Rules(CategoryTable(default_categories(DEPARTMENTS)), WorkClock(calendar),
                 district="310115", departments=set(DEPARTMENTS))


def report(key: str = "r-1", when: float = MONDAY_10, source: str = "inspector") -> Report:
    return Report(key=key, source=source, at=when, text="garbage piled by the gate",
                  lat=31.2, lon=121.5)
