"""The synthetic Pudong's movers: field staff with their GPS trackers, and muck trucks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely

from cityops.domain.city import Device, Staff, Vehicle
from cityops.packs.naming import person_names, place_names
from cityops.packs.tiling import km2, points_in

if TYPE_CHECKING:
    from cityops.packs.pudong import Village

# Department, head count, skills everyone in it has. Grid inspectors of city management are
# the bulk of the dots on the big screen.
STAFF_PLAN: list[tuple[str, int, list[str]]] = [
    ("city_management", 250, ["inspection"]),
    ("sanitation", 90, ["street_cleaning", "garbage_sorting"]),
    ("greening", 45, ["tree_care"]),
    ("water_affairs", 30, ["drainage", "flood_response"]),
    ("housing_construction", 25, ["building_inspection"]),
    ("market_regulation", 25, ["food_safety", "licensing"]),
    ("environment", 20, ["noise_survey", "pollution_sampling"]),
    ("civil_affairs", 15, ["elderly_care"]),
]
MUCK_TRUCKS = 200
HAULIERS = 12
CONSTRUCTION_SITES = 36
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O on Chinese plates
_PLATE_CHARS = "0123456789" + _PLATE_LETTERS


def _shrunk(village: Village) -> shapely.Geometry:
    inner = village.shape.buffer(-2e-6)  # see pudong_sensors: rounding must not cross a border
    return village.shape if inner.is_empty else inner


def field_staff(
    rng: np.random.Generator, villages: list[Village]
) -> tuple[list[Staff], list[Device]]:
    """About 500 field staff, each with a beat (a village) and a GPS tracker starting there."""
    weight = np.array([3.0 if v.community else 1.0 for v in villages])
    total = sum(n for _, n, _ in STAFF_PLAN)
    names = person_names(rng, total)
    staff: list[Staff] = []
    devices: list[Device] = []
    number = 0
    for department, count, skills in STAFF_PLAN:
        beats = rng.choice(len(villages), size=count, p=weight / weight.sum())
        for beat in beats.tolist():
            number += 1
            person_id, device_id = f"staff-{number:04d}", f"gps-staff-{number:04d}"
            enforcer = department == "city_management" and rng.random() < 0.4
            extra = ["law_enforcement"] if enforcer else []
            lon, lat = np.round(points_in(rng, _shrunk(villages[beat]), 1)[0], 6).tolist()
            staff.append(Staff(person_id, names[number - 1], department, device_id,
                               villages[beat].code, skills + extra))
            devices.append(Device(device_id, "gps", lat, lon,
                                  name=f"GPS tracker, {names[number - 1]}",
                                  owner=department, meta={"carrier": person_id}))
    return staff, devices


def muck_trucks(
    rng: np.random.Generator, villages: list[Village]
) -> tuple[list[Vehicle], list[Device]]:
    """About 200 muck (spoil) trucks of a dozen hauliers, each parked at a construction site."""
    outskirts = [v for v in villages if not v.urban_street]
    land = np.array([km2(v.shape) for v in outskirts])
    chosen = rng.choice(len(outskirts), size=CONSTRUCTION_SITES, replace=False, p=land / land.sum())
    site_areas = [_shrunk(outskirts[i]) for i in chosen.tolist()]
    site_points = [points_in(rng, area, 1)[0] for area in site_areas]
    companies = [f"Pudong {name} Earthworks Transport Co." for name in place_names(rng, HAULIERS)]
    plates: set[str] = set()
    vehicles: list[Vehicle] = []
    devices: list[Device] = []
    for number in range(1, MUCK_TRUCKS + 1):
        plate = _plate(rng)
        while plate in plates:
            plate = _plate(rng)
        plates.add(plate)
        site = int(rng.integers(CONSTRUCTION_SITES))
        # Parked within a few tens of metres of the site's gate, never across a village border.
        spot = site_points[site] + rng.normal(0.0, 0.0003, 2)
        if not shapely.contains_xy(site_areas[site], spot[0], spot[1]):
            spot = site_points[site]
        lon, lat = np.round(spot, 6).tolist()
        vehicle_id, device_id = f"truck-{number:04d}", f"gps-truck-{number:04d}"
        vehicles.append(Vehicle(vehicle_id, plate, "muck_truck", device_id,
                                companies[int(rng.integers(HAULIERS))]))
        devices.append(Device(device_id, "gps", lat, lon, name=f"GPS tracker, {plate}",
                              owner="city_management",
                              meta={"vehicle": vehicle_id, "site": f"site-{site + 1:02d}"}))
    return vehicles, devices


def _plate(rng: np.random.Generator) -> str:
    """A Shanghai plate such as "沪D·3F271": 沪, an issuing letter, five letters or digits."""
    letter = _PLATE_LETTERS[int(rng.integers(13))]
    tail = "".join(_PLATE_CHARS[i] for i in rng.integers(len(_PLATE_CHARS), size=5).tolist())
    return f"沪{letter}·{tail}"
