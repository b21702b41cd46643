"""A small city for the closed loop's tests: the grid city with the departments of the seed's
joint case, grid inspectors and sanitation workers carrying trackers."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import msgspec

from cityops.domain.city import Department, Device, Staff
from cityops.packs.categories_file import default_categories
from cityops.packs.grid import DISTRICT
from cityops.packs.grid import generate as grid_city

# A Tuesday at 10:00 in Shanghai: working hours, so working-hour limits run from the start.
START = dt.datetime(2026, 3, 3, 10, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai")).timestamp()
DEPARTMENTS = ["police", "fire", "ambulance", "city_management", "sanitation"]


def loop_city(inspectors: int = 4, sanitation: int = 3):
    pack = grid_city(devices={"noise": 4})
    village = f"{DISTRICT}001001"
    staff, devices = [], list(pack.devices)
    people = [("city_management", ["inspection"])] * inspectors + \
        [("sanitation", ["street_cleaning"])] * sanitation
    for n, (department, skills) in enumerate(people):
        device = f"gps-{n:06d}"
        # Spread over the city's south-west quarter, a few hundred metres to kilometres apart.
        lat, lon = 31.12 + 0.012 * (n % 4), 121.42 + 0.015 * (n // 4)
        devices.append(Device(device, "gps", lat, lon))
        staff.append(Staff(f"{department[:3]}-{n:02d}", f"Person {n}", department, device,
                           village, list(skills)))
    departments = [Department(d, d.replace("_", " ").title(), None, [DISTRICT])
                   for d in DEPARTMENTS]
    return msgspec.structs.replace(pack, departments=departments, staff=staff, devices=devices,
                                   categories=default_categories(DEPARTMENTS))
