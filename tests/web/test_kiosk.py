"""The 24-hour kiosk (/kiosk) on a touch screen in Debian's Chromium: Chinese first whatever the
browser says; sign-in with the ID card typed on the on-screen keypad and the code read from
the test SMS sink; an application whose premises title is attached from the e-licence store
and whose ID card comes by data sharing; its receipt printed as a PDF (read back with
pdftotext); an idle kiosk wiping the session (a fake clock, no waiting) and revoking its key;
a queue number taken at the kiosk and called from the console by the department's clerk, and
one taken from home on the citizen portal."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from cityops.api.table import TABLE
from cityops.serve.kiosk.idcard import check_digit

from .conftest import KEYS, VILLAGE11, WebNode, city_with_departments, signed_in

SCREEN = (1280, 1024)
EXTRA = ["market_regulation", "housing_construction"]


def card(first17: str) -> str:
    return first17 + check_digit(first17)


PEOPLE = {
    "li": {"id": "c-000123", "name": "Li Wei", "phone": "13812345678",
           "id_number": card("31011519800101123"), "area": VILLAGE11,
           "address": "8 Zhangyang Road"},
    "wang": {"id": "c-000456", "name": "Wang Fang", "phone": "13900001111",
             "id_number": card("31011519750505456"), "area": VILLAGE11},
    "zhao": {"id": "c-000789", "name": "Zhao Lei", "phone": "13700002222",
             "id_number": card("31011519900909789"), "area": VILLAGE11},
}
KIOSK_KEYS = {**KEYS, "market": ("department", "market_regulation", "market clerk"),
              "li_portal": ("citizen", None, "c-000123"),
              "housing": ("department", "housing_construction", "housing desk")}


def kiosk_city():
    return city_with_departments(EXTRA)


@pytest.fixture(scope="module")
def web_node(tmp_path_factory):
    node = WebNode(kiosk_city(), tmp_path_factory.mktemp("kiosk") / "data", KIOSK_KEYS)
    node.start()
    with node.client("operator") as op:
        for person in PEOPLE.values():
            r = op.post("/api/v1/citizens", json=person)
            assert r.status_code in (200, 201), r.text
    with node.client("housing") as housing:
        r = housing.post("/api/v1/licences", json={
            "holder": PEOPLE["li"]["id"], "type": "property_certificate",
            "number": "沪2020浦字001", "valid_from": "2020-05-01"})
        assert r.status_code in (200, 201), r.text
    try:
        yield node
    finally:
        node.stop()


def sms_code(web_node, phone: str, seen: int = 0) -> str:
    """The newest kiosk code sent to `phone`, read from the node's test SMS sink. The sign-in
    route answers only once the SMS is handed over, so once the page asks for the code it is
    there."""
    codes = [n.body for n in list(web_node.node.act.notifier.sent)
             if n.kind == "kiosk.code" and n.recipient == phone]
    assert len(codes) > seen, f"no new kiosk code was sent to {phone}"
    return re.match(r"\d{6}", codes[-1]).group()


def sent_codes(web_node, phone: str) -> int:
    return sum(1 for n in list(web_node.node.act.notifier.sent)
               if n.kind == "kiosk.code" and n.recipient == phone)


def kiosk(browser, web_node, query: str = "", clock: bool = False):
    # A browser that prefers English: the kiosk still opens in Chinese.
    context = browser.new_context(viewport={"width": SCREEN[0], "height": SCREEN[1]},
                                  bypass_csp=True, has_touch=True, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    if clock:
        page.clock.install()
    page.goto(f"{web_node.url}/kiosk{query}")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    return context, page, errors


def keypad(page, target: str, digits: str) -> None:
    for ch in digits:
        page.click(f".keypad[data-for={target}] button[data-key='{ch}']")


def sign_in(page, web_node, person) -> None:
    seen = sent_codes(web_node, person["phone"])
    keypad(page, "card-number", person["id_number"])
    page.click("#card-read")
    page.wait_for_selector("#screen-code:not([hidden])")
    assert "138****5678" in page.text_content("#code-lead") or person["phone"][-4:] in \
        page.text_content("#code-lead")
    keypad(page, "sms-code", sms_code(web_node, person["phone"], seen))
    page.click("#code-ok")
    page.wait_for_selector("#screen-home:not([hidden])")


def printed_pdf(page, n: int) -> bytes:
    """The bytes of the `n`th PDF the kiosk sent to its printer, as the page holds them."""
    encoded = page.evaluate("""async (n) => {
      const blob = await (await fetch(window.cityopsKiosk.printed[n].url)).blob();
      const bytes = new Uint8Array(await blob.arrayBuffer());
      let text = "";
      for (const b of bytes) text += String.fromCharCode(b);
      return btoa(text);
    }""", n)
    return base64.b64decode(encoded)


def pdf_text(pdf: bytes, tmp: Path) -> str:
    path = tmp / "printed.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def test_card_sign_in_apply_with_an_exempted_material_and_print(
        web_node, browser, artifacts, tmp_path):
    context, page, errors = kiosk(browser, web_node)
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.text_content("#screen-welcome h1") == "请放置身份证"
    page.screenshot(path=str(artifacts / "kiosk-welcome.png"))

    # A misread card is refused on the screen, with nothing sent.
    li = PEOPLE["li"]
    keypad(page, "card-number", li["id_number"][:-1] + ("0" if li["id_number"][-1] != "0"
                                                        else "1"))
    page.click("#card-read")
    page.wait_for_selector("#message:not([hidden])")
    assert "未能识别" in page.text_content("#message")
    assert sent_codes(web_node, li["phone"]) == 0
    page.fill("#card-number", "")

    sign_in(page, web_node, li)
    assert "Li Wei" in page.text_content("#home-title")
    page.click(".tile[data-go=services]")
    page.wait_for_selector("#service-list li[data-code]")
    page.fill("#service-q", "营业执照")
    page.click("#service-search button[type=submit]")
    page.wait_for_selector("#service-list li[data-code=restaurant_business_licence]")
    page.click("#service-list li[data-code=restaurant_business_licence] button")
    page.wait_for_selector("#screen-form:not([hidden])")
    title = page.locator("#form-materials li[data-code=premises_title]")
    assert "attached" in title.get_attribute("class")
    assert "沪2020浦字001" in title.text_content()
    assert "已从电子证照库调取" in title.text_content()
    assert "shared" in page.get_attribute("#form-materials li[data-code=id_card]", "class")
    # Filled in from the registry; the rest typed on the kiosk's keyboard.
    assert page.input_value("#apply-form [name=applicant_phone]") == li["phone"]
    page.fill("#apply-form [name=business_name]", "李记面馆")
    page.fill("#apply-form [name=business_address]", "张杨路8号")
    page.fill("#apply-form [name=business_scope]", "餐饮服务")
    page.screenshot(path=str(artifacts / "kiosk-form.png"), full_page=True)
    page.click("#apply-submit")
    page.wait_for_selector("#screen-done:not([hidden])")
    reference = page.text_content("#done-ref")
    assert reference.startswith("sub-")

    with page.expect_response(lambda r: "/api/v1/kiosk/receipts/" in r.url) as printed:
        page.click("#print-receipt")
    response = printed.value
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    page.wait_for_selector("#printed:not([hidden])")
    assert page.evaluate("window.cityopsKiosk.printed.length") == 1
    pdf = printed_pdf(page, 0)
    assert pdf.startswith(b"%PDF-")
    if shutil.which("pdftotext"):
        text = pdf_text(pdf, tmp_path)
        assert reference in text and "attached from the e-licence store" in text
        assert "No. 沪2020浦字001" in text or "2020" in text
    page.screenshot(path=str(artifacts / "kiosk-done.png"), full_page=True)

    # The e-licences: printed where the node serves their PDF, else said so.
    page.click("#screen-done [data-go=home]")
    page.click(".tile[data-go=licences]")
    row = page.locator("#licence-list li[data-id]").first
    row.wait_for()
    printable = any(e.path.startswith("/api/v1/licences/") and e.path.endswith(".pdf")
                    for e in TABLE)
    if printable:
        with page.expect_response(lambda r: ".pdf" in r.url) as got:
            row.locator("button").click()
        assert got.value.status == 200
        page.wait_for_function("window.cityopsKiosk.printed.length === 2")
        assert printed_pdf(page, 1).startswith(b"%PDF-")
    else:
        row.locator("button").click()
        page.wait_for_selector("#message:not([hidden])")
    page.screenshot(path=str(artifacts / "kiosk-licences.png"))
    page.click("#sign-out")
    page.wait_for_selector("#screen-welcome:not([hidden])")
    assert errors == []
    context.close()


def test_an_idle_kiosk_wipes_the_session_and_revokes_its_key(web_node, browser, artifacts):
    context, page, errors = kiosk(browser, web_node, "?idle=30", clock=True)
    sign_in(page, web_node, PEOPLE["wang"])
    key = page.evaluate("window.cityopsKiosk.key")
    with httpx.Client(base_url=web_node.url, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/api/v1/citizens/me").status_code == 200
    page.click(".lang-switch")  # the person reads English ...
    page.wait_for_function("document.documentElement.lang === 'en'")
    page.click(".tile[data-go=queue]")
    page.wait_for_selector("#counter-list li")
    page.clock.fast_forward("00:20")
    page.wait_for_selector("#idle-warning:not([hidden])")
    page.screenshot(path=str(artifacts / "kiosk-idle-warning.png"))
    # The wipe revokes the key on the server as it empties the screens.
    with page.expect_response(lambda r: r.url.endswith("/api/v1/kiosk/session")
                              and r.request.method == "DELETE") as revoked:
        page.clock.fast_forward("00:11")
    assert revoked.value.ok, revoked.value.status
    page.wait_for_selector("#screen-welcome:not([hidden])")
    # ... and walks away: nothing of theirs is left, the next person gets Chinese.
    assert page.evaluate("window.cityopsKiosk.key") is None
    assert page.evaluate("window.cityopsKiosk.wipes") == 1
    page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    assert page.text_content("#who") == "" and page.locator("#counter-list li").count() == 0
    assert "已自动退出" in page.text_content("#message")
    with httpx.Client(base_url=web_node.url, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/api/v1/citizens/me").status_code == 401, "the kiosk's key still works"
    assert errors == []
    context.close()


def test_take_a_number_at_the_kiosk_and_the_clerk_calls_it(web_node, browser, artifacts):
    context, page, errors = kiosk(browser, web_node)
    sign_in(page, web_node, PEOPLE["zhao"])
    page.click(".tile[data-go=queue]")
    page.click("#counter-list li[data-counter=market_regulation] button")
    page.wait_for_selector("#my-ticket:not([hidden])")
    label = page.text_content("#my-ticket .label")
    assert re.fullmatch(r"[A-Z]\d{3}", label)
    page.click("#counter-list li[data-counter=market_regulation] button")  # again: refused
    page.wait_for_function("document.querySelector('#message').textContent.includes('已在该窗口取过号')")
    page.screenshot(path=str(artifacts / "kiosk-queue.png"))

    clerk, console = signed_in(browser, web_node.url, web_node.keys["market"], "/console")
    console.wait_for_selector("#queue-button")
    console.click("#queue-button")
    console.wait_for_selector(f"#queue-dialog tr[data-number] >> text={label}")
    console.fill("#queue-dialog input[name=window]", "3")
    console.click("#queue-dialog [data-action=next]")
    row = console.locator("#queue-dialog tr.called")
    row.wait_for()
    assert label in row.text_content()
    console.screenshot(path=str(artifacts / "console-service-hall.png"))
    called = [n for n in list(web_node.node.act.notifier.sent)
              if n.kind == "queue.called" and n.recipient == PEOPLE["zhao"]["phone"]]
    assert called and label in called[0].subject

    page.click("#screen-queue [data-go=home]")
    page.click(".tile[data-go=queue]")
    page.wait_for_function("document.querySelector('#my-ticket').textContent.includes('3号窗口')")
    row.locator("[data-act=served]").click()
    console.wait_for_selector("#queue-dialog tr.served")
    assert errors == []
    clerk.close()
    context.close()


def test_take_a_number_from_home_on_the_portal(web_node, browser, artifacts):
    context, page = signed_in(browser, web_node.url, web_node.keys["li_portal"], "/citizen",
                              viewport=(390, 844), is_mobile=True, has_touch=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_selector("body.ready", timeout=20_000)
    page.click("#tabs button[data-tab=queue]")
    page.click("#queue-board [data-counter=police] button")
    page.wait_for_selector("#queue-mine .queue-ticket")
    label = page.get_attribute("#queue-mine .queue-ticket", "data-label")
    assert label.startswith("A")  # police is the pack's first department
    # Taken: the board no longer offers that counter to this person.
    assert page.locator("#queue-board [data-counter=police] button").count() == 0
    page.screenshot(path=str(artifacts / "citizen-queue.png"), full_page=True)
    with web_node.client("admin") as admin:
        tickets = admin.get("/api/v1/queue/counters/police").json()["tickets"]
    assert [(t["label"], t["channel"]) for t in tickets] == [(label, "portal")]
    assert errors == []
    context.close()
