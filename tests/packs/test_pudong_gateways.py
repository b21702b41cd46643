"""The synthetic Pudong's gateways: every fixed sensor and camera reaches the platform through
one of its village's one to three gateways, the nearest; trackers and KPI series through none.
And the storm takes a village's gateways down with every device behind them."""

from __future__ import annotations

import collections
import re

import numpy as np

from cityops.domain.city import CityPack, Level
from cityops.domain.geo import CityMap
from cityops.packs.pudong import generate
from cityops.packs.pudong_sensors import DEVICES_PER_GATEWAY, MAX_GATEWAYS
from cityops.packs.tiling import KM_PER_DEG_LAT, KM_PER_DEG_LON_AT_31N
from cityops.sim.simulator import Simulator
from cityops.sim.storm import StormOptions

GATEWAY = re.compile(r"gw-(\d{12})-([123])")


def test_every_fixed_device_has_a_gateway_of_its_own_village(pudong: CityPack) -> None:
    city = CityMap.from_pack(pudong)
    fixed = [d for d in pudong.devices if d.kind not in ("gps", "kpi")]
    assert len(fixed) > 40_000
    assert all("gateway" not in d.meta for d in pudong.devices if d.kind in ("gps", "kpi"))
    where = city.resolve_many([d.lat for d in fixed], [d.lon for d in fixed])
    for device, place in zip(fixed, where, strict=True):
        found = GATEWAY.fullmatch(device.meta["gateway"])
        assert found, device
        assert place is not None and found.group(1) == place.village, device


def test_one_to_three_gateways_a_village_by_its_devices(pudong: CityPack) -> None:
    devices: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for d in pudong.devices:
        if "gateway" in d.meta:
            village = d.meta["gateway"][3:15]
            devices[village][d.meta["gateway"]] += 1
    villages = [a.code for a in pudong.areas if a.level is Level.VILLAGE]
    assert set(devices) == set(villages)
    counts = collections.Counter(len(g) for g in devices.values())
    assert set(counts) <= {1, 2, 3} and counts[1] and counts[2] and counts[3]
    for village, gateways in devices.items():
        total = sum(gateways.values())
        expected = min(MAX_GATEWAYS, 1 + (total - 1) // DEVICES_PER_GATEWAY)
        assert sorted(gateways) == [f"gw-{village}-{n}" for n in range(1, expected + 1)]


def test_each_device_uses_the_nearest_of_its_villages_gateways(pudong: CityPack) -> None:
    """Gateways sit among the devices they serve: a device is nearer the middle of its own
    gateway's devices than the middle of any other gateway's of the village (k-means)."""
    def km(d) -> np.ndarray:
        return np.array([d.lon * KM_PER_DEG_LON_AT_31N, d.lat * KM_PER_DEG_LAT])

    members: dict[str, list] = collections.defaultdict(list)
    for d in pudong.devices:
        if "gateway" in d.meta:
            members[d.meta["gateway"]].append(d)
    middle = {g: np.mean([km(d) for d in ds], axis=0)
              for g, ds in members.items()}
    by_village = collections.defaultdict(list)
    for g in members:
        by_village[g[3:15]].append(g)
    wrong = 0
    for gateways in by_village.values():
        if len(gateways) < 2:
            continue
        for g in gateways:
            for d in members[g]:
                here = km(d)
                mine = np.linalg.norm(here - middle[g])
                wrong += any(np.linalg.norm(here - middle[o]) < mine - 1e-9
                             for o in gateways if o != g)
    assert wrong == 0


def test_the_same_seed_gives_the_same_gateways(pudong: CityPack) -> None:
    again = generate(11)
    assert [d.meta.get("gateway") for d in again.devices] == \
        [d.meta.get("gateway") for d in pudong.devices]


def test_an_outage_takes_down_every_device_behind_the_villages_gateways(pudong: CityPack):
    sim = Simulator(pudong, seed=4, start_ts=1.75e9, storm=StormOptions(outages=3))
    storm = sim.storm
    assert storm is not None and not storm.skipped
    assert len({o.village for o in storm.outages}) == 3
    for outage in storm.outages:
        behind = sorted(d.id for d in pudong.devices
                        if d.meta.get("gateway", "").startswith(f"gw-{outage.village}-"))
        assert outage.gateways == sorted({f"gw-{outage.village}-{n}" for n in range(1, 4)}
                                         & {d.meta.get("gateway") for d in pudong.devices})
        assert sorted(outage.devices) == behind and outage.count == len(behind)
        assert outage.town == outage.village[:9]
        assert outage.end - outage.start == 210.0
