"""Subscribing to another NGSI-LD broker: two real CityOps nodes served by uvicorn on loopback,
node B subscribed to node A."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from urllib.parse import quote

import httpx
import pytest

from cityops.ngsild import federation
from cityops.settings import FederationSource, Settings
from tests.ngsild.ngsild_kit import (
    building,
    dead_url,
    free_socket,
    put_entity,
    serve_app,
    stop_app,
)

SUBS = "/ngsi-ld/v1/subscriptions"


async def eventually(check, what: str, timeout: float = 10.0):
    """Poll `check` (sync or async, truthy when done) until it holds, within a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def served(live):
    handle = await serve_app(live.app)
    try:
        yield handle[0]
    finally:
        await stop_app(*handle[1:])


@contextlib.asynccontextmanager
async def pair(tmp_path, live_node, grid_pack, types=("Building", "NoiseLevelObserved")):
    """Node A served; node B, served too, subscribed to A's `types`."""
    async with live_node(grid_pack, tmp_path / "a") as a, served(a) as base_a:
        admin_a = await a.key("admin")
        sock, base_b = free_socket()
        source = {"url": base_a, "types": list(types), "key": admin_a, "name": "node-a"}
        async with live_node(grid_pack, tmp_path / "b", public_base_url=base_b,
                             ngsild_federation=[source]) as b:
            handle = await serve_app(b.app, sock)
            try:
                link = b.node.ngsild.federation.links["node-a"]
                await eventually(lambda: link.state == "subscribed", "B subscribed at A")
                yield a, b, link, admin_a
            finally:
                await stop_app(*handle[1:])


async def test_an_entity_created_on_a_appears_on_b(tmp_path, live_node, grid_pack):
    async with pair(tmp_path, live_node, grid_pack) as (a, b, link, admin_a):
        remote = a.node.ngsild.subscriptions.get(link.subscription_id)
        assert remote is not None and remote.uri.endswith("/ngsi-ld/v1/notify")
        await put_entity(a.node, building(1, name="Tower", floors=12))
        store_b = b.node.ngsild.entities
        got = await eventually(lambda: store_b.peek("urn:ngsi-ld:Building:1"),
                               "the building on B")
        await put_entity(a.node, building(1, name="Tower", floors=13))
        await eventually(lambda: _floors(store_b.peek("urn:ngsi-ld:Building:1")) == 13,
                         "the change on B")
        assert link.received == 2 and link.failed_entities == 0
        async with b.client(await b.key("admin")) as c:
            status = (await c.get("/api/v1/ngsild/federation")).json()
    assert got["type"] == ["https://uri.etsi.org/ngsi-ld/default-context/Building"]
    assert status[0]["state"] == "subscribed" and status[0]["notificationsReceived"] == 2


def _floors(entity) -> float | None:
    if entity is None:
        return None
    for iri, instances in entity.items():
        if iri.endswith("floors"):
            return instances[0]["value"]
    return None


async def test_a_noise_level_upserted_on_a_becomes_a_reading_on_b(tmp_path, live_node,
                                                                  grid_pack):
    from cityops.ngsild import views

    if not hasattr(views, "entities_of_batch"):
        pytest.skip("ngsild.views.entities_of_batch (the readings' entities) is not there yet")
    from cityops.domain.access import Principal, Role, Scope
    from cityops.ngsild import contexts, feed

    async with pair(tmp_path, live_node, grid_pack) as (a, b, link, _):
        meter = a.node.registry.devices[0].id
        assert meter.startswith("noise")
        t = a.node.clock() - 5
        doc = {"id": f"urn:ngsi-ld:NoiseLevelObserved:{meter}", "type": "NoiseLevelObserved",
               "LAeq": {"type": "Property", "value": 63.5, "observedAt": _at(t)}}
        out = await feed.write_mapped(a.node, Principal("k", Role.ADMIN, Scope()), [doc],
                                      contexts.resolve(contexts.DEFAULT_CONTEXT_URL),
                                      mode="upsert")
        assert out == [(doc["id"], None)]
        index = b.node.registry.index[meter]
        latest = await eventually(lambda: _latest(b.node, index), "the reading on B")
    assert latest == 63.5


async def test_a_notification_of_a_mapped_type_becomes_a_reading(tmp_path, live_node,
                                                                 grid_pack):
    """B's side alone, as any broker would notify it."""
    async with live_node(grid_pack, tmp_path / "b") as b:
        meter = b.node.registry.devices[0].id
        t = b.node.clock() - 5
        note = {"id": "urn:ngsi-ld:Notification:1", "type": "Notification",
                "subscriptionId": "urn:ngsi-ld:Subscription:x", "notifiedAt": _at(t),
                "data": [
                    {"id": f"urn:ngsi-ld:NoiseLevelObserved:{meter}",
                     "type": "NoiseLevelObserved",
                     "LAeq": {"type": "Property", "value": 58.0, "observedAt": _at(t)}},
                    {"id": "urn:ngsi-ld:NoiseLevelObserved:noise-x", "type":
                     "NoiseLevelObserved", "LAeq": {"type": "Property", "value": "loud"}},
                    building(3),
                    {"id": "urn:ngsi-ld:Alert:x", "type": "Alert",
                     "category": {"type": "Property", "value": "traffic"}}]}
        link = ('<http://127.0.0.1/ngsi-ld/v1/jsonldContexts/cityops-default.jsonld>; '
                'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"')
        async with b.client(await b.key("admin")) as c:
            r = await c.post("/ngsi-ld/v1/notify", json=note, headers={"Link": link})
            scoped = await b.key("operator", "990001001")
            async with b.client(scoped) as town:
                refused = await town.post("/ngsi-ld/v1/notify", json=note)
            bad = await c.post("/ngsi-ld/v1/notify", json={"type": "Entity", "data": []})
        assert r.status_code == 207, r.text
        body = r.json()
        assert sorted(body["success"]) == sorted([f"urn:ngsi-ld:NoiseLevelObserved:{meter}",
                                                  "urn:ngsi-ld:Building:3"])
        assert sorted(e["entityId"] for e in body["errors"]) == [
            "urn:ngsi-ld:Alert:x", "urn:ngsi-ld:NoiseLevelObserved:noise-x"]
        assert b.node.ngsild.entities.peek("urn:ngsi-ld:Alert:x") is None
        assert _latest(b.node, b.node.registry.index[meter]) == 58.0
        assert b.node.ngsild.entities.peek("urn:ngsi-ld:Building:3") is not None
        assert refused.status_code == 403  # a notification feed is city-wide
        assert bad.status_code == 400 and "Notification" in bad.json()["detail"]


async def test_a_forgotten_subscription_is_made_again(tmp_path, live_node, grid_pack):
    async with pair(tmp_path, live_node, grid_pack) as (a, b, link, admin_a):
        async with a.client(admin_a) as c:
            where = f"{SUBS}/{quote(link.subscription_id, safe='')}"
            assert (await c.delete(where)).status_code == 204
            fed = b.node.ngsild.federation
            assert await fed.ensure(link) is True  # the check finds it gone, makes it again
            assert (await c.get(where)).status_code == 200
            assert await fed.ensure(link) is False  # there: nothing to do
        await put_entity(a.node, building(5))
        await eventually(lambda: b.node.ngsild.entities.peek("urn:ngsi-ld:Building:5"),
                         "notified through the new subscription")


async def test_stop_deletes_the_subscription_and_revokes_the_key(tmp_path, live_node,
                                                                grid_pack):
    async with live_node(grid_pack, tmp_path / "a") as a, served(a) as base_a:
        admin_a = await a.key("admin")
        sock, base_b = free_socket()
        sock.close()
        source = {"url": base_a, "types": ["Building"], "key": admin_a, "name": "node-a"}
        async with live_node(grid_pack, tmp_path / "b", public_base_url=base_b,
                             ngsild_federation=[source]) as b:
            link = b.node.ngsild.federation.links["node-a"]
            await eventually(lambda: link.state == "subscribed", "subscribed")
            key_id = link.key_id
            assert a.node.ngsild.subscriptions.get(link.subscription_id) is not None
            assert await b.node.keys.resolve(link.secret) is not None
        assert a.node.ngsild.subscriptions.get(link.subscription_id) is None
        assert link.state == "stopped"
    async with live_node(grid_pack, tmp_path / "b") as b:
        [key] = [k for k in await b.node.store.list_keys() if k.id == key_id]
    assert key.revoked and key.name == "ngsild-federation:node-a"


async def test_a_broker_down_at_start_is_retried_with_backoff(tmp_path, live_node, grid_pack):
    source = {"url": dead_url().rsplit("/", 1)[0], "types": ["Building"], "name": "down"}
    async with live_node(grid_pack, tmp_path / "b", public_base_url="http://127.0.0.1:1",
                         ngsild_federation=[source]) as b:
        link = b.node.ngsild.federation.links["down"]
        await eventually(lambda: link.state == "retrying", "retrying")
        async with b.client(await b.key("admin")) as c:
            status = (await c.get("/api/v1/ngsild/federation")).json()
        with pytest.raises(httpx.ConnectError):
            await b.node.ngsild.federation.ensure(link)
    assert status[0]["state"] == "retrying" and "Connect" in status[0]["lastError"]
    assert status[0]["attempts"] >= 1


async def test_without_a_public_url_the_source_says_so(tmp_path, live_node, grid_pack):
    source = {"url": "http://127.0.0.1:1", "types": ["Building"], "name": "x"}
    async with live_node(grid_pack, tmp_path / "b", ngsild_federation=[source]) as b:
        link = b.node.ngsild.federation.links["x"]
        assert link.state == "no-callback" and "public" in link.last_error
        assert link.key_id == ""  # no key made for a callback that cannot come


def test_sources_are_read_from_settings_and_a_yaml_file(tmp_path):
    path = tmp_path / "fed.yaml"
    path.write_text("- url: http://orion:1026\n  types: [NoiseLevelObserved]\n  q: LAeq>50\n")
    settings = Settings(data_dir=tmp_path, ngsild_federation_file=path, ngsild_federation=[
        FederationSource(url="https://stellio.example", types=["Building"], name="stellio")])
    sources = federation.sources_of(settings)
    assert [(s.name, s.url, s.types, s.q) for s in sources] == [
        ("stellio", "https://stellio.example", ["Building"], None),
        ("orion-1026", "http://orion:1026", ["NoiseLevelObserved"], "LAeq>50")]
    flag = federation.source_from_flag("http://broker:1026/#Building,Vehicle")
    assert (flag.url, flag.types) == ("http://broker:1026", ["Building", "Vehicle"])


@pytest.mark.parametrize(("source", "words"), [
    ({"url": "ftp://x", "types": ["A"]}, "http"),
    ({"url": "http://x", "types": []}, "types"),
    ({"url": "http://x"}, "types"),
    ({"url": "http://x", "types": ["A"], "colour": "red"}, "colour"),
])
def test_bad_sources_are_named(tmp_path, source, words):
    with pytest.raises(ValueError, match=words):
        federation.sources_of(Settings(data_dir=tmp_path, ngsild_federation=[source]))


def _at(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def _latest(node, index: int) -> float | None:
    """The device's newest noise level (LAeq, the noise kind's first channel), if any."""
    found = node.history.state.latest(index)
    if found is None or math.isnan(float(found[1][0])):
        return None
    return float(found[1][0])


@pytest.mark.parametrize(("args", "words"), [
    (["--ngsild-subscribe", "http://broker:1026"], "types after '#'"),
    (["--ngsild-subscribe", "http://broker:1026#Building"], "--public-url"),
    (["--ngsild-subscribe", "ftp://broker#Building", "--public-url", "http://me:8080"],
     "http(s) URL"),
])
def test_serve_refuses_bad_federation_flags(tmp_path, grid_pack, args, words):
    from typer.testing import CliRunner

    from cityops.cli.main import app
    from cityops.packs.format import save_pack

    save_pack(grid_pack, tmp_path / "city")
    result = CliRunner().invoke(app, ["serve", "--city", str(tmp_path / "city"), "--data",
                                      str(tmp_path / "data"), *args])
    assert result.exit_code != 0
    assert words in result.output.replace("\n", " ")
