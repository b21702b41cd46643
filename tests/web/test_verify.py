"""The public licence check (/verify) in Debian's Chromium, as a shop's customer or an
inspector uses it: the QR code's address opens the page with the code and shows the verdict,
in Chinese and in English; a code typed by hand (lower case, no dashes) is checked too; an
expired, a revoked, a forged and a malformed code each say so; the page needs no key and loads
nothing from another host."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from cityops.domain.onestop import verification
from cityops.serve.onestop.licence_pdf import verify_url

from .conftest import KEYS, VILLAGE11, WebNode, web_city

ZHANG = {"id": "c-000123", "name": "张小三", "phone": "13812345678",
         "id_number": "310115198001011234", "birth_date": "1980-01-01", "area": VILLAGE11,
         "address": "8 Zhangyang Road"}
SMITH = {"id": "c-000456", "name": "John Smith", "phone": "13912345678",
         "id_number": "310115198102021234", "birth_date": "1981-02-02", "area": VILLAGE11,
         "address": "1 Century Avenue"}
VERIFY_KEYS = {**KEYS, "signs": ("department", "city_management", "signage desk")}
PHONE = (390, 844)


def _issue(client, holder: str, number: str, until: str | None) -> dict:
    r = client.post("/api/v1/licences", json={
        "holder": holder, "type": "outdoor_signage_permit", "number": number,
        "valid_from": "2020-01-01", "valid_until": until})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def web_node(tmp_path_factory):
    node = WebNode(web_city(), tmp_path_factory.mktemp("verify") / "data", VERIFY_KEYS)
    node.start()
    with node.client("operator") as op:
        for person in (ZHANG, SMITH):
            r = op.post("/api/v1/citizens", json=person)
            assert r.status_code in (200, 201), r.text
    with node.client("signs") as desk:
        node.licences = {
            "valid": _issue(desk, ZHANG["id"], "SIGN-1", "2099-12-31"),
            "smith": _issue(desk, SMITH["id"], "SIGN-2", None),
            "expired": _issue(desk, ZHANG["id"], "SIGN-3", "2021-12-31"),
            "revoked": _issue(desk, ZHANG["id"], "SIGN-4", "2099-12-31"),
        }
        lic = node.licences["revoked"]
        r = desk.post(f"/api/v1/licences/{lic['id']}/revoke", json={"reason": "taken down"})
        assert r.status_code == 200, r.text
    try:
        yield node
    finally:
        node.stop()


def _page(browser, url: str):
    # No key and no sign-in: the page is public. bypass_csp only lets the test's own probes
    # run; the page's requests are recorded to show they all stay on this node.
    context = browser.new_context(viewport={"width": PHONE[0], "height": PHONE[1]},
                                  is_mobile=True, has_touch=True, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    seen: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: seen.append(r.url))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    return context, page, errors, seen


def _code(web_node, name: str) -> str:
    return web_node.licences[name]["verify_code"]


def test_the_qr_codes_address_shows_a_genuine_licence_in_chinese(web_node, browser, artifacts):
    code = _code(web_node, "valid")
    # What the printed QR code holds, as the PDF route makes it for this node.
    url = verify_url(web_node.url, verification.canonical(code))
    context, page, errors, seen = _page(browser, url + "&lang=zh-CN")
    expect(page.locator("body")).to_have_attribute("data-checked", "valid", timeout=10_000)
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    expect(page.locator("h1")).to_have_text("这张证照是真的吗？")
    expect(page.locator("#verdict-title")).to_have_text("真实有效")
    expect(page.locator("#f-type")).to_have_text("户外招牌设置许可")
    expect(page.locator("#f-holder")).to_have_text("张*三")
    expect(page.locator("#f-until")).to_have_text("2099年12月31日")
    expect(page.locator("#f-code")).to_have_text(code)
    assert page.locator("#code").input_value() == code
    body = page.locator("body").inner_text()
    assert "SIGN-1" not in body and "张小三" not in body  # no number, no whole name
    hosts = {urlsplit(u).netloc for u in seen if not u.startswith(("data:", "blob:"))}
    assert hosts == {f"127.0.0.1:{web_node.port}"}, hosts
    page.screenshot(path=str(artifacts / "verify-genuine-zh.png"), full_page=True)
    assert errors == []
    context.close()


def test_a_code_typed_by_hand_in_english(web_node, browser, artifacts):
    context, page, errors, _ = _page(browser, f"{web_node.url}/verify?lang=en")
    expect(page.locator("h1")).to_have_text("Is this licence genuine?")
    typed = _code(web_node, "smith").replace("-", "").lower()
    page.fill("#code", typed)
    page.click("#go")
    expect(page.locator("body")).to_have_attribute("data-checked", "valid", timeout=10_000)
    expect(page.locator("#verdict-title")).to_have_text("Genuine and valid")
    expect(page.locator("#f-type")).to_have_text("Outdoor signage permit")
    expect(page.locator("#f-holder")).to_have_text("J*** S***")
    expect(page.locator("#f-until")).to_have_text("No end date")
    assert "code=" in page.url  # the address names the code checked, to reload or pass on
    # The other language redraws the same answer.
    page.click("button.lang-switch")
    expect(page.locator("#verdict-title")).to_have_text("真实有效")
    expect(page.locator("#f-until")).to_have_text("长期有效")
    page.screenshot(path=str(artifacts / "verify-typed.png"), full_page=True)
    assert errors == []
    context.close()


@pytest.mark.parametrize("lang, titles", [
    ("en", {"expired": "Genuine, but expired", "revoked": "Genuine, but revoked"}),
    ("zh-CN", {"expired": "证照真实，但已过期", "revoked": "证照真实，但已撤销"}),
])
def test_expired_and_revoked_licences_say_so(web_node, browser, artifacts, lang, titles):
    for state, title in titles.items():
        code = _code(web_node, state)
        context, page, errors, _ = _page(browser, f"{web_node.url}/verify?code={code}&lang={lang}")
        expect(page.locator("body")).to_have_attribute("data-checked", state, timeout=10_000)
        expect(page.locator("#verdict-title")).to_have_text(title)
        expect(page.locator("#verdict")).to_have_class(re.compile(
            r"\bbad\b" if state == "revoked" else r"\bwarn\b"))
        if state == "expired":
            expect(page.locator("#verdict-text")).to_contain_text(
                "2021" if lang == "zh-CN" else "December 31, 2021")
        else:
            expect(page.locator("#f-revoked")).to_be_visible()
        page.screenshot(path=str(artifacts / f"verify-{state}-{lang}.png"), full_page=True)
        assert errors == []
        context.close()


@pytest.mark.parametrize("lang, not_genuine, malformed", [
    ("en", "Not genuine", "This is not a verification code"),
    ("zh-CN", "非真实证照", "这不是核验码"),
])
def test_forged_mistyped_and_malformed_codes(web_node, browser, artifacts, lang, not_genuine,
                                             malformed):
    real = verification.canonical(_code(web_node, "valid"))
    forged = verification.new_code(bytes(range(1, 13)))
    mistyped = real[:5] + ("Z" if real[5] != "Z" else "Y") + real[6:]
    context, page, errors, _ = _page(browser, f"{web_node.url}/verify?lang={lang}")
    for code in (forged, mistyped):
        page.fill("#code", verification.grouped(code))
        page.click("#go")
        expect(page.locator("body")).to_have_attribute("data-checked", "not_genuine",
                                                        timeout=10_000)
        expect(page.locator("#verdict-title")).to_have_text(not_genuine)
        expect(page.locator("#verdict-text")).to_contain_text(verification.grouped(code))
        expect(page.locator("#facts")).to_be_hidden()  # nothing of anyone's licence
        page.evaluate("delete document.body.dataset.checked")
    page.screenshot(path=str(artifacts / f"verify-forged-{lang}.png"), full_page=True)
    for text in ("not a code at all", "../../licences/x/y"):
        page.fill("#code", text)
        page.click("#go")
        expect(page.locator("body")).to_have_attribute("data-checked", "malformed",
                                                        timeout=10_000)
        expect(page.locator("#verdict-title")).to_have_text(not_genuine)
        expect(page.locator("#verdict-text")).to_contain_text(malformed)
        page.evaluate("delete document.body.dataset.checked")
    assert errors == []
    context.close()
