"""Open311 services and service definitions, JSON and XML, and the refusals every GET shares:
unknown service, unknown format, another jurisdiction, no such resource, wrong method."""

from __future__ import annotations

from lxml import etree

from cityops.open311.services import Catalogue, describe_limit, service_code
from cityops.open311.service_requests import jurisdiction_of

from .conftest import BASE, GARBAGE, NOISE


async def test_every_category_is_a_service_in_json_and_xml(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        c = live.client()
        r = await c.get(f"{BASE}/services.json")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        services = {s["service_code"]: s for s in r.json()}
        assert len(services) == len(city.categories)
        assert set(services) == {c.code.replace(".", "-") for c in city.categories}
        noise = services[NOISE]
        assert noise == {
            "service_code": NOISE, "service_name": "Noise nuisance",
            "description": "Noise nuisance. Handled by Environment, City management, Police.",
            "metadata": True, "type": "realtime",
            "keywords": "environment, noise, nuisance, city management, police",
            "group": "environment"}
        # A category with nothing to ask has no attributes to fetch.
        assert services["event-greening-maintenance"]["metadata"] is False

        x = await c.get(f"{BASE}/services.xml")
        assert x.status_code == 200 and x.headers["content-type"] == "text/xml; charset=utf-8"
        assert x.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
        root = etree.fromstring(x.content)
        assert root.tag == "services" and len(root) == len(services)
        first = root[0]
        assert first.tag == "service"
        assert [e.tag for e in first] == ["service_code", "service_name", "description",
                                          "metadata", "type", "keywords", "group"]
        by_code = {s.findtext("service_code"): s for s in root}
        assert by_code[NOISE].findtext("metadata") == "true"
        assert by_code["event-greening-maintenance"].findtext("metadata") == "false"
        assert by_code[GARBAGE].findtext("group") == "sanitation"
        await c.aclose()


async def test_service_definitions_with_attributes(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        c = live.client()
        r = await c.get(f"{BASE}/services/{NOISE}.json")
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["service_code"] == NOISE
        source, going = d["attributes"]
        assert source["code"] == "noise_source" and source["datatype"] == "singlevaluelist"
        assert source["required"] is True and source["variable"] is True
        assert source["order"] == 1 and going["order"] == 2
        assert source["datatype_description"] is None
        assert {"key": "music_party", "name": "Loud music or a party"} in source["values"]

        # An emergency: the first "attribute" is a notice to read, with the hotlines to call.
        r = await c.get(f"{BASE}/services/event-emergency-fire.json")
        notice = r.json()["attributes"][0]
        assert notice["variable"] is False and notice["code"] == "emergency"
        assert "119 (Fire)" in notice["description"]

        x = await c.get(f"{BASE}/services/{GARBAGE}.xml")
        root = etree.fromstring(x.content)
        assert root.tag == "service_definition" and root.findtext("service_code") == GARBAGE
        attrs = root.find("attributes").findall("attribute")
        assert [a.findtext("code") for a in attrs] == ["amount", "waste_kind"]
        kinds = attrs[1]
        assert kinds.findtext("datatype") == "multivaluelist"
        assert kinds.findtext("required") == "false" and kinds.findtext("order") == "2"
        assert [v.findtext("key") for v in kinds.find("values").findall("value")] == [
            "household", "furniture", "construction", "hazardous"]
        assert kinds.findtext("datatype_description") == ""

        # A service without attributes still has a definition: an empty list.
        r = await c.get(f"{BASE}/services/event-greening-maintenance.json")
        assert r.json() == {"service_code": "event-greening-maintenance", "attributes": []}
        await c.aclose()


async def test_refusals_in_the_spec_format(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        c = live.client()
        r = await c.get(f"{BASE}/services/no-such-thing.json")
        assert r.status_code == 404
        assert r.json() == [{"code": 404, "description": "service_code 'no-such-thing' was not "
                                                        "found (GET services.json lists them)"}]
        x = await c.get(f"{BASE}/services/no-such-thing.xml")
        assert x.status_code == 404 and x.headers["content-type"].startswith("text/xml")
        root = etree.fromstring(x.content)
        assert root.tag == "errors" and root[0].tag == "error"
        assert root[0].findtext("code") == "404"
        assert "no-such-thing" in root[0].findtext("description")

        # The city's own jurisdiction is taken; any other is not found, as the spec says.
        ours = jurisdiction_of(city.info.name)
        assert ours == "grid-city"
        ok = await c.get(f"{BASE}/services.json", params={"jurisdiction_id": ours})
        assert ok.status_code == 200
        for path in ("services.json", f"services/{NOISE}.json", "requests.json",
                     "requests/123.json", "tokens/abc.json"):
            r = await c.get(f"{BASE}/{path}", params={"jurisdiction_id": "sfgov.org"})
            assert r.status_code == 404, path
            assert r.json()[0]["description"] == ("jurisdiction_id 'sfgov.org' was not found: "
                                                  "this endpoint serves 'grid-city'")

        # Neither JSON nor XML: not found, said in XML (the spec's required format).
        r = await c.get(f"{BASE}/services.csv")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/xml")
        assert "ask for .json or .xml" in etree.fromstring(r.content)[0].findtext("description")
        r = await c.get(f"{BASE}/services")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/xml")
        # Any character may come percent-encoded, a newline too: still the spec's answer.
        for path in ("services/a%0Ab.json", "requests/%0A.json", "tokens/x%0A/y.json"):
            r = await c.get(f"{BASE}/{path}")
            assert r.status_code == 404 and r.json()[0]["code"] == 404, path
        r = await c.get(f"{BASE}/nothing.json")
        assert r.status_code == 404 and r.json()[0]["code"] == 404
        r = await c.delete(f"{BASE}/requests.json")
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
        assert r.json() == [{"code": 405, "description": "DELETE is not allowed on "
                                                        f"{BASE}/requests.json (allowed: GET, "
                                                        "POST)"}]
        await c.aclose()


def test_service_codes_and_notices_derive_from_the_category_table(city) -> None:
    assert service_code("event.noise.residential") == "event-noise-residential"
    catalogue = Catalogue(city.categories, city.departments)
    garbage = catalogue.get(GARBAGE)
    assert garbage.notice == ("Sent to Sanitation; to be dealt with within 4 working hours of "
                              "being dispatched.")
    assert catalogue.by_category("event.sanitation.exposed_garbage") is garbage
    assert describe_limit("1wd") == "1 working day" and describe_limit("30min") == "30 minutes"
    assert describe_limit("1.5h") == "1.5 hours"
