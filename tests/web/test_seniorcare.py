"""Senior care in the console, in Chromium: the home's staff free a bed and see it offered to
the next in line by priority (not to who applied first), and a caregiver booking that overlaps
another is refused with the server's reason."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import msgspec
import pytest
from playwright.sync_api import expect

from cityops.domain.city import Department

from .conftest import VILLAGE11, WebNode, signed_in, web_city

HOME = f"care-{VILLAGE11}"
P = "/api/v1/seniorcare"


@pytest.fixture(scope="module")
def care_node(tmp_path_factory):
    pack = web_city()
    pack = msgspec.structs.replace(pack, departments=[
        *pack.departments, Department("civil_affairs", "Civil affairs", None, ["990001"])])
    node = WebNode(pack, tmp_path_factory.mktemp("care") / "data", {
        "admin": ("admin", None, "test admin"),
        "staff": ("station", VILLAGE11, HOME),
        "civil": ("department", "civil_affairs", "civil affairs desk"),
        "citizen": ("citizen", None, "c-portal"),
    })
    node.start()
    try:
        yield node
    finally:
        node.stop()


def elder(cid: str, **facts) -> dict:
    return {"id": cid, "name": cid, "birth_date": "1944-05-01", "area": VILLAGE11,
            "attributes": facts}


def test_a_freed_bed_goes_to_the_next_in_line_and_a_double_booking_is_refused(
        care_node, browser, artifacts):
    with care_node.client("admin") as admin, care_node.client("staff") as staff:
        for body in (elder("c-first", care_level=2), elder("c-poor", care_level=1,
                                                         hardship="special_hardship"),
                     elder("c-frail", care_level=5, lives_alone=True)):
            assert admin.post("/api/v1/citizens", json=body).status_code == 201
        for cid in ("c-first", "c-poor", "c-frail"):
            r = staff.post(f"{P}/homes/{HOME}/waiting", json={"citizen": cid})
            assert r.status_code == 201, r.text
        r = staff.put(f"{P}/homes/{HOME}/beds", json={"beds": 1})
        offered = r.json()["offers"]
        assert [o["citizen"] for o in offered] == ["c-poor"]
        r = staff.post(f"{P}/homes/{HOME}/entries/{offered[0]['id']}",
                       json={"action": "accept"})
        assert r.status_code == 200, r.text

        zone = ZoneInfo(care_node.pack.info.timezone)
        day = (dt.datetime.now(zone).date() + dt.timedelta(days=2)).isoformat()
        r = admin.post(f"{P}/caregivers", json={
            "id": "cg-zhou", "name": "Zhou Min", "area": VILLAGE11,
            "skills": ["bathing", "personal_care"],
            "schedule": [{"weekday": d, "start": "08:00", "end": "18:00"} for d in range(1, 8)]})
        assert r.status_code == 201, r.text
        r = admin.post(f"{P}/bookings", json={"caregiver": "cg-zhou", "citizen": "c-first",
                                               "day": day, "start": "09:00", "end": "10:00"})
        assert r.status_code == 201, r.text

    context, page = signed_in(browser, care_node.url, care_node.keys["staff"], "/console",
                              viewport=(1600, 1000))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.click("#care-button")
    dialog = page.locator("#care-dialog")
    row = dialog.locator(f"tr[data-home='{HOME}']")
    expect(row).to_be_visible(timeout=20_000)
    # The home's own staff see their home only.
    expect(dialog.locator("tr[data-home]")).to_have_count(1)
    row.click()
    expect(dialog.locator("tr[data-bed='1']")).to_contain_text("c-poor", timeout=10_000)
    waiting = dialog.locator("tr[data-entry]")
    expect(waiting).to_have_count(2)
    # In priority order: c-frail (level 5, 80+, alone) before c-first, who applied first.
    assert waiting.nth(0).get_attribute("data-citizen") == "c-frail"
    assert waiting.nth(1).get_attribute("data-citizen") == "c-first"

    dialog.locator("button[data-free='1']").click()
    offer = dialog.locator("tr[data-offer]")
    expect(offer).to_have_count(1, timeout=10_000)
    assert offer.get_attribute("data-citizen") == "c-frail"
    expect(dialog.locator("tr[data-entry]")).to_have_count(1)
    page.screenshot(path=str(artifacts / "seniorcare-bed-offered.png"))

    # A visit overlapping the one booked: refused, and the refusal shown.
    form = dialog.locator("form.care-book")
    form.locator("select[name=caregiver]").select_option("cg-zhou")
    form.locator("input[name=citizen]").fill("c-frail")
    form.locator("input[name=day]").fill(day)
    form.locator("input[name=start]").fill("09:30")
    form.locator("input[name=end]").fill("10:30")
    form.locator("button[type=submit]").click()
    alert = dialog.locator(".refusal")
    expect(alert).to_be_visible(timeout=10_000)
    expect(alert).to_contain_text("09:00-10:00")
    assert page.evaluate("window.cityopsCare.refused") == "care_double_booked"
    # The next free hour books.
    form.locator("input[name=start]").fill("10:00")
    form.locator("input[name=end]").fill("11:00")
    form.locator("button[type=submit]").click()
    expect(dialog.locator(".care-done")).to_be_visible(timeout=10_000)
    assert page.evaluate("window.cityopsCare.booked").startswith(f"cg-zhou@{day}@")
    page.screenshot(path=str(artifacts / "seniorcare-booking.png"))
    assert errors == []
    context.close()

    # The same dialog in Chinese.
    context, page = signed_in(browser, care_node.url, care_node.keys["staff"],
                              "/console?lang=zh-CN", viewport=(1600, 1000))
    page.click("#care-button")
    dialog = page.locator("#care-dialog")
    expect(dialog.locator("h2")).to_have_text("养老服务（浦老惠）", timeout=20_000)
    dialog.locator(f"tr[data-home='{HOME}']").click()
    # Bed 1 is offered to c-frail now: the open offers come first.
    expect(dialog.locator("h4").first).to_have_text("待答复的床位", timeout=10_000)
    expect(dialog.locator("tr[data-offer]")).to_have_count(1)
    context.close()


def test_the_citizen_joins_a_list_accepts_a_bed_and_is_refused_a_taken_slot(
        care_node, browser, artifacts):
    home = "care-990001001002"  # the other home of the citizen's town
    with care_node.client("admin") as admin:
        r = admin.post("/api/v1/citizens", json=elder("c-portal", care_level=3))
        assert r.status_code == 201, r.text
        assert admin.post("/api/v1/citizens", json=elder("c-other")).status_code == 201
        r = admin.post(f"{P}/caregivers", json={
            "id": "cg-wu", "name": "Wu Lan", "area": VILLAGE11, "skills": ["meal_assist"],
            "schedule": [{"weekday": d, "start": "08:00", "end": "12:00"} for d in range(1, 8)]})
        assert r.status_code == 201, r.text
        zone = ZoneInfo(care_node.pack.info.timezone)
        day = (dt.datetime.now(zone).date() + dt.timedelta(days=3)).isoformat()
        r = admin.post(f"{P}/bookings", json={"caregiver": "cg-wu", "citizen": "c-other",
                                               "day": day, "start": "09:00", "end": "10:00"})
        assert r.status_code == 201, r.text

    context, page = signed_in(browser, care_node.url, care_node.keys["citizen"], "/citizen",
                              viewport=(900, 1200))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_selector("body.ready", timeout=20_000)  # the tabs answer clicks from then
    page.click("#tabs button[data-tab=care]")
    tab = page.locator("#tab-care")
    join = tab.locator(f"button[data-join='{home}']")
    expect(join).to_be_visible(timeout=20_000)
    # Only the homes of the citizen's own town.
    expect(tab.locator("li[data-home]")).to_have_count(2)
    join.click()
    expect(tab.locator("li[data-entry][data-status=waiting]")).to_have_count(1, timeout=10_000)

    with care_node.client("admin") as admin:
        r = admin.put(f"{P}/homes/{home}/beds", json={"beds": 1})
        assert [o["citizen"] for o in r.json()["offers"]] == ["c-portal"]
    page.click("#tabs button[data-tab=care]")  # opened again: read afresh
    offered = tab.locator("li[data-entry][data-status=offered]")
    expect(offered).to_have_count(1, timeout=10_000)
    offered.locator("button[data-act=accept]").click()
    expect(tab.locator("li[data-entry][data-status=admitted]")).to_have_count(1, timeout=10_000)

    form = tab.locator("form.care-book")
    form.locator("select[name=caregiver]").select_option("cg-wu")
    form.locator("input[name=day]").fill(day)
    form.locator("input[name=start]").fill("09:30")
    form.locator("input[name=end]").fill("10:30")
    form.locator("button[type=submit]").click()
    expect(tab.locator(".notice").first).to_contain_text("09:00-10:00", timeout=10_000)
    assert page.evaluate("window.cityopsCarePortal.refused") == "care_double_booked"
    expect(tab.locator("li[data-booking]")).to_have_count(0)
    form.locator("input[name=start]").fill("10:00")
    form.locator("input[name=end]").fill("11:00")
    form.locator("button[type=submit]").click()
    expect(tab.locator("li[data-booking][data-status=booked]")).to_have_count(1, timeout=10_000)
    page.screenshot(path=str(artifacts / "seniorcare-portal.png"), full_page=True)
    assert errors == []
    context.close()
