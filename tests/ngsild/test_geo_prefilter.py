"""Geo-queries over thousands of devices: the device view leaves out, before building any
entity, the devices registered outside the query's envelope (query.GeoQuery.envelope), and the
answer is the one the full check gives."""

from __future__ import annotations

import math

import msgspec
import pytest

from cityops.domain.access import Principal, Role, Scope
from cityops.domain.city import Vehicle
from cityops.ngsild import views
from cityops.ngsild.providers import EntityQuery, run_query
from cityops.ngsild.query import haversine_m, parse_geoquery
from cityops.ngsild.sdm import TERMS
from cityops.packs.grid import generate as grid_city

ADMIN = Principal("k-admin", Role.ADMIN, Scope())
NOISE = TERMS["NoiseLevelObserved"]


@pytest.mark.parametrize("georel, geometry, coordinates", [
    ("near;maxDistance==900", "Point", [121.45, 31.22]),
    ("near;maxDistance==1", "Point", [121.45, 31.22]),
    ("within", "Polygon", [[[121.40, 31.20], [121.47, 31.20], [121.47, 31.25],
                            [121.40, 31.20]]]),
    ("intersects", "LineString", [[121.40, 31.20], [121.50, 31.26]]),
    ("near;maxDistance==500", "Point", [-73.98, 40.75]),  # another city: nothing is near
])
def test_the_envelope_holds_every_point_that_can_match(georel, geometry, coordinates):
    geo = parse_geoquery(georel, geometry, coordinates)
    west, south, east, north = geo.envelope()
    # Points just inside the distance (or the shape) all lie in the envelope.
    for dlat in (-1, 0, 1):
        for dlon in (-1, 0, 1):
            if geometry != "Point":
                continue
            lat0, lon0 = coordinates[1], coordinates[0]
            d = geo.max_distance * 0.999
            lat = lat0 + dlat * d / 111_195.0
            lon = lon0 + dlon * d / (111_195.0 * math.cos(math.radians(lat0)))
            if haversine_m(lat0, lon0, lat, lon) <= geo.max_distance:
                assert west <= lon <= east and south <= lat <= north


def test_no_envelope_where_nothing_bounds_the_match():
    assert parse_geoquery("disjoint", "Point", [121.45, 31.22]).envelope() is None
    assert parse_geoquery("near;minDistance==100", "Point", [121.45, 31.22]).envelope() is None


@pytest.fixture
async def node(tmp_path, live_node):
    pack = grid_city(devices={"noise": 600, "gps": 2})
    pack = msgspec.structs.replace(pack, vehicles=[Vehicle("v-1", "沪A1", "muck_truck",
                                                           "gps-000000")])
    async with live_node(pack, tmp_path / "data") as live:
        yield live.node


@pytest.mark.parametrize("georel, geometry, coordinates", [
    ("near;maxDistance==800", "Point", None),
    ("within", "Polygon", None),
    ("disjoint", "Point", None),
])
async def test_a_geo_query_builds_only_the_devices_near_and_finds_what_the_full_check_does(
        node, monkeypatch, georel, geometry, coordinates):
    devices = node.registry.devices
    lat0, lon0 = devices[17].lat, devices[17].lon
    if geometry == "Point":
        coordinates = [lon0, lat0]
    else:
        d = 0.01
        coordinates = [[[lon0 - d, lat0 - d], [lon0 + d, lat0 - d], [lon0 + d, lat0 + d],
                        [lon0 - d, lat0 + d], [lon0 - d, lat0 - d]]]
    geo = parse_geoquery(georel, geometry, coordinates)
    built: list[str] = []
    real = views.DeviceView._build

    def counting(self, index, device, type_iri):
        built.append(device.id)
        return real(self, index, device, type_iri)

    monkeypatch.setattr(views.DeviceView, "_build", counting)
    from cityops.ngsild.providers import parse_types
    from cityops.ngsild.contexts import core

    query = EntityQuery(types=parse_types("NoiseLevelObserved", _sdm_terms()), geo=geo,
                        limit=1000, count=True)
    page, count = run_query(node, ADMIN, query, core())
    found = sorted(e["id"] for e in page)
    # What the full check gives: every noise meter tested one by one.
    expected = sorted(f"urn:ngsi-ld:NoiseLevelObserved:{d.id}" for d in devices
                      if d.kind == "noise" and geo.matches({"https://uri.etsi.org/ngsi-ld/"
                                                            "location": [{
                                                                "type": "GeoProperty",
                                                                "value": {"type": "Point",
                                                                          "coordinates": [
                                                                              d.lon, d.lat]}}]}))
    assert found == expected and count == len(expected)
    noise = sum(1 for d in devices if d.kind == "noise")
    if georel == "disjoint":
        assert len(set(built)) == noise  # nothing bounds it: every meter is looked at
    else:
        assert 0 < len(expected) <= len(set(built)) < noise / 4, (len(built), len(expected))


def _sdm_terms():
    from cityops.ngsild.contexts import DEFAULT_CONTEXT_URL, resolve

    return resolve(DEFAULT_CONTEXT_URL)
