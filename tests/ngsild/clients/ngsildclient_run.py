"""Drive a CityOps node with the stock NGSI-LD client, ngsildclient (Orange, Apache-2.0).

Run by tests/ngsild/test_ngsildclient.py with the client's own venv (.venv-clients): it pins
libraries older than CityOps's, so it never imports CityOps and CityOps never imports it.

    python ngsildclient_run.py BASE_URL KEY NOTIFY_URL

Each step is the client's public API as its documentation shows it; what the node answered is
printed as one JSON object on the last line for the test to check. A step that raises is
recorded with the client's error and the run goes on, so one failure does not hide the rest.
"""

from __future__ import annotations

import json
import sys
import traceback
from urllib.parse import urlsplit

import requests
from ngsildclient import Client, Entity

SDM_ENVIRONMENT = ("https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/"
                   "master/context.jsonld")
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"


class Bearer(requests.auth.AuthBase):
    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self.key}"
        return r


def main() -> None:
    base, key, notify = sys.argv[1], sys.argv[2], sys.argv[3]
    where = urlsplit(base)
    out: dict = {"errors": {}}

    def step(name, fn):
        try:
            out[name] = fn()
        except Exception as exc:  # the test names the step and shows the client's error
            out["errors"][name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"

    client = Client(hostname=where.hostname, port=where.port, custom_auth=Bearer(key),
                    verbose=False)

    def create():
        for n, (lat, lon, use) in enumerate([(31.231, 121.47, "school"),
                                             (31.232, 121.471, "school"),
                                             (31.30, 121.60, "hospital")]):
            e = Entity("Building", f"urn:ngsi-ld:Building:client-{n}")
            e.prop("category", use)
            e.prop("floors", 3 + n)
            e.loc(lat, lon)
            client.create(e)
        return True

    def retrieve():
        got = client.get("urn:ngsi-ld:Building:client-0")
        return {"id": got.id, "type": got.type, "category": got["category"].value,
                "floors": got["floors"].value,
                "coordinates": got.to_dict()["location"]["value"]["coordinates"]}

    def by_q():
        found = client.query(type="Building", q='category=="school";floors>=4')
        return sorted(e.id for e in found)

    def by_georel():
        query = {"type": "Query", "entities": [{"type": "Building"}],
                 "geoQ": {"georel": "near;maxDistance==1000", "geometry": "Point",
                          "coordinates": [121.4705, 31.2315]}}
        found = client.alt.query(query, ctx=CORE)
        return sorted(e.id for e in found)

    def subscribe():
        return client.subscriptions.create({
            "id": "urn:ngsi-ld:Subscription:client-1",
            "type": "Subscription",
            "entities": [{"type": "Building"}],
            "watchedAttributes": ["floors"],
            "notification": {"endpoint": {"uri": notify, "accept": "application/json"}},
            "@context": CORE,
        }, raise_on_conflict=False)

    def update():
        e = client.get("urn:ngsi-ld:Building:client-2")
        e["floors"].value = 9
        client.update(e)
        return client.get("urn:ngsi-ld:Building:client-2")["floors"].value

    def noise():
        # A producer's Smart Data Models entity, with the SDM context by its public address
        # (CityOps resolves it from the copy it ships).
        e = Entity("NoiseLevelObserved", "urn:ngsi-ld:NoiseLevelObserved:noise-000003",
                   ctx=[SDM_ENVIRONMENT, CORE])
        e.prop("LAeq", 61.5, unitcode="2N", observedat=sys.argv[4])
        # A list goes to the batch upsert; the client's one-entity upsert is a delete and a
        # create, and a device's entity is not deleted through NGSI-LD.
        result = client.upsert([e])
        return {"success": list(result.success), "errors": list(result.errors)}

    step("create", create)
    step("retrieve", retrieve)
    step("query_q", by_q)
    step("query_georel", by_georel)
    step("subscription", subscribe)
    step("update", update)
    step("noise", noise)
    client.close()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
