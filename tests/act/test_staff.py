"""The staff board: positions from the latest GPS fixes, proposals by air, and by street
travel time on a real OSM extract when the city configures one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cityops.act.staff import NEVER_US, StaffBoard
from cityops.domain.city import Staff
from cityops.domain.kinds import MAX_CHANNELS

PBF = Path(__file__).parents[1] / "data" / "osm" / "helsinki.osm.pbf"
NOW = 1_800_000_000.0


def board(positions: dict[str, tuple[float, float]], *, network=None) -> StaffBoard:
    """Staff s-0.. carrying devices d-0..; `positions` gives some of them a fix at NOW."""
    staff = [Staff(f"s-{i}", f"P{i}", "roads", f"d-{i}", "990001001001") for i in range(4)]
    ts = np.full(4 * MAX_CHANNELS, NEVER_US, np.int64)
    value = np.full(4 * MAX_CHANNELS, np.nan)
    for sid, (lat, lon) in positions.items():
        i = int(sid.split("-")[1])
        ts[i * MAX_CHANNELS:i * MAX_CHANNELS + 2] = int(NOW * 1e6)
        value[i * MAX_CHANNELS:i * MAX_CHANNELS + 2] = (lat, lon)
    index = {f"d-{i}": i for i in range(4)}
    return StaffBoard(staff, index.get, lambda series: (ts[series], value[series]),
                      network=network)


def test_positions_come_from_the_latest_fix_and_nobody_without_one_is_proposed() -> None:
    b = board({"s-0": (60.170, 24.940), "s-2": (60.160, 24.930)})
    got = b.candidates(60.169, 24.941, "roads", NOW)
    assert [c.staff_id for c in got] == ["s-0", "s-2"]
    assert got[0].distance_m < got[1].distance_m
    b.set_status("s-0", "on_site")
    assert [c.staff_id for c in b.candidates(60.169, 24.941, "roads", NOW)] == ["s-2"]
    assert [p["id"] for p in b.positions()] == ["s-0", "s-2"]
    with pytest.raises(ValueError):
        b.set_status("s-2", "asleep")


def test_street_network_reranks_by_travel_time() -> None:
    from cityops.routing.network import StreetNetwork

    net = StreetNetwork.from_pbf(PBF)
    # Four people on the network's own nodes around the centre of the extract.
    rng = np.random.default_rng(3)
    nodes = rng.choice(net.node_count, 4, replace=False)
    positions = {f"s-{i}": (float(net.lat[n]), float(net.lon[n])) for i, n in enumerate(nodes)}
    target = (float(np.median(net.lat)), float(np.median(net.lon)))
    by_road = board(positions, network=net).candidates(*target, "roads", NOW)
    by_air = board(positions).candidates(*target, "roads", NOW)
    assert sorted(c.staff_id for c in by_road) == sorted(c.staff_id for c in by_air)
    times = [c.travel_s for c in by_road]
    assert all(t is not None and t > 0 for t in times)
    assert times == sorted(times)  # the proposal is the quickest to arrive, not the nearest
    assert all(c.travel_s is None for c in by_air)
