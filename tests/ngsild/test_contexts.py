"""JSON-LD contexts resolved offline: shipped files, known remote URLs, CityOps's own paths,
inline contexts; anything else is LdContextNotAvailable, and nothing touches the network."""

from __future__ import annotations

import socket

import pytest

from cityops.ngsild import contexts
from cityops.ngsild.contexts import (
    CORE_CONTEXT_URL,
    DEFAULT_CONTEXT_URL,
    context_of_request,
    link_context,
    resolve,
)
from cityops.ngsild.entity import parse_datetime
from cityops.ngsild.errors import NgsiError
from tests.ngsild.ngsild_kit import context_mirror

LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a context resolution tried the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_every_core_context_version_resolves_offline(no_network) -> None:
    for url in contexts.known_urls():
        terms = resolve(url)
        assert terms.expand("location") == "https://uri.etsi.org/ngsi-ld/location"
        assert terms.link == url
    assert resolve(None).link == CORE_CONTEXT_URL


def test_unknown_urls_are_not_fetched(no_network) -> None:
    with pytest.raises(NgsiError) as caught:
        resolve("https://example.org/my-context.jsonld")
    assert caught.value.kind == "LdContextNotAvailable" and caught.value.status == 503
    with pytest.raises(NgsiError) as caught:
        resolve(["https://example.org/a.jsonld", {"x": "http://x/"}])
    assert caught.value.kind == "LdContextNotAvailable"


def test_own_paths_on_any_host_and_the_default_context(no_network) -> None:
    for url in (DEFAULT_CONTEXT_URL, "https://ops.city.example" + DEFAULT_CONTEXT_URL):
        terms = resolve(url)
        assert terms.expand("NoiseLevelObserved") != \
            "https://uri.etsi.org/ngsi-ld/default-context/NoiseLevelObserved"


def test_inline_contexts_prefixes_and_vocab() -> None:
    terms = resolve([{"ex": "http://example.org/", "Car": "ex:Car",
                      "speed": {"@id": "ex:speed", "@type": "@id"}}, CORE_CONTEXT_URL])
    assert terms.expand("Car") == "http://example.org/Car"
    assert terms.expand("speed") == "http://example.org/speed"
    assert terms.expand("ex:other") == "http://example.org/other"
    assert terms.compact("http://example.org/other") == "ex:other"
    assert terms.expand("urn:ngsi-ld:thing") == "urn:ngsi-ld:thing"
    assert resolve({"@vocab": "http://v/"}).expand("anything") == "http://v/anything"
    # Served under an id of its own, so an application/json answer can link to it.
    cid = terms.link.rsplit("/", 1)[1]
    assert contexts.context_document(cid) is not None


def test_request_rules() -> None:
    json_headers = {"content-type": "application/json"}
    ld = {"content-type": "application/ld+json"}
    assert context_of_request(json_headers).link == CORE_CONTEXT_URL
    url = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"
    assert context_of_request({**json_headers, "link": LINK.format(url)}).link == url
    assert context_of_request(ld, url).link == url
    for headers, body in ((ld, None), ({**ld, "link": LINK.format(url)}, url),
                          (json_headers, url)):
        with pytest.raises(NgsiError) as caught:
            context_of_request(headers, body)
        assert caught.value.kind == "BadRequestData" and "@context" in caught.value.detail
    with pytest.raises(NgsiError):
        link_context(f"{LINK.format(url)}, {LINK.format(url)}")
    with pytest.raises(NgsiError, match="no rel"):
        link_context('<http://x>; rel="next"')


PARKING = "https://contexts.city.example/parking.jsonld"
SPACES = "https://contexts.city.example/parking#spaces"


def _ctx_link(url: str) -> dict[str, str]:
    return {"Link": LINK.format(url)}


async def test_a_mirror_resolves_offline_for_its_own_node_only(tmp_path, grid_pack, live_node,
                                                                no_network) -> None:
    from tests.ngsild.ngsild_kit import building, problem_type

    mirror = context_mirror(tmp_path / "mirror", {PARKING: {"spaces": SPACES}})
    async with live_node(grid_pack, tmp_path / "a", ngsild_context_mirror=mirror) as a, \
            live_node(grid_pack, tmp_path / "b") as b:
        doc = {**building(1), "spaces": {"type": "Property", "value": 40}}
        async with a.client(await a.key("admin")) as c:
            r = await c.post("/ngsi-ld/v1/entities", json=doc, headers=_ctx_link(PARKING))
            assert r.status_code == 201, r.text
            r = await c.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Building:1",
                            headers=_ctx_link(PARKING))
            assert r.json()["spaces"]["value"] == 40
            assert PARKING in r.headers["link"]
            stored = a.node.ngsild.entities.peek("urn:ngsi-ld:Building:1")
            assert SPACES in stored
        async with b.client(await b.key("admin")) as c:
            r = await c.post("/ngsi-ld/v1/entities", json=doc, headers=_ctx_link(PARKING))
            assert r.status_code == 503 and problem_type(r) == "LdContextNotAvailable"
    with pytest.raises(NgsiError) as caught:  # nor outside any node
        resolve(PARKING)
    assert caught.value.kind == "LdContextNotAvailable"


def test_a_broken_mirror_is_named(tmp_path) -> None:
    from cityops.ngsild.contexts import Library

    folder = tmp_path / "m"
    with pytest.raises(ValueError, match="not a folder"):
        Library(folder)
    folder.mkdir()
    with pytest.raises(ValueError, match="index.yaml"):
        Library(folder)
    (folder / "index.yaml").write_text("urls:\n  https://x.example/a.jsonld: a.jsonld\n")
    with pytest.raises(ValueError, match="names a.jsonld, which is not in the folder"):
        Library(folder)
    (folder / "a.jsonld").write_text("{not json")
    with pytest.raises(ValueError, match="a.jsonld: not a readable JSON"):
        Library(folder)
    (folder / "a.jsonld").write_text('{"no": "context"}')
    with pytest.raises(ValueError, match="an object with an @context"):
        Library(folder)
    (folder / "index.yaml").write_text("urls:\n  https://x.example/a.jsonld: ../a.jsonld\n")
    with pytest.raises(ValueError, match="not a file name of the folder"):
        Library(folder)
    (folder / "index.yaml").write_text("urls:\n  not-a-url: a.jsonld\n")
    with pytest.raises(ValueError, match="not an absolute URL"):
        Library(folder)
    (folder / contexts.CORE_FILE).write_text('{"@context": {}}')
    (folder / "index.yaml").write_text(f"urls:\n  https://x.example/c: {contexts.CORE_FILE}\n")
    with pytest.raises(ValueError, match="the name of a context CityOps ships"):
        Library(folder)


async def test_cached_copies_listed_dropped_and_reloaded(tmp_path, grid_pack, live_node) -> None:
    from urllib.parse import quote

    from tests.ngsild.ngsild_kit import building, problem_type

    mirror = context_mirror(tmp_path / "mirror", {PARKING: {"spaces": SPACES}})
    served = "/ngsi-ld/v1/jsonldContexts"
    by_url = f"{served}/{quote(PARKING, safe='')}"
    async with live_node(grid_pack, tmp_path / "a", ngsild_context_mirror=mirror) as a, \
            a.client(await a.key("admin")) as c:
        assert (await c.get(by_url)).status_code == 404  # not taken yet
        r = await c.post("/ngsi-ld/v1/entities", json=building(1), headers=_ctx_link(PARKING))
        assert r.status_code == 201
        r = await c.get(served, params={"details": "true", "kind": "Cached"})
        mine = [row for row in r.json() if row["URL"] == PARKING]
        assert [(m["localId"], m["kind"]) for m in mine] == [("mirrored-0.jsonld", "Cached")]
        assert parse_datetime(mine[0]["createdAt"]) is not None
        assert CORE_CONTEXT_URL in (await c.get(served, params={"kind": "Cached"})).json()
        r = await c.get(by_url)
        assert r.json() == {"@context": {"spaces": SPACES}}
        assert (await c.get(by_url, params={"details": "true"})).json()["kind"] == "Cached"
        # The operator changes the file; a reload takes it again from the mirror.
        (mirror / "mirrored-0.jsonld").write_text(
            '{"@context": {"spaces": "https://contexts.city.example/v2#spaces"}}')
        assert (await c.delete(by_url, params={"reload": "true"})).status_code == 204
        r = await c.post("/ngsi-ld/v1/entities", headers=_ctx_link(PARKING),
                         json={**building(2), "spaces": {"type": "Property", "value": 3}})
        assert "https://contexts.city.example/v2#spaces" in \
            a.node.ngsild.entities.peek("urn:ngsi-ld:Building:2")
        # A plain delete drops the copy: gone until its next use.
        assert (await c.delete(by_url)).status_code == 204
        assert (await c.get(by_url)).status_code == 404
        r = await c.delete(f"{served}/{quote(CORE_CONTEXT_URL, safe='')}")
        assert r.status_code == 400 and problem_type(r) == "BadRequestData"
        r = await c.delete(f"{served}/{contexts.SDM_FILE}")
        assert r.status_code == 400 and "shipped" in r.json()["detail"]
        for params, status in (({"reload": "maybe"}, 400), ({"reload": "true"}, 400), ({}, 404)):
            r = await c.delete(f"{served}/nothing-here", params=params)
            assert r.status_code == status, (params, r.text)


async def test_hosted_contexts_outlive_a_restart_and_are_shared(tmp_path, grid_pack,
                                                                live_node) -> None:
    from tests.ngsild.ngsild_kit import building, problem_type

    url, key = f"sqlite:///{tmp_path}/shared.db", tmp_path / "data.key"
    shared = {"store_url": url, "data_key_file": key}
    storeys = {"storeys": "http://example.org/storeys"}
    async with live_node(grid_pack, tmp_path / "a", **shared) as a, \
            live_node(grid_pack, tmp_path / "b", **shared) as b:
        async with a.client(await a.key("admin")) as c:
            r = await c.post("/ngsi-ld/v1/jsonldContexts", json={"@context": storeys})
            assert r.status_code == 201
            hosted = r.headers["location"]
            assert hosted.startswith("/ngsi-ld/v1/jsonldContexts/")
            r = await c.post("/ngsi-ld/v1/jsonldContexts", json={"storeys": "x"})
            assert r.status_code == 400 and problem_type(r) == "InvalidRequest"
            r = await c.post("/ngsi-ld/v1/jsonldContexts",
                             json={"@context": ["https://example.org/unknown.jsonld"]})
            assert r.status_code == 503 and problem_type(r) == "LdContextNotAvailable"
            # An inline context is implicitly created, and kept too.
            r = await c.post("/ngsi-ld/v1/entities",
                             json={**building(1), "@context": [{"roof": "http://example.org/"
                                                                        "roof"},
                                                               CORE_CONTEXT_URL]},
                             headers={"content-type": "application/ld+json"})
            assert r.status_code == 201
        await a.node.ngsild.contexts.save()  # what the node's follow task does within 2 s
        await b.node.ngsild.contexts.follow_once()
        async with b.client(await b.key("admin")) as c:
            r = await c.get(hosted, params={"details": "true"})
            assert r.status_code == 200 and r.json()["kind"] == "Hosted", r.text
            r = await c.get("/ngsi-ld/v1/jsonldContexts",
                            params={"kind": "ImplicitlyCreated", "details": "true"})
            assert len(r.json()) == 1
            implicit = r.json()[0]["localId"]
            r = await c.post("/ngsi-ld/v1/entities", headers=_ctx_link(hosted),
                             json={**building(2), "storeys": 3})
            assert r.status_code == 201, r.text
            assert "http://example.org/storeys" in \
                b.node.ngsild.entities.peek("urn:ngsi-ld:Building:2")
            assert (await c.delete(f"/ngsi-ld/v1/jsonldContexts/{implicit}")).status_code == 204
        await a.node.ngsild.contexts.follow_once()
        assert a.node.ngsild.contexts.document(implicit) is None
    async with live_node(grid_pack, tmp_path / "c", **shared) as c_node:
        found = c_node.node.ngsild.contexts.document(hosted.rsplit("/", 1)[1])
        assert found is not None and found.kind == "Hosted" and found.body == storeys


def test_a_library_without_a_store_keeps_nothing_to_save() -> None:
    from cityops.ngsild.contexts import MAX_HOSTED, Library

    library = Library()
    for n in range(MAX_HOSTED + 50):
        library.resolve({"n": f"http://example.org/{n}"})
    assert len(library.listing()) <= MAX_HOSTED + len(contexts.shipped()) + 1
    assert library._unsaved == {}
