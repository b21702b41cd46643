"""The administration page in Debian's Chromium: a key made with its secret shown once and then
revoked, a device registered, a grid cell given to another department on the map, a field
person added, edited and retired, and changes outside the key's scope (a cell, another
department's person) refused with the server's reason on the page."""

from __future__ import annotations

import pytest

from tests.web.conftest import TOWN1, VILLAGE11, signed_in

pytestmark = pytest.mark.timeout(180)

HERE = (31.15, 121.45)  # town 1, village 1 of the grid city


def ready(page) -> None:
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)


def test_a_key_is_made_its_secret_shown_once_and_revoked(browser, web_node, artifacts) -> None:
    context, page = signed_in(browser, web_node.url, web_node.keys["admin"], "/admin")
    try:
        ready(page)
        form = page.locator("#key-form")
        form.locator("select[name=role]").select_option("operator")
        form.locator("input[name=scope]").fill(TOWN1)
        form.locator("input[name=name]").fill("night shift, town 1")
        form.locator("input[name=reason]").fill("new operator")
        form.locator("button[type=submit]").click()
        secret_box = page.locator("#secret-box")
        secret_box.wait_for(state="visible")
        secret = page.locator("#secret").inner_text().strip()
        assert secret.startswith("co_")
        key_id = secret_box.get_attribute("data-key")
        row = page.locator(f"tr[data-key='{key_id}']")
        row.wait_for()
        assert TOWN1 in row.inner_text() and secret not in page.locator("#keys").inner_text()
        page.screenshot(path=str(artifacts / "admin-key-made.png"))
        with web_node.client("admin") as c:
            c.headers["Authorization"] = f"Bearer {secret}"
            assert c.get("/api/v1/me").json()["scope"] == TOWN1

        page.locator("#secret-done").click()
        assert secret_box.is_hidden() and page.locator("#secret").inner_text() == ""
        page.reload()
        ready(page)
        assert secret not in page.content()

        page.once("dialog", lambda d: d.accept())
        page.locator(f"tr[data-key='{key_id}'] button[data-action=revoke]").click()
        page.wait_for_selector(f"tr[data-key='{key_id}'].off")
        assert "revoked" in page.locator(f"tr[data-key='{key_id}'] .state").inner_text()
        with web_node.client("admin") as c:
            c.headers["Authorization"] = f"Bearer {secret}"
            assert c.get("/api/v1/me").status_code == 401
    finally:
        context.close()


def test_a_device_is_registered(browser, web_node) -> None:
    context, page = signed_in(browser, web_node.url, web_node.keys["operator"], "/admin")
    try:
        ready(page)
        # An operator's page has no keys tab and opens on the devices.
        assert page.locator("[data-tab=keys]").count() == 0
        form = page.locator("#device-form")
        form.locator("input[name=id]").fill("noise-admin-1")
        form.locator("input[name=kind]").fill("noise")
        form.locator("input[name=lat]").fill(str(HERE[0]))
        form.locator("input[name=lon]").fill(str(HERE[1]))
        form.locator("input[name=name]").fill("School gate")
        form.locator("button[type=submit]").click()
        page.wait_for_selector("tr[data-device='noise-admin-1']")
        with web_node.client("operator") as c:
            device = c.get("/api/v1/devices/noise-admin-1").json()
        assert device["areas"]["village"] == VILLAGE11 and device["name"] == "School gate"
    finally:
        context.close()


def _click_map_at(page, lat: float, lon: float) -> None:
    page.locator("[data-tab=cells]").click()
    page.wait_for_function("() => window.cityops.view && window.cityops.view.map.loaded()")
    point = page.evaluate(
        "([lon, lat]) => { const p = window.cityops.view.map.project([lon, lat]);"
        " const r = window.cityops.view.map.getCanvas().getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y]; }", [lon, lat])
    page.mouse.click(point[0], point[1])
    page.wait_for_selector("#cell-form:not([hidden])")


def test_a_grid_cell_is_given_to_another_department(browser, web_node, artifacts) -> None:
    context, page = signed_in(browser, web_node.url, web_node.keys["admin"], "/admin")
    try:
        ready(page)
        _click_map_at(page, *HERE)
        cell = page.locator("#cell-id").inner_text()
        assert cell and "station" in page.locator("#cell-owner").inner_text().lower()
        form = page.locator("#cell-form")
        form.locator("select[name=owner]").select_option("sanitation")
        form.locator("input[name=reason]").fill("market street, swept by sanitation")
        form.locator("button[type=submit]").click()
        page.wait_for_function(
            "() => document.querySelector('#cell-source').textContent.includes('administrator')")
        page.screenshot(path=str(artifacts / "admin-cell-reassigned.png"))
        assert web_node.node.city.owner_of_cell(cell) == "sanitation"
        with web_node.client("admin") as c:
            got = c.get(f"/api/v1/cells/{cell}").json()
            trail = c.get("/api/v1/audit", params={"subject": f"cell:{cell}"}).json()["items"]
        assert got["owner"] == "sanitation" and got["source"] == "override"
        assert trail[0]["action"] == "cell.owner"
    finally:
        context.close()


def test_a_change_outside_the_keys_scope_is_refused(browser, web_node) -> None:
    context, page = signed_in(browser, web_node.url, web_node.keys["operator_town2"],
                              "/admin")
    try:
        ready(page)
        _click_map_at(page, *HERE)  # a cell of town 1
        cell = page.locator("#cell-id").inner_text()
        before = web_node.node.city.owner_of_cell(cell)
        form = page.locator("#cell-form")
        form.locator("select[name=owner]").select_option("police")
        form.locator("input[name=reason]").fill("not mine to give")
        form.locator("button[type=submit]").click()
        banner = page.locator("#refusal")
        banner.wait_for(state="visible")
        assert banner.get_attribute("data-status") == "403"
        assert "outside this key's scope 990001002" in banner.inner_text()
        assert web_node.node.city.owner_of_cell(cell) == before
    finally:
        context.close()


def _staff_form(form, **values: str) -> None:
    for name, value in values.items():
        field = form.locator(f"[name={name}]")
        if name == "department":
            field.select_option(value)
        else:
            field.fill(value)


def test_a_field_person_is_added_edited_and_retired(browser, web_node, artifacts) -> None:
    with web_node.client("admin") as c:  # the new person's tracker, registered beforehand
        r = c.post("/api/v1/devices", json={"id": "gps-new-1", "kind": "gps", "lat": HERE[0],
                                            "lon": HERE[1]})
        assert r.status_code in (200, 201), r.text
    roster = web_node.node.roster
    context, page = signed_in(browser, web_node.url, web_node.keys["admin"], "/admin")
    try:
        ready(page)
        page.locator("[data-tab=staff]").click()
        add = page.locator("#staff-add")
        _staff_form(add, id="san-09", name="Qian Yu", department="sanitation",
                    home_area=VILLAGE11, device_id="gps-new-1", skills="sweeping, drains",
                    reason="new hire")
        add.locator("button[type=submit]").click()
        row = page.locator("tr[data-staff='san-09']")
        row.wait_for()
        assert "sweeping, drains" in row.inner_text()
        assert roster.person("san-09").skills == ["sweeping", "drains"]

        row.locator("button[data-action=edit]").click()
        edit = page.locator("#staff-edit")
        edit.wait_for(state="visible")
        assert edit.locator("[name=name]").input_value() == "Qian Yu"
        _staff_form(edit, name="Qian Yu (night)", department="city_management",
                    reason="moved to the night shift")
        edit.locator("button[type=submit]").click()
        page.wait_for_selector("tr[data-staff='san-09']:has-text('Qian Yu (night)')")
        assert roster.person("san-09").department == "city_management"
        page.locator("#staff-filter").select_option("sanitation")  # filtered out of view
        assert page.locator("tr[data-staff='san-09']").count() == 0
        page.locator("#staff-filter").select_option("")
        page.screenshot(path=str(artifacts / "admin-staff.png"))

        page.once("dialog", lambda d: d.accept())
        page.locator("tr[data-staff='san-09'] button[data-action=retire]").click()
        page.wait_for_selector("tr[data-staff='san-09'].off")
        assert roster.get("san-09").active is False and "san-09" not in web_node.node.act.staff
        with web_node.client("admin") as c:
            trail = c.get("/api/v1/audit", params={"subject": "staff:san-09"}).json()["items"]
        assert [e["action"] for e in trail] == ["staff.retire", "staff.edit", "staff.add"]
    finally:
        context.close()


def test_a_department_key_is_refused_another_departments_person(browser, web_node) -> None:
    with web_node.client("admin") as c:
        r = c.post("/api/v1/keys", json={"role": "department", "scope": "sanitation",
                                         "name": "sanitation desk"})
        secret = r.json()["secret"]
    context, page = signed_in(browser, web_node.url, secret, "/admin")
    try:
        ready(page)
        # Its own department's people only, on the one tab it has.
        assert page.locator("[data-tab]").count() == 1
        page.wait_for_selector("tr[data-staff='san-02']")
        assert page.locator("tr[data-staff='cm-01']").count() == 0
        before = web_node.node.roster.get("san-02")
        page.locator("tr[data-staff='san-02'] button[data-action=edit]").click()
        edit = page.locator("#staff-edit")
        _staff_form(edit, department="city_management", reason="not mine to move")
        edit.locator("button[type=submit]").click()
        banner = page.locator("#refusal")
        banner.wait_for(state="visible")
        assert banner.get_attribute("data-status") == "403"
        assert "outside this key's scope sanitation" in banner.inner_text()
        assert web_node.node.roster.get("san-02") == before
    finally:
        context.close()


def test_the_page_reads_in_chinese(browser, web_node, artifacts) -> None:
    context, page = signed_in(browser, web_node.url, web_node.keys["admin"], "/admin?lang=zh-CN")
    try:
        ready(page)
        assert page.locator("[data-tab=cells]").inner_text() == "网格"
        # A field person's beat is offered and shown by its Chinese name.
        beat = page.locator("#staff-areas option[value='990001001001']")
        assert beat.get_attribute("label") == "第1街镇第1居村"
        assert "第1街镇第1居村" in page.locator("tr[data-staff='san-01']").inner_text()
        # Every marked-up label and hint, shown or in another tab, is translated.
        english = page.evaluate("""() => {
            const out = [];
            // A file format's name and the CSV file's column names stay as they are written.
            const literal = /\\b(CSV|id|kind|lat|lon|name|owner)\\b/g;
            for (const e of document.querySelectorAll('[data-i18n]'))
                if (/[A-Za-z]/.test(e.textContent.replace(literal, '')))
                    out.push(e.dataset.i18n + ': ' + e.textContent);
            for (const e of document.querySelectorAll('[data-i18n-attr]'))
                for (const pair of e.dataset.i18nAttr.split(';')) {
                    const v = e.getAttribute(pair.split('=')[0]) || '';
                    if (/[A-Za-z]{3,}/.test(v.replace(/\\d+[dh]|T00:00Z/g, ''))) out.push(pair + ': ' + v);
                }
            return out; }""")
        assert english == []
        page.screenshot(path=str(artifacts / "admin-zh-CN.png"))
    finally:
        context.close()
