"""Entities of mapped types fed through a real node as readings (ngsild/feed.py)."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from cityops.domain.access import Principal, Role, Scope
from cityops.ngsild import contexts, feed, sdm
from cityops.packs.grid import generate as grid_city
from tests.clock_kit import Clock

ADMIN = Principal("k-admin", Role.ADMIN, Scope())
DEVICE_KEY = Principal("k-dev", Role.DEVICE, Scope())
# 23:00 in Shanghai (the grid city's zone): the noise pack's night limit is in force.
NIGHT = dt.datetime(2024, 5, 29, 15, 0, tzinfo=dt.UTC).timestamp()


def _at(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def noise(device_id: str, laeq: float, t: float, **extra) -> dict:
    return {"id": f"urn:ngsi-ld:NoiseLevelObserved:{device_id}", "type": "NoiseLevelObserved",
            "LAeq": {"type": "Property", "value": laeq, "observedAt": _at(t)}, **extra}


@pytest.fixture
def terms():
    return contexts.resolve(contexts.DEFAULT_CONTEXT_URL)


class Fed:
    def __init__(self, node, clock: Clock) -> None:
        self.node, self.clock = node, clock


@pytest.fixture
async def night(tmp_path, live_node):
    """A node on the grid city at 23:00 local, its first noise meter in a residential
    community (where the night rule applies)."""
    pack = grid_city(devices={"noise": 4, "air_quality": 1, "gps": 1})
    pack.devices[0] = msgspec.structs.replace(pack.devices[0], meta={"setting": "residential"})
    clock = Clock(NIGHT)
    async with live_node(pack, tmp_path / "data", clock, detect_tick_s=3600.0) as live:
        yield Fed(live.node, clock)


async def test_a_night_upsert_above_the_limit_raises_the_noise_alert(night, terms):
    node, clock = night.node, night.clock
    meter = node.registry.devices[0].id
    for minute in range(12):
        clock.now = NIGHT + 60 * minute
        out = await feed.write_mapped(node, DEVICE_KEY, [noise(meter, 68.0, clock.now)],
                                      terms, mode="upsert")
        assert out == [(f"urn:ngsi-ld:NoiseLevelObserved:{meter}", None)]
        assert await node.detect.caught_up()
        await node.detect.tick()
    alerts = await node.store.list_alerts(active=True, limit=100)
    assert [(a.rule, a.subject) for a in alerts] == [("noise.night_residential", meter)]
    ts, value = node.history.state.latest(node.registry.index[meter])
    assert value[0] == 68.0
    assert node.metrics.accepted.labels("ngsild")._value.get() == 12


async def test_a_duplicate_is_a_duplicate(live, terms):
    node = live.node
    t = node.clock() - 30
    doc = noise("noise-000001", 61.0, t)
    assert await feed.write_mapped(node, DEVICE_KEY, [doc], terms, mode="upsert") == \
        [(doc["id"], None)]
    assert await feed.write_mapped(node, DEVICE_KEY, [doc], terms, mode="upsert") == \
        [(doc["id"], None)]
    assert node.metrics.accepted.labels("ngsild")._value.get() == 1
    assert node.metrics.duplicates.labels("ngsild")._value.get() == 1


async def test_bad_entities_fail_alone_with_the_reason(live, terms):
    node = live.node
    t = node.clock() - 10
    docs = [noise("noise-000001", 200.0, t),  # above the meter's 150 dB(A)
            noise("noise-000002", 60.0, t),
            noise("noise-000003", "loud", t),
            noise("noise-000004", 60.0, t + 3600),  # an hour ahead
            {"id": "urn:ngsi-ld:AirQualityObserved:air_quality-000000",
             "type": "AirQualityObserved", "pm25": 12.0, "pm10": -1.0},
            {"id": "not a uri", "type": "NoiseLevelObserved"},
            noise("noise-000005", 60.0, t) | {"LAeq": {"type": "Relationship", "object": "x"}},
            {"id": "urn:ngsi-ld:Alert:a1", "type": "Alert"}]
    out = await feed.write_mapped(node, ADMIN, docs, terms, mode="upsert")
    errors = {i: e for i, (_, e) in enumerate(out)}
    assert errors[1] is None
    assert "outside the valid range 0..150 dB(A)" in errors[0].detail
    assert errors[0].kind == "BadRequestData" and "noise-000001" in errors[0].detail
    assert "number" in errors[2].detail
    assert "observedAt" in errors[3].detail
    assert "pm10 -1" in errors[4].detail
    assert "`id` must be a URI" in errors[5].detail
    assert "Property" in errors[6].detail
    assert errors[7].kind == "OperationNotSupported" and "/api/v1/alerts" in errors[7].detail
    # The air-quality entity fails whole: its good pm25 is not stored either.
    index = node.registry.index["air_quality-000000"]
    assert node.history.state.latest(index)[0][0] == sdm.NEVER
    assert node.metrics.accepted.labels("ngsild")._value.get() == 1


async def test_create_and_update_know_what_exists(live, terms):
    node = live.node
    t = node.clock() - 10
    known = noise("noise-000001", 50.0, t)
    created = await feed.write_mapped(node, ADMIN, [known], terms, mode="create")
    assert created[0][1].kind == "AlreadyExists"
    fresh = noise("nm-new", 50.0, t)
    updated = await feed.write_mapped(node, ADMIN, [fresh], terms, mode="update")
    assert updated[0][1].kind == "ResourceNotFound"
    assert node.registry.get("nm-new") is None


async def test_an_unknown_id_is_registered_for_an_admin_and_refused_for_a_device_key(live,
                                                                                   terms):
    node = live.node
    t = node.clock() - 10
    place = node.registry.devices[0]
    where = {"location": {"type": "GeoProperty",
                          "value": {"type": "Point", "coordinates": [place.lon, place.lat]}}}
    refused = await feed.write_mapped(node, DEVICE_KEY, [noise("nm-7", 52.0, t, **where)],
                                      terms, mode="upsert")
    assert refused[0][1].status == 403 and "may not register" in refused[0][1].detail
    assert node.registry.get("nm-7") is None
    no_place = await feed.write_mapped(node, ADMIN, [noise("nm-7", 52.0, t)], terms,
                                       mode="create")
    assert "location" in no_place[0][1].detail
    out = await feed.write_mapped(node, ADMIN, [noise("nm-7", 52.0, t, **where)], terms,
                                  mode="create")
    assert out == [("urn:ngsi-ld:NoiseLevelObserved:nm-7", None)]
    device = node.registry.get("nm-7")
    assert device.kind == "noise" and device.areas == place.areas and device.cell
    assert node.history.state.latest(node.registry.index["nm-7"])[1][0] == 52.0
    stored = {d.id for d in await node.store.load_devices()}
    assert "nm-7" in stored
    # A type two kinds share: the attributes say which.
    wind = {"id": "urn:ngsi-ld:WeatherObserved:wind-9", "type": "WeatherObserved",
            "windSpeed": 4.0, "windDirection": 180.0, **where}
    assert (await feed.write_mapped(node, ADMIN, [wind], terms, mode="upsert"))[0][1] is None
    assert node.registry.get("wind-9").kind == "wind"


async def test_scoped_keys_write_only_inside_their_area(live, terms):
    node = live.node
    t = node.clock() - 10
    inside = node.registry.devices[0]
    outside = next(d for d in node.registry.devices
                   if d.areas.town != inside.areas.town and d.kind == "noise")
    who = Principal("k-op", Role.OPERATOR, Scope(area=inside.areas.town))
    out = await feed.write_mapped(node, who, [noise(inside.id, 50.0, t),
                                              noise(outside.id, 50.0, t)], terms, mode="upsert")
    assert out[0][1] is None
    assert out[1][1].status == 403 and "scope" in out[1][1].detail
    far = {"location": {"type": "GeoProperty",
                        "value": {"type": "Point", "coordinates": [outside.lon, outside.lat]}}}
    new = await feed.write_mapped(node, who, [noise("nm-far", 50.0, t, **far)], terms,
                                  mode="upsert")
    assert new[0][1].status == 403 and node.registry.get("nm-far") is None


async def test_other_forms_and_contexts_are_understood(live):
    node = live.node
    t = node.clock() - 10
    bare = contexts.resolve(None)  # no context at all: the core's @vocab
    docs = [{"id": "urn:ngsi-ld:NoiseLevelObserved:noise-000001", "type": "NoiseLevelObserved",
             "LAeq": 57.5},  # simplified
            {"id": "urn:ngsi-ld:Device:noise-000002", "type": "Device",
             "value": {"value": 58.5, "observedAt": _at(t)}},  # concise, a Device's value
            {"id": "urn:example:bin:x-1", "type": "WasteContainer",
             "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:noise-000003"},
             "fillingLevel": 0.5}]  # names a noise meter: not a bin
    out = await feed.write_mapped(node, DEVICE_KEY, docs, bare, mode="upsert")
    assert out[0][1] is None and out[1][1] is None
    assert "is a noise" in out[2][1].detail
    for device, value in (("noise-000001", 57.5), ("noise-000002", 58.5)):
        assert node.history.state.latest(node.registry.index[device])[1][0] == value
    # Expanded entities (terms None), as the core's batch operations hold them.
    expanded = {"id": "urn:ngsi-ld:WasteContainer:bin-1",
                "type": [sdm.TERMS["WasteContainer"]],
                sdm.TERMS["fillingLevel"]: [{"type": "Property", "value": 0.42}]}
    assert (await feed.write_mapped(node, ADMIN, [expanded], mode="update"))[0][1]. \
        kind == "ResourceNotFound"


async def test_a_key_that_may_not_write_readings_is_refused(live, terms):
    who = Principal("k-st", Role.STATION, Scope())
    out = await feed.write_mapped(live.node, who, [noise("noise-000001", 50.0, 0)], terms,
                                  mode="upsert")
    assert out[0][1].status == 403



async def test_the_common_entity_takes_the_short_path_to_the_same_reading(tmp_path, live_node,
                                                                          terms):
    pack = grid_city(devices={"noise": 12, "wind": 1, "bin_fill": 1, "gps": 1})
    async with live_node(pack, tmp_path / "d") as live:
        node = live.node
        t = node.clock() - 10
        ids = {d.kind: d.id for d in node.registry.devices}
        common = [noise(ids["noise"], 61.5, t),
                  noise(ids["noise"], 61, t),  # an integer
                  {"id": f"urn:ngsi-ld:WeatherObserved:{ids['wind']}", "type": "WeatherObserved",
                   "windDirection": {"type": "Property", "value": 270.0, "observedAt": _at(t)}},
                  {"id": f"urn:ngsi-ld:WasteContainer:{ids['bin_fill']}",
                   "type": "WasteContainer",  # a 0..1 ratio: percent in CityOps
                   "fillingLevel": {"value": 0.25, "observedAt": _at(t), "unitCode": "C62"}}]
        others = [noise(ids["noise"], 61.5, t, name={"type": "Property", "value": "x"}),
                  noise("nm-unknown", 61.5, t),
                  noise(ids["noise"], 151.0, t),  # beyond the meter's range
                  noise(ids["noise"], True, t),
                  noise(ids["noise"], 61.5, t + 3600),  # ahead of the clock
                  noise(ids["noise"], 61.5, t) | {"LAeq": {"type": "Property", "value": 61.5,
                                                           "observedAt": "yesterday"}},
                  noise(ids["noise"], 61.5, t) | {"LAeq": 61.5},  # no observedAt: now
                  {"id": f"urn:ngsi-ld:Device:{ids['noise']}", "type": "Device",
                   "value": {"value": 61.5, "observedAt": _at(t)}},
                  {"id": f"urn:ngsi-ld:Vehicle:{ids['gps']}", "type": "Vehicle",
                   "heading": {"value": -1, "observedAt": _at(t)}},
                  {"id": f"urn:ngsi-ld:NoiseLevelObserved:{ids['wind']}",
                   "type": "NoiseLevelObserved", "LAeq": 50.0}]  # a wind gauge
        call = feed._Call(node, DEVICE_KEY, terms.expand, "upsert")
        for n, doc in enumerate(common):
            assert call.fast(doc) == (doc["id"], feed._entity(call, n, doc)[1][0]), doc
        for doc in others:
            assert call.fast(doc) is None, doc
        assert feed._Call(node, DEVICE_KEY, terms.expand, "create").fast(common[0]) is None
        town = node.registry.devices[0].areas.town
        scoped = Principal("k-op", Role.OPERATOR, Scope(area=town))
        elsewhere = next(d for d in node.registry.devices if d.kind == "noise" and
                         d.areas.town != town)
        assert feed._Call(node, scoped, terms.expand, "upsert").fast(
            noise(elsewhere.id, 50.0, t)) is None
        fresh = feed._Call(node, DEVICE_KEY, terms.expand, "upsert")
        assert fresh.fast(common[3])[1].value == 25.0
        assert fresh.fast(common[2])[1].values == {"direction": 270.0}
