"""The citizen portal (/citizen) on a phone in Debian's Chromium: nothing from another host, a
problem reported with a map pin (and with a photo, which the operator then sees in the console)
and followed in "Mine" (on another phone too: the server keeps the list), a service searched and
a one-thing bundle applied for through its merged form, a licence shown, a finished case
rated."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.photo_kit import png

from .conftest import KEYS, VILLAGE11, WebNode, city_with_departments, signed_in

PHONE = (390, 844)
SPOT = {"lat": 31.152, "lon": 121.452}  # Town 1 Village 1
EXTRA = ["fire", "market_regulation", "housing_construction", "civil_affairs", "health",
         "medical_insurance", "human_resources_social_security"]
LI = {"id": "c-000123", "name": "Li Wei", "phone": "13812345678",
      "id_number": "310115198001011234", "birth_date": "1980-01-01", "area": VILLAGE11,
      "address": "8 Zhangyang Road"}
RESTAURANT = {"business_name": "Li's Noodles", "business_address": "8 Zhangyang Road",
              "business_scope": "catering", "floor_area": "85", "food_categories": "hot meals",
              "food_safety_manager": "Li Wei", "seating_capacity": "40",
              "opening_date": "2027-01-05", "sign_area": "3.5", "sign_text": "李记面馆"}
HANDED_IN = {"kitchen_layout": "upload-1", "fire_safety_plan": "upload-2",
             "sign_design": "upload-3"}
CITIZEN_KEYS = {**KEYS, "li": ("citizen", None, LI["id"]),
                "li_tablet": ("citizen", None, LI["id"]),  # the same citizen's second key
                "wang": ("citizen", None, "c-000456"),
                "sanitation": ("department", "sanitation", "sanitation desk")}


def portal_city():
    return city_with_departments(EXTRA)


@pytest.fixture(scope="module")
def web_node(tmp_path_factory):
    node = WebNode(portal_city(), tmp_path_factory.mktemp("citizen") / "data", CITIZEN_KEYS)
    node.start()
    with node.client("operator") as op:
        r = op.post("/api/v1/citizens", json=LI)
        assert r.status_code in (200, 201), r.text
    try:
        yield node
    finally:
        node.stop()


def _portal(browser, web_node, tab: str | None = None):
    context, page = signed_in(browser, web_node.url, web_node.keys["li"], "/citizen",
                              viewport=PHONE, is_mobile=True, has_touch=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_selector("body.ready", timeout=20_000)
    if tab:
        page.click(f"#tabs button[data-tab={tab}]")
    return context, page, errors


def test_the_portal_loads_nothing_from_another_host(web_node, browser, artifacts):
    context = browser.new_context(viewport={"width": PHONE[0], "height": PHONE[1]},
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    r = page.goto(f"{web_node.url}/citizen#key={web_node.keys['li']}")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "http" not in csp
    page.wait_for_selector("body.ready", timeout=20_000)
    page.wait_for_selector("#map[data-ready='1']", timeout=20_000)
    page.wait_for_selector("#report-form select[name=service_code] optgroup", state="attached")
    assert web_node.keys["li"] not in page.url  # the key left the address bar at once
    assert page.locator("#me-name").inner_text() == "Li Wei"
    hosts = {urlsplit(u).netloc for u in seen if not u.startswith(("data:", "blob:"))}
    assert hosts == {f"127.0.0.1:{web_node.port}"}, hosts
    assert not any(web_node.keys["li"] in u for u in seen)  # never in a URL
    page.screenshot(path=str(artifacts / "citizen-report.png"))
    context.close()


def test_report_a_problem_with_a_map_pin_and_follow_it(web_node, browser, artifacts):
    context, page, errors = _portal(browser, web_node)
    page.wait_for_selector("#map[data-ready='1']", timeout=20_000)
    form = page.locator("#report-form")
    form.locator("select[name=service_code]").select_option("event-sanitation-exposed_garbage")
    # A tap on the map drops the pin and fills the coordinates ...
    canvas = page.locator("#map canvas.maplibregl-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] * 0.3, "y": box["height"] * 0.5})
    page.wait_for_function("document.querySelector('#report-form input[name=lat]').value !== ''")
    assert page.locator(".maplibregl-marker").count() == 1
    lat = float(form.locator("input[name=lat]").input_value())
    assert 30 < lat < 32
    # ... which can be set exactly, too.
    form.locator("input[name=lat]").fill(str(SPOT["lat"]))
    form.locator("input[name=long]").fill(str(SPOT["lon"]))
    form.locator("input[name=long]").dispatch_event("change")
    form.locator("textarea[name=description]").fill("Bags of rubbish by the bus stop")
    form.locator("button[type=submit]").click()
    card = page.locator("#my-reports article.report").first
    card.wait_for(timeout=10_000)
    assert card.locator(".st").inner_text().lower() == "open"
    assert "Bags of rubbish" in card.inner_text()
    request_id = card.get_attribute("data-request")
    r = httpx.get(f"{web_node.url}/open311/v2/requests/{request_id}.json")
    assert r.json()[0]["lat"] == SPOT["lat"] and r.json()[0]["status"] == "open"
    page.screenshot(path=str(artifacts / "citizen-mine.png"), full_page=True)
    assert errors == []
    context.close()


def _fill_report(page, description: str) -> None:
    form = page.locator("#report-form")
    form.locator("select[name=service_code]").select_option("event-sanitation-exposed_garbage")
    form.locator("input[name=lat]").fill(str(SPOT["lat"]))
    form.locator("input[name=long]").fill(str(SPOT["lon"]))
    form.locator("input[name=long]").dispatch_event("change")
    form.locator("textarea[name=description]").fill(description)


def _my_report_ids(web_node, key: str = "li") -> list[str]:
    with web_node.client(key) as c:
        r = c.get("/api/v1/citizens/me/reports", params={"limit": 100})
        assert r.status_code == 200, r.text
        return [i["service_request_id"] for i in r.json()["items"]]


def test_mine_follows_the_citizen_to_another_phone(web_node, browser, artifacts):
    context, page, errors = _portal(browser, web_node)
    _fill_report(page, "Broken glass on the pavement")
    page.locator("#report-form button[type=submit]").click()
    card = page.locator("#my-reports article.report").first
    card.wait_for(timeout=10_000)
    request_id = card.get_attribute("data-request")
    assert "Broken glass" in card.inner_text()
    assert page.evaluate("localStorage.length") == 0  # the server keeps the list, not the phone
    assert errors == []
    context.close()

    # Another phone: a fresh browser with nothing stored, signed in with the same key.
    context, page, errors = _portal(browser, web_node, "mine")
    assert page.evaluate("localStorage.length") == 0
    card = page.locator(f"#my-reports article.report[data-request='{request_id}']")
    card.wait_for(timeout=10_000)
    assert "Broken glass" in card.inner_text()
    assert card.locator(".st").inner_text().lower() == "open"
    # Newest first, as filed.
    assert page.locator("#my-reports article.report").first.get_attribute(
        "data-request") == request_id
    page.screenshot(path=str(artifacts / "citizen-mine-other-phone.png"), full_page=True)
    assert errors == []
    context.close()

    # The citizen's other key sees it too; another citizen does not.
    assert request_id in _my_report_ids(web_node, "li_tablet")
    assert request_id not in _my_report_ids(web_node, "wang")


def test_mine_pages_back_through_older_reports(web_node, browser):
    with web_node.client("operator") as op:
        r = op.post("/api/v1/citizens", json={"id": "c-000456", "name": "Wang Fang",
                                              "area": VILLAGE11})
        assert r.status_code in (200, 201), r.text
    with web_node.client("wang") as c:
        for n in range(23):
            r = c.post("/open311/v2/requests.json", data={
                "service_code": "event-sanitation-exposed_garbage", "lat": str(SPOT["lat"]),
                "long": str(SPOT["lon"]), "description": f"Wang's report {n}"})
            assert r.status_code == 200, r.text
    context, page = signed_in(browser, web_node.url, web_node.keys["wang"], "/citizen",
                              viewport=PHONE, is_mobile=True, has_touch=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_selector("body.ready", timeout=20_000)
    page.click("#tabs button[data-tab=mine]")
    cards = page.locator("#my-reports article.report")
    more = page.locator("#my-reports button[data-action=more-reports]")
    more.wait_for(timeout=10_000)
    assert cards.count() == 20
    assert "Wang's report 22" in cards.first.inner_text()
    more.click()
    page.wait_for_function("document.querySelectorAll('#my-reports article.report').length "
                           "=== 23", timeout=10_000)
    assert more.count() == 0
    assert "Wang's report 0" in cards.last.inner_text()
    texts = cards.evaluate_all("els => els.map(e => e.dataset.request)")
    assert len(set(texts)) == 23
    assert errors == []
    context.close()


def test_report_a_problem_with_a_photo(web_node, browser, artifacts, tmp_path):
    photo = tmp_path / "rubbish.png"
    photo.write_bytes(png(48, 32, (90, 160, 60)))
    context, page, errors = _portal(browser, web_node)
    _fill_report(page, "Rubbish bags, photo attached")
    form = page.locator("#report-form")
    picker = form.locator("input[name=photo]")
    assert picker.get_attribute("accept") == "image/*"
    assert picker.get_attribute("capture") == "environment"
    assert form.locator("input[name=media_url]").count() == 0  # one way to add a photo
    picker.set_input_files(str(photo))
    page.wait_for_function(
        "document.querySelector('#photo-preview img').src.startsWith('blob:')")
    assert page.locator("#photo-preview").is_visible()
    page.screenshot(path=str(artifacts / "citizen-report-photo.png"), full_page=True)
    form.locator("button[type=submit]").click()
    card = page.locator("#my-reports article.report").first
    card.wait_for(timeout=10_000)
    # "Mine" shows the photo sent, fetched with the citizen's key.
    page.wait_for_function("(document.querySelector('#my-reports img.report-photo') || {})"
                           ".src?.startsWith('blob:')", timeout=10_000)
    request_id = card.get_attribute("data-request")

    (published,) = httpx.get(f"{web_node.url}/open311/v2/requests/{request_id}.json").json()
    url = published["media_url"]
    assert url.startswith(f"{web_node.url}/api/v1/citizen-photos/") and url.endswith(".png")
    with web_node.client("li") as li, web_node.client("operator") as op:
        assert li.get(url).content == photo.read_bytes()
        case = li.get(f"/api/v1/citizens/me/reports/{request_id}").json()
        inc = op.get(f"/api/v1/incidents/{case['incident_id']}").json()
        # (It may have joined the case of an earlier report of this spot: the photo goes too.)
        assert url in [r["data"].get("media_url") for r in inc["reports_filed"]]
        got = op.get(url)
        assert got.status_code == 200 and got.content == photo.read_bytes()
    assert httpx.get(url).status_code == 401  # the public list names it; reading needs a key
    assert errors == []
    context.close()

    # The operator sees it with the report in the console's incident detail.
    context, page = signed_in(browser, web_node.url, web_node.keys["operator"], "/console",
                              viewport=(1600, 1000))
    page.wait_for_selector("#conn.live", timeout=20_000)
    page.evaluate("id => { location.hash = `incident=${id}`; }", case["incident_id"])
    thumb = page.locator("#detail .reports .report-photo img")
    thumb.wait_for(timeout=10_000)
    page.wait_for_function("document.querySelector('#detail .reports .report-photo img')"
                           ".src.startsWith('blob:')", timeout=10_000)
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 48
    page.screenshot(path=str(artifacts / "console-report-photo.png"))
    context.close()


def test_a_refused_photo_is_said_and_nothing_is_filed(web_node, browser, tmp_path):
    # Not an image the browser can shrink, and over the limit: sent as it is, and refused.
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(9 << 20))
    before = _my_report_ids(web_node)
    context, page, errors = _portal(browser, web_node)
    _fill_report(page, "This one should not be filed")
    page.locator("#report-form input[name=photo]").set_input_files(str(big))
    page.locator("#report-form button[type=submit]").click()
    error = page.locator("#report-form .error")
    page.wait_for_function("document.querySelector('#report-form .error').textContent"
                           ".includes('not taken')", timeout=20_000)
    assert "Too large (413)" in error.inner_text() and "8 MiB" in error.inner_text()
    assert page.locator("#tab-report").is_visible()  # still on the form, to choose again
    assert _my_report_ids(web_node) == before  # no report was sent

    # Removing the photo lets the report go without one.
    page.click("#photo-clear")
    assert page.locator("#photo-preview").is_hidden()
    assert error.inner_text() == ""
    page.locator("#report-form button[type=submit]").click()
    card = page.locator("#my-reports article.report").first
    card.wait_for(timeout=10_000)
    assert card.locator("img").count() == 0
    assert errors == []
    context.close()


def _title_deed(web_node) -> None:
    """The government already holds Li's title to the premises (an e-licence)."""
    with web_node.client("admin") as admin:
        r = admin.post("/api/v1/licences", json={
            "holder": LI["id"], "type": "property_certificate", "number": "沪2020浦字001",
            "valid_from": "2020-05-01"})
        assert r.status_code in (200, 201), r.text


def test_search_and_apply_for_a_bundle_through_the_merged_form(web_node, browser, artifacts):
    _title_deed(web_node)
    context, page, errors = _portal(browser, web_node, "services")
    page.fill("#search-form input[name=q]", "restaurant")
    page.click("#search-form button[type=submit]")
    bundle = page.locator("#results article.service.bundle[data-code=open_restaurant]")
    bundle.wait_for(timeout=10_000)
    bundle.locator("button[data-action=apply]").click()
    form = page.locator("#apply-form")
    form.wait_for()
    # Filled in from the registry; each field asked once for every item.
    assert form.locator("input[name='field:applicant_phone']").input_value() == LI["phone"]
    names = form.locator("[name^='field:']").evaluate_all("els => els.map(e => e.name)")
    assert len(names) == len(set(names))
    assert "shared" in form.locator(".material[data-material=id_card]").inner_text()
    assert "attached" in form.locator(".material[data-material=premises_title]").inner_text()
    assert form.locator("input[name='material:premises_title']").count() == 0
    for code, value in RESTAURANT.items():
        field = form.locator(f"[name='field:{code}']")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    for code, ref in HANDED_IN.items():
        form.locator(f"input[name='material:{code}']").fill(ref)
    page.screenshot(path=str(artifacts / "citizen-apply.png"), full_page=True)
    assert form.locator(":invalid").evaluate_all("els => els.map(e => e.name)") == [], \
        form.locator(":invalid").evaluate_all("els => els.map(e => e.name + '=' + e.value)")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#applied, #apply-form .error:not(:empty)", timeout=10_000)
    assert page.locator("#applied").count() == 1, page.locator("#apply").inner_text()[-600:]
    sub = page.locator("#apply article.submission")
    assert sub.locator(".app").count() >= 3
    with web_node.client("li") as c:
        subs = c.get("/api/v1/submissions").json()["items"]
    assert [s["bundle"] for s in subs] == ["open_restaurant"]
    assert {a["department"] for a in subs[0]["applications"]} >= {
        "market_regulation", "fire", "city_management"}
    page.click("#tabs button[data-tab=mine]")
    page.locator(f"#my-submissions article[data-submission='{subs[0]['id']}']").wait_for()
    assert errors == []
    context.close()


def test_my_licences(web_node, browser, artifacts):
    _title_deed(web_node)
    context, page, errors = _portal(browser, web_node, "licences")
    card = page.locator("#licences article.licence").first
    card.wait_for(timeout=10_000)
    assert "沪2020浦字001" in card.inner_text()
    assert card.locator(".st").inner_text().lower() == "valid"
    page.screenshot(path=str(artifacts / "citizen-licences.png"))
    assert errors == []
    context.close()


def _finish(web_node, incident_id: str) -> None:
    path = f"/api/v1/incidents/{incident_id}"
    with web_node.client("operator") as op, web_node.client("sanitation") as san:
        inc = op.get(path).json()
        if inc["status"] == "collected":  # else the category registers and dispatches itself
            inc = op.post(f"{path}/actions/register").json()
        if inc["status"] == "registered":
            r = op.post(f"{path}/actions/dispatch", json={"departments": ["sanitation"]})
            assert r.status_code == 200, r.text
            inc = r.json()
        order = next(o["id"] for o in inc["orders"] if o["department"] == "sanitation")
        assert san.post(f"/api/v1/work-orders/{order}/actions/accept").status_code == 200
        r = san.post(f"/api/v1/work-orders/{order}/actions/finish", json={"note": "cleared"})
        assert r.status_code == 200, r.text
        r = op.post(f"{path}/actions/verify")
        assert r.json()["status"] == "verified", r.text


def test_rate_a_finished_incident(web_node, browser, artifacts):
    with web_node.client("li") as c:
        r = c.post("/open311/v2/requests.json", data={
            "service_code": "event-sanitation-exposed_garbage", "lat": "31.251",
            "long": "121.551", "description": "Rubbish left in the field"})
        assert r.status_code == 200, r.text
        request_id = r.json()[0]["service_request_id"]
        case = c.get(f"/api/v1/citizens/me/reports/{request_id}").json()
        assert not case["finished"]
    _finish(web_node, case["incident_id"])

    # Filed outside the portal: the Rate tab finds it on the server all the same.
    context, page, errors = _portal(browser, web_node, "rate")
    card = page.locator(f"#to-rate article[data-subject='incident:{case['incident_id']}']")
    card.wait_for(timeout=10_000)
    card.locator("select[name=grade]").select_option("satisfied")
    card.locator("textarea[name=comment]").fill("Quick work, thank you")
    card.locator("button[data-action=rate]").click()
    page.wait_for_function(
        "document.querySelector(\"#to-rate article[data-subject^='incident:'] .st\")"
        ".textContent === 'rated: satisfied'", timeout=10_000)
    page.screenshot(path=str(artifacts / "citizen-rate.png"))
    with web_node.client("li") as c:
        reviews = c.get("/api/v1/reviews").json()["items"]
    assert [(r["subject_kind"], r["subject_id"], r["grade"]) for r in reviews] == [
        ("incident", case["incident_id"], "satisfied")]
    assert errors == []
    context.close()


def test_the_case_of_a_request_is_for_citizen_keys_only(web_node):
    with web_node.client("operator") as op:
        assert op.get("/api/v1/citizens/me/reports/123").status_code == 403
        assert op.get("/api/v1/citizens/me/reports").status_code == 403
    with web_node.client("li") as c:
        assert c.get("/api/v1/citizens/me/reports/nope").status_code == 404
