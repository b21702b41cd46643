"""NGSI-LD subscription operations and their errors (GS CIM 009 clause 5.8), over the node's
HTTP app."""

from __future__ import annotations

import pytest

from cityops.ngsild.contexts import DEFAULT_CONTEXT_URL
from tests.api.scope_kinds.base import TOWN_A
from tests.ngsild.ngsild_kit import link, subscription

SUBS = "/ngsi-ld/v1/subscriptions"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
URI = "http://127.0.0.1:9/notify"
SDM_CONTEXT = "http://cityops.test" + DEFAULT_CONTEXT_URL


def problem(r, kind: str, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == ERR + kind, body
    assert body["title"] and body["detail"]
    for word in words:
        assert word in body["detail"], body


@pytest.fixture
async def admin(live):
    async with live.client(await live.key("admin")) as c:
        yield c


async def test_create_answers_201_with_the_location_and_retrieve_shows_it(admin):
    body = subscription(URI, id="urn:ngsi-ld:Subscription:one", description="buildings",
                        watchedAttributes=["name"], q="floors>3", throttling=5,
                        notification={"attributes": ["name"], "format": "keyValues"},
                        expiresAt="2100-01-01T00:00:00Z")
    r = await admin.post(SUBS, json=body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{SUBS}/urn:ngsi-ld:Subscription:one"
    got = (await admin.get(r.headers["location"])).json()
    assert got["id"] == "urn:ngsi-ld:Subscription:one" and got["type"] == "Subscription"
    assert got["entities"] == [{"type": "Building"}]
    assert got["watchedAttributes"] == ["name"] and got["q"] == "floors>3"
    assert got["throttling"] == 5 and got["expiresAt"] == "2100-01-01T00:00:00Z"
    assert got["status"] == "active" and got["isActive"] is True
    note = got["notification"]
    assert note["attributes"] == ["name"] and note["format"] == "keyValues"
    assert note["endpoint"] == {"uri": URI, "accept": "application/json"}
    assert (note["status"], note["timesSent"], note["timesFailed"]) == ("ok", 0, 0)


async def test_an_id_is_generated_when_absent(admin):
    r = await admin.post(SUBS, json=subscription(URI))
    assert r.status_code == 201
    sub_id = r.headers["location"].rsplit("/", 1)[1]
    assert sub_id.startswith("urn:ngsi-ld:Subscription:")
    assert (await admin.get(r.headers["location"])).json()["id"] == sub_id


async def test_names_are_expanded_with_the_request_context_and_shown_in_the_readers(admin):
    context = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
    r = await admin.post(SUBS, json={**subscription(URI, watchedAttributes=["location"]),
                                     "@context": context},
                         headers={"Content-Type": "application/ld+json"})
    assert r.status_code == 201, r.text
    r = await admin.get(r.headers["location"], headers={"Accept": "application/ld+json"})
    assert r.headers["content-type"].startswith("application/ld+json")
    assert r.json()["@context"] == context and r.json()["watchedAttributes"] == ["location"]


async def test_read_only_members_given_by_the_client_are_ignored(admin):
    body = subscription(URI, status="expired", notification={"timesSent": 42})
    r = await admin.post(SUBS, json=body)
    got = (await admin.get(r.headers["location"])).json()
    assert got["status"] == "active" and got["notification"]["timesSent"] == 0


async def test_is_active_false_makes_a_paused_subscription(admin):
    r = await admin.post(SUBS, json=subscription(URI, isActive=False))
    got = (await admin.get(r.headers["location"])).json()
    assert got["status"] == "paused" and got["isActive"] is False


@pytest.mark.parametrize(("body", "kind", "status", "words"), [
    ({}, "BadRequestData", 400, ("empty",)),
    ({"type": "Subscription"}, "BadRequestData", 400, ("notification",)),
    (subscription(URI, type="Entity"), "BadRequestData", 400, ("type",)),
    (subscription(URI, id="not a uri"), "BadRequestData", 400, ("id",)),
    (subscription(URI, id=""), "BadRequestData", 400, ("id",)),
    (subscription(URI, entities=[]), "BadRequestData", 400, ("entities",)),
    (subscription(URI, entities=[{"id": "urn:x:1"}]), "BadRequestData", 400,
     ("entities[0].type",)),
    (subscription(URI, entities=[{"type": "Building", "idPattern": "(("}]),
     "BadRequestData", 400, ("entities[0].idPattern",)),
    (subscription(URI, throttling=5, timeInterval=10), "BadRequestData", 400,
     ("timeInterval", "throttling")),
    (subscription(URI, throttling=-1), "BadRequestData", 400, ("throttling",)),
    (subscription(URI, watchedAttributes=["name"], timeInterval=10), "BadRequestData", 400,
     ("timeInterval", "watchedAttributes")),
    (subscription(URI, watchedAttributes=[]), "BadRequestData", 400, ("watchedAttributes",)),
    (subscription(URI, expiresAt="2000-01-01T00:00:00Z"), "BadRequestData", 400,
     ("expiresAt", "past")),
    (subscription(URI, expiresAt="tomorrow"), "BadRequestData", 400, ("expiresAt",)),
    (subscription(URI, q="((floors"), "BadRequestData", 400, ("q",)),
    (subscription(URI, geoQ={"georel": "near;maxDistance==10", "geometry": "Point"}),
     "BadRequestData", 400, ("geoQ.coordinates",)),
    (subscription(URI, geoQ={"georel": "around", "geometry": "Point",
                             "coordinates": [121.4, 31.1]}), "BadRequestData", 400, ("geoQ",)),
    (subscription(URI, notificationTrigger=["entityChanged"]), "BadRequestData", 400,
     ("notificationTrigger",)),
    (subscription(URI, notification={"format": "xml"}), "BadRequestData", 400,
     ("notification.format",)),
    (subscription(URI, notification={"endpoint": {"uri": "relative/path"}}), "BadRequestData",
     400, ("notification.endpoint.uri",)),
    (subscription(URI, notification={"endpoint": {"uri": "ftp://x.example/n"}}),
     "BadRequestData", 400, ("notification.endpoint.uri",)),
    (subscription(URI, notification={"endpoint": {"uri": URI, "accept": "text/xml"}}),
     "BadRequestData", 400, ("notification.endpoint.accept",)),
    (subscription(URI, notification={"endpoint": {"uri": URI, "receiverInfo": [
        {"key": "X-A", "value": "a\r\nInjected: 1"}]}}), "BadRequestData", 400,
     ("receiverInfo",)),
    (subscription(URI, notification={"endpoint": {"uri": "mqtt://broker:1883/topic"}}),
     "OperationNotSupported", 422, ("MQTT",)),
])
async def test_create_refuses_bad_subscriptions_naming_the_member(admin, body, kind, status,
                                                                  words):
    problem(await admin.post(SUBS, json=body), kind, status, *words)


async def test_create_refuses_what_is_not_json(admin):
    r = await admin.post(SUBS, content=b"{not json", headers={"Content-Type":
                                                             "application/json"})
    problem(r, "InvalidRequest", 400, "JSON")
    r = await admin.post(SUBS, content=b"[1]", headers={"Content-Type": "application/json"})
    problem(r, "BadRequestData", 400, "object")
    r = await admin.post(SUBS, content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "Content-Type" in r.json()["detail"]


async def test_an_unknown_context_is_refused(admin):
    r = await admin.post(SUBS, json=subscription(URI), headers={
        "Link": '<https://example.org/unknown.jsonld>; rel="http://www.w3.org/ns/json-ld#'
                'context"; type="application/ld+json"'})
    problem(r, "LdContextNotAvailable", 503)


async def test_an_id_taken_answers_already_exists(admin):
    body = subscription(URI, id="urn:ngsi-ld:Subscription:twice")
    assert (await admin.post(SUBS, json=body)).status_code == 201
    problem(await admin.post(SUBS, json=body), "AlreadyExists", 409, "twice")


async def test_list_pages_and_counts(admin):
    for n in range(5):
        await admin.post(SUBS, json=subscription(URI, id=f"urn:ngsi-ld:Subscription:{n}"))
    r = await admin.get(SUBS, params={"limit": 2, "offset": 1, "count": "true"})
    assert r.status_code == 200 and r.headers["ngsild-results-count"] == "5"
    assert [s["id"][-1] for s in r.json()] == ["1", "2"]
    assert "rel=\"http://www.w3.org/ns/json-ld#context\"" in r.headers["link"]
    assert len((await admin.get(SUBS)).json()) == 5
    problem(await admin.get(SUBS, params={"limit": 5000}), "TooManyResults", 403, "limit")
    problem(await admin.get(SUBS, params={"limit": -1}), "BadRequestData", 400, "limit")
    problem(await admin.get(SUBS, params={"limit": 0}), "BadRequestData", 400, "count")


def page_links(r) -> set[str]:
    """The Link header's prev/next links (the context's link left out)."""
    parts = [p.replace(" ", "") for p in r.headers.get("link", "").split(",") if p.strip()]
    return {p for p in parts if "json-ld#context" not in p}


async def test_a_page_links_to_its_neighbours(admin):
    for n in range(3):
        await admin.post(SUBS, json=subscription(URI, id=f"urn:ngsi-ld:Subscription:{n}"))
    jsonld = {"Accept": "application/ld+json"}
    r = await admin.get(SUBS, params={"limit": 1, "offset": 1}, headers=jsonld)
    assert [s["id"] for s in r.json()] == ["urn:ngsi-ld:Subscription:1"]
    assert page_links(r) == {
        f'<{SUBS}?limit=1&offset=0>;rel="prev";type="application/ld+json"',
        f'<{SUBS}?limit=1&offset=2>;rel="next";type="application/ld+json"'}
    r = await admin.get(SUBS, params={"limit": 2, "offset": 2, "count": "true"})
    assert page_links(r) == {f'<{SUBS}?limit=2&offset=0&count=true>;rel="prev";'
                             'type="application/json"'}
    assert "json-ld#context" in r.headers["link"]  # the context's link kept beside them
    assert page_links(await admin.get(SUBS)) == set()  # one page: no neighbours


async def test_retrieve_an_unknown_or_malformed_id(admin):
    problem(await admin.get(f"{SUBS}/urn:ngsi-ld:Subscription:none"), "ResourceNotFound", 404)
    problem(await admin.get(f"{SUBS}/not-a-uri"), "BadRequestData", 400, "subscriptionId")
    problem(await admin.delete(f"{SUBS}/urn:ngsi-ld:Subscription:none"), "ResourceNotFound",
            404)
    problem(await admin.patch(f"{SUBS}/urn:ngsi-ld:Subscription:none", json={"q": "a==1"}),
            "ResourceNotFound", 404)


async def test_update_changes_members_and_status(admin):
    r = await admin.post(SUBS, json=subscription(URI, throttling=5))
    where = r.headers["location"]
    r = await admin.patch(where, json={"throttling": 60, "description": "slower",
                                       "notification": {"format": "concise"}})
    assert r.status_code == 204, r.text
    got = (await admin.get(where)).json()
    assert got["throttling"] == 60 and got["description"] == "slower"
    assert got["notification"]["format"] == "concise"
    assert got["notification"]["endpoint"]["uri"] == URI  # the rest of it kept
    assert (await admin.patch(where, json={"isActive": False})).status_code == 204
    assert (await admin.get(where)).json()["status"] == "paused"
    assert (await admin.patch(where, json={"isActive": True})).status_code == 204
    assert (await admin.get(where)).json()["status"] == "active"
    assert (await admin.patch(where, json={"description": None})).status_code == 204
    assert "description" not in (await admin.get(where)).json()


async def test_update_refuses_bad_fragments(admin):
    where = (await admin.post(SUBS, json=subscription(URI, throttling=5))).headers["location"]
    problem(await admin.patch(where, json={"expiresAt": "2001-01-01T00:00:00Z"}),
            "BadRequestData", 400, "expiresAt")
    problem(await admin.patch(where, json={"notification": None}), "BadRequestData", 400,
            "notification")
    problem(await admin.patch(where, json={"timeInterval": 30}), "BadRequestData", 400,
            "timeInterval")
    problem(await admin.patch(where, json={"id": "urn:ngsi-ld:Subscription:other"}),
            "BadRequestData", 400, "id")
    problem(await admin.patch(where, json={"timesSent": 3}), "BadRequestData", 400,
            "no member")
    assert (await admin.get(where)).json()["throttling"] == 5  # unchanged by the refusals


async def test_a_merge_patch_fragment_updates_with_its_link_context(admin):
    where = (await admin.post(SUBS, json=subscription(URI, throttling=5))).headers["location"]
    r = await admin.patch(where, content=b'{"throttling": 30, "watchedAttributes": ["name"]}',
                          headers={"Content-Type": "application/merge-patch+json",
                                   **link(SDM_CONTEXT)})
    assert r.status_code == 204, r.text
    got = (await admin.get(where, headers=link(SDM_CONTEXT))).json()
    assert got["throttling"] == 30 and got["watchedAttributes"] == ["name"]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", SUBS), ("GET", SUBS), ("GET", f"{SUBS}/urn:ngsi-ld:Subscription:none"),
    ("PATCH", f"{SUBS}/urn:ngsi-ld:Subscription:none"),
    ("DELETE", f"{SUBS}/urn:ngsi-ld:Subscription:none"),
])
async def test_a_query_parameter_the_operation_does_not_have_is_invalid(admin, method, path):
    # Clause 6.3.20; refused before the subscription is looked up, so never a 404.
    r = await admin.request(method, path, params={"invalidParams": "invalidValue"},
                            json=subscription(URI) if method == "POST" else {"throttling": 1}
                            if method == "PATCH" else None)
    problem(r, "InvalidRequest", 400, "invalidParams")


async def test_what_the_client_accepts_and_sends_is_checked_before_the_lookup(admin):
    missing = f"{SUBS}/urn:ngsi-ld:Subscription:none"
    for accept in ("application/xml", "application/geo+json"):
        r = await admin.get(missing, headers={"Accept": accept})
        problem(r, "InvalidRequest", 406, "Accept")
        problem(await admin.get(SUBS, headers={"Accept": accept}), "InvalidRequest", 406,
                "Accept")
    r = await admin.patch(missing, content=b'{"throttling": 1}',
                          headers={"Content-Type": "text/plain"})
    problem(r, "InvalidRequest", 415, "Content-Type")
    # What is well formed reaches the lookup; a weighted Accept picks JSON-LD.
    problem(await admin.get(missing, headers={"Accept": "application/xml, */*;q=0.1"}),
            "ResourceNotFound", 404)
    where = (await admin.post(SUBS, json=subscription(URI))).headers["location"]
    r = await admin.get(where, headers={"Accept": "application/json;q=0.5, "
                                                  "application/ld+json"})
    assert r.headers["content-type"].startswith("application/ld+json") and "@context" in r.json()


async def test_delete_removes_it(admin):
    where = (await admin.post(SUBS, json=subscription(URI))).headers["location"]
    assert (await admin.delete(where)).status_code == 204
    problem(await admin.get(where), "ResourceNotFound", 404)
    assert (await admin.get(SUBS)).json() == []


async def test_only_admin_and_operator_keys_manage_subscriptions(live):
    async with live.client(await live.key("station")) as c:
        r = await c.post(SUBS, json=subscription(URI))
    assert r.status_code == 403 and r.json()["type"] == "about:blank"
    async with live.client() as c:
        assert (await c.get(SUBS)).status_code == 401


async def test_a_scoped_key_sees_only_its_scopes_subscriptions(live, admin):
    city = (await admin.post(SUBS, json=subscription(URI))).headers["location"]
    async with live.client(await live.key("operator", TOWN_A)) as town:
        mine = (await town.post(SUBS, json=subscription(URI))).headers["location"]
        listed = [s["id"] for s in (await town.get(SUBS)).json()]
        assert listed == [mine.rsplit("/", 1)[1]]
        problem(await town.get(city), "ResourceNotFound", 404)
        problem(await town.delete(city), "ResourceNotFound", 404)
        # An id taken by a subscription out of reach is refused without showing it.
        r = await town.post(SUBS, json=subscription(URI, id=city.rsplit("/", 1)[1]))
        assert r.status_code == 403
    assert len((await admin.get(SUBS)).json()) == 2  # the city sees both


async def test_subscriptions_survive_a_restart(tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d") as live:
        async with live.client(await live.key("admin")) as c:
            where = (await c.post(SUBS, json=subscription(URI, q="floors>3"))).headers[
                "location"]
    async with live_node(grid_pack, tmp_path / "d") as live:
        async with live.client(await live.key("admin")) as c:
            got = await c.get(where)
    assert got.status_code == 200 and got.json()["q"] == "floors>3"
