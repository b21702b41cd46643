from __future__ import annotations

import math

import h3
import msgspec

from cityops.domain.incidents.merge import merge_target, search_cells
from cityops.domain.incidents.model import Incident, Status
from cityops.domain.nearest import haversine_m


def case(i: str, lat: float, lon: float, at: float, status=Status.DISPATCHED) -> Incident:
    return Incident(id=i, category="c", kind="event", title="t", source="citizen", status=status,
                    lat=lat, lon=lon, reported_at=at, updated_at=at)


def test_the_nearest_open_recent_case_within_the_radius_wins() -> None:
    here = (40.7000, -73.9000)
    near = case("a", 40.7010, -73.9000, 100.0)  # about 111 m north
    nearer_but_closed = case("b", 40.7001, -73.9000, 100.0, Status.CLOSED)
    far = case("c", 40.7100, -73.9000, 100.0)  # about 1.1 km
    old = case("d", 40.7002, -73.9000, 100.0 - 90000)
    got = merge_target([far, near, nearer_but_closed, old], *here, 200.0, radius_m=200,
                       window_s=86400)
    assert got is near
    assert merge_target([far], *here, 200.0, radius_m=200, window_s=86400) is None
    # The window counts from the latest report, not the first.
    refreshed = msgspec.structs.replace(old, last_report_at=150.0)
    assert merge_target([near, refreshed], *here, 200.0, radius_m=200,
                        window_s=86400) is refreshed


def test_exactly_at_the_radius_still_merges() -> None:
    a = case("a", 40.7010, -73.9000, 0.0)
    d = float(haversine_m(40.7010, -73.9000, 40.7, -73.9))
    assert merge_target([a], 40.7, -73.9, 1.0, radius_m=d, window_s=10) is a
    assert merge_target([a], 40.7, -73.9, 1.0, radius_m=d - 0.01, window_s=10) is None


def test_search_cells_cover_every_point_within_the_radius() -> None:
    lat, lon = 31.2200, 121.5400
    cells = set(search_cells(lat, lon, 9, 200))
    for bearing in range(0, 360, 15):
        for metres in (50, 150, 199):
            dlat = metres * math.cos(math.radians(bearing)) / 111_320
            dlon = metres * math.sin(math.radians(bearing)) / (
                111_320 * math.cos(math.radians(lat)))
            assert h3.latlng_to_cell(lat + dlat, lon + dlon, 9) in cells
