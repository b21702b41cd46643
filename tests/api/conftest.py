"""A grid city with the departments and field staff the act-side API tests need."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from cityops.domain.city import Department, Staff
from cityops.packs.categories_file import default_categories
from tests.clock_kit import Clock as Clock  # re-exported: the act tests import it from here

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI).timestamp()
HERE = {"lat": 31.15, "lon": 121.45}  # Town 1, Village 1 of the grid city
VILLAGE = "990001001001"


@pytest.fixture
def city(grid_pack):
    departments = [
        Department("police", "Police", "110", ["990001"]),
        Department("fire", "Fire", "119", ["990001"]),
        Department("city_management", "City management", None, ["990001"]),
        Department("sanitation", "Sanitation", None, ["990001"]),
        Department("water_affairs", "Water affairs", None, ["990001"]),
        Department("transport", "Transport", None, ["990001"]),
        Department("environment", "Environment", None, ["990001001"]),
    ]
    staff = [Staff("san-01", "Wang", "sanitation", "gps-000000", VILLAGE),
             Staff("san-02", "Zhao", "sanitation", "gps-000001", VILLAGE)]
    return msgspec.structs.replace(
        grid_pack, departments=departments, staff=staff,
        categories=default_categories([d.code for d in departments]))


@pytest.fixture
def care_city(city):
    """The city with the departments senior care works with: civil affairs (homes, waiting
    lists, caregivers) and housing (the aging-friendly retrofit)."""
    departments = [*city.departments,
                   Department("civil_affairs", "Civil affairs", None, ["990001"]),
                   Department("housing_construction", "Housing", None, ["990001"])]
    return msgspec.structs.replace(city, departments=departments)
