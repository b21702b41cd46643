"""Every exported list, as CSV and as XLSX, read back (csv module, openpyxl) and compared with
the same list read as JSON page by page: the same rows in the same order, every cell the
JSON's value (times in the city's zone), the same filters, the same scope, text that would be
a formula neutralised, and bad formats refused.

One node serves the whole module (its records take a few seconds to make); the export's page
is cut to 4 rows so that every list is exported over several pages."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
import openpyxl
import pytest
import pytest_asyncio

from cityops.api import export
from cityops.api.route import Endpoint
from cityops.api.table import TABLE
from cityops.domain.alerts import Alert
from cityops.domain.city import AreaCodes, Department, Staff
from cityops.domain.incidents.model import Incident, Level, OrderStatus, Status, WorkOrder
from cityops.packs.categories_file import default_categories
from cityops.packs.grid import generate as grid_city
from cityops.store.base import AuditEntry
from tests.api.scope_kinds import World
from tests.api.scope_kinds.base import CITIZEN, DEPARTMENT, PLACE, TOWN_A, TOWN_B, VILLAGE
from tests.api.scope_kinds.onestop import FIRE_INSPECTION
from tests.api.scope_kinds.sense import Devices
from tests.api.scope_kinds.serve import Citizens
from tests.conftest import start_live
from tests.http_kit import served

IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the loop the node runs in

TZ = ZoneInfo("Asia/Shanghai")
NOW = time.time()
PER_TOWN = 5
TRICKY = ["=HYPERLINK(\"http://evil\",\"x\")", "-2+3", "@SUM(A1)", "-12", "井盖缺失 (Pudong)"]
EXPORTED = {e.path: e for e in TABLE if e.export is not None}
LISTS = {  # path -> (the JSON id of a row, query of the JSON and the export)
    "/api/v1/incidents": ("id", {}),
    "/api/v1/work-orders": ("id", {}),
    "/api/v1/hotline/orders": ("number", {}),
    "/api/v1/alerts": ("id", {}),
    "/api/v1/evaluation": ("group", {"group_by": "department",
                                     "period": dt.datetime.fromtimestamp(NOW, TZ).strftime("%Y")}),
    "/api/v1/devices/noise-of-990001001/readings": (None, {}),
    "/api/v1/applications": ("id", {}),
    "/api/v1/audit": ("id", {}),
}


def _city() -> Any:
    codes = ["police", "fire", "city_management", "sanitation", "environment",
             "water_affairs", "transport", "ambulance"]
    departments = [Department(c, c.title(), None,
                              [TOWN_A] if c == DEPARTMENT[TOWN_A]
                              else [TOWN_B] if c == DEPARTMENT[TOWN_B] else ["990001"])
                   for c in codes]
    staff = [Staff("san-a", "A", DEPARTMENT[TOWN_A], "gps-000000", VILLAGE[TOWN_A])]
    return msgspec.structs.replace(
        grid_city(devices={"noise": 4, "gps": 1}), departments=departments, staff=staff,
        categories=default_categories(codes))


def _case(i: int, town: str) -> Incident:
    status = Status.DISPATCHED if i % 2 == 0 else Status.COLLECTED
    at = NOW - 3600 * (i + 1) - (0 if town == TOWN_A else 1800)
    rid = f"inc-exp-{town[-1]}-{i}"
    orders = [WorkOrder(id=f"{rid}-1", department=DEPARTMENT[town], level=Level.TOWN,
                        area=town, unit=f"subcentre:{town}", created=at + 60,
                        finish_due=at + 86_400 + i, status=OrderStatus.DISPATCHED)
              ] if status is Status.DISPATCHED else []
    return Incident(id=rid, category="event.sanitation.exposed_garbage", kind="event",
                    title=TRICKY[i % len(TRICKY)] if town == TOWN_A else f"Case {i} in B",
                    source="inspector", status=status, lat=PLACE[town]["lat"],
                    lon=PLACE[town]["lon"], areas=AreaCodes(town[:6], town, VILLAGE[town]),
                    reported_at=at, updated_at=at + 60, orders=orders,
                    registered_at=at + 30 if orders else None,
                    dispatched_at=at + 60 if orders else None)


def _alert(i: int, town: str) -> Alert:
    at = NOW - 600 * (i + 1)
    return Alert(id=f"exp-alert-{town}-{i}", scenario="noise", rule="noise.loud",
                 category="event.environment.noise", severity="major", urgency="normal",
                 departments=[DEPARTMENT[town]], subject=f"noise-of-{town}",
                 title=f"Loud in {town}", areas=AreaCodes(town[:6], town, VILLAGE[town]),
                 first_seen=at, last_seen=at + 30, value=80.0 + i, active=i % 2 == 0)


async def _make(world: World) -> dict[str, dict[str, list[str]]]:
    """Records of every exported kind in both towns; their ids by kind and town."""
    node = world.node
    made: dict[str, dict[str, list[str]]] = {}
    cases = [_case(i, town) for town in (TOWN_A, TOWN_B) for i in range(PER_TOWN)]
    await node.store.insert_incidents(cases)
    for town in (TOWN_A, TOWN_B):
        mine = [c for c in cases if c.areas is not None and c.areas.town == town]
        made.setdefault("incident", {})[town] = [c.id for c in mine]
        made.setdefault("work_order", {})[town] = [o.id for c in mine for o in c.orders]
    alerts = [_alert(i, town) for town in (TOWN_A, TOWN_B) for i in range(PER_TOWN)]
    await node.store.upsert_alerts(alerts)
    for town in (TOWN_A, TOWN_B):
        made.setdefault("alert", {})[town] = [a.id for a in alerts if a.subject.endswith(town)]
    async with world.client() as c:
        for town in (TOWN_A, TOWN_B):
            await Citizens().make(world, town)
            device = await Devices().make(world, town)
            r = await c.post("/api/v1/readings", json=[
                {"device_id": device, "ts": NOW - 60 * k, "values": {"laeq": 50.0 + k}}
                for k in range(11)])
            assert r.status_code == 202 and not r.json()["rejected"], r.text
            for i in range(PER_TOWN):
                r = await c.post("/api/v1/hotline/orders", json={
                    "type": "help", "title": f"Lift broken {i} in {town}",
                    "citizen_id": CITIZEN[town], "area": VILLAGE[town],
                    "department": DEPARTMENT[town], "caller_name": "王小明"})
                assert r.status_code == 201, r.text
                made.setdefault("hotline_order", {}).setdefault(town, []).append(
                    r.json()["number"])
                r = await c.post("/api/v1/applications", json={
                    **FIRE_INSPECTION, "citizen": CITIZEN[town], "key": f"exp-{town}-{i}"})
                assert r.status_code == 201, r.text
                made.setdefault("application", {}).setdefault(town, []).append(
                    r.json()["applications"][0]["id"])
    await node.store.append_audit([
        AuditEntry("k_test", "area.state", f"area:{TOWN_A}", "daily", "special",
                   TRICKY[i % len(TRICKY)], NOW - i) for i in range(9)])
    return made


class Rig:
    def __init__(self, live: Any, world: World, made: dict[str, dict[str, list[str]]],
                 keys: dict[str, str]) -> None:
        self.live = live
        self.world = world
        self.made = made
        self.keys = keys

    def client(self, who: str = "admin") -> Any:
        return self.live.client(self.keys[who])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export, "PAGE", 4)
        async with start_live(_city(), tmp_path_factory.mktemp("exports") / "d",
                              notify_url="memory:") as live:
            admin = await live.key("admin")
            world = World(live, admin)
            keys = {"admin": admin,
                    "operator_a": await live.key("operator", TOWN_A),
                    "station_a": await live.key("station", TOWN_A),
                    "department_a": await live.key("department", DEPARTMENT[TOWN_A]),
                    "fire": await live.key("department", "fire"),
                    "field_a": await live.key("field", TOWN_A, name="san-a")}
            yield Rig(live, world, await _make(world), keys)


# -- reading an export back ---------------------------------------------------------------


def read_csv(body: bytes) -> list[dict[str, str]]:
    assert body.startswith("\ufeff".encode()), "CSV starts with a byte-order mark"
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def read_xlsx(body: bytes) -> tuple[list[dict[str, Any]], Any]:
    book = openpyxl.load_workbook(io.BytesIO(body))
    rows: list[dict[str, Any]] = []
    for sheet in book.worksheets:
        values = list(sheet.iter_rows(values_only=True))
        header = values[0]
        rows += [dict(zip(header, row, strict=True)) for row in values[1:]]
    return rows, book


async def json_all(client: Any, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """The list as JSON, page by page (small pages, following `next`)."""
    items: list[dict[str, Any]] = []
    query = {**params, "limit": "3"} if path != "/api/v1/work-orders" else dict(params)
    if path == "/api/v1/evaluation":
        query.pop("limit")
    for _ in range(100):
        r = await client.get(path, params=query)
        assert r.status_code == 200, r.text
        doc = r.json()
        items += doc["items"]
        if not doc.get("next"):
            return items
        query["cursor"] = doc["next"]
    raise AssertionError("the JSON list did not end")


def _at(value: Any, path: str) -> Any:
    for name in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def _epoch(value: Any) -> float:
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def same_csv(cell: str, value: Any, kind: int) -> bool:
    if value is None or value == [] or value == {}:
        return cell == ""
    if kind == export.TIME:
        when = dt.datetime.fromisoformat(cell)
        return when.utcoffset() == dt.timedelta(hours=8) and \
            math.isclose(when.timestamp(), _epoch(value), abs_tol=1e-3)
    if kind == export.JOIN:
        return cell == "; ".join(str(v).lower() if isinstance(v, bool) else str(v)
                                 for v in value)
    if kind == export.JSON:
        return json.loads(cell) == value
    if isinstance(value, bool):
        return cell == ("true" if value else "false")
    if isinstance(value, (int, float)):
        return math.isclose(float(cell), value)
    return cell == value or (cell == "'" + value and export.risky(value))


def same_xlsx(cell: Any, value: Any, kind: int) -> bool:
    if value is None or value == [] or value == {}:
        return cell is None
    if kind == export.TIME:
        local = dt.datetime.fromtimestamp(_epoch(value), TZ).replace(tzinfo=None)
        return abs((cell - local).total_seconds()) < 1e-3
    if kind == export.JOIN:
        return same_csv(cell, value, kind)
    if kind == export.JSON:
        return json.loads(cell) == value
    if isinstance(value, bool) or isinstance(cell, bool):
        return cell is value
    if isinstance(value, (int, float)):
        return math.isclose(cell, value)
    return bool(cell == value)


def check_rows(endpoint: Endpoint, rows: list[dict[str, Any]], items: list[dict[str, Any]],
               same: Any) -> None:
    columns = export.columns_for(endpoint)
    assert len(rows) == len(items)
    for row, item in zip(rows, items, strict=True):
        assert list(row) == [c.header for c in columns]
        for c in columns:
            assert same(row[c.header], _at(item, c.header), c.kind), \
                (endpoint.path, c.header, row[c.header], _at(item, c.header))


# -- the tests ---------------------------------------------------------------------------------


def test_the_eight_lists_are_exported() -> None:
    assert sorted(EXPORTED) == sorted(p if "readings" not in p
                                      else "/api/v1/devices/{device_id}/readings"
                                      for p in LISTS)


@IN_MODULE_LOOP
@pytest.mark.parametrize("path", sorted(LISTS))
async def test_an_export_holds_every_page_of_the_json_list(rig: Rig, path: str) -> None:
    key, params = LISTS[path]
    endpoint = EXPORTED.get(path) or EXPORTED["/api/v1/devices/{device_id}/readings"]
    async with rig.client() as c:
        items = await json_all(c, path, params)
        # A limit says nothing to an export: it is the whole list, however paged inside.
        r = await c.get(path, params={**params, "format": "csv", "limit": "1"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"].startswith("attachment; filename=")
        rows = read_csv(r.content)
        x = await c.get(path, params={**params, "format": "xlsx"})
        assert x.status_code == 200, x.text
        assert x.headers["content-type"] == export.XLSX
        sheet_rows, _ = read_xlsx(x.content)
    assert len(items) > 4 or path == "/api/v1/evaluation", "more rows than an export's page"
    if path == "/api/v1/work-orders":
        # Paged by case, not sorted by due time as the JSON's single page is.
        order = {o["id"]: o for o in items}
        items = [order[row["id"]] for row in rows]
        assert sorted(order) == sorted(row["id"] for row in rows)
    check_rows(endpoint, rows, items, same_csv)
    check_rows(endpoint, sheet_rows, items, same_xlsx)
    if key is not None:
        assert [row[key] for row in rows] == [str(i[key] if i[key] is not None else "")
                                              for i in items]


@IN_MODULE_LOOP
async def test_a_filtered_export_has_only_the_filtered_rows(rig: Rig) -> None:
    async with rig.client() as c:
        cases = read_csv((await c.get("/api/v1/incidents", params={
            "status": "collected", "format": "csv"})).content)
        assert {r["status"] for r in cases} == {"collected"}
        assert len(cases) == 2 * (PER_TOWN // 2)
        alerts = read_csv((await c.get("/api/v1/alerts", params={
            "area": TOWN_B + "001", "active": "true", "format": "csv"})).content)
        assert sorted(r["id"] for r in alerts) == sorted(
            a for a in rig.made["alert"][TOWN_B] if int(a[-1]) % 2 == 0)
        since = dt.datetime.fromtimestamp(NOW - 60 * 4.5, dt.UTC).isoformat()
        points = read_csv((await c.get(
            "/api/v1/devices/noise-of-990001001/readings",
            params={"from": since, "format": "csv"})).content)
        assert [float(p["value"]) for p in points] == [54.0, 53.0, 52.0, 51.0, 50.0]
        x = await c.get("/api/v1/hotline/orders", params={"department": DEPARTMENT[TOWN_A],
                                                          "format": "xlsx"})
        orders, _ = read_xlsx(x.content)
        assert sorted(o["number"] for o in orders) == sorted(rig.made["hotline_order"][TOWN_A])


def _ids(text: str, made: dict[str, list[str]], town: str) -> set[str]:
    return {rid for rid in made[town] if rid in text}


@IN_MODULE_LOOP
async def test_a_scoped_key_exports_only_what_its_scope_covers(rig: Rig) -> None:
    """Town A's keys of every role, on every exported list: nothing of town B, and (for the
    ones that see anything) town A's records."""
    kinds = {"/api/v1/incidents": "incident", "/api/v1/work-orders": "work_order",
             "/api/v1/hotline/orders": "hotline_order", "/api/v1/alerts": "alert",
             "/api/v1/applications": "application"}
    seen: dict[tuple[str, str], int] = {}
    for who in ("operator_a", "station_a", "department_a", "field_a"):
        for path, kind in kinds.items():
            e = EXPORTED[path]
            async with rig.client(who) as c:
                for fmt in ("csv", "xlsx"):
                    r = await c.get(path, params={"format": fmt})
                    role = who.split("_")[0]
                    if role not in {x.value for x in e.roles}:
                        assert r.status_code == 403, (who, path)
                        continue
                    assert r.status_code == 200, (who, path, r.text)
                    text = (r.content.decode("utf-8-sig") if fmt == "csv"
                            else json.dumps(read_xlsx(r.content)[0], default=str))
                    assert not _ids(text, rig.made[kind], TOWN_B), (who, path, fmt)
                    seen[(who, path)] = len(_ids(text, rig.made[kind], TOWN_A))
    # The town's operator and its department see their own, in every list they may read.
    for path in kinds:
        if path != "/api/v1/applications":  # fire's queue: see below
            assert seen[("operator_a", path)] > 0, path
    assert seen[("department_a", "/api/v1/incidents")] == len(rig.made["incident"][TOWN_A])
    assert seen[("department_a", "/api/v1/work-orders")] == \
        len(rig.made["work_order"][TOWN_A])
    async with rig.client("fire") as c:  # the fire department's queue, both towns
        rows = read_csv((await c.get("/api/v1/applications", params={"format": "csv"})).content)
        assert {r["department"] for r in rows} == {"fire"} and len(rows) == 2 * PER_TOWN
    async with rig.client("operator_a") as c:
        # Another town's device is not found; the city-wide audit is not a town's.
        r = await c.get("/api/v1/devices/noise-of-990001002/readings", params={"format": "csv"})
        assert r.status_code == 404
        assert (await c.get("/api/v1/audit", params={"format": "csv"})).status_code == 403
        r = await c.get("/api/v1/evaluation", params={"format": "csv", "group_by": "area",
                                                      "period": LISTS["/api/v1/evaluation"][1]
                                                      ["period"]})
        groups = {row["group"] for row in read_csv(r.content)}
        assert groups and all(g.startswith(TOWN_A) for g in groups if g), groups


@IN_MODULE_LOOP
async def test_text_that_would_be_a_formula_is_neutralised(rig: Rig) -> None:
    async with rig.client() as c:
        params = {"area": TOWN_A}
        rows = read_csv((await c.get("/api/v1/incidents",
                                     params={**params, "format": "csv"})).content)
        x = await c.get("/api/v1/incidents", params={**params, "format": "xlsx"})
    titles = {r["title"] for r in rows}
    assert titles == {"'=HYPERLINK(\"http://evil\",\"x\")", "'-2+3", "'@SUM(A1)", "-12",
                      "井盖缺失 (Pudong)"}
    _, book = read_xlsx(x.content)
    sheet = book.worksheets[0]
    header = [cell.value for cell in sheet[1]]
    column = header.index("title") + 1
    cells = {sheet.cell(row, column).value: sheet.cell(row, column)
             for row in range(2, sheet.max_row + 1)}
    assert set(cells) == {t.lstrip("'") for t in titles}
    for text, cell in cells.items():
        assert cell.data_type == "s", text  # text, never a formula
        assert cell.quotePrefix == export.risky(text), text
    lat = sheet.cell(2, header.index("lat") + 1)
    assert lat.data_type == "n"  # numbers stay numbers


@IN_MODULE_LOOP
async def test_formats_asked_for_and_refused(rig: Rig) -> None:
    async with rig.client() as c:
        r = await c.get("/api/v1/incidents", params={"format": "pdf"})
        assert r.status_code == 400
        assert "format='pdf' is not one of: json, csv, xlsx" in r.json()["error"]
        r = await c.get("/api/v1/incidents?format=csv&format=xlsx")
        assert r.status_code == 400 and "format" in r.json()["error"]
        r = await c.get("/api/v1/incidents", params={"format": "csv", "status": "lost"})
        assert r.status_code == 400 and "lost" in r.json()["error"]  # as the JSON says
        r = await c.get("/api/v1/incidents", params={"format": "json"})
        assert r.headers["content-type"] == "application/json"
        r = await c.get("/api/v1/audit", headers={"Accept": "text/csv"})
        assert r.headers["content-type"].startswith("text/csv")
        # The nine entries written above, beside the devices' registrations (audited too).
        actions = [row["action"] for row in read_csv(r.content)]
        assert actions.count("area.state") == 9
        assert set(actions) == {"area.state", "device.register"}
        r = await c.get("/api/v1/audit", headers={"Accept": export.XLSX})
        assert r.headers["content-type"] == export.XLSX
        r = await c.get("/api/v1/audit", headers={
            "Accept": "application/json, text/csv;q=0.5"})
        assert r.headers["content-type"] == "application/json"
        r = await c.get("/api/v1/audit", headers={"Accept": "*/*"})
        assert r.headers["content-type"] == "application/json"
        r = await c.head("/api/v1/audit", params={"format": "csv"})
        assert r.status_code == 200 and r.content == b""
        assert "attachment" in r.headers["content-disposition"]
        # A list with no export declared goes on ignoring the parameter, as before.
        r = await c.get("/api/v1/staff", params={"format": "csv"})
        assert r.headers["content-type"] == "application/json"


@IN_MODULE_LOOP
async def test_exports_in_progress_are_bounded_and_released(rig: Rig) -> None:
    state = rig.live.app.state
    assert getattr(state, "exports_running", 0) == 0
    assert not state.fairshare._in_flight  # every export so far gave its place back
    state.exports_running = export.MAX_EXPORTS
    try:
        async with rig.client() as c:
            r = await c.get("/api/v1/audit", params={"format": "csv"})
            assert r.status_code == 503 and r.headers["retry-after"] == "5"
            assert (await c.get("/api/v1/audit")).status_code == 200  # JSON is not held up
    finally:
        state.exports_running = 0
    assert not list((rig.live.node.settings.data_dir / "exports").glob("*.xlsx"))


@IN_MODULE_LOOP
async def test_a_client_gone_after_the_first_bytes_leaves_nothing_held(rig: Rig) -> None:
    """Over a real server: the client reads the first bytes and hangs up. The export's place
    among the node's and the key's requests is given back, and no workbook is left."""
    state = rig.live.app.state
    async with served(rig.live.app) as base:
        for fmt in ("csv", "xlsx"):
            async with httpx.AsyncClient(base_url=base, headers={
                    "Authorization": f"Bearer {rig.keys['admin']}"}) as c, \
                    c.stream("GET", "/api/v1/incidents", params={"format": fmt}) as r:
                assert r.status_code == 200
                async for _ in r.aiter_raw(16):
                    break
            async with asyncio.timeout(10):  # a bound, not a speed: it fails only if stuck
                while getattr(state, "exports_running", 0) or state.fairshare._in_flight:
                    await asyncio.sleep(0.01)
    assert not list((rig.live.node.settings.data_dir / "exports").glob("*"))


@IN_MODULE_LOOP
async def test_rows_past_a_sheet_go_on_in_the_next(rig: Rig, monkeypatch:
                                                   pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "SHEET_ROWS", 4)  # a header and 3 rows a sheet
    async with rig.client() as c:
        r = await c.get("/api/v1/incidents", params={"format": "xlsx"})
    rows, book = read_xlsx(r.content)
    assert len(rows) == 2 * PER_TOWN
    assert [s.title for s in book.worksheets] == ["incidents", "incidents 2", "incidents 3",
                                                  "incidents 4"]
    assert all(s.cell(1, 1).value == "id" and s.max_row <= 4 for s in book.worksheets)


class Inner(msgspec.Struct):
    code: str
    seen_at: float


class Row(msgspec.Struct):
    id: str
    at: float
    parked_s: float
    where: Inner | None
    tags: list[str]
    doc: dict[str, Any]


def test_columns_flatten_nested_objects_and_find_times() -> None:
    columns = {c.header: c.kind for c in export.columns_of(Row)}
    assert columns == {"id": export.PLAIN, "at": export.TIME, "parked_s": export.PLAIN,
                       "where.code": export.PLAIN, "where.seen_at": export.TIME,
                       "tags": export.JOIN, "doc": export.JSON}
    rows = export.CsvRows(export.columns_of(Row), TZ)
    body = rows.head() + rows.page([Row("a", 0.0, 1.5, None, ["x", "y"], {"k": [1]})])
    assert read_csv(body) == [{"id": "a", "at": "1970-01-01T08:00:00+08:00", "parked_s": "1.5",
                               "where.code": "", "where.seen_at": "", "tags": "x; y",
                               "doc": '{"k":[1]}'}]


def test_the_openapi_document_names_the_format_and_the_media() -> None:
    from cityops.api.openapi import document
    from cityops.api.openapi_gen import _openapi_path

    spec = document()
    for path in EXPORTED:
        op = spec["paths"][_openapi_path(path)]["get"]
        [fmt] = [p for p in op["parameters"] if p["name"] == "format"]
        assert fmt["schema"]["enum"] == ["json", "csv", "xlsx"]
        assert {"application/json", "text/csv", export.XLSX} <= set(op["responses"]["200"]
                                                                   ["content"]), path
        assert "503" in op["responses"]
