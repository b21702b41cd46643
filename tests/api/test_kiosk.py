"""The kiosk through the HTTP API on a live node: the card's checksum, the SMS code (sent only
to the registered phone, stored only as a keyed hash, single use, five tries, five minutes, a
minute between codes), the short-lived citizen key it gives and its sign-out, an application
made at the kiosk with both exemptions (the premises title attached from the e-licence store,
the ID card got by data sharing), and its receipt printed as a PDF."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import msgspec
import pytest

from cityops.domain.city import Department
from cityops.packs.categories_file import default_categories
from cityops.serve.kiosk.idcard import BadCard, check_card, check_digit

from .conftest import MONDAY_10, Clock

DEPARTMENTS = ["police", "fire", "city_management", "market_regulation",
               "housing_construction", "health", "medical_insurance"]


def card(first17: str) -> str:
    return first17 + check_digit(first17)


LI_CARD = card("31011519800101123")
LI = {"id": "c-000123", "name": "Li Wei", "phone": "13812345678", "id_number": LI_CARD,
      "birth_date": "1980-01-01", "area": "990001001001", "address": "8 Zhangyang Road"}
RESTAURANT = {"business_name": "Li's Noodles", "business_address": "8 Zhangyang Road",
              "business_scope": "catering"}


@pytest.fixture
def kiosk_city(grid_pack):
    departments = [Department(code, code.replace("_", " ").title(), None, ["990001"])
                   for code in DEPARTMENTS]
    return msgspec.structs.replace(grid_pack, departments=departments,
                                   categories=default_categories(DEPARTMENTS))


def codes_sent(live, phone: str) -> list[str]:
    return [re.match(r"\d{6}", n.body).group() for n in live.node.act.notifier.sent
            if n.kind == "kiosk.code" and n.recipient == phone]


async def register(live, person=LI) -> None:
    async with live.client(await live.key("operator")) as op:
        r = await op.post("/api/v1/citizens", json=person)
        assert r.status_code == 201, r.text


def test_the_card_number_is_checked_before_anything_is_looked_up() -> None:
    import datetime as dt

    today = dt.date(2026, 11, 23)
    assert check_card(LI_CARD.lower(), today) == LI_CARD
    assert check_card("11010519491231002X", today) == "11010519491231002X"  # the GB example
    swapped = LI_CARD[:14] + LI_CARD[15] + LI_CARD[14] + LI_CARD[16:]  # two neighbours
    for bad, why in ((LI_CARD[:-1], "18 characters"), (swapped, "check digit"),
                     (card("31011519801301123"), "not a date of birth"),
                     ("99" + LI_CARD[2:], "province"), ("3101151980010112A4", "17 digits"),
                     (card("31011520300101123"), "cannot be right")):
        with pytest.raises(BadCard, match=why):
            check_card(bad, today)


async def test_card_and_sms_code_give_a_short_lived_citizen_key(
        tmp_path, kiosk_city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(kiosk_city, tmp_path / "data", clock=clock,
                         notify_url="memory:") as live:
        await register(live)
        kiosk = live.client()
        # A misread card and a card nobody registered are told apart, and no SMS goes out.
        r = await kiosk.post("/api/v1/kiosk/card", json={"card_number": LI_CARD[:-1] + "Y"})
        assert r.status_code == 400 and r.json()["code"] == "kiosk_bad_card", r.text
        r = await kiosk.post("/api/v1/kiosk/card",
                             json={"card_number": card("31011519900101123")})
        assert r.status_code == 404 and r.json()["code"] == "kiosk_unknown_card"
        r = await kiosk.post("/api/v1/kiosk/card", json={"card_number": 310115})
        assert r.status_code == 400
        assert codes_sent(live, LI["phone"]) == []

        r = await kiosk.post("/api/v1/kiosk/card", json={"card_number": LI_CARD})
        assert r.status_code == 200, r.text
        started = r.json()
        assert started["phone"] == "138****5678"
        assert started["expires_at"] == MONDAY_10 + 300
        [code] = codes_sent(live, LI["phone"])
        # The code is nowhere in the store, only its keyed hash.
        rec = await live.node.store.get_record("kiosk_code", started["challenge"])
        assert rec is not None and code.encode() not in rec.doc

        # Another code at once is refused (a minute between codes), with when to try again.
        r = await kiosk.post("/api/v1/kiosk/card", json={"card_number": LI_CARD})
        assert r.status_code == 429 and r.json()["code"] == "kiosk_too_many_codes"
        assert r.headers["Retry-After"] == "60"

        wrong = "000000" if code != "000000" else "111111"
        r = await kiosk.post("/api/v1/kiosk/session",
                             json={"challenge": started["challenge"], "code": wrong})
        assert r.status_code == 403 and r.json()["code"] == "kiosk_wrong_code"
        assert r.json()["detail"] == {"attempts_left": 4}
        before = time.time()
        r = await kiosk.post("/api/v1/kiosk/session",
                             json={"challenge": started["challenge"], "code": code})
        assert r.status_code == 201, r.text
        session = r.json()
        assert session["citizen"] == "c-000123" and session["name"] == "Li Wei"
        assert before + 900 <= session["expires_at"] <= time.time() + 900
        r = await kiosk.post("/api/v1/kiosk/session",
                             json={"challenge": started["challenge"], "code": code})
        assert r.status_code == 409 and r.json()["code"] == "kiosk_code_used"

        me = live.client(session["key"])
        r = await me.get("/api/v1/citizens/me")
        assert r.status_code == 200 and r.json()["phone"] == LI["phone"]
        # The kiosk key is Li's only: another citizen's record is not found.
        assert (await me.get("/api/v1/citizens/c-other")).status_code == 404

        # Signing out revokes it at once; a citizen's own long-lived key is not ended here.
        own = live.client(await live.key("citizen", name="c-000123"))
        r = await own.delete("/api/v1/kiosk/session")
        assert r.status_code == 409 and r.json()["code"] == "kiosk_not_a_session"
        assert (await own.get("/api/v1/citizens/me")).status_code == 200
        assert (await me.delete("/api/v1/kiosk/session")).status_code == 204
        assert (await me.get("/api/v1/citizens/me")).status_code == 401


async def test_an_expired_code_and_too_many_wrong_codes_are_refused(
        tmp_path, kiosk_city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(kiosk_city, tmp_path / "data", clock=clock,
                         notify_url="memory:") as live:
        await register(live)
        kiosk = live.client()
        first = (await kiosk.post("/api/v1/kiosk/card", json={"card_number": LI_CARD})).json()
        [code] = codes_sent(live, LI["phone"])
        clock.now += 301
        r = await kiosk.post("/api/v1/kiosk/session",
                             json={"challenge": first["challenge"], "code": code})
        assert r.status_code == 410 and r.json()["code"] == "kiosk_code_expired"

        second = (await kiosk.post("/api/v1/kiosk/card", json={"card_number": LI_CARD})).json()
        code = codes_sent(live, LI["phone"])[-1]
        wrong = "000000" if code != "000000" else "111111"
        for left in (4, 3, 2, 1, 0):
            r = await kiosk.post("/api/v1/kiosk/session",
                                 json={"challenge": second["challenge"], "code": wrong})
            assert r.status_code == 403 and r.json()["detail"] == {"attempts_left": left}
        r = await kiosk.post("/api/v1/kiosk/session",
                             json={"challenge": second["challenge"], "code": code})
        assert r.status_code == 429 and r.json()["code"] == "kiosk_code_locked"
        r = await kiosk.post("/api/v1/kiosk/session", json={"challenge": "kc-forged",
                                                            "code": code})
        assert r.status_code == 404 and r.json()["code"] == "kiosk_unknown_challenge"

        # Five codes an hour per card, however far apart.
        for _ in range(3):
            clock.now += 61
            r = await kiosk.post("/api/v1/kiosk/card", json={"card_number": LI_CARD})
            assert r.status_code == 200, r.text
        clock.now += 61
        r = await kiosk.post("/api/v1/kiosk/card", json={"card_number": LI_CARD})
        assert r.status_code == 429 and "5 codes were sent" in r.json()["error"]
        assert len(codes_sent(live, LI["phone"])) == 5

        # An SMS service that refuses leaves no code behind and counts no send.
        clock.now += 3600
        held = {r.id for r in await live.node.store.find_records("kiosk_code")}
        live.node.act.notifier.fail_next(1)
        r = await kiosk.post("/api/v1/kiosk/card", json={"card_number": LI_CARD})
        assert r.status_code == 503 and r.json()["code"] == "kiosk_sms_unavailable"
        left = {r.id for r in await live.node.store.find_records("kiosk_code")}
        # Nothing new is kept; the codes long expired were swept meanwhile.
        assert left <= held and len(left) < len(held)
        r = await kiosk.post("/api/v1/kiosk/card", json={"card_number": LI_CARD})
        assert r.status_code == 200, r.text


def pdf_text(pdf) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


async def kiosk_key(live) -> str:
    kiosk = live.client()
    started = (await kiosk.post("/api/v1/kiosk/card", json={"card_number": LI_CARD})).json()
    code = codes_sent(live, LI["phone"])[-1]
    r = await kiosk.post("/api/v1/kiosk/session",
                         json={"challenge": started["challenge"], "code": code})
    assert r.status_code == 201, r.text
    return r.json()["key"]


async def test_apply_at_the_kiosk_with_both_exemptions_and_print_the_receipt(
        tmp_path, kiosk_city, live_node) -> None:
    async with live_node(kiosk_city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        await register(live)
        housing = live.client(await live.key("department", "housing_construction"))
        r = await housing.post("/api/v1/licences", json={
            "holder": "c-000123", "type": "property_certificate", "number": "沪2020浦字001",
            "valid_from": "2020-05-01"})
        assert r.status_code == 201, r.text
        me = live.client(await kiosk_key(live))

        items = (await me.get("/api/v1/services", params={"channel": "kiosk"})).json()["items"]
        assert "restaurant_business_licence" in [i["code"] for i in items]
        assert all("kiosk" in i["channels"] for i in items)
        form = (await me.get("/api/v1/services/restaurant_business_licence/form")).json()
        materials = {m["code"]: m["status"] for m in form["materials"]}
        assert materials == {"id_card": "shared", "premises_title": "attached"}
        assert form["asked"] == []
        # A scan of the title handed in anyway is not taken: the store's licence is attached.
        r = await me.post("/api/v1/applications", json={
            "service": "restaurant_business_licence", "answers": RESTAURANT,
            "materials": {"premises_title": "scan.pdf"}, "channel": "kiosk"})
        assert r.status_code == 201, r.text
        sub = r.json()
        assert sub["channel"] == "kiosk"
        held = {m["code"]: m for m in sub["materials"]}
        assert held["premises_title"]["status"] == "attached"
        assert held["premises_title"]["licence_number"] == "沪2020浦字001"
        # An item not offered at kiosks is refused for the kiosk channel.
        r = await me.post("/api/v1/applications", json={
            "service": "food_operating_permit", "answers": RESTAURANT, "channel": "kiosk"})
        assert r.status_code == 409 and "not offered through kiosk" in r.json()["error"]

        r = await me.get(f"/api/v1/kiosk/receipts/{sub['id']}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF-")
        if shutil.which("pdftotext"):
            pdf = tmp_path / "receipt.pdf"
            pdf.write_bytes(r.content)
            text = pdf_text(pdf)
            assert sub["id"] in text
            assert "Business licence for a restaurant" in text
            assert "attached from the e-licence store" in text
            assert "138****5678" in text and LI["phone"] not in text
        # Nobody else's receipt.
        other = live.client(await live.key("citizen", name="c-000999"))
        assert (await other.get(f"/api/v1/kiosk/receipts/{sub['id']}")).status_code == 404
        market = live.client(await live.key("department", "market_regulation"))
        assert (await market.get(f"/api/v1/kiosk/receipts/{sub['id']}")).status_code == 200


async def test_the_code_sms_is_in_the_kiosk_pages_language(
        tmp_path, kiosk_city, live_node) -> None:
    async with live_node(kiosk_city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        await register(live)
        r = await live.client().post("/api/v1/kiosk/card",
                                      json={"card_number": LI_CARD, "lang": "zh-CN"})
        assert r.status_code == 200, r.text
        [code] = codes_sent(live, LI["phone"])
        [sms] = [n for n in live.node.act.notifier.sent if n.kind == "kiosk.code"]
        # The city writes in English; the citizen at the kiosk reads Chinese.
        assert live.node.pack.info.language == "en"
        assert (sms.lang, sms.text) == (
            "zh-CN", f"自助终端登录验证码{code}，5分钟内有效，请勿告诉他人。")
