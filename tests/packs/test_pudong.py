"""The synthetic Pudong: deterministic, Pudong-sized, and geographically consistent."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import h3
import numpy as np
import pytest
import shapely

from cityops.domain.city import CityPack, Level
from cityops.domain.geo import CityMap, geometry_of
from cityops.packs.format import load_pack, save_pack
from cityops.packs.pudong import generate
from cityops.packs.tiling import km2

DEPARTMENTS = {
    "police", "fire", "ambulance", "city_management", "environment", "water_affairs",
    "transport", "housing_construction", "market_regulation", "civil_affairs", "sanitation",
    "greening", "utilities_power", "utilities_gas", "utilities_water", "hotline_12345",
    "health", "human_resources_social_security", "medical_insurance",
}


@pytest.fixture(scope="module")
def city(pudong: CityPack) -> CityMap:
    return CityMap.from_pack(pudong)


def test_three_levels_with_pudong_codes(pudong: CityPack) -> None:
    levels = collections.Counter(a.level for a in pudong.areas)
    assert levels[Level.DISTRICT] == 1
    assert levels[Level.TOWN] == 36
    assert 650 <= levels[Level.VILLAGE] <= 750
    towns = sorted(a.code for a in pudong.areas if a.level is Level.TOWN)
    assert towns == [f"310115{i:03d}" for i in range(1, 37)]
    names = {a.name for a in pudong.areas if a.level is Level.TOWN}
    assert {"Lujiazui Street", "Zhangjiang Town", "Huamu Street", "Nicheng Town"} <= names
    for area in pudong.areas:
        if area.level is Level.VILLAGE:
            assert re.fullmatch(r"310115\d{6}", area.code) and area.code.startswith(area.parent)


def test_the_district_is_pudong_sized_and_placed(pudong: CityPack) -> None:
    district = geometry_of(pudong.areas[0])
    assert 1_100 < km2(district) < 1_400
    minx, miny, maxx, maxy = district.bounds
    assert 121.44 <= minx and maxx <= 121.96 and 30.84 <= miny and maxy <= 31.41


def test_towns_tile_the_district_and_villages_tile_each_town(pudong: CityPack) -> None:
    shapes = {a.code: geometry_of(a) for a in pudong.areas}
    district = shapes["310115"]
    towns = [a.code for a in pudong.areas if a.level is Level.TOWN]
    assert sum(shapes[t].area for t in towns) == pytest.approx(district.area, rel=1e-6)
    union = shapely.union_all([shapes[t] for t in towns])
    assert union.symmetric_difference(district).area < 1e-9 * district.area
    for town in towns:
        villages = [a.code for a in pudong.areas if a.parent == town]
        assert len(villages) >= 8
        total = sum(shapes[v].area for v in villages)
        assert total == pytest.approx(shapes[town].area, rel=1e-6), town
        union = shapely.union_all([shapes[v] for v in villages])
        assert union.symmetric_difference(shapes[town]).area < 1e-9 * shapes[town].area, town


def test_every_point_resolves_once_at_each_level(pudong: CityPack, city: CityMap) -> None:
    rng = np.random.default_rng(5)
    district = geometry_of(pudong.areas[0])
    minx, miny, maxx, maxy = district.bounds
    lons, lats = rng.uniform(minx, maxx, 20_000), rng.uniform(miny, maxy, 20_000)
    inside = shapely.contains_xy(district, lons, lats)
    found = city.resolve_many(lats, lons)
    assert [f is not None for f in found] == inside.tolist()
    shapes = {a.code: geometry_of(a) for a in pudong.areas}
    for lat, lon, place in list(zip(lats, lons, found, strict=True))[:300]:
        if place is not None:
            point = shapely.Point(lon, lat)
            assert shapes[place.town].covers(point) and shapes[place.village].covers(point)


def test_shared_corners_resolve_to_the_lowest_village(pudong: CityPack, city: CityMap) -> None:
    corners: dict[tuple[float, float], list[str]] = collections.defaultdict(list)
    for area in pudong.areas:
        if area.level is Level.VILLAGE:
            for lon, lat in {tuple(xy) for xy in shapely.get_coordinates(geometry_of(area))}:
                corners[(lon, lat)].append(area.code)
    shared = [(xy, codes) for xy, codes in corners.items() if len(codes) >= 2]
    assert len(shared) > 1000
    for (lon, lat), codes in shared[::7]:
        # Lowest among the villages having this corner, or lower still when the corner also
        # lies on the edge of another village.
        village = city.resolve(lat, lon).village
        assert village <= min(codes)
        assert city.geometry(village).distance(shapely.Point(lon, lat)) < 1e-9


def test_points_on_town_borders_resolve(pudong: CityPack, city: CityMap) -> None:
    rng = np.random.default_rng(3)
    inner = geometry_of(pudong.areas[0]).buffer(-1e-4)
    borders = [geometry_of(a).boundary for a in pudong.areas if a.level is Level.TOWN]
    points = np.concatenate([
        shapely.get_coordinates(shapely.line_interpolate_point(b, rng.uniform(0, b.length, 100)))
        for b in borders
    ])
    points = points[shapely.contains_xy(inner, points[:, 0], points[:, 1])]
    assert (city.village_indices(points[:, 1], points[:, 0]) >= 0).all()


def test_sensor_counts_and_kinds(pudong: CityPack) -> None:
    kinds = collections.Counter(d.kind for d in pudong.devices)
    sensors = {k: n for k, n in kinds.items() if k not in ("camera", "gps", "kpi")}
    assert sum(sensors.values()) == 40_000
    assert len(sensors) >= 8
    assert kinds["camera"] == 8_000
    assert {"noise", "water_depth", "rainfall", "bin_fill", "water_meter", "manhole_tilt",
            "street_lamp", "smoke", "air_quality", "wind"} <= set(sensors)
    assert sensors["rainfall"] < sensors["noise"] < sensors["bin_fill"]


def test_vital_sign_series_for_the_district_every_town_and_community(pudong: CityPack) -> None:
    kpis = [d for d in pudong.devices if d.kind == "kpi"]
    hourly = collections.Counter(d.meta["kpi"] for d in kpis if d.meta["level"] != "village")
    assert hourly == {"calls_110": 37, "visits_120": 37, "traffic_accidents": 37,
                      "orders_12345": 37}
    villages = [a for a in pudong.areas if a.level.value == "village"]
    daily = [d for d in kpis if d.meta["kpi"] == "sorting_accuracy"]
    assert sorted(d.meta["area"] for d in daily) == sorted(a.code for a in villages)
    city = CityMap.from_pack(pudong)
    for device in kpis:  # each series sits inside the area it is about
        assert city.resolve(device.lat, device.lon).village.startswith(device.meta["area"])


def test_device_ids_are_readable_and_unique(pudong: CityPack) -> None:
    ids = [d.id for d in pudong.devices]
    assert len(set(ids)) == len(ids)
    for device in pudong.devices:
        assert re.fullmatch(rf"{device.kind}-(\d{{6}}|staff-\d{{4}}|truck-\d{{4}}"
                            r"|[a-z0-9_]+-\d{6}(\d{3}){0,2})", device.id), device.id
    assert "noise-000001" in ids and "camera-008000" in ids


def test_every_device_resolves_to_an_area(pudong: CityPack, city: CityMap) -> None:
    resolved, errors = city.resolve_devices(pudong.devices)
    assert errors == []
    assert len(resolved) == len(pudong.devices)


def test_noise_meters_mostly_in_residential_communities(pudong: CityPack, city: CityMap) -> None:
    noise = [d for d in pudong.devices if d.kind == "noise"]
    places = city.resolve_many(np.array([d.lat for d in noise]), np.array([d.lon for d in noise]))
    in_communities = sum(city.area(p.village).name.endswith("Community") for p in places)
    assert in_communities / len(noise) > 0.8


def test_field_staff_and_muck_trucks(pudong: CityPack, city: CityMap) -> None:
    devices = {d.id: d for d in pudong.devices}
    departments = {d.code for d in pudong.departments}
    assert 480 <= len(pudong.staff) <= 520
    for person in pudong.staff:
        tracker = devices[person.device_id]
        assert tracker.kind == "gps" and person.department in departments
        assert city.resolve(tracker.lat, tracker.lon).village == person.home_area
    trucks = [v for v in pudong.vehicles if v.role == "muck_truck"]
    assert 180 <= len(trucks) <= 220
    assert all(devices[t.device_id].kind == "gps" for t in trucks)
    assert len({t.plate for t in trucks}) == len(trucks)


def test_all_nineteen_departments_serve_the_district(pudong: CityPack) -> None:
    assert {d.code for d in pudong.departments} == DEPARTMENTS
    assert all(d.service_areas == ["310115"] for d in pudong.departments)
    hotlines = {d.code: d.hotline for d in pudong.departments}
    assert (hotlines["police"], hotlines["fire"], hotlines["ambulance"]) == ("110", "119", "120")
    assert hotlines["hotline_12345"] == "12345"


def test_cell_owners_explicit_and_by_territory(pudong: CityPack, city: CityMap) -> None:
    owners = collections.Counter(pudong.cell_owners.values())
    assert owners["transport"] > 100 and owners["greening"] > 10
    road_camera = next(d for d in pudong.devices if d.kind == "camera" and "road" in d.meta)
    assert city.owner_of_cell(city.cell_of(road_camera.lat, road_camera.lon)) == "transport"
    century_park = city.cell_of(31.217, 121.551)
    assert city.owner_of_cell(century_park) in ("greening", "transport")
    unlisted = next(d for d in pudong.devices if d.kind == "water_meter"
                    and city.cell_of(d.lat, d.lon) not in pudong.cell_owners)
    cell = city.cell_of(unlisted.lat, unlisted.lon)
    centre = city.resolve(*h3.cell_to_latlng(cell))
    assert city.owner_of_cell(cell) == f"station:{centre.village}"


def test_the_working_calendar(pudong: CityPack) -> None:
    calendar = pudong.calendar
    assert calendar.timezone == "Asia/Shanghai"
    assert [(p.start.isoformat(), p.end.isoformat()) for p in calendar.working_hours] == [
        ("09:00:00", "12:00:00"), ("13:30:00", "18:00:00")]
    assert {d.isoformat() for d in calendar.holidays} >= {"2025-01-01", "2025-10-01"}
    assert all(d.isoweekday() >= 6 for d in calendar.working_days)


def test_the_saved_pack_loads_back_equal(pudong: CityPack, pudong_dir: Path) -> None:
    assert load_pack(pudong_dir) == pudong
    assert pudong.info.language == "zh-CN"  # its SMS and notifications are Chinese


def test_same_seed_gives_the_same_bytes(pudong: CityPack, pudong_dir: Path,
                                        tmp_path: Path) -> None:
    seed = pudong.info.generator["seed"]
    save_pack(generate(seed), tmp_path)
    files = sorted(p.name for p in pudong_dir.iterdir())
    assert "devices.jsonl" in files and "areas.geojson" in files
    for name in files:
        assert (tmp_path / name).read_bytes() == (pudong_dir / name).read_bytes(), name


def test_another_seed_gives_another_city(pudong: CityPack, pudong_dir: Path,
                                         tmp_path: Path) -> None:
    save_pack(generate(pudong.info.generator["seed"] + 1), tmp_path)
    for name in ("areas.geojson", "devices.jsonl", "staff.jsonl", "cell_owners.json"):
        assert (tmp_path / name).read_bytes() != (pudong_dir / name).read_bytes(), name
