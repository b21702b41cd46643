"""CityMap on a hand-made city of squares, where every right answer is known."""

from __future__ import annotations

import h3
import numpy as np
import pytest
import shapely

from cityops.domain.city import Area, AreaCodes, Department, Device, Level
from cityops.domain.geo import CityMap, escalation_chain, local_authority, to_geojson_geometry

X0, Y0, S = 121.0, 31.0, 0.01  # a 2 x 2 block of 0.01-degree squares (about 1 km each)


def square(x0: float, y0: float, w: float = 1, h: float = 1) -> dict:
    box = shapely.box(X0 + x0 * S, Y0 + y0 * S, X0 + (x0 + w) * S, Y0 + (y0 + h) * S)
    return to_geojson_geometry(box)


def at(x: float, y: float) -> tuple[float, float]:
    """(lat, lon) of grid position x, y."""
    return Y0 + y * S, X0 + x * S


D, T1, T2 = "100000", "100000001", "100000002"
V11, V12, V21 = "100000001001", "100000001002", "100000002001"

AREAS = [
    Area(D, "Square District", Level.DISTRICT, None, square(0, 0, 2, 2)),
    Area(T1, "West Town", Level.TOWN, D, square(0, 0, 1, 2)),
    Area(T2, "East Town", Level.TOWN, D, square(1, 0, 1, 2)),
    Area(V11, "Southwest Village", Level.VILLAGE, T1, square(0, 0)),
    Area(V12, "Northwest Village", Level.VILLAGE, T1, square(0, 1)),
    Area(V21, "East Village", Level.VILLAGE, T2, square(1, 0, 1, 2)),
]


@pytest.fixture
def city() -> CityMap:
    # Given in shuffled order: the map must not depend on it.
    return CityMap(list(reversed(AREAS)), name="Square City",
                   departments=[Department("greening", "Parks", service_areas=[T2])])


def test_points_inside_resolve_to_their_village_and_its_parents(city: CityMap) -> None:
    assert city.resolve(*at(0.5, 0.5)) == AreaCodes(D, T1, V11)
    assert city.resolve(*at(0.5, 1.5)) == AreaCodes(D, T1, V12)
    assert city.resolve(*at(1.7, 1.9)) == AreaCodes(D, T2, V21)


def test_border_points_go_to_the_lowest_code(city: CityMap) -> None:
    assert city.resolve(*at(0.5, 1.0)).village == V11  # between the two western villages
    assert city.resolve(*at(1.0, 1.5)).village == V12  # on the town border
    assert city.resolve(*at(1.0, 1.0)).village == V11  # where all three meet
    assert city.resolve(*at(0.0, 0.0)).village == V11  # the city's own corner is inside


def test_points_outside_resolve_to_none(city: CityMap) -> None:
    assert city.resolve(*at(2.5, 0.5)) is None
    assert city.resolve(*at(-0.001, 1.0)) is None
    assert city.resolve(float("nan"), float("nan")) is None


def test_resolve_many_agrees_with_resolve(city: CityMap) -> None:
    rng = np.random.default_rng(1)
    xs, ys = rng.uniform(-0.5, 2.5, 2000), rng.uniform(-0.5, 2.5, 2000)
    xs[:3], ys[:3] = [1.0, 0.5, 2.0], [1.0, 1.0, 2.0]  # borders and the far corner
    lats, lons = Y0 + ys * S, X0 + xs * S
    many = city.resolve_many(lats, lons)
    assert many == [city.resolve(lat, lon) for lat, lon in zip(lats, lons, strict=True)]
    assert many[0].village == V11 and many[1].village == V11 and many[2].village == V21
    inside = (xs >= 0) & (xs <= 2) & (ys >= 0) & (ys <= 2)
    assert [m is not None for m in many] == inside.tolist()


def test_resolve_many_rejects_mismatched_arrays(city: CityMap) -> None:
    with pytest.raises(ValueError, match="equally long"):
        city.resolve_many(np.zeros(3), np.zeros(2))


def test_hierarchy_helpers(city: CityMap) -> None:
    assert [a.code for a in city.ancestors(V21)] == [D, T2]
    assert city.ancestors(D) == []
    assert [a.code for a in city.children(D)] == [T1, T2]
    assert [a.code for a in city.children(T1)] == [V11, V12]
    assert city.children(V11) == []
    assert city.level_of(T2) is Level.TOWN
    assert [a.code for a in city.areas_at("village")] == [V11, V12, V21]
    assert city.area(V12).name == "Northwest Village"
    with pytest.raises(KeyError, match="999999"):
        city.area("999999")


def test_inconsistent_hierarchies_are_refused() -> None:
    orphan = Area("100000003001", "Lost", Level.VILLAGE, "100000003", square(0, 0))
    with pytest.raises(ValueError, match="100000003001: parent '100000003' is not an area"):
        CityMap(AREAS + [orphan])
    wrong_prefix = Area("100000002002", "Misfiled", Level.VILLAGE, T1, square(0, 0))
    with pytest.raises(ValueError, match="does not start with its parent's code"):
        CityMap(AREAS + [wrong_prefix])
    skipping = Area("100000009009", "Skipper", Level.VILLAGE, D, square(0, 0))
    with pytest.raises(ValueError, match="one level up"):
        CityMap(AREAS + [skipping])
    with pytest.raises(ValueError, match="appears twice"):
        CityMap(AREAS + [AREAS[-1]])


def test_cells_at_the_city_resolution(city: CityMap) -> None:
    lat, lon = at(0.5, 0.5)
    assert city.cell_of(lat, lon) == h3.latlng_to_cell(lat, lon, 9)
    assert city.cells_of([lat, lat], [lon, lon + S]) == [
        h3.latlng_to_cell(lat, lon, 9), h3.latlng_to_cell(lat, lon + S, 9)]
    coarse = CityMap(AREAS, h3_resolution=7)
    assert h3.get_resolution(coarse.cell_of(lat, lon)) == 7


def test_cell_owner_is_explicit_or_falls_to_the_station_holding_the_territory() -> None:
    inside = h3.latlng_to_cell(*at(0.5, 1.5), 9)
    owned = h3.latlng_to_cell(*at(1.5, 0.5), 9)
    city = CityMap(AREAS, cell_owners={owned: "greening"})
    assert city.owner_of_cell(owned) == "greening"
    assert city.owner_of_cell(inside) == f"station:{V12}"


def hexagon(cell: str) -> shapely.Polygon:
    return shapely.Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(cell)])


def test_a_cell_centred_outside_goes_to_the_village_covering_most_of_it(city: CityMap) -> None:
    near_east_edge = h3.grid_disk(h3.latlng_to_cell(*at(2.0, 1.0), 9), 2)
    straddling = sorted(
        c for c in near_east_edge
        if city.resolve(*h3.cell_to_latlng(c)) is None and hexagon(c).intersects(city.geometry(D))
    )
    assert straddling, "the test needs a cell centred just outside the east edge"
    for cell in straddling:
        assert city.owner_of_cell(cell) == f"station:{V21}"


def test_cells_far_away_or_malformed_have_no_owner(city: CityMap) -> None:
    far = h3.latlng_to_cell(0.0, 0.0, 9)
    with pytest.raises(ValueError, match="outside Square City"):
        city.owner_of_cell(far)
    with pytest.raises(ValueError, match="not an H3 cell"):
        city.owner_of_cell("not-a-cell")


def test_local_authorities_and_escalation() -> None:
    assert local_authority(V11) == f"station:{V11}"
    assert local_authority(T1) == f"subcentre:{T1}"
    assert local_authority(D) == f"centre:{D}"
    assert escalation_chain(AreaCodes(D, T1, V11)) == [
        f"station:{V11}", f"subcentre:{T1}", f"centre:{D}"]


def test_departments_serving_a_place(city: CityMap) -> None:
    assert [d.code for d in city.departments_serving(AreaCodes(D, T2, V21))] == ["greening"]
    assert city.departments_serving(AreaCodes(D, T1, V11)) == []


def test_resolve_device_fills_areas_and_cell(city: CityMap) -> None:
    lat, lon = at(0.25, 1.75)
    device = Device("noise-000001", "noise", lat, lon, meta={"floor": 3})
    resolved = city.resolve_device(device)
    assert resolved.areas == AreaCodes(D, T1, V12)
    assert resolved.cell == h3.latlng_to_cell(lat, lon, 9)
    assert resolved.meta == {"floor": 3} and device.areas is None  # a copy, the input untouched


def test_resolve_device_outside_names_the_device_and_place(city: CityMap) -> None:
    with pytest.raises(ValueError, match=r"'noise-000009' at lat 30\.5, lon 120\.5 lies outside"):
        city.resolve_device(Device("noise-000009", "noise", 30.5, 120.5))


def test_resolve_devices_reports_failures_by_input_index(city: CityMap) -> None:
    devices = [
        Device("a", "noise", *at(0.5, 0.5)),
        Device("b", "noise", 0.0, 0.0),
        Device("c", "noise", *at(1.5, 1.5)),
        Device("d", "noise", float("nan"), 121.0),
        Device("e", "noise", 91.0, 121.0),
    ]
    resolved, errors = city.resolve_devices(devices)
    assert [d.id for d in resolved] == ["a", "c"]
    assert [d.areas.village for d in resolved] == [V11, V21]
    assert [i for i, _ in errors] == [1, 3, 4]
    assert "lies outside" in errors[0][1] and "invalid coordinates" in errors[1][1]


def test_a_city_without_villages_is_refused() -> None:
    with pytest.raises(ValueError, match="no villages"):
        CityMap(AREAS[:3])


def test_floating_point_slivers_along_borders_still_resolve(city: CityMap) -> None:
    lat, lon = at(1.5, 0.5)
    east_edge = X0 + 2 * S
    assert city.resolve(lat, east_edge + 1e-13).village == V21  # noise-sized: inside
    assert city.resolve(lat, east_edge + 1e-6) is None  # 10 cm out: outside
