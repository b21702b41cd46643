"""Proposing the nearest available qualified field person, and passing the offer on."""

from __future__ import annotations

import math
import time

import msgspec
import numpy as np
import pytest

from cityops.domain.nearest import (
    EARTH_RADIUS_M,
    MAX_POSITION_AGE_S,
    AssignmentOffer,
    Candidate,
    StaffPosition,
    StaffStatus,
    StaffTable,
    advance_offer,
    haversine_m,
    nearest_candidates,
    next_offer,
)

NOW = 1_700_000_000.0
TARGET = (31.2304, 121.4737)  # Pudong / Puxi riverside
# one metre of latitude in degrees, on the sphere the code uses
M_LAT = 1 / (EARTH_RADIUS_M * math.pi / 180)


def person(staff_id, north_m, *, status=StaffStatus.AVAILABLE, department="sanitation",
           skills=("garbage",), age_s=30.0) -> StaffPosition:
    return StaffPosition(staff_id=staff_id, lat=TARGET[0] + north_m * M_LAT, lon=TARGET[1],
                         at=NOW - age_s, status=status, department=department,
                         skills=frozenset(skills))


def ids(candidates) -> list[str]:
    return [c.staff_id for c in candidates]


def rank(positions, department="sanitation", **kw) -> list[Candidate]:
    return nearest_candidates(StaffTable.from_positions(positions), *TARGET, department,
                              now=NOW, **kw)


# --- distances -----------------------------------------------------------------------------

def test_one_degree_along_a_meridian_and_the_equator_is_r_times_pi_over_180():
    expected = EARTH_RADIUS_M * math.pi / 180  # 111 195.08 m
    assert haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(expected, abs=1e-6)
    assert haversine_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(111_195.08, abs=0.01)


def test_equator_to_pole_is_a_quarter_circle_and_antipodes_half():
    assert haversine_m(0.0, 17.0, 90.0, 17.0) == pytest.approx(math.pi / 2 * EARTH_RADIUS_M)
    assert haversine_m(10.0, 20.0, -10.0, -160.0) == pytest.approx(math.pi * EARTH_RADIUS_M)


def test_one_degree_of_longitude_at_60_north_is_half_as_long():
    # along the parallel the arc is cos(60) = 1/2 of the equator's, and the great circle a
    # hair shorter than the parallel: 55 597.0 m against 55 597.5 m
    d = float(haversine_m(60.0, 24.0, 60.0, 25.0))
    assert 55_596.5 < d < EARTH_RADIUS_M * math.pi / 180 / 2


def test_paris_to_london_agrees_with_the_spherical_law_of_cosines():
    # Notre-Dame to Trafalgar Square, the "about 344 km" of every atlas; the law of cosines is
    # a different formula for the same arc (and fine in double precision at this length)
    p1, l1, p2, l2 = map(math.radians, (48.8530, 2.3499, 51.5080, -0.1281))
    cosines = EARTH_RADIUS_M * math.acos(math.sin(p1) * math.sin(p2)
                                         + math.cos(p1) * math.cos(p2) * math.cos(l2 - l1))
    d = haversine_m(48.8530, 2.3499, 51.5080, -0.1281)
    assert d == pytest.approx(cosines, abs=0.01)
    assert d == pytest.approx(344_000, abs=500)


def test_distances_broadcast_over_arrays():
    d = haversine_m(np.array([0.0, 0.0, 1.0]), np.zeros(3), 0.0, 0.0)
    assert d.shape == (3,)
    assert d[0] == 0.0 and d[1] == 0.0 and d[2] > 0


# --- who is proposed -------------------------------------------------------------------------

def test_ranked_by_distance_with_distances_in_metres():
    got = rank([person("far", 900), person("near", 100), person("mid", 400)])
    assert ids(got) == ["near", "mid", "far"]
    assert [c.distance_m for c in got] == pytest.approx([100, 400, 900], abs=1e-6)
    assert got[0].lat == pytest.approx(TARGET[0] + 100 * M_LAT) and got[0].travel_s is None


def test_only_available_people_are_proposed():
    got = rank([person("a", 500), person("busy", 10, status=StaffStatus.EN_ROUTE),
                person("there", 20, status=StaffStatus.ON_SITE),
                person("home", 30, status="off_duty")])
    assert ids(got) == ["a"]


def test_only_the_required_department():
    staff = [person("s", 300), person("w", 10, department="water")]
    assert ids(rank(staff)) == ["s"]
    assert ids(rank(staff, department="water")) == ["w"]
    assert rank(staff, department="nobody") == []


def test_skill_is_optional_and_must_match_when_given():
    staff = [person("g", 100), person("ge", 200, skills=("garbage", "electric")),
             person("none", 50, skills=())]
    assert ids(rank(staff)) == ["none", "g", "ge"]
    assert ids(rank(staff, skill="electric")) == ["ge"]
    assert rank(staff, skill="welding") == []


def test_a_stale_position_is_not_proposed():
    staff = [person("fresh", 500, age_s=MAX_POSITION_AGE_S),
             person("stale", 10, age_s=MAX_POSITION_AGE_S + 1)]
    assert ids(rank(staff)) == ["fresh"]
    assert ids(rank(staff, max_age_s=3600)) == ["stale", "fresh"]
    assert ids(rank(staff, max_age_s=60)) == []


def test_a_person_without_a_position_is_not_proposed():
    nowhere = StaffPosition(staff_id="x", lat=math.nan, lon=math.nan, at=NOW,
                            status=StaffStatus.AVAILABLE, department="sanitation")
    untimed = msgspec.structs.replace(person("y", 10), at=math.nan)
    assert ids(rank([nowhere, untimed, person("z", 700)])) == ["z"]


def test_people_who_already_timed_out_on_the_order_are_excluded():
    staff = [person("a", 100), person("b", 200), person("c", 300)]
    assert ids(rank(staff, exclude={"a", "c", "unknown"})) == ["b"]


def test_equal_distances_are_ordered_by_id_whatever_the_input_order():
    east = StaffPosition("b-east", TARGET[0], TARGET[1] + 0.001, NOW, StaffStatus.AVAILABLE,
                         "sanitation")
    west = StaffPosition("a-west", TARGET[0], TARGET[1] - 0.001, NOW, StaffStatus.AVAILABLE,
                         "sanitation")
    for staff in ([east, west], [west, east]):
        got = rank(staff)
        assert got[0].distance_m == got[1].distance_m
        assert ids(got) == ["a-west", "b-east"]


def test_limit_keeps_the_nearest():
    assert ids(rank([person(f"p{i}", 100 * i) for i in range(1, 6)], limit=2)) == ["p1", "p2"]


def test_columns_must_line_up_and_ids_be_unique():
    with pytest.raises(ValueError):
        StaffTable(["a", "b"], [0.0], [0.0, 0.0], [NOW, NOW], ["available"] * 2, ["d"] * 2,
                   [(), ()])
    with pytest.raises(ValueError):
        StaffTable(["a", "a"], [0.0] * 2, [0.0] * 2, [NOW] * 2, ["available"] * 2, ["d"] * 2,
                   [(), ()])
    with pytest.raises(ValueError):
        StaffTable(["a"], [0.0], [0.0], [NOW], ["on_break"], ["d"], [()])


def test_an_empty_table_proposes_nobody():
    assert rank([]) == []


def test_ten_thousand_staff_match_a_plain_loop_and_rank_quickly():
    rng = np.random.default_rng(7)
    n = 10_000
    lat = TARGET[0] + rng.uniform(-0.2, 0.2, n)
    lon = TARGET[1] + rng.uniform(-0.2, 0.2, n)
    at = NOW - rng.uniform(0, 1200, n)
    status = rng.choice(list(StaffStatus), n)
    dept = rng.choice(["sanitation", "water", "roads"], n)
    skills = [set(rng.choice(["garbage", "electric", "pipes"], rng.integers(0, 3), replace=False))
              for _ in range(n)]
    staff_ids = [f"s{i:05d}" for i in range(n)]
    table = StaffTable(staff_ids, lat, lon, at, status, dept, skills)
    exclude = set(staff_ids[:50])

    start = time.perf_counter()
    got = nearest_candidates(table, *TARGET, "water", now=NOW, skill="pipes", exclude=exclude)
    elapsed = time.perf_counter() - start

    def gc(i):
        p1, p2 = math.radians(lat[i]), math.radians(TARGET[0])
        h = (math.sin((p2 - p1) / 2) ** 2
             + math.cos(p1) * math.cos(p2) * math.sin(math.radians(TARGET[1] - lon[i]) / 2) ** 2)
        return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))

    expected = sorted(
        (gc(i), staff_ids[i]) for i in range(n)
        if status[i] == "available" and dept[i] == "water" and "pipes" in skills[i]
        and NOW - at[i] <= MAX_POSITION_AGE_S and staff_ids[i] not in exclude)
    assert ids(got) == [sid for _, sid in expected]
    assert [c.distance_m for c in got] == pytest.approx([d for d, _ in expected], rel=1e-9)
    assert len(got) > 100
    assert elapsed < 0.25  # a few ms on a laptop; the bound only catches a per-row Python loop


# --- offering ------------------------------------------------------------------------------

CANDIDATES = [Candidate("a", 100.0, 0.0, 0.0), Candidate("b", 200.0, 0.0, 0.0, travel_s=40.0),
              Candidate("c", 300.0, 0.0, 0.0)]


def test_the_first_untried_candidate_gets_the_offer_with_a_deadline():
    offer = next_offer(CANDIDATES, set(), NOW, ack_timeout_s=90)
    assert offer == AssignmentOffer("a", offered_at=NOW, ack_due=NOW + 90, distance_m=100.0)
    offer = next_offer(CANDIDATES, {"a"}, NOW, ack_timeout_s=90)
    assert (offer.staff_id, offer.travel_s) == ("b", 40.0)
    assert next_offer(CANDIDATES, {"a", "b", "c"}, NOW) is None
    assert next_offer([], set(), NOW) is None


def test_the_timeout_must_be_positive():
    for bad in (0, -5, math.inf, math.nan):
        with pytest.raises(ValueError):
            next_offer(CANDIDATES, set(), NOW, ack_timeout_s=bad)


def test_an_offer_expires_at_its_deadline():
    offer = next_offer(CANDIDATES, set(), NOW, ack_timeout_s=60)
    assert not offer.expired(NOW + 59.9)
    assert offer.expired(NOW + 60)


def test_a_timed_out_offer_moves_to_the_next_person_until_nobody_is_left():
    offer, tried = advance_offer(None, CANDIDATES, (), NOW, ack_timeout_s=60)
    assert offer.staff_id == "a" and tried == frozenset()

    same, tried = advance_offer(offer, CANDIDATES, tried, NOW + 30, ack_timeout_s=60)
    assert same is offer and tried == frozenset()

    offer, tried = advance_offer(offer, CANDIDATES, tried, NOW + 60, ack_timeout_s=60)
    assert offer.staff_id == "b" and offer.offered_at == NOW + 60 and offer.ack_due == NOW + 120
    assert tried == {"a"}

    offer, tried = advance_offer(offer, CANDIDATES, tried, NOW + 125, ack_timeout_s=60)
    assert offer.staff_id == "c" and tried == {"a", "b"}

    offer, tried = advance_offer(offer, CANDIDATES, tried, NOW + 500, ack_timeout_s=60)
    assert offer is None and tried == {"a", "b", "c"}


def test_a_new_ranking_skips_everyone_who_already_timed_out():
    # positions move between timeouts: the order is re-ranked, the tried set still applies
    staff = [person("a", 100), person("b", 200), person("c", 300)]
    offer, tried = advance_offer(None, rank(staff), (), NOW)
    offer, tried = advance_offer(offer, rank(staff, exclude=tried), tried, offer.ack_due)
    assert offer.staff_id == "b"
    moved = [person("a", 100), person("b", 200), person("c", 50)]
    offer, tried = advance_offer(offer, rank(moved, exclude=tried), tried, offer.ack_due)
    assert offer.staff_id == "c" and tried == {"a", "b"}
