"""Travel times on a real street network: central Helsinki from OpenStreetMap (see
tests/data/osm/README.md for where the extract comes from and its licence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cityops.domain.nearest import StaffTable, haversine_m, nearest_candidates
from cityops.routing import StreetNetwork, rerank_by_travel_time
from cityops.routing.network import ACCESS_SPEED_MPS, MAX_SNAP_M
from cityops.routing.osm import WayRefs, read_drivable_ways
from cityops.routing.tags import is_drivable, oneway, parse_maxspeed, speed_kmh

PBF = Path(__file__).resolve().parents[1] / "data" / "osm" / "helsinki.osm.pbf"
# the bounding box in the file's header
SOUTH, WEST, NORTH, EAST = 60.1641550, 24.9351762, 60.1791130, 24.9534145
NOW = 1_700_000_000.0
KMH = 1 / 3.6

# Vuorikatu (OSM way 123063616) is a one-way residential street, maxspeed 30; these are two
# consecutive nodes of it, in the way's (driving) direction.
VUORIKATU_FROM, VUORIKATU_TO = 1373515230, 1373515229


@pytest.fixture(scope="module")
def ways() -> WayRefs:
    return read_drivable_ways(PBF)


@pytest.fixture(scope="module")
def net(ways) -> StreetNetwork:
    return StreetNetwork.from_ways(ways)


def node_point(net: StreetNetwork, i: int) -> tuple[float, float]:
    return float(net.lat[i]), float(net.lon[i])


def lonely_node(net: StreetNetwork) -> tuple[int, float]:
    """The node farthest from any other, and that gap in metres: a point less than half the
    gap away from it must snap to it."""
    gaps = np.array([np.sort(haversine_m(net.lat, net.lon, la, lo))[1]
                     for la, lo in zip(net.lat, net.lon, strict=True)])
    i = int(np.argmax(gaps))
    return i, float(gaps[i])


# --- tags ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "kmh"), [
    ("50", 50), ("30 mph", 48.28032), ("10 knots", 18.52), ("FI:urban", 50), ("FI:rural", 80),
    ("DE:zone30", 30), ("DE:zone:20", 20), ("walk", 6), ("50;30", 30), ("none", None),
    ("signals", None), ("0", None), ("", None), (None, None), ("fast", None),
])
def test_maxspeed_parsing(value, kmh):
    got = parse_maxspeed(value)
    assert got == (pytest.approx(kmh) if kmh is not None else None)


def test_speed_falls_back_to_the_highway_default():
    assert speed_kmh({"highway": "residential", "maxspeed": "40"}) == 40
    assert speed_kmh({"highway": "residential", "maxspeed": "signals"}) == 30
    assert speed_kmh({"highway": "living_street"}) == 10


@pytest.mark.parametrize(("tags", "expected"), [
    ({"highway": "residential"}, 0),
    ({"highway": "residential", "oneway": "yes"}, 1),
    ({"highway": "residential", "oneway": "-1"}, -1),
    ({"highway": "primary", "junction": "roundabout"}, 1),
    ({"highway": "primary", "junction": "roundabout", "oneway": "no"}, 0),
    ({"highway": "motorway"}, 1),
    ({"highway": "tertiary", "oneway": "reversible"}, None),
])
def test_oneway(tags, expected):
    assert oneway(tags) == expected


@pytest.mark.parametrize(("tags", "drivable"), [
    ({"highway": "residential"}, True),
    ({"highway": "service", "access": "private"}, False),
    ({"highway": "service", "access": "private", "motor_vehicle": "yes"}, True),
    ({"highway": "residential", "motor_vehicle": "no"}, False),
    ({"highway": "residential", "access": "destination"}, True),
    ({"highway": "footway"}, False),
    ({"highway": "cycleway"}, False),
    ({"highway": "construction"}, False),
    ({"highway": "pedestrian", "area": "yes"}, False),
])
def test_drivable(tags, drivable):
    assert is_drivable(tags) is drivable


# --- the graph -----------------------------------------------------------------------------

def test_the_extract_loads_into_a_connected_graph_inside_its_bounding_box(ways, net):
    assert len(ways.way_id) > 500 and 1000 < net.node_count < len(np.unique(ways.node))
    assert net.edge_count > net.node_count
    assert ((net.lat >= SOUTH) & (net.lat <= NORTH)).all()
    assert ((net.lon >= WEST) & (net.lon <= EAST)).all()
    # only the largest strongly connected part is kept: everyone can reach everyone
    assert np.isfinite(net.travel_times(*node_point(net, 0), net.lat, net.lon)).all()
    assert np.isfinite(net.travel_times_to(*node_point(net, 0), net.lat, net.lon)).all()
    # central Helsinki is signed 30-40 km/h, and nothing drivable is faster than 50
    assert 30 * KMH <= net.max_speed_mps <= 50 * KMH


def test_a_point_snaps_to_its_nearest_street_node(net):
    i, gap = lonely_node(net)
    assert gap > 20
    node, dist = net.snap(*node_point(net, i))
    assert node[0] == i and dist[0] == pytest.approx(0, abs=1e-3)
    lats = net.lat[i] + np.array([0.0, 10.0]) / 111_195.08
    node, dist = net.snap(lats, np.full(2, net.lon[i]))
    assert list(node) == [i, i] and dist[1] == pytest.approx(10.0, abs=0.01)


def test_a_route_across_the_centre_takes_a_plausible_time(net):
    a, b = net.snap([SOUTH + 0.002, NORTH - 0.002], [WEST + 0.003, EAST - 0.003])[0]
    (a_lat, a_lon), (b_lat, b_lon) = node_point(net, a), node_point(net, b)
    d = float(haversine_m(a_lat, a_lon, b_lat, b_lon))
    (t,) = net.travel_times(a_lat, a_lon, [b_lat], [b_lon])
    assert d > 1_000
    assert d / (130 * KMH) < t < d / (5 * KMH)
    assert t >= d / net.max_speed_mps  # no path beats the straight line at the top speed
    # one Dijkstra answers both directions consistently
    (back,) = net.travel_times_to(b_lat, b_lon, [a_lat], [a_lon])
    assert back == pytest.approx(t)


def test_many_destinations_in_one_call_including_the_origin_itself(net):
    lat, lon = node_point(net, 10)
    t = net.travel_times(lat, lon, net.lat[:50], net.lon[:50])
    assert t.shape == (50,) and t[10] == 0.0 and (t[np.arange(50) != 10] > 0).all()


def test_off_street_legs_are_walked_and_points_outside_the_extract_are_unreachable(net):
    i, _ = lonely_node(net)
    lat, lon = node_point(net, i)
    off = lat + 10 / 111_195.08  # 10 m north of the node, which it snaps back to
    (t,) = net.travel_times(lat, lon, [off], [lon])
    assert t == pytest.approx(10 / ACCESS_SPEED_MPS, rel=1e-3)

    far = NORTH + 2 * MAX_SNAP_M / 111_195.08  # a kilometre north of the extract
    assert np.isinf(net.travel_times(lat, lon, [far], [lon])).all()
    assert np.isinf(net.travel_times(far, lon, [lat, lat], [lon, lon])).all()


def test_a_one_way_street_is_driven_only_one_way(ways, net):
    u, v = net.node_of(VUORIKATU_FROM), net.node_of(VUORIKATU_TO)
    (u_lat, u_lon), (v_lat, v_lon) = node_point(net, u), node_point(net, v)
    segment_s = float(haversine_m(u_lat, u_lon, v_lat, v_lon)) / (30 * KMH)
    (forward,) = net.travel_times(u_lat, u_lon, [v_lat], [v_lon])
    (backward,) = net.travel_times(v_lat, v_lon, [u_lat], [u_lon])
    assert forward == pytest.approx(segment_s)
    assert backward > 60 * forward  # the way back goes round the block

    two_way = WayRefs(ways.node, ways.lat, ways.lon, ways.way, ways.way_id, ways.speed_kmh,
                      np.zeros_like(ways.oneway))
    (backward,) = StreetNetwork.from_ways(two_way).travel_times(v_lat, v_lon, [u_lat], [u_lon])
    assert backward == pytest.approx(segment_s)


def test_the_reader_keeps_the_tags_that_matter(ways):
    (w,) = np.flatnonzero(ways.way_id == 123063616)
    assert ways.oneway[w] == 1 and ways.speed_kmh[w] == 30
    refs = ways.node[ways.way == w]
    assert list(refs[2:4]) == [VUORIKATU_FROM, VUORIKATU_TO]


def test_an_extract_without_streets_is_refused():
    empty = WayRefs(*(np.zeros(0, dtype=np.int64) for _ in range(4)), np.zeros(0, dtype=np.int64),
                    np.zeros(0), np.zeros(0, dtype=np.int8))
    with pytest.raises(ValueError):
        StreetNetwork.from_ways(empty)


# --- re-ranking ----------------------------------------------------------------------------

def inverted_pair(net: StreetNetwork):
    """A target and two street nodes near it, A nearer by air and B nearer by road, found in
    the data: one Dijkstra from everywhere to the target, then the A with the worst detour."""
    (t,), _ = net.snap((SOUTH + NORTH) / 2, (WEST + EAST) / 2)
    target = node_point(net, t)
    road = net.travel_times_to(*target, net.lat, net.lon)
    air = haversine_m(net.lat, net.lon, *target)
    near = np.flatnonzero((air > 100) & (air < 400))
    a = near[np.argmax(road[near] / air[near])]
    faster = np.flatnonzero((air > air[a]) & (road < road[a] / 2))
    b = faster[np.argmin(air[faster])]
    return target, a, b, road


def test_reranking_by_travel_time_can_reverse_the_great_circle_order(net):
    target, a, b, road = inverted_pair(net)
    table = StaffTable(["a", "b"], net.lat[[a, b]], net.lon[[a, b]], [NOW, NOW],
                       ["available"] * 2, ["roads"] * 2, [(), ()])
    by_air = nearest_candidates(table, *target, "roads", now=NOW)
    assert [c.staff_id for c in by_air] == ["a", "b"]

    by_road = rerank_by_travel_time(net, by_air, *target)
    assert [c.staff_id for c in by_road] == ["b", "a"]
    assert [c.travel_s for c in by_road] == pytest.approx([road[b], road[a]])
    assert by_road[0].distance_m == by_air[1].distance_m  # the air distance is kept


def test_only_the_k_nearest_are_routed_and_the_unreachable_follow(net):
    target, a, b, _ = inverted_pair(net)
    outside = (NORTH + 0.02, (WEST + EAST) / 2)
    table = StaffTable(["a", "b", "far-out"], [net.lat[a], net.lat[b], outside[0]],
                       [net.lon[a], net.lon[b], outside[1]], [NOW] * 3, ["available"] * 3,
                       ["roads"] * 3, [()] * 3)
    by_air = nearest_candidates(table, *target, "roads", now=NOW)
    assert [c.staff_id for c in by_air] == ["a", "b", "far-out"]

    got = rerank_by_travel_time(net, by_air, *target, k=3)
    assert [c.staff_id for c in got] == ["b", "a", "far-out"]
    assert got[2].travel_s is None

    got = rerank_by_travel_time(net, by_air, *target, k=1)  # only "a" routed: order kept
    assert [c.staff_id for c in got] == ["a", "b", "far-out"]
    assert got[0].travel_s is not None and got[1].travel_s is None

    assert rerank_by_travel_time(net, [], *target) == []
