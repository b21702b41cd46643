"""A whole incident life through the pages alone: the operator files and dispatches it on
/console, two field staff take and finish their orders on /field, the operator verifies and
closes it. Then a key scoped to another area can neither see nor act on it."""

from __future__ import annotations

import base64
import time

from .conftest import signed_in

PHONE = (390, 844)
# A 1x1 PNG: the smallest real image, enough for the evidence upload.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGA"
                       "hKmMIQAAAABJRU5ErkJggg==")
SPOT = {"lat": 31.152, "lon": 121.452}  # Town 1 Village 1, near san-01 and cm-01


def _status(page, text: str) -> None:
    page.wait_for_function(
        f"document.querySelector('#detail .st.big') && "
        f"document.querySelector('#detail .st.big').textContent === '{text}'", timeout=10_000)


def _field_finishes(browser, web_node, who: str, note: str, artifacts, geo=None) -> None:
    options = {"geolocation": geo, "permissions": ["geolocation"]} if geo else {}
    context, page = signed_in(browser, web_node.url, web_node.keys[who], "/field",
                              viewport=PHONE, is_mobile=True, has_touch=True, **options)
    card = page.locator("article.order").first
    card.wait_for(timeout=10_000)
    card.locator("button[data-action=accept]").click()
    card.locator("button[data-action=en_route]").wait_for()
    assert page.locator("#my-status").input_value() == "available"
    card.locator("button[data-action=en_route]").click()
    page.wait_for_function("document.querySelector('#my-status').value === 'en_route'")
    card.locator("button[data-action=on_site]").click()
    page.wait_for_function("document.querySelector('#my-status').value === 'on_site'")
    card.locator("button[data-action=done]").click()
    card.locator("textarea[name=note]").fill(note)
    card.locator("input[name=photo]").set_input_files(
        {"name": "evidence.png", "mimeType": "image/png", "buffer": PNG})
    if who == "san-01":
        page.screenshot(path=str(artifacts / "field-finishing.png"))
    card.locator("button[type=submit]").click()
    page.wait_for_selector("article.order.done", timeout=10_000)
    assert "waiting for the check" in page.locator("article.order.done").inner_text()
    assert page.locator("#my-status").input_value() == "available"
    if geo:
        page.wait_for_function("document.querySelector('#where-text').textContent"
                               ".startsWith('Position shared')", timeout=10_000)
    context.close()


def test_a_whole_incident_life_through_the_pages(web_node, browser, artifacts):
    context, page = signed_in(browser, web_node.url, web_node.keys["operator"], "/console",
                              viewport=(1600, 1000))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_selector("#conn.live", timeout=20_000)

    # Register: a new report filed from the console, then registered with the shortcut.
    page.click("#new-button")
    form = page.locator("#new-form")
    form.locator("select[name=category]").select_option("event.sanitation.garbage")
    form.locator("input[name=title]").fill("Garbage dumped by the canal")
    form.locator("input[name=lat]").fill(str(SPOT["lat"]))
    form.locator("input[name=lon]").fill(str(SPOT["lon"]))
    form.locator("button[value=ok]").click()
    _status(page, "Collected")
    incident_id = page.evaluate("window.cityops.state.selected")
    page.keyboard.press("r")
    _status(page, "Registered")

    # A move the case does not allow is refused, and the server's reason is shown.
    page.click("#detail button[data-action=close]")
    refusal = page.locator("#detail .refusal")
    refusal.wait_for()
    assert refusal.inner_text().startswith("Refused (409): cannot close incident")

    # Dispatch to two departments at once.
    page.click("#detail button[data-action=dispatch]")
    dialog = page.locator("#dispatch-dialog")
    for dept in ("sanitation", "city_management"):
        dialog.locator(f"input[value={dept}]").check()
    dialog.locator("button[value=ok]").click()
    _status(page, "Dispatched")
    assert page.locator("#detail tr[data-order]").count() == 2

    # Assign the nearest staff to each order.
    for order in page.locator("#detail tr[data-order]").all():
        order_id = order.get_attribute("data-order")
        page.click(f"#detail tr[data-order='{order_id}'] button[data-order-action=assign]")
        page.wait_for_function(
            f"document.querySelector(\"#detail tr[data-order='{order_id}']\")"
            f".innerText.includes('offered to')", timeout=10_000)
    offers = page.locator("#detail table.orders").inner_text()
    assert "offered to san-01" in offers and "offered to cm-01" in offers
    page.screenshot(path=str(artifacts / "console-dispatched.png"))

    # Each field person accepts and finishes on /field (one shares the phone's position).
    _field_finishes(browser, web_node, "san-01", "Garbage cleared, area swept", artifacts,
                    geo={"latitude": 31.1525, "longitude": 121.4521})
    _field_finishes(browser, web_node, "cm-01", "Dumping site fenced off", artifacts)
    _status(page, "Handled")
    page.wait_for_selector("#detail img.thumb[src^='blob:']", timeout=10_000)

    # Verify and close.
    page.click("#detail button[data-action=verify]")
    _status(page, "Verified")
    page.click("#detail button[data-action=close]")
    _status(page, "Closed")
    timeline = page.locator("#detail .timeline").inner_text()
    for step in ("register", "dispatch", "order acknowledge", "order finish", "verify", "close"):
        assert step in timeline, step
    page.screenshot(path=str(artifacts / "console-closed.png"))

    # The phone's position went through the intake: the board has san-01 where the phone is.
    with web_node.client("operator") as c:
        people = {p["id"]: p for p in c.get("/api/v1/staff").json()["items"]}
        doc = c.get(f"/api/v1/incidents/{incident_id}").json()
    assert abs(people["san-01"]["lat"] - 31.1525) < 1e-6
    assert doc["status"] == "closed" and all(o["photos"] for o in doc["orders"])
    assert errors == []
    context.close()

    # A key scoped to Town 2 sees none of this: not in its queue, not by its id.
    context, page = signed_in(browser, web_node.url, web_node.keys["operator_town2"],
                              "/console", viewport=(1600, 1000))
    page.wait_for_selector("#conn.live", timeout=20_000)
    page.select_option("#queue-filter", "all")
    assert page.locator(f"#queue tr[data-id='{incident_id}']").count() == 0
    page.goto(f"{web_node.url}/console#incident={incident_id}")
    refusal = page.locator("#detail .refusal")
    refusal.wait_for(timeout=10_000)
    assert refusal.inner_text().startswith("Not found (404)")
    page.screenshot(path=str(artifacts / "console-out-of-scope.png"))
    # Nor act on it: the API refuses a move as if the case did not exist.
    status = page.evaluate(f"""async () => (await fetch(
        '/api/v1/incidents/{incident_id}/actions/reopen', {{method: 'POST',
        headers: {{Authorization: 'Bearer ' + sessionStorage.getItem('cityops.key'),
                   'Content-Type': 'application/json'}}, body: '{{"reason": "x"}}'}})).status""")
    assert status == 404
    # Its screen starts at its own town and holds nothing of Town 1.
    page.goto(f"{web_node.url}/screen")
    page.wait_for_function("window.cityops && window.cityops.stats.firstRender !== null",
                           timeout=20_000)
    assert page.locator("#crumbs").inner_text().replace("\n", " ").endswith("Town 2")
    seen = page.evaluate("""() => ({
        incidents: [...window.cityops.world.incidents.values()].map(i => i.town),
        staff: window.cityops.world.staff.filter(Boolean).map(s => s.id)})""")
    assert all(t == "990001002" for t in seen["incidents"])
    assert seen["staff"] == ["cm-03"]
    context.close()
    time.sleep(0)
