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
from cityops.ngsild.errors import NgsiError

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
