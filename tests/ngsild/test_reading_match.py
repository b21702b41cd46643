"""Stored readings matched to NGSI-LD subscriptions (ngsild/reading_match.py): which devices'
entities a batch changed, who hears of them and in which form. Readings go through a real
node's ingestor; notifications reach a real receiver on loopback."""

from __future__ import annotations

import contextlib

import msgspec
import numpy as np

from cityops.domain.city import Vehicle
from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.readings import ReadingBatch
from cityops.history.state import SeriesState
from cityops.ingest.decode import Reading
from cityops.ngsild import subscriptions
from cityops.ngsild.contexts import DEFAULT_CONTEXT_URL
from cityops.ngsild.reading_match import changed_channels
from cityops.packs.grid import generate as grid_city
from tests.ngsild.ngsild_kit import receiver, subscription

SUBS = "/ngsi-ld/v1/subscriptions"
NOISE = "urn:ngsi-ld:NoiseLevelObserved:"


@contextlib.asynccontextmanager
async def world(live_node, tmp_path):
    pack = grid_city(devices={"noise": 12, "wind": 3, "gps": 1})
    pack = msgspec.structs.replace(pack, vehicles=[Vehicle("v-1", "P-1", "muck_truck",
                                                           "gps-000000")])
    async with live_node(pack, tmp_path / "d") as live, receiver() as server:
        async with live.client(await live.key("admin")) as admin:
            yield live, admin, server


async def subscribe(client, uri: str, *, context: str | None = DEFAULT_CONTEXT_URL,
                    **members) -> None:
    body = subscription(uri, **members)
    if context is None:
        r = await client.post(SUBS, json=body)
    else:
        r = await client.post(SUBS, json={**body, "@context": context},
                              headers={"Content-Type": "application/ld+json"})
    assert r.status_code == 201, r.text


async def store(live, *readings: Reading) -> None:
    result = await live.node.ingestor.ingest(list(enumerate(readings)), source="test")
    assert result.accepted == len(readings) and not result.rejected


async def settled(live, server, name: str, count: int) -> list[dict]:
    """Every entity notified on `name` once `count` notifications came and nothing is due."""
    await server.wait_for(name, count)
    await live.node.ngsild.subscriptions.notifier.idle()
    return [e for r in server.of(name) for e in r.json()["data"]]


def meters(live, kind: str = "noise") -> list[str]:
    return [d.id for d in live.node.registry.devices if d.kind == kind]


async def test_watched_attributes_are_held_against_the_channels_a_reading_carries(
        live_node, tmp_path):
    async with world(live_node, tmp_path) as (live, admin, server):
        await subscribe(admin, server.url("dir"), entities=[{"type": "WeatherObserved"}],
                        watchedAttributes=["windDirection"],
                        notification={"attributes": ["windDirection"], "format": "keyValues"})
        wind = meters(live, "wind")
        now = live.node.clock()
        await store(live, Reading(wind[0], now - 3, values={"speed": 5.0}))  # no direction
        await store(live, Reading(wind[1], now - 2, values={"speed": 3.0, "direction": 90.0}))
        got = await settled(live, server, "dir", 1)
    assert got == [{"id": f"urn:ngsi-ld:WeatherObserved:{wind[1]}", "type": "WeatherObserved",
                    "windDirection": 90.0}]


async def test_a_late_reading_changes_no_entity(live_node, tmp_path):
    async with world(live_node, tmp_path) as (live, admin, server):
        await subscribe(admin, server.url("n"), entities=[{"type": "NoiseLevelObserved"}],
                        notification={"attributes": ["LAeq"]})
        # Told of creations only: readings are never that.
        await subscribe(admin, server.url("created"), entities=[{"type": "NoiseLevelObserved"}],
                        notificationTrigger=["entityCreated"])
        a, b = meters(live)[:2]
        now = live.node.clock()
        await store(live, Reading(a, now - 5, value=60.0))
        await settled(live, server, "n", 1)
        await store(live, Reading(a, now - 50, value=99.0), Reading(b, now - 5, value=61.0))
        got = await settled(live, server, "n", 2)
    assert [(e["id"], e["LAeq"]["value"]) for e in got] == [(NOISE + a, 60.0),
                                                            (NOISE + b, 61.0)]
    assert got[0]["LAeq"]["unitCode"] == "2N" and set(got[0]) == {"id", "type", "LAeq"}
    assert server.of("created") == []


async def test_ids_and_id_patterns_select_devices_entities(live_node, tmp_path):
    async with world(live_node, tmp_path) as (live, admin, server):
        ids = meters(live)
        await subscribe(admin, server.url("sel"), entities=[
            {"type": "NoiseLevelObserved", "idPattern": f"{ids[1]}$|{ids[2]}$"},
            {"type": "Device", "id": f"urn:ngsi-ld:Device:{ids[5]}"}])
        now = live.node.clock()
        await store(live, *(Reading(i, now - 5, value=50.0 + n) for n, i in enumerate(ids[:8])))
        got = await settled(live, server, "sel", 1)
    assert sorted(e["id"] for e in got) == sorted(
        [NOISE + ids[1], NOISE + ids[2], f"urn:ngsi-ld:Device:{ids[5]}"])
    device = next(e for e in got if e["type"] == "Device")
    assert device["value"]["value"] == 55.0 and device["value"]["unitCode"] == "2N"


async def test_a_scoped_subscription_hears_only_the_devices_its_key_sees(live_node, tmp_path):
    async with world(live_node, tmp_path) as (live, admin, server):
        devices = [d for d in live.node.registry.devices if d.kind == "noise"]
        town = devices[0].areas.town
        async with live.client(await live.key("operator", town)) as operator:
            await subscribe(operator, server.url("town"),
                            entities=[{"type": "NoiseLevelObserved"}])
        now = live.node.clock()
        await store(live, *(Reading(d.id, now - 5, value=50.0) for d in devices))
        got = await settled(live, server, "town", 1)
    inside = sorted(NOISE + d.id for d in devices if d.areas.town == town)
    assert 0 < len(inside) < len(devices)
    assert sorted(e["id"] for e in got) == inside


async def test_a_subscription_in_the_core_context_alone_hears_readings(live_node, tmp_path):
    async with world(live_node, tmp_path) as (live, admin, server):
        # No SDM context: the core's @vocab names the type and attribute otherwise.
        await subscribe(admin, server.url("core"), context=None,
                        entities=[{"type": "NoiseLevelObserved"}],
                        notification={"attributes": ["LAeq"]})
        meter = meters(live)[3]
        await store(live, Reading(meter, live.node.clock() - 5, value=70.5))
        got = await settled(live, server, "core", 1)
    assert [e["id"] for e in got] == [NOISE + meter]
    [laeq] = [v for k, v in got[0].items() if k.endswith("LAeq")]
    assert laeq["value"] == 70.5


async def test_a_vehicles_move_is_a_change_of_its_location(live_node, tmp_path):
    async with world(live_node, tmp_path) as (live, admin, server):
        await subscribe(admin, server.url("moved"), entities=[{"type": "Vehicle"}],
                        watchedAttributes=["location"],
                        notification={"attributes": ["location"]})
        now = live.node.clock()
        await store(live, Reading("gps-000000", now - 6, values={"speed": 20.0}))
        await store(live, Reading("gps-000000", now - 5, values={"lat": 31.21, "lon": 121.51}))
        got = await settled(live, server, "moved", 1)
    assert [e["location"]["value"]["coordinates"] for e in got] == [[121.51, 31.21]]


async def test_a_big_batch_is_matched_in_parts(live_node, tmp_path, monkeypatch):
    monkeypatch.setattr(subscriptions, "MATCH_ROWS", 5)
    async with world(live_node, tmp_path) as (live, admin, server):
        await subscribe(admin, server.url("all"), entities=[{"type": "NoiseLevelObserved"}])
        ids = meters(live)
        now = live.node.clock()
        await store(live, *(Reading(i, now - 5, value=40.0) for i in ids))
        await server.wait_for("all")
        await live.node.ngsild.subscriptions.notifier.idle()
        got = [e for r in server.of("all") for e in r.json()["data"]]
    assert sorted(e["id"] for e in got) == sorted(NOISE + i for i in ids)


def test_changed_channels_are_those_whose_latest_the_batch_holds():
    state = SeriesState(4)
    stored = ReadingBatch(np.array([0, 1, 1, 2, 3], np.int32), np.array([0, 0, 2, 1, 0], np.int8),
                          np.array([10, 10, 10, 10, 30], np.int64), np.ones(5))
    state.commit(stored)
    state.commit(ReadingBatch(np.array([3], np.int32), np.array([0], np.int8),
                              np.array([40], np.int64), np.ones(1)))  # overtakes device 3
    devices, masks = changed_channels(stored, state)
    assert devices.tolist() == [0, 1, 2]
    assert masks.tolist() == [0b1, 0b101, 0b10]
    beyond = ReadingBatch(np.array([4 * MAX_CHANNELS], np.int32), np.zeros(1, np.int8),
                          np.array([5], np.int64), np.ones(1))
    assert changed_channels(beyond, state)[0].tolist() == []  # never stored here


async def test_batches_beyond_the_queue_fold_into_each_series_newest(live_node, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(subscriptions, "BATCH_QUEUE", 1)
    async with world(live_node, tmp_path) as (live, admin, server):
        await subscribe(admin, server.url("all"), entities=[{"type": "NoiseLevelObserved"}],
                        notification={"attributes": ["LAeq"], "format": "keyValues"})
        subs = live.node.ngsild.subscriptions
        ids = meters(live)[:4]
        now = live.node.clock()
        stored = []
        for n, meter in enumerate(ids):  # each batch stored, none matched yet
            await store(live, Reading(meter, now - 20 + n, value=40.0 + n),
                        Reading(ids[0], now - 20 + n, value=60.0 + n))
            stored.append(subs._batches.pop())  # held back from the matcher ...
        for batch in stored:
            subs.on_batch(batch)  # ... and offered at once, with no turn for it in between
        assert subs.batches_folded == 3 and len(subs._batches) == 1
        assert len(subs._batches[0]) == 4  # one row per meter: its newest
        got = await settled(live, server, "all", 1)
    assert sorted((e["id"], e["LAeq"]) for e in got) == sorted(
        [(NOISE + ids[0], 63.0)] + [(NOISE + m, 40.0 + n) for n, m in enumerate(ids) if n])


def test_newest_rows_keep_one_row_per_series():
    from cityops.ngsild.reading_match import newest_rows

    batch = ReadingBatch(np.array([1, 0, 1, 1], np.int32), np.array([0, 0, 1, 0], np.int8),
                         np.array([5, 7, 3, 9], np.int64), np.array([1.0, 2.0, 3.0, 4.0]))
    got = newest_rows(batch)
    assert sorted(zip(got.device.tolist(), got.channel.tolist(), got.ts.tolist(),
                      got.value.tolist())) == [(0, 0, 7, 2.0), (1, 0, 9, 4.0), (1, 1, 3, 3.0)]


async def test_measured_entities_read_column_wise_are_the_builders(live_node, tmp_path):
    from cityops.ngsild import sdm, views
    from cityops.ngsild.reading_match import Matcher

    pack = grid_city(devices={"bin_fill": 3, "wind": 3, "air_quality": 2, "gps": 1})
    pack = msgspec.structs.replace(pack, vehicles=[Vehicle("v-1", "P-1", "muck_truck",
                                                           "gps-000000")])
    async with live_node(pack, tmp_path / "d") as live:
        node = live.node
        now = node.clock()
        await store(live, Reading("bin_fill-000000", now - 5, value=33.3),
                    Reading("bin_fill-000001", now - 4, value=71.0),  # bin 2: never heard
                    Reading("wind-000000", now - 5, values={"speed": 3.0, "direction": 10.0}),
                    Reading("wind-000001", now - 5, values={"speed": 4.0}),
                    Reading("air_quality-000000", now - 5, values={"pm25": 9.0, "no2": 20.0}),
                    Reading("gps-000000", now - 5, values={"speed": 0.0, "heading": 90.0}))
        builder = views.builder(node)
        matcher = Matcher(node, builder)
        index = node.registry.index

        def both(kind, type_term, *terms):
            devices = np.array([i for d, i in index.items() if d.startswith(kind)], np.int64)
            attrs = frozenset(sdm.TERMS[t] for t in terms)
            type_iri = sdm.TERMS[type_term]
            latest = builder.latest(devices)
            one_by_one = [builder.entity(d, type_iri, lat, attrs)
                          for d, lat in zip(devices.tolist(), latest)]
            return matcher._measured(devices, type_iri, attrs), one_by_one

        for case in (("bin_fill", "WasteContainer", "fillingLevel"),
                     ("wind", "WeatherObserved", "windSpeed", "windDirection"),
                     ("wind", "WeatherObserved", "windDirection"),
                     ("air_quality", "AirQualityObserved", "pm25", "no2", "o3")):
            columns, builder_made = both(*case)
            assert columns == builder_made, case
        assert both("bin_fill", "WasteContainer", "fillingLevel")[0][0][
            sdm.TERMS["fillingLevel"]][0]["value"] == 0.333
        # Not the case: the builder's way is taken instead.
        assert both("wind", "WeatherObserved", "windSpeed", "location")[0] is None
        assert both("gps", "Vehicle", "speed")[0] is None  # a standing vehicle's heading
        assert both("bin_fill", "Device", "value")[0] is None
