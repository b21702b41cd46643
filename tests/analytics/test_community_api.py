"""Community analytics over HTTP on the grid city (two towns of two communities): inspections
posted and ranked, the elderly-care coverage, its gaps and a what-if, each within a key's
scope."""

from __future__ import annotations

import pytest

from cityops.analytics import sorting
from cityops.packs.grid import generate as grid_city

NOW = 1_780_000_000.0
DAY = 86400.0
A1, A2, B1 = "990001001001", "990001001002", "990001002001"
TOWN_A = "990001001"
IN_B = {"lat": 31.15, "lon": 121.55}  # a point in town B's first community


def clock() -> float:
    return NOW


@pytest.fixture
async def live(tmp_path, live_node):
    async with live_node(grid_city(devices={"noise": 2}, seed=3), tmp_path / "d",
                         clock=clock, detect=False) as node:
        yield node


def inspection(area: str, stream: str, checked: int, correct: int, days_ago: float) -> dict:
    return {"area": area, "stream": stream, "checked": checked, "correct": correct,
            "at": NOW - days_ago * DAY}


async def test_inspections_ranked_within_town_with_trend_and_flags(live) -> None:
    admin = await live.key("admin")
    async with live.client(admin) as c:
        r = await c.post("/api/v1/sorting/inspections", json=[
            inspection(A1, "wet", 100, 99, 1), inspection(A1, "hazardous", 100, 97, 2),
            inspection(A2, "dry", 100, 85, 1), inspection(A2, "dry", 100, 95, 9),
            inspection(B1, "recyclable", 100, 99, 3)])
        assert r.status_code == 201, r.text
        assert len(r.json()["ids"]) == 5
        r = await c.get("/api/v1/sorting/ranking", params={"period": "week"})
        assert r.status_code == 200, r.text
        doc = r.json()
    rows = {row["area"]: row for row in doc["communities"]}
    assert rows[A1]["accuracy"] == pytest.approx(0.98)
    assert rows[A1]["by_stream"] == {"wet": 0.99, "hazardous": 0.97}
    assert (rows[A1]["rank"], rows[A2]["rank"], rows[B1]["rank"]) == (1, 2, 1)
    assert rows[A2]["below_target"] and not rows[A1]["below_target"]
    assert rows[A2]["trend"] == pytest.approx(-0.10)  # 85 % now against 95 % the week before
    assert rows[A1]["trend"] is None  # nothing the week before
    assert rows[B1]["best"] and not rows[A1]["best"]  # 98 % is not above the 98 % mark
    towns = {t["town"]: t for t in doc["towns"]}
    assert towns[TOWN_A]["accuracy"] == pytest.approx((99 + 97 + 85) / 300)
    assert towns[TOWN_A]["below_target"] is False
    assert (doc["target"], doc["best_mark"]) == (0.9, 0.98)


async def test_a_scoped_key_posts_and_sees_only_its_area(live) -> None:
    town_a = await live.key("operator", TOWN_A)
    field = await live.key("field", TOWN_A, name="inspector-7")
    async with live.client(field) as c:
        r = await c.post("/api/v1/sorting/inspections", json=inspection(A1, "wet", 40, 39, 0))
        assert r.status_code == 201, r.text
        r = await c.post("/api/v1/sorting/inspections", json=inspection(B1, "wet", 40, 39, 0))
        assert r.status_code == 403 and B1 in r.text
        # one item outside refuses the whole request: nothing of it is stored
        r = await c.post("/api/v1/sorting/inspections", json=[
            inspection(A2, "wet", 40, 39, 0), inspection(B1, "wet", 40, 39, 0)])
        assert r.status_code == 403 and "item 1" in r.text
    stored = await sorting.read(live.node.store, 0, NOW + 1)
    assert [(s.area, s.by) for s in stored] == [(A1, "inspector-7")]
    async with live.client(town_a) as c:
        r = await c.get("/api/v1/sorting/ranking")
        assert r.status_code == 200
        assert {row["area"] for row in r.json()["communities"]} == {A1, A2}
        assert {t["town"] for t in r.json()["towns"]} == {TOWN_A}
        assert (await c.get("/api/v1/sorting/ranking",
                            params={"area": "990001002"})).status_code == 403
        r = await c.get("/api/v1/care/coverage")
        assert r.status_code == 200
        assert {row["area"] for row in r.json()["communities"]} == {A1, A2}
        r = await c.get("/api/v1/care/gaps.geojson")
        assert r.headers["content-type"] == "application/geo+json"
        assert B1 not in r.text
        assert (await c.post("/api/v1/care/what-if", json=IN_B)).status_code == 403


@pytest.mark.parametrize(("body", "says"), [
    (inspection(A1, "glass", 10, 9, 0), "stream"),
    (inspection(A1, "wet", 10, 11, 0), "correct"),
    (inspection(A1, "wet", 0, 0, 0), "checked"),
    (inspection("990001001009", "wet", 10, 9, 0), "no community"),
    (inspection("990001001", "wet", 10, 9, 0), "area"),
    (inspection(A1, "wet", 10, 9, -2), "future"),
    ([], "length"),
])
async def test_bad_inspections_are_400_naming_the_field(live, body, says) -> None:
    async with live.client(await live.key("admin")) as c:
        r = await c.post("/api/v1/sorting/inspections", json=body)
    assert r.status_code == 400, r.text
    assert says in r.json()["error"] + str(r.json().get("detail", ""))


async def test_inspections_as_csv(live) -> None:
    csv = ("area,stream,checked,correct,note\n"
           f"{A1},wet,50,48,morning round\n{A2},hazardous,20,17,\n")
    async with live.client(await live.key("station", TOWN_A)) as c:
        r = await c.post("/api/v1/sorting/inspections", content=csv.encode(),
                         headers={"content-type": "text/csv"})
        assert r.status_code == 201, r.text
        bad = csv.replace("50,48", "50,x")
        r = await c.post("/api/v1/sorting/inspections", content=bad.encode(),
                         headers={"content-type": "text/csv"})
        assert r.status_code == 400 and "line 2" in r.text
    stored = await sorting.read(live.node.store, 0, NOW + 1)
    assert sorted((s.area, s.stream, s.correct) for s in stored) == [
        (A1, "wet", 48), (A2, "hazardous", 17)]


async def test_care_coverage_and_what_if(live) -> None:
    async with live.client(await live.key("operator")) as c:
        r = await c.get("/api/v1/care/coverage")
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["limit_s"] == 900 and doc["walk_speed_mps"] == 1.3
        assert len(doc["communities"]) == 4
        assert all(0 <= row["covered_60"] <= row["residents_60"] for row in doc["communities"])
        gaps = (await c.get("/api/v1/care/gaps.geojson")).json()
        assert gaps["features"], "the grid city's communities are 11 km long: gaps remain"
        home = gaps["features"][0]
        lon, lat = home["geometry"]["coordinates"]
        # a station on the uncovered home itself covers it, and nobody loses coverage
        r = await c.post("/api/v1/care/what-if", json={"lat": lat, "lon": lon})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["reachable"] and answer["newly_covered"] >= home["properties"][
            "residents_60"]
        mine = next(x for x in answer["communities"] if x["area"] == home["properties"]["area"])
        assert mine["covered_after"] > mine["covered_before"]
        assert all(x["covered_after"] >= x["covered_before"] for x in answer["communities"])
        r = await c.post("/api/v1/care/what-if", json={"lat": 0.0, "lon": 0.0})
        assert r.status_code == 400 and "outside the city" in r.text
