"""An existing Open311 client against CityOps over real HTTP: `georeport` (PyPI, 0.3.1), which
speaks GeoReport v2 with `requests` and reads XML with `xmltodict`, unchanged.

georeport reads services, service definitions, request lists and single requests, in JSON and
XML. It has no call to post a request (its README says so) and none for tokens, so those are
made here with `requests`, the HTTP library georeport itself uses, exactly as the spec says to
post: form-encoded fields, the key in `api_key`.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import requests

georeport = pytest.importorskip("georeport", reason="the test extra (georeport) is not installed")

from cityops.act.desk import incident_id_for  # noqa: E402

from .conftest import GARBAGE, NOISE  # noqa: E402


@pytest.fixture(scope="module")
def keys(served):
    return {"citizen": served.key("citizen", name="c-100"),
            "operator": served.key("operator")}


def _client(served, fmt: str, api_key: str | None = None):
    return georeport.GeoReport(f"{served.url}/open311/v2", jurisdiction="grid-city",
                               api_key=api_key, output_format=fmt)


def _post(served, fmt: str, **fields) -> requests.Response:
    return requests.post(f"{served.url}/open311/v2/requests.{fmt}", data=fields, timeout=10)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_services_and_definitions(served, fmt):
    client = _client(served, fmt)
    services = client.get_service_list()
    assert len(services) == len(served.node.pack.categories)
    by_code = {s["service_code"]: s for s in services}
    noise = by_code[NOISE]
    assert noise["service_name"] == "Noise nuisance" and noise["group"] == "environment"
    # xmltodict reads every value as text: the XML says "true" where JSON says true.
    assert noise["metadata"] == (True if fmt == "json" else "true")

    definition = client.get_service_definition(NOISE)
    assert definition["service_code"] == NOISE
    if fmt == "json":
        attributes = definition["attributes"]
        values = attributes[0]["values"]
    else:  # one element per attribute and per value, wrapped as the spec writes them
        attributes = definition["attributes"]["attribute"]
        values = attributes[0]["values"]["value"]
    assert [a["code"] for a in attributes] == ["noise_source", "still_going"]
    assert {"key": "banging", "name": "Banging or pounding"} in values

    with pytest.raises(requests.HTTPError) as raised:
        client.get_service_definition("no-such-service")
    assert raised.value.response.status_code == 404
    if fmt == "json":
        assert raised.value.response.json()[0]["code"] == 404


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_then_read_requests_back(served, keys, fmt):
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    r = _post(served, fmt, api_key=keys["citizen"], jurisdiction_id="grid-city",
              service_code=GARBAGE, lat="31.2712" if fmt == "json" else "31.2612", long="121.5712",
              description=f"Rubbish by the bus stop ({fmt})", phone="13900001111",
              **{"attribute[amount]": "bags"})
    assert r.status_code == 200, r.text
    if fmt == "json":
        request_id, token = r.json()[0]["service_request_id"], r.json()[0]["token"]
    else:
        import xmltodict

        created = xmltodict.parse(r.content)["service_requests"]["request"]
        request_id, token = created["service_request_id"], created["token"]
    t = requests.get(f"{served.url}/open311/v2/tokens/{token}.{fmt}", timeout=10)
    assert t.status_code == 200 and request_id in t.text

    client = _client(served, fmt, api_key=keys["citizen"])
    one = client.get_service_request(request_id)
    assert one["service_request_id"] == request_id and one["status"] == "open"
    assert one["service_code"] == GARBAGE and one["agency_responsible"] == "Sanitation"
    assert one["description"] == f"Rubbish by the bus stop ({fmt})"
    assert float(one["lat"]) in (31.2712, 31.2612) and float(one["long"]) == 121.5712
    assert "13900001111" not in str(one)

    listed = client.get_service_requests(
        service_code=GARBAGE, status="open",
        start_date=started.strftime("%Y-%m-%dT%H:%M:%SZ"))
    listed = listed if isinstance(listed, list) else [listed]  # xmltodict: one is not a list
    assert request_id in {d["service_request_id"] for d in listed}
    assert client.get_service_requests(service_request_id=request_id)
    # The case moves on; the client sees it closed, with the centre's reason.
    with httpx.Client(base_url=served.url, timeout=10,
                      headers={"Authorization": f"Bearer {keys['operator']}"}) as op:
        r = op.post(f"/api/v1/incidents/{incident_id_for('open311:' + request_id)}"
                    "/actions/cancel", json={"reason": "Collected by the morning round"})
        assert r.status_code == 200, r.text
    one = client.get_service_request(request_id)
    assert one["status"] == "closed"
    assert one["status_notes"] == "Cancelled. Note: Collected by the morning round"
    closed = client.get_service_requests(status="closed")
    closed = closed if isinstance(closed, list) else [closed]
    assert request_id in {d["service_request_id"] for d in closed}


def test_refusals_reach_the_client_as_http_errors(served, keys):
    client = _client(served, "json")
    with pytest.raises(requests.HTTPError) as raised:
        client.get_service_requests(start_date="last tuesday")
    assert raised.value.response.status_code == 400
    assert "not a W3C datetime" in raised.value.response.json()[0]["description"]
    with pytest.raises(requests.HTTPError) as raised:
        georeport.GeoReport(f"{served.url}/open311/v2", jurisdiction="nyc.gov").get_service_list()
    assert raised.value.response.status_code == 404
    r = _post(served, "xml", api_key="co_wrong", service_code=NOISE, lat="31.2", long="121.5")
    assert r.status_code == 403 and b"<errors><error><code>403</code>" in r.content
    with pytest.raises(requests.HTTPError) as raised:
        client.get_service_request("100000000000")
    assert raised.value.response.status_code == 404


def test_what_georeport_cannot_read(served):
    """xmltodict gives an empty `<service_requests />` as None, which georeport indexes: a
    search with no result fails in the client, in XML only (the answer itself is valid)."""
    xml = _client(served, "xml")
    with pytest.raises(TypeError):
        xml.get_service_requests(service_code="no-such-service")
    assert _client(served, "json").get_service_requests(service_code="no-such-service") == []
    r = requests.get(f"{served.url}/open311/v2/requests.xml",
                     params={"service_code": "no-such-service"}, timeout=10)
    assert r.status_code == 200 and r.text.endswith("<service_requests />")
