"""Roll-ups through the API on a live node: evaluation, incident counts and KPIs per village,
town and district, compared with last month and the same month last year, within the key's
scope."""

from __future__ import annotations

import msgspec
import pytest

from cityops.domain.city import Device
from cityops.packs.grid import generate

from tests.clock_kit import Clock
from tests.reports.report_kit import (
    ALL,
    DISTRICT,
    TOWN_1,
    TOWN_2,
    V11,
    V12,
    V21,
    V22,
    at,
)

NOV = {"period": "2026-11"}


@pytest.fixture
async def rig(tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d", clock=Clock(at(2026, 12, 5)),
                         detect=False) as live:
        await live.node.store.insert_incidents(ALL)
        yield live


def rows(r) -> dict:
    assert r.status_code == 200, r.text
    return {row["group"]: row for row in r.json()["items"]}


async def test_evaluation_rolls_up_to_each_level(rig) -> None:
    async with rig.client(await rig.key("admin")) as c:
        villages = rows(await c.get("/api/v1/evaluation", params={**NOV, "level": "village"}))
        towns = rows(await c.get("/api/v1/evaluation", params={**NOV, "level": "town"}))
        district = rows(await c.get("/api/v1/evaluation", params={**NOV, "level": "district"}))
        plain = (await c.get("/api/v1/evaluation", params=NOV)).json()["items"][0]
    assert set(villages) == {V11, V12, V21, V22} and set(towns) == {TOWN_1, TOWN_2}
    assert (towns[TOWN_1]["due"], towns[TOWN_1]["closed"],
            towns[TOWN_1]["closed_on_time"]) == (3, 3, 2)
    assert (towns[TOWN_2]["due"], towns[TOWN_2]["closed"]) == (2, 1)
    for field in ("due", "closed", "closed_on_time", "registered", "dispatched"):
        assert villages[V11][field] + villages[V12][field] == towns[TOWN_1][field], field
        assert villages[V21][field] + villages[V22][field] == towns[TOWN_2][field], field
        assert towns[TOWN_1][field] + towns[TOWN_2][field] == district[DISTRICT][field], field
        assert district[DISTRICT][field] == plain[field], field
    assert district[DISTRICT]["closure_rate"] == pytest.approx(4 / 5)


async def test_evaluation_compares_with_last_month_and_last_year(rig) -> None:
    async with rig.client(await rig.key("admin")) as c:
        r = await c.get("/api/v1/evaluation", params={**NOV, "level": "town",
                                                        "compare": "previous,last_year"})
    body = r.json()
    assert r.status_code == 200 and body["level"] == "town"
    previous, last_year = body["compared"]
    assert previous["compare"] == "previous" and previous["period"]["from"] == "2026-10-01"
    assert previous["period"]["to"] == "2026-10-31"
    assert last_year["period"]["from"] == "2025-11-01"
    then = {row["group"]: row for row in previous["items"]}
    assert then[TOWN_1]["closed"] == 1 and then[TOWN_2]["closed"] == 0
    delta = {ch["group"]: ch["delta"] for ch in previous["changes"]}
    assert delta[TOWN_1]["closed"] == 2 and delta[TOWN_2]["closed"] == 1
    assert delta[TOWN_1]["closure_rate"] == pytest.approx(0.0)  # 3/3 now, 1/1 then
    year = {row["group"]: row for row in last_year["items"]}
    assert year[TOWN_1]["closed"] == 1 and year[TOWN_2]["due"] == 0


async def test_incident_counts_roll_up_and_compare(rig) -> None:
    async with rig.client(await rig.key("operator")) as c:
        r = await c.get("/api/v1/rollups/incidents",
                        params={**NOV, "level": "town", "compare": "previous"})
        village = await c.get("/api/v1/rollups/incidents",
                              params={**NOV, "level": "village", "area": TOWN_1})
    assert r.status_code == 200, r.text
    now, before = r.json()["periods"]
    by = {row["area"]: row for row in now["items"]}
    assert by[TOWN_1]["total"] == 3 and by[TOWN_2]["total"] == 2
    assert by[TOWN_1]["by_category"] == {"event.sanitation.exposed_garbage": 2,
                                         "event.traffic.parking": 1}
    assert by[TOWN_2]["by_status"] == {"accepted": 1, "closed": 1}
    assert before["compare"] == "previous"
    assert {row["area"]: row["total"] for row in before["items"]} == {TOWN_1: 1, TOWN_2: 1}
    assert [(x["area"], x["total"]) for x in village.json()["periods"][0]["items"]] == [
        (V11, 2), (V12, 1)]


async def test_a_town_key_sees_its_town_and_a_department_key_its_cases(rig) -> None:
    async with rig.client(await rig.key("operator", TOWN_2)) as c:
        towns = rows(await c.get("/api/v1/evaluation", params={**NOV, "level": "town"}))
        district = rows(await c.get("/api/v1/evaluation",
                                    params={**NOV, "level": "district"}))
        other = await c.get("/api/v1/evaluation", params={**NOV, "area": TOWN_1})
        counts = await c.get("/api/v1/rollups/incidents", params={**NOV, "level": "village"})
    assert towns[TOWN_2]["due"] == 2 and towns.get(TOWN_1, {"due": 0})["due"] == 0
    assert district[DISTRICT]["due"] == 2  # the district as far as this key may see it
    assert other.status_code == 403 and TOWN_1 in other.json()["error"]
    assert {x["area"] for x in counts.json()["periods"][0]["items"]} == {V21, V22}
    async with rig.client(await rig.key("department", "environment")) as c:
        towns = rows(await c.get("/api/v1/evaluation", params={**NOV, "level": "town"}))
    assert towns[TOWN_2]["due"] == 2 and towns[TOWN_1]["due"] == 0


async def test_bad_roll_up_queries_are_400(rig) -> None:
    async with rig.client(await rig.key("admin")) as c:
        for params, word in [({"level": "county"}, "level"), ({"area": "12ab"}, "area"),
                             ({"compare": "yesterday"}, "yesterday"),
                             ({"level": "town", "group_by": "category"}, "group_by")]:
            r = await c.get("/api/v1/evaluation", params=params)
            assert r.status_code == 400 and word in r.json()["error"], (params, r.text)
        r = await c.get("/api/v1/rollups/kpis", params={"aggregate": "max"})
        assert r.status_code == 400 and "aggregate" in r.json()["error"]


async def test_kpis_roll_up_from_the_history(tmp_path, live_node) -> None:
    pack = generate(devices={"noise": 1})
    kpis = [Device(id=f"kpi-calls-{code}", kind="kpi", lat=31.15, lon=lon, owner="police",
                   meta={"kpi": "calls", "level": level, "area": code})
            for code, level, lon in [(DISTRICT, "district", 121.45), (TOWN_1, "town", 121.45),
                                     (TOWN_2, "town", 121.55)]]
    pack = msgspec.structs.replace(pack, devices=pack.devices + kpis)
    async with live_node(pack, tmp_path / "d", clock=Clock(at(2026, 12, 5)),
                         detect=False, max_age_s=1e9) as live:
        values = {DISTRICT: [5, 7], TOWN_1: [2, 3], TOWN_2: [3, 4]}
        batch = [{"device_id": f"kpi-calls-{code}", "ts": at(2026, 11, 20, h),
                  "values": {"value": v}}
                 for code, vs in values.items() for h, v in zip((9, 10), vs)]
        batch.append({"device_id": f"kpi-calls-{TOWN_1}", "ts": at(2026, 10, 20),
                      "values": {"value": 100}})
        async with live.client(await live.key("device")) as d:
            r = await d.post("/api/v1/readings", json=batch)
            assert r.status_code == 202 and not r.json()["rejected"], r.text
        async with live.client(await live.key("admin")) as c:
            district = (await c.get("/api/v1/rollups/kpis",
                                    params={**NOV, "level": "district",
                                            "compare": "previous"})).json()
            towns = (await c.get("/api/v1/rollups/kpis",
                                 params={**NOV, "level": "town", "aggregate": "mean"})).json()
        async with live.client(await live.key("operator", TOWN_2)) as c:
            mine = (await c.get("/api/v1/rollups/kpis", params={**NOV, "level": "town"})).json()
    (row,) = district["periods"][0]["items"]
    assert (row["area"], row["value"], row["series"]) == (DISTRICT, 12.0, 2)  # towns, not 24
    (before,) = district["periods"][1]["items"]
    assert before["value"] == 100.0
    means = {x["area"]: x["value"] for x in towns["periods"][0]["items"]}
    assert means == {TOWN_1: 2.5, TOWN_2: 3.5}
    assert [(x["area"], x["value"]) for x in mine["periods"][0]["items"]] == [(TOWN_2, 7.0)]
