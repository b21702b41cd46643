"""What NGSI-LD subscriptions notify, and how: a real receiver on loopback, entities changed
through the node's context store, time driven by a hand-set clock."""

from __future__ import annotations

import contextlib

import pytest

from cityops.ngsild.contexts import DEFAULT_CONTEXT_URL

from tests.api.scope_kinds.base import PLACE, TOWN_A, TOWN_B
from tests.clock_kit import Clock
from tests.ngsild.ngsild_kit import building, dead_url, put_entity, receiver, subscription

SUBS = "/ngsi-ld/v1/subscriptions"
T0 = 1_765_000_000.0


@contextlib.asynccontextmanager
async def world(live_node, grid_pack, tmp_path, **settings):
    """A node on a hand-set clock, an admin client on it and a receiver."""
    clock = Clock(T0)
    async with live_node(grid_pack, tmp_path / "d", clock=clock, **settings) as live, \
            receiver() as server:
        async with live.client(await live.key("admin")) as admin:
            yield live, clock, admin, server


async def subscribe(client, body) -> str:
    r = await client.post(SUBS, json=body)
    assert r.status_code == 201, r.text
    return r.headers["location"]


def ids(received) -> list[str]:
    return [e["id"] for e in received.json()["data"]]


async def settle(live) -> None:
    """Every notification due has gone out."""
    await live.node.ngsild.subscriptions.notifier.idle()


async def test_a_notification_has_the_spec_shape(tmp_path, grid_pack, live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, _, admin, server):
        where = await subscribe(admin, subscription(server.url("n"), notification={
            "endpoint": {"uri": server.url("n"), "receiverInfo": [
                {"key": "X-Token", "value": "s3cret"}]}}))
        await put_entity(live.node, building(1, name="Tower"))
        [got] = await server.wait_for("n")
        body = got.json()
        assert body["id"].startswith("urn:ngsi-ld:Notification:")
        assert body["type"] == "Notification"
        assert body["subscriptionId"] == where.rsplit("/", 1)[1]
        assert body["notifiedAt"] == "2025-12-06T05:46:40.000Z"  # the node's clock
        assert body["data"] == [{"id": "urn:ngsi-ld:Building:1", "type": "Building",
                                 "location": building(1)["location"],
                                 "name": {"type": "Property", "value": "Tower"}}]
        assert got.headers["content-type"] == "application/json"
        assert 'rel="http://www.w3.org/ns/json-ld#context"' in got.headers["link"]
        assert got.headers["x-token"] == "s3cret"
        await settle(live)
        note = (await admin.get(where)).json()["notification"]
        assert (note["status"], note["timesSent"], note["timesFailed"]) == ("ok", 1, 0)
        assert note["lastNotification"] == note["lastSuccess"] == "2025-12-06T05:46:40.000Z"


async def test_json_ld_key_values_and_chosen_attributes(tmp_path, grid_pack, live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, _, admin, server):
        await subscribe(admin, subscription(server.url("kv"), notification={
            "endpoint": {"uri": server.url("kv"), "accept": "application/ld+json"},
            "format": "keyValues", "attributes": ["name"]}))
        await put_entity(live.node, building(1, name="Tower", floors=30))
        [got] = await server.wait_for("kv")
    assert got.headers["content-type"] == "application/ld+json"
    assert "link" not in got.headers
    body = got.json()
    # Each entity of a JSON-LD notification is a JSON-LD document of its own (GS CIM 009
    # 5.8.6; the ETSI suite's 046_14 reads data[0]["@context"]), besides the notification's.
    assert "@context" in body
    context = body["@context"]
    assert body["data"] == [{"id": "urn:ngsi-ld:Building:1", "type": "Building",
                             "name": "Tower", "@context": context}]


async def test_watched_attributes_notify_only_their_changes(tmp_path, grid_pack, live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, _, admin, server):
        await put_entity(live.node, building(1, name="Tower", floors=30))
        await subscribe(admin, subscription(server.url("w"), watchedAttributes=["floors"]))
        await put_entity(live.node, building(1, name="Tower II", floors=30))  # not watched
        await put_entity(live.node, building(1, name="Tower II", floors=31))  # watched
        [got] = await server.wait_for("w")
        await settle(live)
    assert got.json()["data"][0]["floors"]["value"] == 31
    assert len(server.of("w")) == 1


async def test_q_is_evaluated_on_the_new_entity(tmp_path, grid_pack, live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, _, admin, server):
        await subscribe(admin, subscription(server.url("q"), q="floors>20"))
        await put_entity(live.node, building(1, floors=10))
        await put_entity(live.node, building(2, floors=5))
        await put_entity(live.node, building(1, floors=25))
        [got] = await server.wait_for("q")
        await settle(live)
    assert ids(got) == ["urn:ngsi-ld:Building:1"]
    assert got.json()["data"][0]["floors"]["value"] == 25
    assert len(server.of("q")) == 1


async def test_geo_q_selects_by_place(tmp_path, grid_pack, live_node):
    a, b = PLACE[TOWN_A], PLACE[TOWN_B]
    async with world(live_node, grid_pack, tmp_path) as (live, _, admin, server):
        await subscribe(admin, subscription(server.url("g"), geoQ={
            "georel": "near;maxDistance==500", "geometry": "Point",
            "coordinates": [a["lon"], a["lat"]]}))
        await put_entity(live.node, building(1, b["lat"], b["lon"]))  # 9.5 km off
        await put_entity(live.node, building(2, a["lat"] + 0.001, a["lon"]))  # 111 m off
        [got] = await server.wait_for("g")
        await settle(live)
    assert ids(got) == ["urn:ngsi-ld:Building:2"] and len(server.of("g")) == 1


async def test_selectors_by_id_and_pattern(tmp_path, grid_pack, live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, _, admin, server):
        await subscribe(admin, subscription(server.url("id"), entities=[
            {"type": "Building", "id": "urn:ngsi-ld:Building:7"},
            {"type": "Building", "idPattern": "^urn:ngsi-ld:Building:1[0-9]$"}]))
        for n in (3, 7, 12, 123):
            await put_entity(live.node, building(n))
        await server.wait_for("id", 2)
        await settle(live)
    assert sorted(i for r in server.of("id") for i in ids(r)) == [
        "urn:ngsi-ld:Building:12", "urn:ngsi-ld:Building:7"]


async def test_deletion_is_notified_only_when_asked_for(tmp_path, grid_pack, live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, _, admin, server):
        await put_entity(live.node, building(1))
        await subscribe(admin, subscription(server.url("plain")))
        await subscribe(admin, subscription(server.url("gone"),
                                            notificationTrigger=["entityDeleted"]))
        await live.node.ngsild.entities.delete("urn:ngsi-ld:Building:1")
        [got] = await server.wait_for("gone")
        await put_entity(live.node, building(2))  # the default triggers: created, updated
        await server.wait_for("plain")
        await settle(live)
    assert got.json()["data"] == [{"id": "urn:ngsi-ld:Building:1", "type": "Building",
                                   "deletedAt": "2025-12-06T05:46:40.000Z"}]
    assert [ids(r) for r in server.of("plain")] == [["urn:ngsi-ld:Building:2"]]
    assert len(server.of("gone")) == 1


async def test_paused_and_expired_subscriptions_send_nothing(tmp_path, grid_pack, live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, clock, admin, server):
        paused = await subscribe(admin, subscription(server.url("p"), isActive=False))
        await subscribe(admin, subscription(server.url("x"),
                                            expiresAt="2025-12-06T06:00:00Z"))
        await subscribe(admin, subscription(server.url("on")))
        clock.now = T0 + 3600  # past the second one's expiry
        await put_entity(live.node, building(1))
        await server.wait_for("on")
        await settle(live)
        assert server.of("p") == [] and server.of("x") == []
        await admin.patch(paused, json={"isActive": True})
        await put_entity(live.node, building(2))
        await server.wait_for("p")


async def test_throttling_holds_notifications_on_the_clock(tmp_path, grid_pack, live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, clock, admin, server):
        await subscribe(admin, subscription(server.url("t"), throttling=30))
        notifier = live.node.ngsild.subscriptions.notifier
        await put_entity(live.node, building(1, floors=1))
        await server.wait_for("t")
        await settle(live)
        await put_entity(live.node, building(1, floors=2))
        await put_entity(live.node, building(2, floors=1))
        clock.now = T0 + 29
        await notifier.tick()
        await settle(live)
        assert len(server.of("t")) == 1  # within the 30 s
        clock.now = T0 + 30
        await notifier.tick()
        second = (await server.wait_for("t", 2))[1]
    # Held changes go out together, each entity in its newest state.
    assert [(e["id"][-1], e["floors"]["value"]) for e in second.json()["data"]] == [
        ("1", 2), ("2", 1)]


async def test_time_interval_sends_every_matching_entity_periodically(tmp_path, grid_pack,
                                                                     live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, clock, admin, server):
        subs = live.node.ngsild.subscriptions
        await put_entity(live.node, building(1, floors=10))
        await put_entity(live.node, building(2, floors=50))
        await subscribe(admin, subscription(server.url("i"), timeInterval=60, q="floors>20"))
        await subs.periodic()  # the first goes out at once
        [first] = await server.wait_for("i")
        await put_entity(live.node, building(1, floors=30))  # a change is not notified ...
        clock.now = T0 + 59
        await subs.periodic()
        await settle(live)
        assert len(server.of("i")) == 1
        clock.now = T0 + 60  # ... the next period is, with the entities as they are then
        await subs.periodic()
        second = (await server.wait_for("i", 2))[1]
    assert ids(first) == ["urn:ngsi-ld:Building:2"]
    assert sorted(ids(second)) == ["urn:ngsi-ld:Building:1", "urn:ngsi-ld:Building:2"]


async def test_an_unreachable_subscriber_is_retried_and_its_failure_shows(tmp_path, grid_pack,
                                                                        live_node):
    async with world(live_node, grid_pack, tmp_path, ngsild_retry_base_s=2.0) as (
            live, clock, admin, server):
        notifier = live.node.ngsild.subscriptions.notifier
        where = await subscribe(admin, subscription(dead_url()))
        await put_entity(live.node, building(1, floors=1))
        await settle(live)
        note = (await admin.get(where)).json()["notification"]
        assert (note["status"], note["timesSent"], note["timesFailed"]) == ("failed", 1, 1)
        assert note["lastFailure"] == "2025-12-06T05:46:40.000Z" and "lastSuccess" not in note
        sub_id = where.rsplit("/", 1)[1]
        wait = notifier.next_attempt(sub_id) - clock.now
        assert 1.6 <= wait <= 2.0  # the first backoff
        clock.now += wait
        await notifier.tick()
        await settle(live)
        assert (await admin.get(where)).json()["notification"]["timesFailed"] == 2
        assert notifier.next_attempt(sub_id) - clock.now >= 3.2  # doubled
        # The subscriber comes back at a new address; the waiting change reaches it at once
        # (a new address inherits no backoff).
        clock.now += 1
        assert (await admin.patch(where, json={"notification": {"endpoint": {
            "uri": server.url("back")}}})).status_code == 204
        [got] = await server.wait_for("back")
        await settle(live)
        note = (await admin.get(where)).json()["notification"]
    assert ids(got) == ["urn:ngsi-ld:Building:1"]
    assert (note["status"], note["timesSent"], note["timesFailed"]) == ("ok", 3, 2)
    assert note["lastSuccess"] > note["lastFailure"]


async def test_a_town_keys_subscription_never_notifies_another_towns_entities(
        tmp_path, grid_pack, live_node):
    a, b = PLACE[TOWN_A], PLACE[TOWN_B]
    async with world(live_node, grid_pack, tmp_path) as (live, _, admin, server):
        async with live.client(await live.key("operator", TOWN_A)) as town:
            await subscribe(town, subscription(server.url("town")))
        await subscribe(admin, subscription(server.url("city")))
        await put_entity(live.node, building(1, b["lat"], b["lon"]))  # town B
        await put_entity(live.node, {"id": "urn:ngsi-ld:Building:9", "type": "Building"})
        await put_entity(live.node, building(2, a["lat"], a["lon"]))  # town A
        await server.wait_for("city", 1)
        [got] = await server.wait_for("town")
        await settle(live)
    assert [i for r in server.of("town") for i in ids(r)] == ["urn:ngsi-ld:Building:2"]
    assert ids(got) == ["urn:ngsi-ld:Building:2"]
    assert sorted(i for r in server.of("city") for i in ids(r)) == [
        "urn:ngsi-ld:Building:1", "urn:ngsi-ld:Building:2", "urn:ngsi-ld:Building:9"]


async def test_a_subscriber_far_behind_gets_the_newest_states_within_the_bound(
        tmp_path, grid_pack, live_node):
    async with world(live_node, grid_pack, tmp_path, ngsild_notify_pending=3) as (
            live, clock, admin, server):
        server.hang.add("slow")
        where = await subscribe(admin, subscription(server.url("slow")))
        await put_entity(live.node, building(0))
        await server.wait_for("slow")  # held by the subscriber
        for n in range(1, 6):
            await put_entity(live.node, building(n, floors=n))
        server.release.set()
        second = (await server.wait_for("slow", 2))[1]
        await settle(live)
        assert ids(second) == [f"urn:ngsi-ld:Building:{n}" for n in (3, 4, 5)]
        sub = live.node.ngsild.subscriptions.get(where.rsplit("/", 1)[1])
        assert sub.health.dropped == 2


@pytest.mark.parametrize("fmt", ["normalized", "concise"])
async def test_formats_compact_with_the_subscriptions_own_context(tmp_path, grid_pack,
                                                                  live_node, fmt):
    async with world(live_node, grid_pack, tmp_path) as (live, _, admin, server):
        await subscribe(admin, subscription(server.url("f"), notification={"format": fmt}))
        await put_entity(live.node, building(1, floors=3))
        [got] = await server.wait_for("f")
    floors = got.json()["data"][0]["floors"]
    assert floors == ({"type": "Property", "value": 3} if fmt == "normalized" else
                      {"value": 3}) or floors == 3


async def test_readings_notify_subscriptions_on_their_sdm_type(tmp_path, grid_pack, live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, clock, admin, server):
        meters = [d.id for d in live.node.registry.devices if d.kind == "noise"][:3]
        # In CityOps's own context, where the Smart Data Models terms are.
        body = subscription(server.url("noise"), entities=[{"type": "NoiseLevelObserved"}],
                            q="LAeq>60", notification={"attributes": ["LAeq"],
                                                       "format": "keyValues"})
        r = await admin.post(SUBS, json={**body, "@context": DEFAULT_CONTEXT_URL},
                             headers={"Content-Type": "application/ld+json"})
        assert r.status_code == 201, r.text
        async with live.client(await live.key("device")) as device:
            r = await device.post("/api/v1/readings", json=[
                {"device_id": meters[0], "ts": T0 - 2, "value": 55.0},
                {"device_id": meters[1], "ts": T0 - 2, "value": 71.5}])
            assert r.status_code == 202, r.text
            [got] = await server.wait_for("noise")
            await settle(live)
            r = await device.post("/api/v1/readings", json=[
                {"device_id": meters[2], "ts": T0 - 1, "value": 64.0}])
            second = (await server.wait_for("noise", 2))[1]
    assert got.json()["data"] == [{"id": f"urn:ngsi-ld:NoiseLevelObserved:{meters[1]}",
                                   "type": "NoiseLevelObserved", "LAeq": 71.5}]
    assert ids(second) == [f"urn:ngsi-ld:NoiseLevelObserved:{meters[2]}"]


async def test_a_subscription_naming_devices_hears_only_their_readings(tmp_path, grid_pack,
                                                                       live_node):
    async with world(live_node, grid_pack, tmp_path) as (live, clock, admin, server):
        meters = [d.id for d in live.node.registry.devices if d.kind == "noise"][:3]
        body = subscription(server.url("one"), entities=[
            {"type": "NoiseLevelObserved", "id": f"urn:ngsi-ld:NoiseLevelObserved:{meters[2]}"}])
        r = await admin.post(SUBS, json={**body, "@context": DEFAULT_CONTEXT_URL},
                             headers={"Content-Type": "application/ld+json"})
        assert r.status_code == 201, r.text
        async with live.client(await live.key("device")) as device:
            for n, meter in enumerate(meters):
                r = await device.post("/api/v1/readings", json=[
                    {"device_id": meter, "ts": T0 - 10 + n, "value": 50.0 + n}])
                assert r.status_code == 202
        [got] = await server.wait_for("one")
        await settle(live)
    assert ids(got) == [f"urn:ngsi-ld:NoiseLevelObserved:{meters[2]}"]
    assert len(server.of("one")) == 1


async def test_the_index_follows_creates_updates_and_deletes(tmp_path, grid_pack, live_node):
    def snapshot(subs):
        def ids(found):
            return sorted(s.id for s in found)

        return ({k: ids(v) for k, v in subs._by_type.items()},
                {k: ids(v) for k, v in subs._by_type_id.items()},
                ids(subs._any_type), ids(subs._periodic))

    async with world(live_node, grid_pack, tmp_path) as (live, _, admin, server):
        subs = live.node.ngsild.subscriptions
        by_id = await subscribe(admin, subscription(server.url("a"), entities=[
            {"type": "Building", "id": "urn:ngsi-ld:Building:1"},
            {"type": "Building,Shop", "id": "urn:ngsi-ld:Building:2"}]))
        await subscribe(admin, subscription(server.url("b")))
        await subscribe(admin, subscription(server.url("c"), entities=None,
                                            watchedAttributes=["floors"]))
        periodic = await subscribe(admin, subscription(server.url("d"), timeInterval=60))
        assert (await admin.patch(by_id, json={"entities": [
            {"type": "Shop", "idPattern": "^urn:ngsi-ld:Shop:.*"}]})).status_code == 204
        assert (await admin.delete(periodic)).status_code == 204
        version = subs._index_version
        kept = snapshot(subs)
        subs._reindex()
        assert snapshot(subs) == kept and subs._index_version == version + 1
        assert len(kept[0]["https://uri.etsi.org/ngsi-ld/default-context/Building"]) == 1
        assert kept[1] == {} and len(kept[2]) == 1 and kept[3] == []
        # Changes made through the index are heard: the patched selector now picks Shops.
        await put_entity(live.node, {"id": "urn:ngsi-ld:Shop:9", "type": "Shop"})
        [got] = await server.wait_for("a")
    assert ids(got) == ["urn:ngsi-ld:Shop:9"]
