"""PDF reports on a live node: made through the API and read back as a PDF that poppler
renders to PNG with every section present (Chinese area names included); kept and listed
within the key's scope; made each month by the schedule on the node's clock; refused with
Retry-After when the node is already rendering all it takes at once."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import msgspec
import pytest

from cityops.domain.city import Device
from cityops.reports.render import SECTIONS
from tests.clock_kit import Clock
from tests.reports.report_kit import ALL, DISTRICT, TOWN_1, TOWN_2, at

NAMES = {DISTRICT: "网格新区", TOWN_1: "陆家嘴街道"}


def city(grid_pack):
    areas = [msgspec.structs.replace(a, name=NAMES.get(a.code, a.name))
             for a in grid_pack.areas]
    kpi = Device(id=f"kpi-calls-{DISTRICT}", kind="kpi", lat=31.15, lon=121.45, owner="police",
                 name="110 police calls per hour, 网格新区",
                 meta={"kpi": "calls_110", "level": "district", "area": DISTRICT})
    return msgspec.structs.replace(grid_pack, areas=areas, devices=grid_pack.devices + [kpi])


@pytest.fixture
async def rig(tmp_path, grid_pack, live_node):
    async with live_node(city(grid_pack), tmp_path / "d", clock=Clock(at(2026, 12, 5)),
                         detect=False, max_age_s=1e9) as live:
        await live.node.store.insert_incidents(ALL)
        yield live


def poppler() -> None:
    if shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftoppm, pdftotext) is not installed: "
                    "apt-get install poppler-utils")


def poppler_read(path: Path) -> tuple[list[Path], str]:
    """The PDF's pages rendered to PNG by pdftoppm, and its text as pdftotext reads it."""
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(path), str(path.parent / "page")],
                   check=True, timeout=60)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, timeout=60,
                          capture_output=True, text=True).stdout
    return sorted(path.parent.glob("page*.png")), text


async def test_a_report_through_the_api_is_a_pdf_with_every_section(rig, tmp_path) -> None:
    poppler()
    async with rig.client(await rig.key("device")) as d:
        r = await d.post("/api/v1/readings", json=[
            {"device_id": f"kpi-calls-{DISTRICT}", "ts": at(2026, 11, day, 9),
             "values": {"value": 10 + day}} for day in range(1, 31)])
        assert r.status_code == 202 and not r.json()["rejected"], r.text
    async with rig.client(await rig.key("operator")) as c:
        r = await c.post("/api/v1/reports", json={"area": DISTRICT, "period": "2026-11"})
        assert r.status_code == 201, r.text
        made = r.json()
        meta = (await c.get(f"/api/v1/reports/{made['id']}")).json()
        pdf = await c.get(f"/api/v1/reports/{made['id']}.pdf")
    assert made["status"] == "ready" and made["area_name"] == NAMES[DISTRICT]
    assert (meta["first"], meta["last"], meta["level"]) == ("2026-11-01", "2026-11-30",
                                                            "district")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) == made["size"]
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.content)
    pages, text = await asyncio.to_thread(poppler_read, path)
    assert pages and all(p.read_bytes().startswith(b"\x89PNG") for p in pages)
    for heading in SECTIONS:
        assert heading in text, heading
    assert NAMES[DISTRICT] in text and NAMES[TOWN_1] in text  # the CJK font writes them
    assert "80.0 %" in text  # the district's closure rate: 4 of 5 due cases closed
    assert "exposed garbage" in text.lower() or "Exposed" in text


async def test_reports_are_kept_and_listed_within_the_keys_scope(rig) -> None:
    async with rig.client(await rig.key("admin")) as c:
        for area in (TOWN_1, TOWN_2, DISTRICT):
            rig.node.clock.now += 1
            r = await c.post("/api/v1/reports", json={"area": area, "period": "2026-11-16"})
            assert r.status_code == 201, r.text
        everything = (await c.get("/api/v1/reports")).json()["items"]
        r = await c.post("/api/v1/reports", json={"area": "990009"})
        assert r.status_code == 400 and "990009" in r.json()["error"]
        r = await c.post("/api/v1/reports", json={"area": DISTRICT, "period": "2024..2026"})
        assert r.status_code == 400
        r = await c.post("/api/v1/reports", json={"area": DISTRICT, "period": "2020-01-01..2026-01-01"})
        assert r.status_code == 400 and "year" in r.json()["error"]
    assert [x["area"] for x in everything] == [DISTRICT, TOWN_2, TOWN_1]  # newest first
    ids = {x["area"]: x["id"] for x in everything}
    async with rig.client(await rig.key("operator", TOWN_1)) as c:
        mine = (await c.get("/api/v1/reports")).json()["items"]
        wider = (await c.get("/api/v1/reports", params={"area": DISTRICT})).json()["items"]
        other = (await c.get("/api/v1/reports", params={"area": TOWN_2})).json()["items"]
        assert (await c.get(f"/api/v1/reports/{ids[TOWN_2]}")).status_code == 404
        assert (await c.get(f"/api/v1/reports/{ids[TOWN_2]}.pdf")).status_code == 404
        assert (await c.get(f"/api/v1/reports/{ids[DISTRICT]}.pdf")).status_code == 404
        assert (await c.get(f"/api/v1/reports/{ids[TOWN_1]}.pdf")).status_code == 200
        r = await c.post("/api/v1/reports", json={"area": TOWN_2})
        assert r.status_code == 403
        r = await c.post("/api/v1/reports", json={})  # its own town, last month
        assert r.status_code == 201 and r.json()["area"] == TOWN_1
        assert r.json()["period"] == "2026-11"
    assert [x["id"] for x in mine] == [ids[TOWN_1]]
    assert [x["id"] for x in wider] == [ids[TOWN_1]] and other == []
    async with rig.client(await rig.key("department", "environment")) as c:
        assert (await c.get("/api/v1/reports")).status_code == 403


async def test_a_busy_node_refuses_with_retry_after(rig) -> None:
    reports = rig.node.reports
    async with rig.client(await rig.key("admin")) as c:
        reports._busy = reports.at_once  # as many renders in hand as it takes
        try:
            r = await c.post("/api/v1/reports", json={"area": TOWN_1})
        finally:
            reports._busy = 0
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert (await c.post("/api/v1/reports", json={"area": TOWN_1})).status_code == 201


async def test_the_schedule_makes_last_months_reports_once(tmp_path, grid_pack,
                                                            live_node) -> None:
    clock = Clock(at(2026, 11, 20))
    async with live_node(city(grid_pack), tmp_path / "d", clock=clock, detect=False,
                         reports_tick_s=0.02) as live:
        node = live.node
        await node.store.insert_incidents(ALL)
        await until(lambda: node.store.get_meta("reports.scheduled"), "2026-10")
        assert await node.reports.recent(None, 10) == []  # a new node makes nothing at start
        clock.now = at(2026, 12, 1, 0) + 60  # a minute into December, Shanghai time
        await until(lambda: node.store.get_meta("reports.scheduled"), "2026-11")
        made = await node.reports.recent(None, 10)
        assert sorted(d.area for d in made) == [DISTRICT, TOWN_1, TOWN_2]
        assert {(d.period, d.scheduled, d.status, d.made_by) for d in made} == {
            ("2026-11", True, "ready", "schedule")}
        assert all(node.reports.path_of(d.id).is_file() for d in made)
        # Run again (a second node, a restart that lost the meta key): nothing made twice.
        await node.store.set_meta("reports.scheduled", "2026-10")
        assert await node.reports.schedule_once() == []
        assert len(await node.reports.recent(None, 10)) == 3
    async with live_node(city(grid_pack), tmp_path / "e", clock=clock, detect=False,
                         reports_schedule=False, reports_tick_s=0.02) as live:
        await asyncio.sleep(0.1)
        assert await live.node.store.get_meta("reports.scheduled") is None  # turned off


async def until(read, want, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := await read()) != want:
        assert time.monotonic() < deadline, f"still {got!r}, waiting for {want!r}"
        await asyncio.sleep(0.02)
