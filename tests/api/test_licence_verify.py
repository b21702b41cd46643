"""E-licences printed and verified (issue 18, item 2) on a live node: a licence's PDF carries
its verification code and a QR code of the verify page's address (read back from a rendering
of the page and compared module by module with the symbol segno makes for that address); the
public verify route says genuine and valid, expired or revoked with only the minimum shown;
forged, mistyped and malformed codes are refused the same way whatever exists; the code and
its look-up survive a restart in every store backend."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess
import uuid
from pathlib import Path

import msgspec
import pytest
from PIL import Image

from cityops.domain.onestop import verification
from cityops.domain.onestop.licences import Licence
from cityops.serve.onestop import licence_pdf
from cityops.serve.onestop.licences import CODE_KIND, KIND, LicenceBook, record_of
from cityops.store.base import Record, open_store

from .conftest import MONDAY_10, Clock

TOWN2_VILLAGE = "990001002001"

ZHANG = {"id": "c-000123", "name": "张小三", "phone": "13812345678",
         "id_number": "310115198001011234", "birth_date": "1980-01-01", "area": "990001001001",
         "address": "8 Zhangyang Road"}
SMITH = {"id": "c-000456", "name": "John Smith", "phone": "13912345678",
         "id_number": "310115198102021234", "birth_date": "1981-02-02",
         "area": TOWN2_VILLAGE, "address": "1 Century Avenue"}
TODAY = dt.date(2026, 11, 23)  # MONDAY_10 in Shanghai
SIGN = {"holder": ZHANG["id"], "type": "outdoor_signage_permit", "number": "CM-2026-0042",
        "valid_from": "2026-01-01", "valid_until": "2028-12-31"}
ANSWER_KEYS = {"genuine", "code", "checked_on", "state", "type", "type_name", "type_name_zh",
               "holder", "valid_from", "valid_until", "revoked_on"}
NEEDS_POPPLER = pytest.mark.skipif(shutil.which("pdftotext") is None
                                   or shutil.which("pdftoppm") is None,
                                   reason="poppler-utils (pdftotext, pdftoppm) is not installed")


async def _people(live) -> None:
    async with live.client(await live.key("operator")) as op:
        for person in (ZHANG, SMITH):
            r = await op.post("/api/v1/citizens", json=person)
            assert r.status_code == 201, r.text


async def _issue(live, body=SIGN, role="department", scope="city_management") -> dict:
    async with live.client(await live.key(role, scope)) as issuer:
        r = await issuer.post("/api/v1/licences", json=body)
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture
async def node(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10)) as live:
        await _people(live)
        yield live


async def _verify(live, code: str):
    async with live.client() as anyone:  # no key: the public route
        return await anyone.get(f"/api/v1/licences/verify/{code}")


async def test_a_genuine_licence_shows_only_the_minimum(node) -> None:
    lic = await _issue(node)
    code = lic["verify_code"]
    assert len(code) == 24 and code.count("-") == 4  # five groups of four
    r = await _verify(node, code)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body == {"genuine": True, "code": code, "checked_on": "2026-11-23", "state": "valid",
                    "type": "outdoor_signage_permit", "type_name": "Outdoor signage permit",
                    "type_name_zh": "户外招牌设置许可", "holder": "张*三",
                    "valid_from": "2026-01-01", "valid_until": "2028-12-31", "revoked_on": None}
    # Nothing else of the licence or the person: no number, id, phone, address or issuer.
    for private in (SIGN["number"], ZHANG["id"], ZHANG["name"], "1381", "Zhangyang",
                    "city_management", lic["id"]):
        assert private not in r.text
    # As a person types it: lower case, spaces for dashes, O for 0 and I or L for 1.
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    again = await _verify(node, typed)
    assert again.json() == body

    # A Latin name is masked word by word, whatever the words' lengths.
    smith = await _issue(node, {**SIGN, "holder": SMITH["id"], "number": "CM-2026-0043"})
    assert (await _verify(node, smith["verify_code"])).json()["holder"] == "J*** S***"


async def test_expired_and_revoked_licences_say_so(node) -> None:
    old = await _issue(node, {**SIGN, "number": "CM-2019-0007", "valid_from": "2019-01-01",
                              "valid_until": "2025-12-31"})
    body = (await _verify(node, old["verify_code"])).json()
    assert (body["genuine"], body["state"], body["valid_until"]) == (True, "expired",
                                                                     "2025-12-31")
    lasting = await _issue(node, {**SIGN, "number": "CM-2026-0099", "valid_until": None})
    body = (await _verify(node, lasting["verify_code"])).json()
    assert (body["state"], body["valid_until"]) == ("valid", None)

    lic = await _issue(node)
    async with node.client(await node.key("department", "city_management")) as desk:
        r = await desk.post(f"/api/v1/licences/{lic['id']}/revoke",
                            json={"reason": "sign taken down after a complaint"})
        assert r.status_code == 200, r.text
    r = await _verify(node, lic["verify_code"])
    body = r.json()
    assert (body["genuine"], body["state"], body["revoked_on"]) == (True, "revoked",
                                                                    "2026-11-23")
    assert "complaint" not in r.text  # the reason is the holder's to read, not the public's


async def test_forged_and_mistyped_codes_are_not_genuine(node) -> None:
    lic = await _issue(node)
    real = verification.canonical(lic["verify_code"])
    forged = verification.new_code(b"\x5a" * verification.ENTROPY_BYTES)  # a valid check symbol
    assert verification.is_well_formed(forged) and forged != real
    i = 7
    mistyped = real[:i] + ("Z" if real[i] != "Z" else "Y") + real[i + 1:]
    swapped = real[:3] + real[4] + real[3] + real[5:] if real[3] != real[4] else real[::-1]
    answers = []
    for code in (forged, mistyped, swapped):
        r = await _verify(node, verification.grouped(code))
        assert r.status_code == 200, r.text
        assert r.json() == {"genuine": False, "code": verification.grouped(code),
                            "checked_on": "2026-11-23", **dict.fromkeys(ANSWER_KEYS - {
                                "genuine", "code", "checked_on"})}
        answers.append(sorted(r.json()))
    assert answers[0] == answers[1] == answers[2]  # one shape: nothing tells them apart

    # An index entry for a code the licence does not hold (a forger with the database's
    # write access, or a crash between the two writes) finds nothing: the licence's own code
    # is what is compared.
    stray = Record(kind=CODE_KIND, id=verification.lookup_key(forged),
                   doc=msgspec.json.encode({"licence": lic["id"]}), created=1.0, updated=1.0)
    await node.node.store.put_record(stray)
    assert (await _verify(node, forged)).json()["genuine"] is False
    assert (await _verify(node, real)).json()["genuine"] is True


@pytest.mark.parametrize("typed", [
    "A" * 65,  # past what is read at all
    "52EA-P1JT-V0WA-AAQ3-D5C",  # a symbol short
    "52EA-P1JT-V0WA-AAQ3-D5CAA",  # a symbol too many
    "52EA-P1JT-V0WA-AAQ3-D5CU",  # U is no symbol
    "核验码核验码核验码核验码核验码核验码核验码",
    "%00%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13",
    "' OR 1=1 --",
])
async def test_malformed_codes_are_refused_cleanly(node, typed) -> None:
    r = await _verify(node, typed)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "licence_code_malformed"
    assert "verification code" in r.json()["error"]


async def test_verification_has_the_public_routes_budget(tmp_path, city, live_node) -> None:
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10), public_rate=5.0) \
            as live:
        statuses = [(await _verify(live, "52EA-P1JT-V0WA-AAQ3-D5CA")).status_code
                    for _ in range(30)]
        assert statuses[0] == 200 and statuses[-1] == 429


@NEEDS_POPPLER
async def test_the_pdf_carries_the_code_and_a_qr_code_of_the_verify_page(
        tmp_path, city, live_node) -> None:
    base = "https://ops.pudong.example"
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10),
                         public_base_url=base) as live:
        await _people(live)
        lic = await _issue(live)
        holder = live.client(await live.key("citizen", name=ZHANG["id"]))
        r = await holder.get(f"/api/v1/licences/{lic['id']}.pdf")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        assert r.headers["cache-control"] == "no-store"
        pdf = tmp_path / "licence.pdf"
        pdf.write_bytes(r.content)

        text = await asyncio.to_thread(_pdftotext, pdf)
        for shown in (lic["verify_code"], "户外招牌设置许可", "Outdoor signage permit",
                      "张小三", SIGN["number"], "2028-12-31", f"{base}/verify"):
            assert shown in text, shown

        url = f"{base}/verify?code={lic['verify_code']}"
        drawn = await asyncio.to_thread(_drawn_qr, pdf, tmp_path)
        assert drawn == [list(row) for row in licence_pdf.qr_matrix(url)]

        # Another town's operator, and no key at all, get nothing.
        other = live.client(await live.key("operator", "990001002"))
        assert (await other.get(f"/api/v1/licences/{lic['id']}.pdf")).status_code == 404
        assert (await live.client().get(f"/api/v1/licences/{lic['id']}.pdf")).status_code == 401


def _pdftotext(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


def _drawn_qr(pdf: Path, tmp_path: Path) -> list[list[int]]:
    """The QR code's modules as drawn: the page rendered at 150 dpi, the symbol found within
    the box the module says it is drawn in (its quiet zone around it), each module read at its
    centre."""
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-singlefile", str(pdf),
                    str(tmp_path / "page")], check=True)
    page = Image.open(tmp_path / "page.png").convert("L")
    scale = 150 / 72
    x0, y0 = licence_pdf.QR_ORIGIN
    quiet = licence_pdf.QR_QUIET * licence_pdf.QR_MODULE
    # Wide enough for the largest symbol this page can hold; reportlab's y runs upwards.
    box = 80 * 72 / 25.4
    left, bottom = (x0 - quiet / 2) * scale, page.height - (y0 - quiet / 2) * scale
    crop = page.crop((int(left), int(bottom - (box + quiet) * scale), int(left + box * scale),
                      int(bottom)))
    dark = [(x, y) for y in range(crop.height) for x in range(crop.width)
            if crop.getpixel((x, y)) < 128]
    xs, ys = [p[0] for p in dark], [p[1] for p in dark]
    side = max(xs) - min(xs) + 1
    n = round(side / (licence_pdf.QR_MODULE * scale))
    step = side / n
    return [[int(crop.getpixel((int(min(xs) + (c + 0.5) * step),
                                int(min(ys) + (r + 0.5) * step))) < 128) for c in range(n)]
            for r in range(n)]


async def test_an_old_licence_gets_one_code_when_first_printed(node) -> None:
    """A licence stored before codes were given has none until printed; two prints at once
    give it one code, the other attempt's index entry is taken back."""
    store = node.node.store
    old = Licence(id="lic-outdoor_signage_permit-OLD-1", holder=ZHANG["id"],
                  issuer="city_management", type="outdoor_signage_permit", number="OLD-1",
                  valid_from=dt.date(2024, 1, 1), issued_at=MONDAY_10 - 86400 * 400)
    await store.put_record(record_of(old, MONDAY_10))
    from cityops.serve.onestop import onestop_of

    book = onestop_of(node.node).book
    first, second = await asyncio.gather(book.with_code(old), book.with_code(old))
    assert first.verify_code and first.verify_code == second.verify_code
    entries = await store.find_records(CODE_KIND, limit=100)
    assert sum(msgspec.json.decode(e.doc)["licence"] == old.id for e in entries) == 1
    body = (await _verify(node, first.verify_code)).json()
    assert body["genuine"] and body["holder"] == "张*三"
    async with node.client(await node.key("admin")) as admin:
        got = (await admin.get(f"/api/v1/licences/{old.id}")).json()
        assert got["verify_code"] == verification.grouped(first.verify_code)


async def test_printing_is_bounded(node, monkeypatch) -> None:
    lic = await _issue(node)
    monkeypatch.setattr(licence_pdf, "_rendering", licence_pdf.MAX_RENDERS)
    async with node.client(await node.key("admin")) as admin:
        r = await admin.get(f"/api/v1/licences/{lic['id']}.pdf")
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text


async def test_the_code_survives_a_restart(tmp_path, city, live_node) -> None:
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10)) as live:
        await _people(live)
        lic = await _issue(live)
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10)) as live:
        body = (await _verify(live, lic["verify_code"])).json()
        assert body["genuine"] and body["state"] == "valid"
        async with live.client(await live.key("admin")) as admin:
            again = (await admin.get(f"/api/v1/licences/{lic['id']}")).json()
        assert again["verify_code"] == lic["verify_code"]


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
async def test_the_code_and_its_lookup_survive_reopening_every_store(
        backend, tmp_path, request) -> None:
    """What a restart keeps, in each backend the licence store runs on: the memory twin is the
    same object (it lives as long as its process), the others are opened anew by URL."""
    if backend == "postgres":
        base = request.getfixturevalue("postgres_url")
        url = f"{base}{'&' if '?' in base else '?'}schema=cityops_licence_{uuid.uuid4().hex[:12]}"
    else:
        url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path}/state.db"
    store = open_store(url)
    await store.open()
    try:
        lic, created = await LicenceBook(store, lambda: MONDAY_10).issue(Licence(
            id="lic-x-1", holder="c-1", issuer="city_management",
            type="outdoor_signage_permit", number="1", valid_from=dt.date(2026, 1, 1)))
        assert created and verification.is_well_formed(lic.verify_code)
        if backend != "memory":
            await store.close()
            store = open_store(url)
            await store.open()
        book = LicenceBook(store, lambda: MONDAY_10)
        assert (await book.by_code(lic.verify_code)) == lic
        assert (await book.get(lic.id)) == lic
        # The same issue again (a retried request) keeps the first code and leaves no second
        # index entry behind.
        again, created = await book.issue(msgspec.structs.replace(lic, verify_code=""))
        assert not created and again.verify_code == lic.verify_code
        assert len(await store.find_records(CODE_KIND, limit=10)) == 1
        assert len(await store.find_records(KIND, limit=10)) == 1
    finally:
        await store.close()
        if backend == "postgres":
            _drop_schema(url)


def _drop_schema(url: str) -> None:
    import psycopg

    from cityops.store.postgres import split_url

    conninfo, schema = split_url(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
