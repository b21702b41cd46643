"""Devices, alerts and Open311 requests as entities, through a real node (ngsild/views.py)."""

from __future__ import annotations

import asyncio
import itertools
import re

import msgspec
import numpy as np
import pytest

from cityops.bus.subjects import ALERTS
from cityops.domain.access import Principal, Role, Scope
from cityops.domain.alerts import Alert, AlertEvent
from cityops.domain.city import Vehicle
from cityops.domain.readings import ReadingBatch
from cityops.ingest.decode import Reading
from cityops.ngsild import contexts, sdm, views
from cityops.ngsild.sdm import TERMS
from cityops.packs.grid import generate as grid_city
from tests.open311.conftest import GARBAGE, HERE, MONDAY_10, VILLAGE, Clock, open311_city

ADMIN = Principal("k-admin", Role.ADMIN, Scope())
NOISE_TYPE = TERMS["NoiseLevelObserved"]


@pytest.fixture
async def served(tmp_path, live_node):
    pack = grid_city(devices={"noise": 300, "air_quality": 3, "gps": 2, "bin_fill": 2})
    pack = msgspec.structs.replace(pack, vehicles=[Vehicle("v-1", "沪A1", "muck_truck",
                                                           "gps-000000")])
    async with live_node(pack, tmp_path / "data") as live:
        yield live


@pytest.fixture
def node(served):
    return served.node


def _device_view(node) -> views.DeviceView:
    return next(p for p in views.providers(node) if isinstance(p, views.DeviceView))


async def test_devices_and_their_latest_readings(node):
    now = node.clock()
    await node.ingestor.ingest(list(enumerate([
        Reading("noise-000001", now - 5, value=63.5),
        Reading("bin_fill-000000", now - 5, value=80.0),
        Reading("gps-000000", now - 5, values={"lat": 31.2, "lon": 121.45, "speed": 30.0,
                                               "heading": 90.0})])), source="test")
    view = _device_view(node)
    noise = view.get(ADMIN, "urn:ngsi-ld:NoiseLevelObserved:noise-000001")
    assert noise[TERMS["LAeq"]][0]["value"] == 63.5
    assert noise[TERMS["LAeq"]][0]["unitCode"] == "2N"
    device = view.get(ADMIN, "urn:ngsi-ld:Device:noise-000001")
    assert device[TERMS["deviceState"]][0]["value"] == "active"  # heard: no longer commissioning
    assert view.get(ADMIN, "urn:ngsi-ld:WasteContainer:bin_fill-000000")[
        TERMS["fillingLevel"]][0]["value"] == pytest.approx(0.8)
    truck = view.get(ADMIN, "urn:ngsi-ld:Vehicle:gps-000000")
    assert truck[TERMS["location"]][0]["value"]["coordinates"] == [121.45, 31.2]
    assert truck[TERMS["speed"]][0]["value"] == 30.0
    # The other tracker belongs to no vehicle: a Device only.
    assert view.get(ADMIN, "urn:ngsi-ld:Vehicle:gps-000001") is None
    assert view.get(ADMIN, "urn:ngsi-ld:Device:gps-000001") is not None
    # A noise meter is no air-quality station.
    assert view.get(ADMIN, "urn:ngsi-ld:AirQualityObserved:noise-000001") is None
    assert view.get(ADMIN, "urn:ngsi-ld:NoiseLevelObserved:nope") is None


async def test_a_page_by_type_builds_only_what_it_takes(node):
    built = []

    class Counting(views.DeviceView):
        def _build(self, index, device, type_iri):
            built.append(device.id)
            return super()._build(index, device, type_iri)

    view = Counting(node, {})
    page = list(itertools.islice(view.find(ADMIN, types={NOISE_TYPE}, ids=None,
                                           id_pattern=None), 20))
    assert len(page) == 20 and len(built) == 20
    assert all(e["type"] == [NOISE_TYPE] for e in page)
    # Any spelling of the type (no context: the core's @vocab) finds the same.
    bare = "https://uri.etsi.org/ngsi-ld/default-context/NoiseLevelObserved"
    assert sum(1 for _ in view.find(ADMIN, types={bare}, ids=None, id_pattern=None)) == 300
    assert list(view.find(ADMIN, types={"https://example.org/Parking"}, ids=None,
                          id_pattern=None)) == []


async def test_ids_and_id_patterns(node):
    view = _device_view(node)
    ids = {"urn:ngsi-ld:NoiseLevelObserved:noise-000003", "urn:ngsi-ld:Device:noise-000004",
           "urn:ngsi-ld:Device:unknown"}
    found = [e["id"] for e in view.find(ADMIN, types=None, ids=ids, id_pattern=None)]
    assert found == sorted(ids - {"urn:ngsi-ld:Device:unknown"})
    pattern = re.compile(r"urn:ngsi-ld:Device:air_quality-.*")
    found = [e["id"] for e in view.find(ADMIN, types=None, ids=None, id_pattern=pattern)]
    assert found == [f"urn:ngsi-ld:Device:air_quality-00000{i}" for i in range(3)]


async def test_a_scoped_key_sees_only_its_area(node):
    town = node.registry.devices[0].areas.town
    who = Principal("k-op", Role.OPERATOR, Scope(area=town))
    view = _device_view(node)
    seen = list(view.find(who, types={sdm.DEVICE}, ids=None, id_pattern=None))
    inside = [d for d in node.registry.devices if d.areas.town == town]
    assert 0 < len(seen) == len(inside) < len(node.registry)
    outside = next(d for d in node.registry.devices if d.areas.town != town)
    assert view.get(who, f"urn:ngsi-ld:Device:{outside.id}") is None


async def test_types_and_attributes(node):
    view = _device_view(node)
    assert set(view.types()) == {sdm.DEVICE, NOISE_TYPE, TERMS["AirQualityObserved"],
                                 TERMS["WasteContainer"], TERMS["Vehicle"]}
    assert TERMS["LAeq"] in view.attributes()[NOISE_TYPE]


async def test_entities_of_a_stored_batch(node):
    now = node.clock()
    result = await node.ingestor.ingest(list(enumerate([
        Reading("noise-000007", now - 1, value=70.0),
        Reading("noise-000007", now - 2, value=71.0)])), source="test")
    assert result.accepted == 2
    index = node.registry.index["noise-000007"]
    batch = ReadingBatch(np.array([index, index], np.int32), np.zeros(2, np.int8),
                         np.array([int((now - 1) * 1e6)] * 2), np.array([70.0, 71.0]))
    found = views.entities_of_batch(node, batch)
    assert [e["id"] for e in found] == ["urn:ngsi-ld:NoiseLevelObserved:noise-000007",
                                        "urn:ngsi-ld:Device:noise-000007"]
    assert found[0][TERMS["LAeq"]][0]["value"] == 70.0  # the newest
    only = views.entities_of_batch(node, batch, types={sdm.DEVICE})
    assert [e["id"] for e in only] == ["urn:ngsi-ld:Device:noise-000007"]


def _alert(alert_id: str, device, first_seen: float) -> Alert:
    return Alert(id=alert_id, scenario="noise", rule="noise.night_residential",
                 category="event.environment.noise_nuisance", severity="minor",
                 urgency="normal", departments=["environment"], subject=device.id,
                 title="Night noise", areas=device.areas, lat=device.lat, lon=device.lon,
                 first_seen=first_seen, last_seen=first_seen)


async def test_alerts_from_the_store_and_then_the_bus(node):
    device = node.registry.devices[0]
    await node.store.upsert_alerts([_alert("a-stored", device, node.clock() - 600)])
    alerts = next(p for p in views.providers(node) if isinstance(p, views.AlertView))
    await asyncio.wait_for(alerts.mirror.loaded.wait(), 10)
    found = alerts.get(ADMIN, "urn:ngsi-ld:Alert:a-stored")
    assert found[TERMS["alertSource"]][0]["object"] == f"urn:ngsi-ld:Device:{device.id}"
    assert found[TERMS["category"]][0]["value"] == "environment"
    raised = _alert("a-new", device, node.clock())
    await node.bus.publish(ALERTS, [AlertEvent("raised", raised)])
    async with asyncio.timeout(10):
        while alerts.get(ADMIN, "urn:ngsi-ld:Alert:a-new") is None:
            await asyncio.sleep(0.01)  # the mirror's task takes it off the bus
    ids = [e["id"] for e in alerts.find(ADMIN, types={sdm.ALERT}, ids=None, id_pattern=None)]
    assert ids == ["urn:ngsi-ld:Alert:a-new", "urn:ngsi-ld:Alert:a-stored"]  # newest first
    elsewhere = next(d for d in node.registry.devices if d.areas.town != device.areas.town)
    who = Principal("k-op", Role.OPERATOR, Scope(area=elsewhere.areas.town))
    assert list(alerts.find(who, types=None, ids=None, id_pattern=None)) == []
    assert alerts.get(who, "urn:ngsi-ld:Alert:a-new") is None


async def test_service_requests(tmp_path, live_node):
    from cityops.open311.routes import catalogue_of
    from cityops.open311.service_requests import Requests

    clock = Clock(MONDAY_10)
    async with live_node(open311_city(), tmp_path / "data", clock) as live:
        node = live.node
        citizen = Principal("k-c", Role.CITIZEN, Scope(), name="c-1")
        doc, _ = await Requests(node, catalogue_of(node)).file(
            citizen, {"service_code": GARBAGE, "description": "Bags by the gate", **HERE}, {})
        requests = next(p for p in views.providers(node) if isinstance(p, views.RequestView))
        await asyncio.wait_for(requests.mirror.loaded.wait(), 10)
        entity_id = f"urn:ngsi-ld:ServiceRequest:{doc.service_request_id}"
        found = requests.get(ADMIN, entity_id)
        assert found[TERMS["status"]][0]["value"] == "open"
        assert found[TERMS["service_code"]][0]["value"] == GARBAGE
        assert found[TERMS["description"]][0]["value"] == "Bags by the gate"
        assert [e["id"] for e in requests.find(ADMIN, types={TERMS["service_requests"]},
                                               ids=None, id_pattern=None)] == [entity_id]
        same = Principal("k-1", Role.OPERATOR, Scope(area=VILLAGE))
        other = Principal("k-2", Role.OPERATOR, Scope(area="990001002"))
        assert requests.get(same, entity_id) is not None
        assert requests.get(other, entity_id) is None


async def test_through_the_api_upsert_then_query(served):
    """A producer's batch upsert feeds a reading; a consumer finds the entity by type and q,
    in the CityOps context's terms; a scoped key only in its town."""
    node = served.node
    meter = node.registry.devices[5]
    at = sdm.rfc3339((node.clock() - 5) * 1e6)
    link = {"Link": f'<{contexts.DEFAULT_CONTEXT_URL}>; rel="http://www.w3.org/ns/json-ld#'
                    f'context"; type="application/ld+json"'}
    doc = {"id": f"urn:ngsi-ld:NoiseLevelObserved:{meter.id}", "type": "NoiseLevelObserved",
           "LAeq": {"type": "Property", "value": 88.5, "observedAt": at}}
    async with served.client(await served.key("device")) as producer:
        r = await producer.post("/ngsi-ld/v1/entityOperations/upsert", json=[doc],
                                headers=link)
        assert r.status_code in (201, 204), r.text
    async with served.client(await served.key("operator")) as consumer:
        r = await consumer.get("/ngsi-ld/v1/entities", headers=link,
                               params={"type": "NoiseLevelObserved", "q": "LAeq>80"})
        assert r.status_code == 200, r.text
        found = r.json()
        assert [e["id"] for e in found] == [doc["id"]]
        assert found[0]["LAeq"]["value"] == 88.5 and found[0]["LAeq"]["unitCode"] == "2N"
        assert found[0]["refDevice"]["object"] == f"urn:ngsi-ld:Device:{meter.id}"
    elsewhere = next(d for d in node.registry.devices if d.areas.town != meter.areas.town)
    async with served.client(await served.key("operator", elsewhere.areas.town)) as other:
        r = await other.get(f"/ngsi-ld/v1/entities/{doc['id']}", headers=link)
        assert r.status_code == 404
