"""The remote virtual window in Debian's Chromium with fake camera and microphone: a citizen on
the portal calls the department of their application, a clerk online in the console accepts,
the two browsers connect directly (no STUN or TURN: host candidates) and media flows both ways
(getStats: bytes received on each side); the clerk pushes the application's form, the citizen
fills it in and the values show on the application in the console and in the store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.web.conftest import CHROMIUM, KEYS, VILLAGE11, WebNode, signed_in, web_city
from tests.web.test_kiosk import card, kiosk, sign_in

pytestmark = pytest.mark.timeout(300)

LI = {"id": "c-win-01", "name": "Li Wei", "phone": "13812345678",
      "id_number": "310115198001011234", "birth_date": "1980-01-01", "area": VILLAGE11,
      "address": "8 Zhangyang Road"}
ZHAO = {"id": "c-win-02", "name": "Zhao Lei", "phone": "13700002222",
        "id_number": card("31011519900909789"), "area": VILLAGE11}
SIGN = {"service": "outdoor_signage_permit",
        "answers": {"business_name": "Li's Noodles", "business_address": "8 Zhangyang Road",
                    "sign_area": 3.5, "sign_text": "李记面馆"},
        "materials": {"business_licence": "scan-1", "premises_title": "scan-2",
                      "sign_design": "scan-3"}}
MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
# Both pages' received media, summed over their inbound RTP streams (window.js reads getStats).
RECEIVING = "async () => (await window.cityopsWindow.received()) > 0"
PICTURE = "() => document.querySelector('.window-call video.remote').videoWidth > 0"


@pytest.fixture(scope="module")
def web_node(tmp_path_factory):
    keys = {**KEYS, "li": ("citizen", None, LI["id"]),
            "clerk": ("department", "city_management", "clerk Chen"),
            "police": ("department", "police", "police clerk"),
            "zhao": ("citizen", None, ZHAO["id"])}
    node = WebNode(web_city(), tmp_path_factory.mktemp("window") / "data", keys)
    node.start()
    try:
        with node.client("operator") as op:
            for person in (LI, ZHAO):
                assert op.post("/api/v1/citizens", json=person).status_code == 201
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def browser():
    """Chromium with a fake camera and microphone, and their prompts answered yes."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium; make install does it)"
        if os.environ.get("CITYOPS_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*args, *MEDIA])
        try:
            yield b
        finally:
            b.close()


def apply_for_signage(web_node) -> str:
    with web_node.client("li") as li:
        r = li.post("/api/v1/applications", json=SIGN)
        assert r.status_code == 201, r.text
        return r.json()["applications"][0]["id"]


def clerk_online_and_citizen(web_node, browser, app_id: str, console_script: str | None = None):
    """The clerk's console online for calls (with `console_script` run before the page's own)
    and the citizen's portal on the window tab showing the application; answers both contexts
    and pages, and the application's card."""
    clerk_ctx, console = signed_in(browser, web_node.url, web_node.keys["clerk"], "/console",
                                   viewport=(1400, 1000))
    if console_script:
        console.add_init_script(console_script)
        console.reload()
    citizen_ctx, portal = signed_in(browser, web_node.url, web_node.keys["li"], "/citizen",
                                    viewport=(1200, 1000))
    console.click("#window-button")
    console.check("#window-online")
    console.wait_for_function("() => window.cityopsWindow.online === true")
    open_tab(portal)
    card = portal.locator(f".window-app[data-application='{app_id}']")
    card.wait_for()
    return clerk_ctx, console, citizen_ctx, portal, card


def open_tab(portal) -> None:
    # The portal wires its tabs in the same step that shows the person's name.
    portal.locator("#me-name", has_text=LI["name"]).wait_for()
    portal.click("#tabs button[data-tab=window]")


# The clerk's camera starts only when the test says so: what a slow camera does to the order
# in which the two sides get ready.
HELD_CAMERA = """(() => {
  const start = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  let release;
  window.releaseCamera = new Promise((ok) => { release = ok; });
  window.releaseCamera.go = () => release();
  navigator.mediaDevices.getUserMedia = async (c) => { await window.releaseCamera; return start(c); };
  // ... and counts the other side's signalling as it arrives on the page's socket.
  window.signalsSeen = 0;
  const Socket = window.WebSocket;
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        try { if (JSON.parse(e.data).type === "signal") window.signalsSeen += 1; } catch {}
      });
    }
  };
})()"""


def test_an_offer_that_comes_before_the_clerks_camera_is_on_is_kept(web_node, browser) -> None:
    app_id = apply_for_signage(web_node)
    clerk_ctx, console, citizen_ctx, portal, card = clerk_online_and_citizen(
        web_node, browser, app_id, console_script=HELD_CAMERA)
    try:
        card.locator("[data-action=call]").click()
        console.locator("#window-dialog [data-action=accept]").click()
        # The citizen's offer reaches the clerk while the clerk's camera is still starting.
        console.wait_for_function("() => window.signalsSeen > 0")
        console.evaluate("() => window.releaseCamera.go()")
        portal.wait_for_function(RECEIVING, polling=250, timeout=60_000)
        console.wait_for_function(RECEIVING, polling=250, timeout=60_000)
        for page in (portal, console):
            page.wait_for_function(PICTURE, timeout=60_000)
        portal.locator(".window-call [data-action=hangup]").click()
        console.wait_for_function("() => window.cityopsWindow.ended === 'hangup'")
    finally:
        citizen_ctx.close()
        clerk_ctx.close()


def test_a_video_call_with_media_both_ways_and_a_form_filled(web_node, browser,
                                                              artifacts) -> None:
    app_id = apply_for_signage(web_node)
    clerk_ctx, console, citizen_ctx, portal, card = clerk_online_and_citizen(
        web_node, browser, app_id)
    try:
        assert "1" in card.inner_text()  # one clerk free
        card.locator("[data-action=call]").click()

        console.locator("#window-dialog [data-action=accept]").click()
        # The clerk sees the application the call is about, with the clerk's own key.
        console.locator(".window-application h3", has_text=app_id).wait_for()

        # Media flows: each side has received audio and video from the other.
        portal.wait_for_function(RECEIVING, polling=250, timeout=60_000)
        console.wait_for_function(RECEIVING, polling=250, timeout=60_000)
        # ... and the other's picture is decoded and shown.
        for page in (portal, console):
            page.wait_for_function(PICTURE, timeout=60_000)
        portal.screenshot(path=str(artifacts / "window-citizen.png"))

        console.locator("[data-action=push-form]").click()
        form = portal.locator(".window-form")
        form.locator("input[name=sign_text]").wait_for()
        assert form.locator("input[name=sign_text]").input_value() == "李记面馆"
        form.locator("input[name=sign_text]").fill("李记面馆 · 二店")
        form.locator("input[name=sign_area]").fill("6")
        form.locator("[data-action=send-form]").click()
        portal.wait_for_function("() => window.cityopsWindow.saved === 1")
        answer = console.locator(".window-answers tr[data-answer=sign_text] td")
        answer.filter(has_text="李记面馆 · 二店").wait_for()
        assert console.locator(".window-answers tr[data-answer=sign_area] td").inner_text() == "6"
        console.screenshot(path=str(artifacts / "window-console.png"))

        portal.locator(".window-call [data-action=hangup]").click()
        console.wait_for_function("() => window.cityopsWindow.ended === 'hangup'")
    finally:
        citizen_ctx.close()
        clerk_ctx.close()
    with web_node.client("clerk") as clerk:
        app = clerk.get(f"/api/v1/applications/{app_id}").json()
        assert (app["answers"]["sign_text"], app["answers"]["sign_area"]) == ("李记面馆 · 二店", 6)
        calls = clerk.get("/api/v1/window/calls").json()["items"]
        assert calls[0]["state"] == "ended" and calls[0]["duration_s"] > 0
    with web_node.client("police") as police:
        assert police.get("/api/v1/window/calls").json()["items"] == []


def test_a_call_with_no_clerk_online_is_refused_on_the_page(web_node, browser) -> None:
    with web_node.client("li") as li:
        app_id = li.post("/api/v1/applications", json=SIGN).json()["applications"][0]["id"]
    context, portal = signed_in(browser, web_node.url, web_node.keys["li"], "/citizen?lang=zh-CN")
    try:
        open_tab(portal)
        card = portal.locator(f".window-app[data-application='{app_id}']")
        card.wait_for()
        assert "没有工作人员在线" in card.inner_text()
        card.locator("[data-action=call]").click()
        portal.locator(".window-status", has_text="请在工作时间再试").wait_for()
    finally:
        context.close()


def test_a_call_from_the_kiosk_ends_when_the_session_is_wiped(web_node, browser) -> None:
    with web_node.client("zhao") as zhao:
        r = zhao.post("/api/v1/applications", json=SIGN)
        assert r.status_code == 201, r.text
        app_id = r.json()["applications"][0]["id"]
    clerk_ctx, console = signed_in(browser, web_node.url, web_node.keys["clerk"], "/console")
    kiosk_ctx, page, errors = kiosk(browser, web_node)
    try:
        console.click("#window-button")
        console.check("#window-online")
        console.wait_for_function("() => window.cityopsWindow.online === true")
        sign_in(page, web_node, ZHAO)
        page.click(".tile[data-go=window]")
        page.locator(f".window-app[data-application='{app_id}'] [data-action=call]").click()
        console.locator("#window-dialog [data-action=accept]").click()
        page.wait_for_function(RECEIVING, polling=250, timeout=60_000)
        console.wait_for_function(RECEIVING, polling=250, timeout=60_000)
        # The person walks away and signs out: the call ends with the session.
        page.click("#sign-out")
        console.wait_for_function("() => window.cityopsWindow.ended !== null", timeout=30_000)
        assert errors == []
    finally:
        kiosk_ctx.close()
        clerk_ctx.close()
