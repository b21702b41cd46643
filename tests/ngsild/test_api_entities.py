"""The NGSI-LD entity routes over HTTP on a started node: every operation, its errors as
ProblemDetails with the ETSI types (the field at fault named), content negotiation, paging,
q and geo-queries, and scope."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from cityops.ngsild.contexts import CORE_CONTEXT_URL
from tests.api.scope_kinds.base import PLACE, TOWN_A, TOWN_B
from tests.ngsild.ngsild_kit import (
    NGSI,
    admin_principal,
    building,
    link,
    ngsi_client,
    problem_type,
)

E = NGSI + "/entities"
ID = "urn:ngsi-ld:Building:1"


async def _make(c: Any, *docs: dict[str, Any]) -> None:
    for doc in docs:
        r = await c.post(E, json=doc)
        assert r.status_code == 201, r.text


async def test_create_retrieve_delete(live) -> None:
    async with await ngsi_client(live) as c:
        r = await c.post(E, json=building(1, name="Town hall", floors=4))
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"{E}/{ID}"
        r = await c.get(f"{E}/{ID}")
        assert r.status_code == 200
        body = r.json()
        assert body["id"] == ID and body["type"] == "Building"
        assert body["floors"] == {"type": "Property", "value": 4}
        assert CORE_CONTEXT_URL in r.headers["link"]
        r = await c.get(f"{E}/{ID}", params={"options": "keyValues", "attrs": "name"})
        assert r.json() == {"id": ID, "type": "Building", "name": "Town hall"}
        r = await c.get(f"{E}/{ID}", params={"options": "sysAttrs"})
        assert r.json()["createdAt"].endswith("Z") and "modifiedAt" in r.json()["floors"]
        assert (await c.delete(f"{E}/{ID}")).status_code == 204
        r = await c.get(f"{E}/{ID}")
        assert r.status_code == 404 and problem_type(r) == "ResourceNotFound"


async def test_create_errors_name_the_field(live) -> None:
    async with await ngsi_client(live) as c:
        await _make(c, building(1))
        r = await c.post(E, json=building(1))
        assert r.status_code == 409 and problem_type(r) == "AlreadyExists"
        r = await c.post(E, json={"id": "not a uri", "type": "Building"})
        assert r.status_code == 400 and problem_type(r) == "BadRequestData"
        assert "id" in r.json()["detail"]
        r = await c.post(E, json={"id": "urn:x:1", "type": "Building",
                                  "owner": {"type": "Relationship", "object": "nope"}})
        assert r.status_code == 400 and "owner.object" in r.json()["detail"]
        r = await c.post(E, content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and problem_type(r) == "InvalidRequest"
        r = await c.post(E, json=building(2), headers=link("https://example.org/ctx.jsonld"))
        assert r.status_code == 503 and problem_type(r) == "LdContextNotAvailable"
        r = await c.post(E, content=b"<x/>", headers={"content-type": "application/xml"})
        assert r.status_code == 415
        r = await c.get(f"{E}/{ID}", headers={"accept": "text/html"})
        assert r.status_code == 406


async def test_ld_json_carries_its_context_in_the_body(live) -> None:
    context = {"ex": "http://example.org/", "height": "ex:height"}
    async with await ngsi_client(live) as c:
        doc = {**building(1, height=30), "@context": context}
        ld = {"content-type": "application/ld+json"}
        r = await c.post(E, json=doc, headers=ld)
        assert r.status_code == 201, r.text
        r = await c.post(E, json=building(2), headers=ld)  # no @context in an ld+json body
        assert r.status_code == 400 and "@context" in r.json()["detail"]
        r = await c.post(E, json=doc, headers={**ld, **link(CORE_CONTEXT_URL)})
        assert r.status_code == 400 and problem_type(r) == "BadRequestData"
        r = await c.post(E, json={**building(3), "@context": context})  # application/json
        assert r.status_code == 400
        # Without that context the attribute has another name (its full IRI).
        r = await c.get(f"{E}/{ID}")
        assert "http://example.org/height" in r.json()
        r = await c.get(f"{E}/{ID}", headers={"accept": "application/ld+json"})
        assert r.headers["content-type"].startswith("application/ld+json")
        assert r.json()["@context"] == CORE_CONTEXT_URL
        # The inline context is served under an id of its own: a Link to it works.
        r = await c.get(NGSI + "/jsonldContexts", params={"kind": "ImplicitlyCreated"})
        url = r.json()[0]
        r = await c.get(f"{E}/{ID}", headers=link(url))
        assert r.json()["height"]["value"] == 30


async def test_attributes_append_update_partial_delete(live) -> None:
    async with await ngsi_client(live) as c:
        await _make(c, building(1, name="A"))
        url = f"{E}/{ID}/attrs"
        r = await c.post(url, json={"name": {"type": "Property", "value": "B"},
                                    "floors": {"type": "Property", "value": 2}},
                         params={"options": "noOverwrite"})
        assert r.status_code == 207
        assert r.json()["updated"] == ["floors"]
        assert r.json()["notUpdated"][0]["attributeName"] == "name"
        r = await c.patch(url, json={"floors": {"type": "Property", "value": 3},
                                     "colour": {"type": "Property", "value": "red"}})
        assert r.status_code == 207 and r.json()["updated"] == ["floors"]
        r = await c.patch(f"{url}/floors", json={"value": 5, "unitCode": "C62"})
        assert r.status_code == 204
        r = await c.patch(f"{url}/nothing", json={"value": 5})
        assert r.status_code == 404 and problem_type(r) == "ResourceNotFound"
        assert (await c.delete(f"{url}/name")).status_code == 204
        r = await c.delete(f"{url}/name")
        assert r.status_code == 404 and "attrId" in r.json()["detail"]
        body = (await c.get(f"{E}/{ID}")).json()
        assert body["floors"] == {"type": "Property", "value": 5, "unitCode": "C62"}
        assert "name" not in body
        r = await c.patch(f"{E}/{ID}", json={"floors": "urn:ngsi-ld:null", "roof": "flat"})
        assert r.status_code == 204
        body = (await c.get(f"{E}/{ID}", params={"options": "keyValues"})).json()
        assert "floors" not in body and body["roof"] == "flat"
        r = await c.put(f"{E}/{ID}", json={"type": "Building", "only": 1})
        assert r.status_code == 204
        body = (await c.get(f"{E}/{ID}", params={"options": "keyValues"})).json()
        assert body == {"id": ID, "type": "Building", "only": 1}


async def test_query_type_q_paging_count(live) -> None:
    async with await ngsi_client(live) as c:
        await _make(c, *(building(n, floors=n, name=f"b{n}") for n in range(1, 8)))
        r = await c.get(E)
        assert r.status_code == 400 and problem_type(r) == "BadRequestData"
        r = await c.get(E, params={"type": "Building", "limit": 3, "count": "true"})
        assert [e["id"] for e in r.json()] == [f"urn:ngsi-ld:Building:{n}" for n in (1, 2, 3)]
        assert r.headers["NGSILD-Results-Count"] == "7"
        r = await c.get(E, params={"type": "Building", "limit": 3, "offset": 6})
        assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Building:7"]
        r = await c.get(E, params={"type": "Building", "limit": 5000})
        assert r.status_code == 403 and problem_type(r) == "TooManyResults"
        r = await c.get(E, params={"q": "floors>=3;floors<5", "options": "keyValues",
                                   "attrs": "floors"})
        assert sorted(e["floors"] for e in r.json()) == [3, 4]
        r = await c.get(E, params={"q": 'name=="b2"|floors==6..7'})
        assert len(r.json()) == 3
        r = await c.get(E, params={"q": "floors>"})
        assert r.status_code == 400 and "q:" in r.json()["detail"]
        r = await c.get(E, params={"q": "(" * 20 + "a" + ")" * 20})
        assert r.status_code == 403 and problem_type(r) == "TooComplexQuery"
        r = await c.get(E, params={"idPattern": ".*:[12]$", "type": "Building"})
        assert len(r.json()) == 2
        two = "urn:ngsi-ld:Building:4,urn:ngsi-ld:Building:5"
        r = await c.get(E, params={"id": two, "type": "Building"})
        assert len(r.json()) == 2
        # Ids alone are no query (clause 5.7.2); local=true asks for everything held here.
        r = await c.get(E, params={"id": two})
        assert r.status_code == 400 and "local=true" in r.json()["detail"]
        r = await c.get(E, params={"local": "true", "limit": 1000})
        held = {e["id"] for e in r.json()}
        assert {f"urn:ngsi-ld:Building:{n}" for n in range(1, 8)} < held  # and the devices
        r = await c.get(E, params={"attrs": "id,type"})
        assert r.status_code == 400 and "not an attribute" in r.json()["detail"]


async def test_geo_queries(live) -> None:
    async with await ngsi_client(live) as c:
        await _make(c, building(1, lat=31.150, lon=121.450), building(2, lat=31.150,
                                                                       lon=121.460),
                    building(3, lat=31.300, lon=121.800))
        near = {"georel": "near;maxDistance==2000", "geometry": "Point",
                "coordinates": "[121.45,31.15]", "type": "Building"}
        r = await c.get(E, params=near)  # 121.46 is ~950 m east at this latitude
        assert sorted(e["id"][-1] for e in r.json()) == ["1", "2"]
        r = await c.get(E, params={**near, "georel": "near;maxDistance==500"})
        assert [e["id"][-1] for e in r.json()] == ["1"]
        box = "[[[121.4,31.1],[121.5,31.1],[121.5,31.2],[121.4,31.2],[121.4,31.1]]]"
        for rel, expected in (("within", ["1", "2"]), ("intersects", ["1", "2"]),
                              ("disjoint", ["3"])):
            r = await c.get(E, params={"type": "Building", "georel": rel,
                                       "geometry": "Polygon", "coordinates": box})
            assert sorted(e["id"][-1] for e in r.json()) == expected, rel
        r = await c.get(E, params={**near, "georel": "near"})
        assert r.status_code == 400 and "georel" in r.json()["detail"]
        r = await c.get(E, params={**near, "coordinates": "[1"})
        assert r.status_code == 400 and "coordinates" in r.json()["detail"]
        r = await c.get(E, params={**near, "geometry": "Circle"})
        assert r.status_code == 400 and "geometry" in r.json()["detail"]


async def test_batch_operations(live) -> None:
    async with await ngsi_client(live) as c:
        ops = NGSI + "/entityOperations"
        r = await c.post(ops + "/create", json=[building(1), building(2)])
        assert r.status_code == 201 and r.json() == [ID, "urn:ngsi-ld:Building:2"]
        r = await c.post(ops + "/create", json=[building(3), building(1), {"id": "bad"}])
        assert r.status_code == 207
        assert r.json()["success"] == ["urn:ngsi-ld:Building:3"]
        kinds = {e["entityId"]: e["error"]["type"].rsplit("/", 1)[1] for e in r.json()["errors"]}
        assert kinds == {ID: "AlreadyExists", "bad": "BadRequestData"}
        r = await c.post(ops + "/upsert", json=[building(1, floors=9), building(4)])
        assert r.status_code == 201 and r.json() == ["urn:ngsi-ld:Building:4"]
        r = await c.post(ops + "/upsert", json=[building(1, roof="flat")],
                         params={"options": "update"})
        assert r.status_code == 204
        body = (await c.get(f"{E}/{ID}", params={"options": "keyValues"})).json()
        assert body["floors"] == 9 and body["roof"] == "flat"
        r = await c.post(ops + "/update", json=[building(1, floors=10),
                                                building(99, floors=1)])
        assert r.status_code == 207
        assert r.json()["errors"][0]["error"]["type"].endswith("ResourceNotFound")
        r = await c.post(ops + "/delete", json=[ID, "urn:ngsi-ld:Building:99"])
        assert r.status_code == 207 and r.json()["success"] == [ID]
        r = await c.post(ops + "/delete", json={"not": "a list"})
        assert r.status_code == 400


async def test_types_and_attributes(live) -> None:
    async with await ngsi_client(live) as c:
        await _make(c, building(1, name="x"), {"id": "urn:ngsi-ld:Park:1", "type": "Park",
                                               "owner": {"object": ID}})
        r = await c.get(NGSI + "/types")
        assert {"Building", "Park"} <= set(r.json()["typeList"])
        r = await c.get(NGSI + "/types", params={"details": "true"})
        park = next(t for t in r.json() if t["typeName"] == "Park")
        assert park["attributeNames"] == ["owner"]
        r = await c.get(NGSI + "/types/Building")
        assert r.json()["entityCount"] == 1
        assert (await c.get(NGSI + "/types/Nothing")).status_code == 404
        r = await c.get(NGSI + "/attributes/owner")
        assert r.json()["attributeTypes"] == ["Relationship"] and r.json()["typeNames"] == ["Park"]
        r = await c.get(NGSI + "/attributes")
        assert {"name", "owner", "location"} <= set(r.json()["attributeList"])


async def test_contexts_served_and_hosted(live) -> None:
    async with await ngsi_client(live) as c:
        r = await c.get(NGSI + "/jsonldContexts/ngsi-ld-core-context-v1.8.jsonld")
        assert r.json()["@context"]["location"] == "ngsi-ld:location"
        r = await c.post(NGSI + "/jsonldContexts",
                         json={"@context": {"storeys": "http://example.org/storeys"}})
        assert r.status_code == 201
        url = r.headers["location"]
        r = await c.post(E, json={**building(1), "storeys": 3}, headers=link(url))
        assert r.status_code == 201, r.text
        r = await c.get(f"{E}/{ID}")
        assert "http://example.org/storeys" in r.json()
        assert (await c.delete(url)).status_code == 204
        assert (await c.get(url)).status_code == 404


async def test_scoped_keys_see_and_write_only_their_area(live) -> None:
    a, b = PLACE[TOWN_A], PLACE[TOWN_B]
    theirs = "urn:ngsi-ld:Building:2"
    async with await ngsi_client(live) as admin:
        await _make(admin, building(1, lat=a["lat"], lon=a["lon"]),
                    building(2, lat=b["lat"], lon=b["lon"]),
                    {"id": "urn:ngsi-ld:Note:1", "type": "Note", "text": "no location"})
    async with await ngsi_client(live, "operator", TOWN_A) as c:
        r = await c.get(E, params={"type": "Building,Note"})
        assert [e["id"] for e in r.json()] == [ID]  # never one without a location
        for url in (f"{E}/{theirs}", f"{E}/urn:ngsi-ld:Note:1"):
            assert (await c.get(url)).status_code == 404
        assert (await c.patch(f"{E}/{theirs}/attrs", json={"name": "x"})).status_code == 404
        r = await c.post(E, json=building(3, lat=b["lat"], lon=b["lon"]))
        assert r.status_code == 403
        r = await c.post(NGSI + "/entityOperations/upsert",
                         json=[building(4, lat=a["lat"], lon=a["lon"]),
                               building(2, lat=a["lat"], lon=a["lon"])])
        assert r.status_code == 403  # refused whole: nothing written
        assert live.node.ngsild.entities.peek("urn:ngsi-ld:Building:4") is None
        # Moving its own entity out of its area is refused too.
        r = await c.patch(f"{E}/{ID}", json={"location": {"type": "Point",
                                                          "coordinates": [b["lon"], b["lat"]]}})
        assert r.status_code == 403
        r = await c.get(NGSI + "/types")
        assert "Building" in r.json()["typeList"] and "Note" not in r.json()["typeList"]
    async with await ngsi_client(live, "device", TOWN_A) as c:
        r = await c.post(E, json=building(5, lat=a["lat"], lon=a["lon"]))
        assert r.status_code == 403  # device keys write readings, not context entities


async def test_query_via_post_is_the_get_query(live) -> None:
    """POST /entityOperations/query answers what GET /entities answers for the same query,
    with several entity selectors besides, and names the member at fault."""
    url = NGSI + "/entityOperations/query"
    async with await ngsi_client(live) as c:
        await _make(c, *(building(n, lat=31.15, lon=121.45 + n / 100, floors=n)
                         for n in range(1, 6)),
                    {"id": "urn:ngsi-ld:Park:1", "type": "Park", "name": "green"})
        # 0.01 degree of longitude is ~953 m here: Buildings 1 to 4 lie within 4 km.
        near = {"georel": "near;maxDistance==4000", "geometry": "Point",
                "coordinates": [121.45, 31.15]}
        r = await c.post(url, json={"type": "Query", "entities": [{"type": "Building"}],
                                    "q": "floors>=2", "geoQ": near, "attrs": ["floors"]},
                         params={"options": "keyValues", "count": "true", "limit": 2})
        assert r.status_code == 200, r.text
        assert r.json() == [{"id": f"urn:ngsi-ld:Building:{n}", "type": "Building",
                             "floors": n} for n in (2, 3)]
        assert r.headers["NGSILD-Results-Count"] == "3"
        r2 = await c.get(E, params={"type": "Building", "q": "floors>=2",
                                    "georel": near["georel"], "geometry": "Point",
                                    "coordinates": "[121.45,31.15]", "attrs": "floors",
                                    "options": "keyValues", "count": "true", "limit": 2})
        assert r2.json() == r.json() and r2.headers["NGSILD-Results-Count"] == "3"
        r = await c.post(url, params={"offset": 2}, json={"type": "Query",
                                                          "entities": [{"type": "Building"}]})
        assert [e["id"][-1] for e in r.json()] == ["3", "4", "5"]
        # Selectors are alternatives; an entity two of them match is listed once.
        r = await c.post(url, params={"count": "true"}, json={
            "type": "Query", "entities": [{"id": "urn:ngsi-ld:Park:1", "type": "Park"},
                                          {"idPattern": ".*:[12]$", "type": "Building"},
                                          {"id": "urn:ngsi-ld:Building:1"}]})
        assert sorted(e["id"] for e in r.json()) == [
            "urn:ngsi-ld:Building:1", "urn:ngsi-ld:Building:2", "urn:ngsi-ld:Park:1"]
        assert r.headers["NGSILD-Results-Count"] == "3"
        # The context in an application/ld+json body, and the answer in its media.
        r = await c.post(url, json={"type": "Query", "entities": [{"type": "ex:Park"}],
                                    "@context": [{"ex": "https://uri.etsi.org/ngsi-ld/"
                                                        "default-context/"},
                                                 CORE_CONTEXT_URL]},
                         headers={"content-type": "application/ld+json",
                                  "accept": "application/ld+json"})
        assert r.status_code == 200 and [e["id"] for e in r.json()] == ["urn:ngsi-ld:Park:1"]
        assert "@context" in r.json()[0]
        for body, named in (({"type": "Query"}, "type, attrs"),
                            ({"entities": [{"type": "Park"}]}, "type"),
                            ({"type": "Query", "entities": [{}]}, "entities[0]"),
                            ({"type": "Query", "entities": [{"type": "P", "idPatern": "x"}]},
                             "entities[0].idPatern"),
                            ({"type": "Query", "entities": [{"id": "nope"}]},
                             "entities[0].id"),
                            ({"type": "Query", "entities": {"type": "Park"}}, "entities"),
                            ({"type": "Query", "q": "floors>", "entities": [{"type": "P"}]},
                             "q:"),
                            ({"type": "Query", "geoQ": {**near, "georel": "near"}},
                             "geoQ.georel"),
                            ({"type": "Query", "geoQ": {**near, "coordinates": {"x": 1}}},
                             "geoQ.coordinates"),
                            ({"type": "Query", "attrs": "name", "limits": 3}, "limits"),
                            ({"type": "Query", "attrs": [3]}, "attrs")):
            r = await c.post(url, json=body)
            assert r.status_code == 400, (body, r.text)
            assert problem_type(r) == "BadRequestData" and named in r.json()["detail"], r.text
        r = await c.post(url, json={"type": "Query", "entities": [{"type": "Park"}]},
                         params={"limit": 5000})
        assert r.status_code == 403 and problem_type(r) == "TooManyResults"
        r = await c.post(url, content=b"[", headers={"content-type": "application/json"})
        assert r.status_code == 400 and problem_type(r) == "InvalidRequest"


async def test_query_via_post_keeps_to_the_keys_scope(live) -> None:
    a, b = PLACE[TOWN_A], PLACE[TOWN_B]
    async with await ngsi_client(live) as admin:
        await _make(admin, building(1, lat=a["lat"], lon=a["lon"]),
                    building(2, lat=b["lat"], lon=b["lon"]))
    async with await ngsi_client(live, "operator", TOWN_A) as c:
        r = await c.post(NGSI + "/entityOperations/query", params={"count": "true"},
                         json={"type": "Query", "entities": [{"type": "Building"}]})
        assert [e["id"] for e in r.json()] == [ID]
        assert r.headers["NGSILD-Results-Count"] == "1"
    async with await ngsi_client(live, "citizen") as c:
        r = await c.post(NGSI + "/entityOperations/query",
                         json={"type": "Query", "entities": [{"type": "Building"}]})
        assert r.status_code == 403


async def test_types_and_attributes_from_the_catalogues(live, monkeypatch) -> None:
    """An unscoped key's /types and /attributes come from the context store's counters (kept
    as entities come and go), never from a walk over its entities; a scoped key's from what
    it sees."""
    store = live.node.ngsild.entities
    async with await ngsi_client(live) as c:
        await _make(c, building(1, name="a", floors=2), building(2, name="b"),
                    {"id": "urn:ngsi-ld:Park:1", "type": ["Park", "Building"],
                     "owner": {"object": ID}, "name": {"value": "p", "datasetId": "urn:d:1"}})
        assert (await c.patch(f"{E}/urn:ngsi-ld:Building:2", json={
            "name": "urn:ngsi-ld:null", "floors": {"type": "Property", "value": 1}})
                ).status_code == 204
        assert (await c.delete(f"{E}/urn:ngsi-ld:Park:1")).status_code == 204
        await _make(c, {"id": "urn:ngsi-ld:Park:2", "type": "Park",
                        "owner": {"type": "Relationship", "object": ID}})

        def no_walk(*args, **kwargs):
            raise AssertionError("the context store was walked")

        monkeypatch.setattr(store, "find", no_walk)
        r = await c.get(NGSI + "/types/Building")
        assert r.json()["entityCount"] == 2
        assert {d["attributeName"]: d["attributeTypes"] for d in r.json()["attributeDetails"]
                } == {"floors": ["Property"], "location": ["GeoProperty"],
                      "name": ["Property"]}
        r = await c.get(NGSI + "/types", params={"details": "true"})
        park = next(t for t in r.json() if t["typeName"] == "Park")
        assert park["attributeNames"] == ["owner"]
        r = await c.get(NGSI + "/attributes/name")
        assert r.json()["attributeCount"] == 1 and r.json()["typeNames"] == ["Building"]
        r = await c.get(NGSI + "/attributes/floors")
        assert r.json()["attributeCount"] == 2
        r = await c.get(NGSI + "/attributes", params={"details": "true"})
        owner = next(a for a in r.json() if a["attributeName"] == "owner")
        assert owner["attributeTypes"] == ["Relationship"]
        assert (await c.get(NGSI + "/attributes/storeys")).status_code == 404
        monkeypatch.undo()
        # The counters agree with a walk of what is stored.
        walked = {t: {a for e in store.find(await admin_principal(live), types={t}, ids=None)
                      for a in e if a.startswith("http")} for t in store.types()}
        assert store.attributes() == walked


NULL = "urn:ngsi-ld:null"


async def test_ngsi_ld_null_deletes_attributes_and_instances(live) -> None:
    url = f"{E}/{ID}"
    async with await ngsi_client(live) as c:
        await _make(c, {**building(1, name="A"),
                        "street": {"type": "LanguageProperty", "languageMap": {"fr": "Rue"}},
                        "owner": [{"type": "Relationship", "object": "urn:p:1"},
                                  {"type": "Relationship", "object": "urn:p:2",
                                   "datasetId": "urn:d:2"}]})
        r = await c.patch(url + "/attrs", json={
            "name": {"type": "Property", "value": NULL},
            "location": {"type": "GeoProperty", "value": NULL},
            "street": {"type": "LanguageProperty", "languageMap": {"@none": NULL}},
            "owner": {"type": "Relationship", "object": NULL, "datasetId": "urn:d:2"}})
        assert r.status_code == 204, r.text
        body = (await c.get(url)).json()
        assert not {"name", "location", "street"} & set(body)
        assert body["owner"] == {"type": "Relationship", "object": "urn:p:1"}
        r = await c.patch(url + "/attrs", json={"name": {"value": NULL}})
        assert r.status_code == 207 and r.json()["notUpdated"][0]["attributeName"] == "name"
        r = await c.patch(url + "/attrs/owner", json={"object": NULL})
        assert r.status_code == 204 and "owner" not in (await c.get(url)).json()
        # Null is how an update deletes: it is never a value to create.
        r = await c.post(E, json={**building(2), "name": {"type": "Property", "value": NULL}})
        assert r.status_code == 400 and "name" in r.json()["detail"]
        await _make(c, building(3, name="C", floors=1))
        r = await c.patch(f"{E}/urn:ngsi-ld:Building:3", json={"name": NULL, "floors": 2})
        assert r.status_code == 204
        body = (await c.get(f"{E}/urn:ngsi-ld:Building:3", params={"options": "keyValues"})
                ).json()
        assert "name" not in body and body["floors"] == 2


async def test_partial_update_and_replace_one_attribute(live) -> None:
    url = f"{E}/{ID}/attrs"
    async with await ngsi_client(live) as c:
        await _make(c, {**building(1), "parkedAt": {
            "type": "Relationship", "object": "urn:p:1", "observedAt": "2024-01-01T00:00:00Z",
            "by": {"type": "Relationship", "object": "urn:person:bob"}}})
        # Only a sub-attribute: merged into the Relationship, which stays one.
        r = await c.patch(url + "/parkedAt",
                          json={"by": {"type": "Relationship", "object": "urn:person:jo"}})
        assert r.status_code == 204, r.text
        parked = (await c.get(f"{E}/{ID}")).json()["parkedAt"]
        assert parked["type"] == "Relationship" and parked["object"] == "urn:p:1"
        assert parked["by"]["object"] == "urn:person:jo"
        r = await c.patch(url + "/parkedAt", json={"type": "Property", "value": 3})
        assert r.status_code == 400 and "Relationship" in r.json()["detail"]
        r = await c.put(url + "/parkedAt", json={"type": "Property", "value": "gone"})
        assert r.status_code == 204
        assert (await c.get(f"{E}/{ID}")).json()["parkedAt"] == {"type": "Property",
                                                                 "value": "gone"}
        for name, status in (("nothing", 404), ("scope", 400), ("bad name", 400),
                             ("@invalid", 400)):
            r = await c.put(f"{url}/{name}", json={"type": "Property", "value": 1})
            assert r.status_code == status, (name, r.text)
        r = await c.put(url + "/parkedAt", json={"value": 1, "datasetId": "urn:d:9"})
        assert r.status_code == 404 and "datasetId" in r.json()["detail"]


async def test_fragments_add_types_and_set_scope(live) -> None:
    url = f"{E}/{ID}"
    async with await ngsi_client(live) as c:
        await _make(c, {**building(1), "scope": "/Pudong/Lujiazui"})
        r = await c.patch(url + "/attrs", json={"type": ["Landmark"], "scope": "/Pudong/Bund"})
        assert r.status_code == 204
        body = (await c.get(url)).json()
        assert body["type"] == ["Building", "Landmark"] and body["scope"] == "/Pudong/Bund"
        r = await c.post(url + "/attrs", params={"options": "noOverwrite"},
                         json={"scope": "/Pudong/Zhangjiang"})
        assert r.status_code == 204
        assert (await c.get(url)).json()["scope"] == ["/Pudong/Zhangjiang", "/Pudong/Bund"]
        assert (await c.delete(url + "/attrs/scope")).status_code == 204
        assert "scope" not in (await c.get(url)).json()
        r = await c.patch(url + "/attrs", json={"scope": "/Pudong/Bund"})
        assert r.status_code == 207 and r.json()["notUpdated"][0]["attributeName"] == "scope"
        r = await c.patch(url + "/attrs", json={"scope": "no-slash"})
        assert r.status_code == 400 and "scope" in r.json()["detail"]


async def test_batch_update_merge_and_their_nulls(live) -> None:
    ops = NGSI + "/entityOperations"
    async with await ngsi_client(live) as c:
        await _make(c, building(1, name="A", floors=1), building(2, name="B"))
        r = await c.post(ops + "/update", params={"options": "noOverwrite"},
                         json=[{"id": ID, "type": "Building", "floors": 5, "roof": "flat"},
                               {"id": "urn:ngsi-ld:Building:2", "name": NULL}])
        assert r.status_code == 207, r.text
        assert r.json()["success"] == ["urn:ngsi-ld:Building:2"]
        assert "floors" in r.json()["errors"][0]["error"]["detail"]
        one = (await c.get(f"{E}/{ID}", params={"options": "keyValues"})).json()
        assert one["floors"] == 1 and one["roof"] == "flat"  # what could be written, was
        assert "name" not in (await c.get(f"{E}/urn:ngsi-ld:Building:2")).json()
        r = await c.post(ops + "/merge", json=[
            {"id": ID, "floors": {"value": 7, "unitCode": "C62"}, "roof": NULL},
            {"id": "urn:ngsi-ld:Building:99", "floors": 1}])
        assert r.status_code == 207
        assert r.json()["errors"][0]["error"]["type"].endswith("ResourceNotFound")
        one = (await c.get(f"{E}/{ID}")).json()
        assert one["floors"] == {"type": "Property", "value": 7, "unitCode": "C62"}
        assert "roof" not in one
        # Upserting one id twice applies both, in order.
        r = await c.post(ops + "/upsert", json=[building(5, floors=1), building(5, floors=2)])
        assert r.status_code == 201 and r.json() == ["urn:ngsi-ld:Building:5"]
        five = (await c.get(f"{E}/urn:ngsi-ld:Building:5", params={"options": "keyValues"}))
        assert five.json()["floors"] == 2
        r = await c.post(ops + "/create",
                         json=[{**building(6), "@context": CORE_CONTEXT_URL}],
                         headers={"content-type": "application/ld+json",
                                  **link(CORE_CONTEXT_URL)})
        assert r.status_code == 400 and "Link" in r.json()["detail"]


async def test_ids_that_hide_characters_are_refused(live) -> None:
    async with await ngsi_client(live) as c:
        for hidden in ("\u202e", "\u200b", "\ufeff", "\ufe0f", "\U000e0100", "\ufdd0",
                       "\U0010ffff", "\u115f", "\u3164", "\uffa0", "\u2800"):
            r = await c.post(E, json={"id": f"urn:ngsi-ld:Building:A{hidden}B",
                                      "type": "Building"})
            assert r.status_code == 400 and "id" in r.json()["detail"], repr(hidden)
        await _make(c, {"id": "urn:ngsi-ld:Building:浦东-1", "type": "Building"})


async def test_a_default_vocab_name_a_context_defines_otherwise_stays_full(live) -> None:
    """Compacted as JSON-LD does: `almostFull` stored under the default vocabulary is not
    written back as a term the client's context gives another meaning."""
    ctx = [{"almostFull": "https://example.org/almostFull"}, CORE_CONTEXT_URL]
    async with await ngsi_client(live) as c:
        await _make(c, building(1, almostFull=True))
        r = await c.get(f"{E}/{ID}", params={"options": "keyValues"},
                        headers={"accept": "application/ld+json"})
        assert r.json()["almostFull"] is True
        r = await c.post(NGSI + "/jsonldContexts", json={"@context": ctx})
        r = await c.get(f"{E}/{ID}", params={"options": "keyValues"},
                        headers=link(r.headers["location"]))
        assert r.json()["ngsi-ld:default-context/almostFull"] is True


async def test_representations_pick_omit_format_lang_datasets(live) -> None:
    url = f"{E}/{ID}"
    async with await ngsi_client(live) as c:
        await _make(c, {**building(1, name="Hall", floors=3),
                        "street": {"type": "LanguageProperty",
                                   "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}},
                        "alias": [{"type": "Property", "value": "default"},
                                  {"type": "Property", "value": "fr",
                                   "datasetId": "urn:d:fr"}]})
        r = await c.get(url, params={"pick": "id,name|floors"})
        assert r.json() == {"id": ID, "name": {"type": "Property", "value": "Hall"},
                            "floors": {"type": "Property", "value": 3}}
        r = await c.get(url, params={"omit": "type,location,street,alias,floors",
                                     "format": "keyValues", "options": "normalized"})
        assert r.json() == {"id": ID, "name": "Hall"}  # format wins over options
        for params in ({"pick": "name", "omit": "name"}, {"pick": "name", "attrs": "floors"},
                       {"pick": "id;name"}, {"pick": "id,,name"}, {"pick": "a{b"},
                       {"pick": "a{}"}, {"pick": "locatedAt{name}"}):
            r = await c.get(url, params=params)
            assert r.status_code == 400 and problem_type(r) == "BadRequestData", params
        for params in ({"pick": "unknown"}, {"omit": "id,type,location,name,floors,street,"
                                                     "alias"}, {"attrs": "unknown"}):
            r = await c.get(url, params=params)
            assert r.status_code == 404, params
        # A malformed request is refused as such, whether or not the entity exists.
        for params in ({"format": "fancy"}, {"options": "keyValues,fancy"}):
            r = await c.get(f"{E}/urn:ngsi-ld:Building:none", params=params)
            assert r.status_code == 400 and problem_type(r) == "InvalidRequest", params
        r = await c.get(url, params={"lang": "nl;q=0.4,fr;q=0.9", "attrs": "street"})
        assert r.json()["street"] == {"type": "Property", "value": "Grand Place", "lang": "fr"}
        r = await c.get(url, params={"lang": "de", "attrs": "street",
                                     "options": "keyValues"})
        assert r.json()["street"] == "Grand Place"  # none asked for: any it has
        r = await c.get(url, params={"lang": "f r"})
        assert r.status_code == 400 and "lang" in r.json()["detail"]
        r = await c.get(url, params={"datasetId": "urn:d:fr", "attrs": "alias"})
        assert r.json()["alias"] == {"type": "Property", "value": "fr",
                                     "datasetId": "urn:d:fr"}
        r = await c.get(url, params={"datasetId": "@none", "attrs": "alias"})
        assert r.json()["alias"] == {"type": "Property", "value": "default"}


async def test_geojson_features(live) -> None:
    geo = {"accept": "application/geo+json"}
    async with await ngsi_client(live) as c:
        await _make(c, {**building(1, name="Hall"), "observationSpace": {
            "type": "GeoProperty", "value": {"type": "Point", "coordinates": [11.0, 12.0]}}},
            {"id": "urn:ngsi-ld:Building:2", "type": "Building", "name": "no place"})
        r = await c.get(f"{E}/{ID}", params={"options": "keyValues"}, headers=geo)
        assert r.headers["content-type"].startswith("application/geo+json")
        body = r.json()
        assert body["type"] == "Feature" and body["id"] == ID
        assert body["geometry"] == {"type": "Point", "coordinates": [121.45, 31.15]}
        assert body["properties"]["name"] == "Hall" and body["@context"] == CORE_CONTEXT_URL
        r = await c.get(f"{E}/{ID}", params={"geometryProperty": "observationSpace"},
                        headers=geo)
        assert r.json()["geometry"]["coordinates"] == [11.0, 12.0]
        assert r.json()["properties"]["location"]["type"] == "GeoProperty"
        r = await c.get(E, params={"type": "Building"}, headers=geo)
        body = r.json()
        assert body["type"] == "FeatureCollection" and len(body["features"]) == 2
        assert [f["geometry"] for f in body["features"]][1] is None
        r = await c.get(NGSI + "/types", headers=geo)  # not entities: plain JSON
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"


async def test_types_and_attributes_by_full_name_and_with_a_slash(live) -> None:
    async with await ngsi_client(live) as c:
        await _make(c, building(1, floors=2))
        for url in (NGSI + "/types/", NGSI + "/attributes/"):
            assert (await c.get(url)).status_code == 200
        vocab = "https://uri.etsi.org/ngsi-ld/default-context/"
        r = await c.get(NGSI + "/types/" + quote(vocab + "Building", safe=""))
        assert r.status_code == 200 and r.json()["entityCount"] == 1
        r = await c.get(NGSI + "/attributes/" + quote(vocab + "floors", safe=""))
        assert r.status_code == 200 and r.json()["attributeCount"] == 1


async def test_linked_entities_joined_inline_and_flat(live) -> None:
    a, b = PLACE[TOWN_A], PLACE[TOWN_B]
    async with await ngsi_client(live) as c:
        await _make(c,
                    {**building(1, name="Hall", lat=a["lat"], lon=a["lon"]),
                     "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:1"}},
                    {"id": "urn:ngsi-ld:City:1", "type": "City", "name": "Pudong",
                     "location": {"type": "Point", "coordinates": [a["lon"], a["lat"]]},
                     "isIn": {"type": "Relationship", "object": "urn:ngsi-ld:Country:1"}},
                    {"id": "urn:ngsi-ld:Country:1", "type": "Country", "name": "China",
                     "location": {"type": "Point", "coordinates": [b["lon"], b["lat"]]}})
        url = f"{E}/{ID}"
        r = await c.get(url, params={"join": "inline", "options": "keyValues",
                                     "attrs": "locatedAt"})
        assert r.json()["locatedAt"] == {"id": "urn:ngsi-ld:City:1", "type": "City",
                                         "name": "Pudong", "location": {
                                             "type": "Point",
                                             "coordinates": [a["lon"], a["lat"]]},
                                         "isIn": "urn:ngsi-ld:Country:1"}
        r = await c.get(url, params={"join": "inline", "joinLevel": 2,
                                     "pick": "id,locatedAt{name,isIn{name}}"})
        assert r.json() == {"id": ID, "locatedAt": {
            "type": "Relationship", "object": "urn:ngsi-ld:City:1", "entity": {
                "name": {"type": "Property", "value": "Pudong"},
                "isIn": {"type": "Relationship", "object": "urn:ngsi-ld:Country:1",
                         "entity": {"name": {"type": "Property", "value": "China"}}}}}}
        r = await c.get(url, params={"join": "flat", "joinLevel": 2,
                                     "options": "keyValues", "pick": "id,locatedAt"})
        assert [e["id"] for e in r.json()] == [ID, "urn:ngsi-ld:City:1",
                                               "urn:ngsi-ld:Country:1"]
        r = await c.get(E, params={"type": "Building", "join": "flat",
                                   "options": "keyValues"})
        assert [e["id"] for e in r.json()] == [ID, "urn:ngsi-ld:City:1"]
        # Only the links shown are followed; an omit within a linked entity keeps the link.
        r = await c.get(url, params={"join": "flat", "joinLevel": 2,
                                     "pick": "id,locatedAt{id,name}"})
        assert [e["id"] for e in r.json()] == [ID, "urn:ngsi-ld:City:1"]
        r = await c.get(url, params={"join": "inline", "omit": "location,locatedAt{name}",
                                     "options": "keyValues"})
        assert "name" not in r.json()["locatedAt"] and r.json()["name"] == "Hall"
        for params in ({"join": "deep"}, {"joinLevel": 2}, {"join": "flat", "joinLevel": 0}):
            assert (await c.get(url, params=params)).status_code == 400, params
    # A scoped key sees linked entities only where it may: town B's country is left out.
    async with await ngsi_client(live, "operator", TOWN_A) as c:
        r = await c.get(f"{E}/urn:ngsi-ld:City:1", params={"join": "flat"})
        assert r.json()["id"] == "urn:ngsi-ld:City:1"  # nothing linked to list beside it
        r = await c.get(f"{E}/urn:ngsi-ld:City:1", params={"join": "inline"})
        assert "entity" not in r.json()["isIn"]


async def test_unknown_parameters_and_media_refused_before_the_lookup(live) -> None:
    """A parameter the operation does not have is InvalidRequest (clause 6.3.20), a media the
    node does not speak 406/415, each before the entity is looked up (so a missing entity
    does not hide the malformed request)."""
    missing = f"{E}/urn:ngsi-ld:Building:none"
    async with await ngsi_client(live) as c:
        for url, params in ((E, {"type": "Building", "georels": "near"}),
                            (NGSI + "/types", {"invalidParams": "x"}), (missing, {"x": "1"})):
            r = await c.get(url, params=params)
            assert r.status_code == 400 and problem_type(r) == "InvalidRequest", url
            assert "unknown field" in r.json()["detail"]
        r = await c.get(missing, headers={"accept": "text/csv"})
        assert r.status_code == 406
        r = await c.patch(missing + "/attrs/name", content=b"{}",
                          headers={"content-type": "text/plain"})
        assert r.status_code == 415
        await _make(c, building(1, name="A"))
        r = await c.patch(f"{E}/{ID}/attrs/name", json={"value": "B"},
                          headers={"content-type": "application/merge-patch+json"})
        assert r.status_code == 204


async def test_keywords_are_no_names_and_answers_use_the_clients(live) -> None:
    async with await ngsi_client(live) as c:
        r = await c.post(E, json={"id": "urn:ngsi-ld:Thing:1", "type": "type"})
        assert r.status_code == 400 and "keyword" in r.json()["detail"], r.text
        for body in ({}, []):
            r = await c.post(E, json=body)
            assert r.status_code == 400 and problem_type(r) == "InvalidRequest"
        await _make(c, building(1, owner_name="x"))
        r = await c.post(f"{E}/{ID}/attrs", params={"options": "noOverwrite"},
                         json={"owner_name": "y"})
        assert r.json()["notUpdated"][0]["attributeName"] == "owner_name"
        r = await c.post(f"{E}/{ID}/attrs", params={"options": "noOverwrite"},
                         json={"https://example.org/full": {"value": 1}})
        r = await c.post(f"{E}/{ID}/attrs", params={"options": "noOverwrite"},
                         json={"https://example.org/full": {"value": 2}})
        assert r.json()["notUpdated"][0]["attributeName"] == "https://example.org/full"
