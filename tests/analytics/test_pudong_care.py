"""The generated Pudong's elderly-care and sorting data are plausible and deterministic, and
its street grid gives coverage that neither covers everyone nor no one."""

from __future__ import annotations

import numpy as np
import pytest

from cityops.analytics.care import CareModel
from cityops.analytics.sorting import demo_inspections
from cityops.analytics.walk import WalkTimes
from cityops.domain.sorting import Community, Inspection, rank
from cityops.packs.care import PUDONG_RESIDENTS, care_data, street_grid
from cityops.packs.pudong import generate
from cityops.routing.network import StreetNetwork


@pytest.fixture(scope="module")
def pudong():
    return generate(1)


def test_residents_of_60_and_over_and_the_care_points(pudong) -> None:
    data = care_data(pudong)
    residents = sum(c.residents for c in data.communities)
    older = sum(c.residents_60 for c in data.communities)
    assert residents == pytest.approx(PUDONG_RESIDENTS, abs=len(data.communities))
    assert 0.24 < older / residents < 0.30
    assert len(data.communities) == 712
    # one service point per one or two communities, so some communities have none
    assert 712 / 2 < len(data.points) < 712
    # every community's homes add up to its figure, and stand inside it
    per = np.bincount(data.home_area, weights=data.home_60, minlength=712)
    assert per.tolist() == [c.residents_60 for c in data.communities]
    again = care_data(pudong)
    assert np.array_equal(again.home_lat, data.home_lat) and again.points == data.points


def test_coverage_on_the_generated_street_grid(pudong) -> None:
    model = CareModel(care_data(pudong), WalkTimes(StreetNetwork.from_ways(street_grid(pudong))))
    rows = model.coverage()
    shares = np.array([r.share for r in rows])
    total = sum(r.covered_60 for r in rows) / sum(r.residents_60 for r in rows)
    assert 0.4 < total < 0.9
    assert (shares == 0).sum() > 10 and (shares == 1).sum() > 10  # gaps, and full circles
    assert [r.area for r in model.coverage("310115001")] == [
        r.area for r in rows if r.area.startswith("310115001")]


def test_demo_inspections_look_like_a_real_city(pudong) -> None:
    codes = sorted(a.code for a in pudong.areas if len(a.code) == 12)
    end = 1_780_000_000.0
    made = demo_inspections(codes, seed=1, end=end, days=28)
    assert all(end - 28 * 86400 <= i.at < end for i in made)
    streams = {s: sum(i.stream == s for i in made) for s in ("wet", "dry", "recyclable",
                                                             "hazardous")}
    assert streams["hazardous"] < min(streams["wet"], streams["dry"], streams["recyclable"]) / 2
    rows, towns = rank([Community(c, c, c[:9]) for c in codes],
                       [Inspection(i.area, i.stream, i.checked, i.correct, i.at) for i in made
                        if i.at >= end - 7 * 86400], [])
    acc = np.array([r.accuracy for r in rows if r.accuracy is not None])
    assert 0.9 < np.median(acc) < 0.99
    assert 0.6 < np.mean((acc >= 0.93) & (acc <= 0.995))  # most sort 93-99 % right
    assert 0.01 < np.mean(acc < 0.9) < 0.12  # a few below the target
    assert all(t.accuracy is not None for t in towns)
