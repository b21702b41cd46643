"""The temporal API over HTTP on a live node: device-backed entities answer from the readings
history; every parameter and every error it names."""

from __future__ import annotations

import datetime as dt

import pytest

from cityops.ngsild import PREFIX
from cityops.ngsild import temporal as tp
from cityops.ngsild.contexts import DEFAULT_CONTEXT_URL

TEMPORAL = PREFIX + "/temporal/entities"
NOISE = "urn:ngsi-ld:NoiseLevelObserved:noise-000000"
OTHER = "urn:ngsi-ld:NoiseLevelObserved:noise-000001"
AIR = "urn:ngsi-ld:AirQualityObserved:air_quality-000000"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
SDM_LINK = (f'<http://cityops.test{DEFAULT_CONTEXT_URL}>; '
            'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"')
# Readings a minute apart, from an hour ago: 12:00:00 is the first in these tests' words.
START = (int(dt.datetime.now(dt.UTC).timestamp()) // 3600 - 2) * 3600


def at(minutes: float) -> str:
    return tp.iso(int((START + minutes * 60) * 1_000_000))


async def send(live, readings):
    key = await live.key("device")
    async with live.client(key) as c:
        r = await c.post("/api/v1/readings", json=readings)
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == len(readings), r.text


@pytest.fixture
async def history(live):
    """noise-000000: 60, 61 ... 69 dB at minutes 0..9; noise-000001: 40 at minute 0;
    air_quality-000000: pm25 and pm10 at minutes 0 and 70."""
    await send(live, [{"device_id": "noise-000000", "ts": START + 60 * m, "value": 60.0 + m}
                      for m in range(10)])
    await send(live, [{"device_id": "noise-000001", "ts": START, "value": 40.0}])
    await send(live, [{"device_id": "air_quality-000000", "ts": START + 60 * m,
                       "values": {"pm25": 10.0 + m, "pm10": 20.0 + m}} for m in (0, 70)])
    return live


async def get(live, path, key=None, **params):
    secret = key or await live.key("operator")
    async with live.client(secret) as c:
        return await c.get(path, params=params, headers={"Link": SDM_LINK})


def problem(r, kind, status, *names):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == ERRORS + kind, body
    assert body["title"] and body["detail"] and body["title"] != body["detail"]
    for name in names:
        assert name in body["detail"], body
    return body


async def test_an_entitys_readings_are_its_instances_oldest_first(history):
    r = await get(history, f"{TEMPORAL}/{NOISE}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == NOISE and body["type"] == "NoiseLevelObserved"
    laeq = body["LAeq"]
    assert [i["value"] for i in laeq] == [60.0 + m for m in range(10)]
    assert [i["observedAt"] for i in laeq] == [at(m) for m in range(10)]
    assert {i["unitCode"] for i in laeq} == {"2N"} and {i["type"] for i in laeq} == {"Property"}
    assert len({i["instanceId"] for i in laeq}) == 10
    # The location has no history: its current instance stands for it.
    assert body["location"][0]["value"]["type"] == "Point"
    assert "Link" in r.headers


async def test_a_devices_value_is_its_one_channels_history(history):
    r = await get(history, f"{TEMPORAL}/urn:ngsi-ld:Device:noise-000000", lastN="2",
                  attrs="value")
    assert r.status_code == 200, r.text
    assert [(i["value"], i["observedAt"]) for i in r.json()["value"]] == [(68.0, at(8)),
                                                                          (69.0, at(9))]
    # Several channels make the Device's value a text: no history, the current one stands.
    air = await get(history, f"{TEMPORAL}/urn:ngsi-ld:Device:air_quality-000000",
                    attrs="value")
    assert air.status_code == 200, r.text
    assert [i["observedAt"] for i in air.json()["value"]] == [at(70)]


async def test_timerel_bounds_are_the_specs(history):
    after = await get(history, f"{TEMPORAL}/{NOISE}", timerel="after", timeAt=at(7))
    assert [i["observedAt"] for i in after.json()["LAeq"]] == [at(7), at(8), at(9)]
    before = await get(history, f"{TEMPORAL}/{NOISE}", timerel="before", timeAt=at(2))
    assert [i["observedAt"] for i in before.json()["LAeq"]] == [at(0), at(1)]
    between = await get(history, f"{TEMPORAL}/{NOISE}", timerel="between", timeAt=at(3),
                        endTimeAt=at(5))
    assert [i["value"] for i in between.json()["LAeq"]] == [63.0, 64.0]
    # A window with nothing in it answers the attribute with no instances (GS CIM 014 020_14).
    empty = await get(history, f"{TEMPORAL}/{NOISE}", timerel="after", timeAt=at(100))
    assert empty.status_code == 200 and empty.json()["LAeq"] == []


async def test_last_n_gives_the_newest_oldest_first(history):
    r = await get(history, f"{TEMPORAL}/{NOISE}", lastN="3")
    assert [i["value"] for i in r.json()["LAeq"]] == [67.0, 68.0, 69.0]
    r = await get(history, f"{TEMPORAL}/{NOISE}", lastN="2", timerel="before", timeAt=at(5))
    assert [i["value"] for i in r.json()["LAeq"]] == [63.0, 64.0]


async def test_the_simplified_representation(history):
    r = await get(history, f"{TEMPORAL}/{NOISE}", options="temporalValues", timerel="before",
                  timeAt=at(2))
    assert r.json()["LAeq"] == {"type": "Property", "values": [[60.0, at(0)], [61.0, at(1)]]}
    same = await get(history, f"{TEMPORAL}/{NOISE}", format="temporalValues", timerel="before",
                     timeAt=at(2))
    assert same.json()["LAeq"] == r.json()["LAeq"]


async def test_aggregated_values_by_period(history):
    r = await get(history, f"{TEMPORAL}/{NOISE}", options="aggregatedValues",
                  aggrMethods="avg,max,totalCount", aggrPeriodDuration="PT5M",
                  timerel="after", timeAt=at(0))
    assert r.status_code == 200, r.text
    laeq = r.json()["LAeq"]
    assert laeq["avg"] == [[62.0, at(0), at(5)], [67.0, at(5), at(10)]]
    assert laeq["max"] == [[64.0, at(0), at(5)], [69.0, at(5), at(10)]]
    assert laeq["totalCount"] == [[5, at(0), at(5)], [5, at(5), at(10)]]
    assert "location" not in r.json()  # nothing over time to aggregate
    whole = await get(history, f"{TEMPORAL}/{NOISE}", options="aggregatedValues",
                      aggrMethods="sum,min", timerel="between", timeAt=at(0), endTimeAt=at(60))
    assert whole.json()["LAeq"]["sum"] == [[645.0, at(0), at(60)]]
    assert whole.json()["LAeq"]["min"] == [[60.0, at(0), at(60)]]
    last = await get(history, f"{TEMPORAL}/{NOISE}", options="aggregatedValues",
                     aggrMethods="avg", aggrPeriodDuration="PT1M", lastN="2")
    assert last.json()["LAeq"]["avg"] == [[68.0, at(8), at(9)], [69.0, at(9), at(10)]]


async def test_attrs_picks_channels_of_a_multichannel_device(history):
    r = await get(history, f"{TEMPORAL}/{AIR}", attrs="pm25")
    body = r.json()
    assert [i["value"] for i in body["pm25"]] == [10.0, 80.0]
    assert "pm10" not in body and "location" not in body
    both = (await get(history, f"{TEMPORAL}/{AIR}")).json()
    assert [i["value"] for i in both["pm10"]] == [20.0, 90.0]
    assert {i["unitCode"] for i in both["pm10"]} == {"GQ"}
    missing = await get(history, f"{TEMPORAL}/{AIR}", attrs="LAeq")
    problem(missing, "ResourceNotFound", 404, "attrs")


async def test_query_by_type_pages_and_counts(history):
    r = await get(history, TEMPORAL, type="NoiseLevelObserved", limit="2", count="true",
                  timerel="before", timeAt=at(1))
    assert r.status_code == 200, r.text
    assert r.headers["NGSILD-Results-Count"] == "20"
    page = r.json()
    assert [e["id"] for e in page] == [NOISE, OTHER]
    assert page[0]["LAeq"][0]["value"] == 60.0 and page[1]["LAeq"][0]["value"] == 40.0
    by_id = await get(history, TEMPORAL, type="NoiseLevelObserved", id=OTHER)
    assert [e["id"] for e in by_id.json()] == [OTHER]
    pattern = await get(history, TEMPORAL, type="NoiseLevelObserved", idPattern=".*-00000[01]$")
    assert {e["id"] for e in pattern.json()} == {NOISE, OTHER}


async def test_query_by_georel_and_q(history):
    node = history.node
    device = node.registry.get("noise-000000")
    near = await get(history, TEMPORAL, type="NoiseLevelObserved", georel="near;maxDistance==1",
                     geometry="Point", coordinates=f"[{device.lon},{device.lat}]")
    assert [e["id"] for e in near.json()] == [NOISE]
    loud = await get(history, TEMPORAL, type="NoiseLevelObserved", q="LAeq>65")
    assert [e["id"] for e in loud.json()] == [NOISE]


async def test_a_cut_history_is_partial_content_with_its_range(history, monkeypatch):
    monkeypatch.setattr(tp, "INSTANCE_CAP", 4)
    r = await get(history, f"{TEMPORAL}/{NOISE}", timerel="after", timeAt=at(0))
    assert r.status_code == 206, r.text
    assert [i["value"] for i in r.json()["LAeq"]] == [60.0, 61.0, 62.0, 63.0]
    assert r.headers["Content-Range"] == f"date-time {at(0)}-{at(3)}/*"
    # lastN past the cap: the newest that fit, from the window's end backwards.
    r = await get(history, f"{TEMPORAL}/{NOISE}", lastN="6", timerel="before", timeAt=at(10))
    assert r.status_code == 206
    assert [i["value"] for i in r.json()["LAeq"]] == [66.0, 67.0, 68.0, 69.0]
    assert r.headers["Content-Range"] == f"date-time {at(10)}-{at(6)}/6"
    # lastN within the cap is what was asked for, not a cut.
    whole = await get(history, f"{TEMPORAL}/{NOISE}", lastN="3")
    assert whole.status_code == 200 and "Content-Range" not in whole.headers


@pytest.mark.parametrize("params, names", [
    ({"timerel": "during", "timeAt": "2020-08-01T12:00:00Z"}, ["timerel"]),
    ({"timerel": "after"}, ["timeAt"]),
    ({"timerel": "after", "timeAt": "2020-08-01"}, ["timeAt"]),
    ({"timerel": "between", "timeAt": "2020-08-01T12:00:00Z"}, ["endTimeAt"]),
    ({"lastN": "0"}, ["lastN"]),
    ({"lastN": "2.5"}, ["lastN"]),
    ({"timeproperty": "whenever"}, ["timeproperty"]),
    ({"options": "aggregatedValues"}, ["aggrMethods"]),
    ({"options": "aggregatedValues", "aggrMethods": "median"}, ["aggrMethods"]),
    ({"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "1h"},
     ["aggrPeriodDuration"]),
    ({"options": "fancy"}, ["options"]),
    ({"limit": "-1"}, ["limit"]),
    ({"count": "maybe"}, ["count"]),
])
async def test_each_bad_parameter_is_named(live, params, names):
    r = await get(live, TEMPORAL, type="NoiseLevelObserved", **params)
    problem(r, "BadRequestData", 400, *names)


async def test_a_query_needs_a_selection_and_a_valid_id(live):
    r = await get(live, TEMPORAL, timerel="after", timeAt="2020-07-01T12:05:00Z", id=NOISE)
    problem(r, "BadRequestData", 400, "type")
    problem(await get(live, f"{TEMPORAL}/not a uri"), "BadRequestData", 400, "entityId")
    problem(await get(live, f"{TEMPORAL}/urn:ngsi-ld:NoiseLevelObserved:nowhere"),
            "ResourceNotFound", 404)


async def test_writes_are_not_supported(live):
    key = await live.key("admin")
    async with live.client(key) as c:
        for method, path in (("POST", TEMPORAL), ("PATCH", f"{TEMPORAL}/{NOISE}"),
                             ("DELETE", f"{TEMPORAL}/{NOISE}"),
                             ("POST", f"{TEMPORAL}/{NOISE}/attrs")):
            r = await c.request(method, path, json={"id": NOISE, "type": "NoiseLevelObserved"})
            body = problem(r, "OperationNotSupported", 422, "entityOperations/upsert")
            assert body["status"] == 422


async def test_a_scoped_key_sees_only_its_areas_entities(history):
    node = history.node
    town = node.registry.get("noise-000000").areas.town
    other = next(d for d in node.registry.devices
                 if d.kind == "noise" and d.areas.town != town)
    scoped = await history.key("operator", scope=town)
    mine = await get(history, f"{TEMPORAL}/{NOISE}", key=scoped)
    assert mine.status_code == 200
    theirs = await get(history, f"{TEMPORAL}/urn:ngsi-ld:NoiseLevelObserved:{other.id}",
                       key=scoped)
    problem(theirs, "ResourceNotFound", 404)
    listed = await get(history, TEMPORAL, key=scoped, type="NoiseLevelObserved", limit="100")
    ids = [e["id"] for e in listed.json()]
    assert NOISE in ids and f"urn:ngsi-ld:NoiseLevelObserved:{other.id}" not in ids


async def test_a_vehicles_track_is_its_location_history(tmp_path, live_node, grid_pack):
    import msgspec

    from cityops.domain.city import Vehicle

    truck = Vehicle("truck-1", "沪A12345", "muck_truck", "gps-000000")
    pack = msgspec.structs.replace(grid_pack, vehicles=[truck])
    async with live_node(pack, tmp_path / "d") as live:
        await send(live, [{"device_id": "gps-000000", "ts": START + 60 * m,
                           "values": {"lat": 31.2 + m / 100, "lon": 121.5, "speed": 20.0 + m,
                                      "heading": 90.0}} for m in range(3)])
        entity = f"{TEMPORAL}/urn:ngsi-ld:Vehicle:gps-000000"
        body = (await get(live, entity)).json()
        assert [i["value"]["coordinates"] for i in body["location"]] == [
            [121.5, 31.2], [121.5, 31.21], [121.5, 31.22]]
        assert {i["type"] for i in body["location"]} == {"GeoProperty"}
        assert [i["value"] for i in body["speed"]] == [20.0, 21.0, 22.0]
        simple = (await get(live, entity, options="temporalValues", attrs="location")).json()
        assert simple["location"]["values"][0] == [{"type": "Point",
                                                    "coordinates": [121.5, 31.2]}, at(0)]
        assert "speed" not in simple
        aggregated = (await get(live, entity, options="aggregatedValues",
                                aggrMethods="max")).json()
        assert aggregated["speed"]["max"][0][0] == 22.0 and "location" not in aggregated


@pytest.mark.parametrize(("method", "path"), [
    ("GET", TEMPORAL), ("GET", f"{TEMPORAL}/{NOISE}"),
    ("GET", f"{TEMPORAL}/urn:ngsi-ld:NoiseLevelObserved:nowhere"), ("POST", TEMPORAL),
])
async def test_a_query_parameter_the_api_does_not_have_is_invalid(live, method, path):
    # Clause 6.3.20: refused as such before anything is looked up (never 404 or 422).
    async with live.client(await live.key("admin")) as c:
        r = await c.request(method, path, params={"invalidParams": "invalidValue",
                                                  "type": "NoiseLevelObserved"},
                            headers={"Link": SDM_LINK},
                            json={"id": NOISE, "type": "NoiseLevelObserved"}
                            if method == "POST" else None)
    problem(r, "InvalidRequest", 400, "invalidParams")


@pytest.mark.parametrize("accept", ["application/xml", "application/geo+json"])
async def test_an_answer_the_client_does_not_accept_is_406(history, accept):
    # GeoJSON is an answer of entity retrieval and query only, not of the temporal API.
    async with history.client(await history.key("operator")) as c:
        for path, params in ((TEMPORAL, {"type": "NoiseLevelObserved", "timerel": "after",
                                         "timeAt": "2020-08-01T12:05:00Z"}),
                             (f"{TEMPORAL}/{NOISE}", {}),
                             (f"{TEMPORAL}/urn:ngsi-ld:NoiseLevelObserved:nowhere", {})):
            r = await c.get(path, params=params, headers={"Link": SDM_LINK, "Accept": accept})
            problem(r, "InvalidRequest", 406, "Accept")


async def test_the_answer_follows_the_accept_header(history):
    async with history.client(await history.key("operator")) as c:
        r = await c.get(f"{TEMPORAL}/{NOISE}", headers={
            "Link": SDM_LINK, "Accept": "application/xml;q=0.9, application/json;q=0.5"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert "link" in r.headers
        r = await c.get(f"{TEMPORAL}/{NOISE}", headers={"Link": SDM_LINK,
                                                       "Accept": "application/ld+json"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/ld+json" and "link" not in r.headers
        assert r.json()["@context"] and r.json()["id"] == NOISE
        r = await c.get(TEMPORAL, params={"type": "NoiseLevelObserved"},
                        headers={"Link": SDM_LINK, "Accept": "application/ld+json"})
        assert r.status_code == 200 and all("@context" in e for e in r.json())


@pytest.mark.parametrize("name", ["pick", "omit", "lang", "datasetId"])
async def test_a_parameter_of_the_spec_not_implemented_here_is_refused_by_name(history, name):
    for path, params in ((TEMPORAL, {"type": "NoiseLevelObserved"}), (f"{TEMPORAL}/{NOISE}", {}),
                         (f"{TEMPORAL}/urn:ngsi-ld:NoiseLevelObserved:nowhere", {})):
        r = await get(history, path, **params, **{name: "LAeq"})
        problem(r, "OperationNotSupported", 422, name)


async def test_a_context_source_filter_is_taken_as_no_context_sources_are_asked(history):
    r = await get(history, TEMPORAL, type="NoiseLevelObserved", csf="endpoint==x")
    assert r.status_code == 200, r.text


async def test_a_write_in_a_media_type_not_taken_is_415_before_it_is_refused(live):
    async with live.client(await live.key("admin")) as c:
        for method, path in (("POST", TEMPORAL), ("PATCH", f"{TEMPORAL}/{NOISE}"),
                             ("POST", f"{TEMPORAL}/{NOISE}/attrs")):
            r = await c.request(method, path, content=b"<entity/>",
                                headers={"Content-Type": "application/xml"})
            problem(r, "InvalidRequest", 415, "Content-Type")
