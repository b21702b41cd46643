"""A node given a real OSM extract (central Helsinki, © OpenStreetMap contributors, ODbL) and
a city's own care file answers the elderly-care routes from them: the walk goes round the
railway yard north of the central station, and a proposed station across it is what helps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityops.analytics.care_file import CareFileError, from_features, load
from cityops.domain.geo import CityMap
from cityops.packs.grid import generate as grid_city

PBF = Path(__file__).resolve().parents[1] / "data" / "osm" / "helsinki.osm.pbf"
# The grid city laid over the extract: its west town takes the Töölönlahti shore and the
# railway yard, its east town Kaisaniemi and Kluuvi (the towns meet at 24.9443 E).
CENTRE = (60.1716, 24.9443)
WEST_VILLAGE = "990001001002"
KAISANIEMI = (60.1766937, 24.9428206)  # east of the yard, in the west town
TOOLONLAHTI = (60.1765629, 24.9382993)  # 250 m west, across the yard
SOUTH_OF_IT = (60.1745, 24.9425)  # 230 m south, on the station's side


def helsinki():
    return grid_city(devices={}, center=CENTRE, size_deg=0.014)


def feature(point, **props) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [point[1], point[0]]},
            "properties": props}


def care_file(tmp_path, features) -> Path:
    path = tmp_path / "care.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


async def test_coverage_and_what_if_on_the_real_streets(tmp_path, live_node) -> None:
    path = care_file(tmp_path, [
        feature(KAISANIEMI, kind="care_point", id="kaisaniemi", name="Kaisaniemi station"),
        feature(TOOLONLAHTI, kind="home", residents_60=30),
        feature(SOUTH_OF_IT, kind="home", residents_60=10)])
    async with live_node(helsinki(), tmp_path / "d", detect=False, street_network=PBF,
                         care_file=path) as live:
        async with live.client(await live.key("operator")) as c:
            r = await c.get("/api/v1/care/coverage", params={"area": "990001001"})
            assert r.status_code == 200, r.text
            rows = {x["area"]: x for x in r.json()["communities"]}
            # both homes are in the west town's north community; only the one on the
            # station's side of the yard is within 15 minutes, though both are within 250 m
            assert (rows[WEST_VILLAGE]["residents_60"], rows[WEST_VILLAGE]["covered_60"]) == (
                40, 10)
            assert rows[WEST_VILLAGE]["care_points"] == 1
            gaps = (await c.get("/api/v1/care/gaps.geojson")).json()["features"]
            assert [g["properties"]["residents_60"] for g in gaps] == [30]
            r = await c.post("/api/v1/care/what-if",
                             json={"lat": TOOLONLAHTI[0] + 0.0003, "lon": TOOLONLAHTI[1]})
            assert r.status_code == 200, r.text
            assert r.json()["newly_covered"] == 30


def test_a_care_file_with_mistakes_is_refused_naming_the_feature(tmp_path) -> None:
    city = CityMap.from_pack(helsinki())

    class F:  # the decoded shape, for from_features
        def __init__(self, point, **props) -> None:
            self.geometry = type("G", (), {"coordinates": (point[1], point[0])})
            self.properties = type("P", (), {"kind": "home", "id": "", "name": "",
                                             "residents_60": 0, **props})

    with pytest.raises(CareFileError, match="feature 1: .* lies in no community"):
        from_features([F(KAISANIEMI), F((60.0, 24.0))], city)
    with pytest.raises(CareFileError, match="feature 1: a care point needs an id of its own"):
        from_features([F(KAISANIEMI, kind="care_point", id="a"),
                       F(TOOLONLAHTI, kind="care_point", id="a")], city)
    with pytest.raises(CareFileError, match="kind"):
        load(care_file(tmp_path, [feature(KAISANIEMI, kind="school")]), city)
    with pytest.raises(CareFileError, match="not JSON"):
        (tmp_path / "bad.geojson").write_text("{")
        load(tmp_path / "bad.geojson", city)
    data = load(care_file(tmp_path, [feature(KAISANIEMI, kind="home", residents_60=7)]), city)
    assert {c.code: c.residents_60 for c in data.communities}[WEST_VILLAGE] == 7
