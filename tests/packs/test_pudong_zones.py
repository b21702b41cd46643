"""The synthetic Pudong's zones: forbidden zones, approved muck routes, fire lanes by cameras."""

from __future__ import annotations

import collections
from pathlib import Path

import shapely
from shapely.geometry import shape

from cityops.domain.city import CityPack
from cityops.domain.geo import geometry_of
from cityops.packs.format import load_pack


def test_zone_kinds_and_ids(pudong: CityPack) -> None:
    kinds = collections.Counter(z.kind for z in pudong.zones)
    assert kinds["muck_forbidden"] >= 5 and kinds["muck_route"] >= 20 and kinds["fire_lane"] >= 10
    ids = [z.id for z in pudong.zones]
    assert len(set(ids)) == len(ids)


def test_forbidden_zones_cover_the_core_and_some_close_by_day(pudong: CityPack) -> None:
    district = geometry_of(pudong.areas[0])
    forbidden = [z for z in pudong.zones if z.kind == "muck_forbidden"]
    lujiazui = next(z for z in forbidden if z.id == "forbidden-lujiazui")
    assert shape(lujiazui.geometry).contains(shapely.Point(121.507, 31.238))
    assert "hours" not in lujiazui.meta  # closed round the clock
    timed = [z for z in forbidden if z.meta.get("hours") == "07:00-22:00"]
    assert len(timed) >= 3
    assert {z.meta.get("site") for z in forbidden} >= {"school", "hospital"}
    for zone in forbidden:
        area = shape(zone.geometry)
        assert area.is_valid and district.buffer(1e-6).contains(area), zone.id


def test_every_muck_truck_has_one_route_starting_at_its_site(pudong: CityPack) -> None:
    devices = {d.id: d for d in pudong.devices}
    trucks = {v.device_id for v in pudong.vehicles if v.role == "muck_truck"}
    routes = [z for z in pudong.zones if z.kind == "muck_route"]
    listed = collections.Counter(v for z in routes for v in z.meta["vehicles"])
    assert set(listed) == trucks and set(listed.values()) == {1}
    for route in routes:
        line = shape(route.geometry)
        assert line.geom_type == "LineString" and line.length > 0.02  # a few km at least
        for device_id in route.meta["vehicles"]:
            truck = devices[device_id]
            assert truck.meta["site"] == route.meta["site"]
            # Parked within a few tens of metres of the gate the route starts from.
            assert line.distance(shapely.Point(truck.lon, truck.lat)) < 0.002


def test_fire_lanes_lie_by_the_cameras_that_watch_them(pudong: CityPack) -> None:
    devices = {d.id: d for d in pudong.devices}
    lanes = [z for z in pudong.zones if z.kind == "fire_lane"]
    watching = [d for d in pudong.devices
                if d.kind == "camera" and d.meta.get("site") == "fire_lane"]
    assert sorted(z.meta["camera"] for z in lanes) == sorted(d.id for d in watching)
    for lane in lanes:
        camera = devices[lane.meta["camera"]]
        polygon = shape(lane.geometry)
        assert polygon.distance(shapely.Point(camera.lon, camera.lat)) < 1e-5  # about a metre
        assert 100 < polygon.area * 110_574 * 95_420 < 500  # 40 m by 6 m, in m2


def test_zones_survive_the_saved_pack(pudong: CityPack, pudong_dir: Path) -> None:
    assert (pudong_dir / "zones.geojson").exists()
    assert load_pack(pudong_dir).zones == pudong.zones
