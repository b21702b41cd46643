"""The 15-minute elderly-care circle on a real street network: central Helsinki from
OpenStreetMap (tests/data/osm/README.md says where the extract comes from and its licence:
© OpenStreetMap contributors, ODbL). Service points and homes are placed by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cityops.analytics.care import CareModel
from cityops.analytics.walk import WALK_SPEED_MPS, WalkTimes, is_walkable
from cityops.domain.nearest import haversine_m
from cityops.packs.care import CareData, CarePoint, Community

PBF = Path(__file__).resolve().parents[1] / "data" / "osm" / "helsinki.osm.pbf"
SOUTH, WEST, NORTH, EAST = 60.1645, 24.9355, 60.1788, 24.9530  # inside the extract's box

# Either side of the railway yard north of the central station: Kaisaniemi (east) and the
# Töölönlahti shore (west) are 250 m apart as the crow flies, but the nearest crossings are
# far off, so the walk between them is nearly 1.8 km.
KAISANIEMI = (60.1766937, 24.9428206)
TOOLONLAHTI = (60.1765629, 24.9382993)
ESPLANADI_EAST = (60.1660, 24.9520)  # the south-east corner of the extract


@pytest.fixture(scope="module")
def walk() -> WalkTimes:
    return WalkTimes.from_pbf(PBF)


def scene(homes_lat, homes_lon, points: list[tuple[float, float]], per_home: int = 10
          ) -> CareData:
    """One community (code A), `per_home` residents of 60+ at each home."""
    n = len(homes_lat)
    return CareData([Community("999999001001", "A", "999999001", 10 * n, per_home * n)],
                    np.asarray(homes_lat, dtype=float), np.asarray(homes_lon, dtype=float),
                    np.zeros(n, dtype=np.int64), np.full(n, per_home, dtype=np.int64),
                    [CarePoint(f"p{i}", f"p{i}", la, lo, "999999001001")
                     for i, (la, lo) in enumerate(points)])


def test_walkable_ways() -> None:
    assert is_walkable({"highway": "footway"})
    assert is_walkable({"highway": "residential", "oneway": "yes"})
    assert is_walkable({"highway": "primary", "access": "no", "foot": "yes"})
    assert not is_walkable({"highway": "motorway"})
    assert not is_walkable({"highway": "footway", "foot": "no"})
    assert not is_walkable({"highway": "service", "access": "private"})
    assert not is_walkable({"highway": "footway", "level": "-1"})  # under a station
    assert not is_walkable({"highway": "trunk"})  # no sidewalk said: an expressway
    assert is_walkable({"highway": "trunk", "sidewalk": "both"})


def test_near_as_the_crow_flies_is_not_near_on_foot(walk) -> None:
    crow = haversine_m(*TOOLONLAHTI, *KAISANIEMI)
    assert 240 < crow < 260  # under four minutes in a straight line
    homes = scene([TOOLONLAHTI[0], 60.1745], [TOOLONLAHTI[1], 24.9425], [KAISANIEMI])
    model = CareModel(homes, walk)
    [far, near] = model.times
    assert far > 900  # the street network goes round the railway yard
    assert near < 400  # the home 250 m south, on the station's side, is close
    [beyond] = CareModel(homes, walk, limit_s=3600).times[:1]
    assert 1200 < beyond < 2400 and beyond * WALK_SPEED_MPS > 4 * crow
    [row] = model.coverage()
    assert (row.residents_60, row.covered_60, row.share) == (20, 10, 0.5)


def test_coverage_of_homes_across_the_centre_is_plausible(walk) -> None:
    rng = np.random.default_rng(7)
    lat, lon = rng.uniform(SOUTH, NORTH, 400), rng.uniform(WEST, EAST, 400)
    model = CareModel(scene(lat, lon, [ESPLANADI_EAST]), walk)
    [row] = model.coverage()
    crow = haversine_m(lat, lon, *ESPLANADI_EAST)
    by_crow = float(np.mean(crow / WALK_SPEED_MPS <= 900))
    assert row.share is not None and 0.3 < row.share < 0.75
    assert row.share < by_crow - 0.1  # streets are longer than straight lines ...
    assert np.all(model.times * WALK_SPEED_MPS >= crow * 0.99)  # ... never shorter
    # a second station in the opposite corner covers more, and keeps everyone covered before
    both = CareModel(scene(lat, lon, [ESPLANADI_EAST, (60.1785, 24.9360)]), walk)
    assert both.coverage()[0].covered_60 > row.covered_60
    assert np.all(both.times <= model.times + 1e-9)


def test_what_if_a_station_across_the_tracks(walk) -> None:
    model = CareModel(scene([TOOLONLAHTI[0], 60.1745], [TOOLONLAHTI[1], 24.9425],
                            [KAISANIEMI]), walk)
    before = model.coverage()[0]
    answer = model.what_if(TOOLONLAHTI[0] + 0.0003, TOOLONLAHTI[1], "999999001001")
    assert answer.reachable
    assert answer.newly_covered == 10
    [row] = answer.communities
    assert (row.covered_before, row.covered_after) == (before.covered_60, 20)
    assert (row.share_before, row.share_after) == (0.5, 1.0)
    assert model.coverage()[0].covered_60 == before.covered_60  # asking changes nothing
    # a point off the map (out in the gulf) reaches nobody
    off = model.what_if(60.10, 24.95, None)
    assert not off.reachable and off.newly_covered == 0


def test_gaps_layer_lists_the_uncovered_homes(walk) -> None:
    model = CareModel(scene([TOOLONLAHTI[0], 60.1745], [TOOLONLAHTI[1], 24.9425],
                            [KAISANIEMI]), walk)
    layer = model.gaps()
    [gap] = layer["features"]
    assert gap["geometry"]["coordinates"] == pytest.approx([TOOLONLAHTI[1], TOOLONLAHTI[0]])
    assert gap["properties"]["residents_60"] == 10
    assert gap["properties"]["walk_s"] is None  # beyond the 900 s the search went to
    assert model.gaps(within="999999002")["features"] == []
