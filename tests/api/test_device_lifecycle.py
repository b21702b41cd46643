"""Device lifecycles over the API: a first reading activates; bulk moves by ids, area and kind,
all or nothing and audited; bad input named; scope checked against the devices as stored; the
never-reported list."""

from __future__ import annotations

import time

import msgspec

from cityops import lifecycle

TOWN_1, TOWN_2 = "990001001", "990001002"


async def _read(live, device_id, value=50.0):
    key = await live.key("device")
    async with live.client(key) as c:
        r = await c.post("/api/v1/readings", content=msgspec.json.encode(
            [{"device_id": device_id, "ts": time.time() - 1, "value": value}]))
    assert r.status_code == 202, r.text


async def _device(live, device_id):
    async with live.client(await live.key("admin")) as c:
        return (await c.get(f"/api/v1/devices/{device_id}")).json()


def _states(live, ids):
    return [live.node.registry.get(i).lifecycle.value for i in ids]


def _in_town(live, town, kind="noise"):
    return [d.id for d in live.node.registry.devices
            if d.kind == kind and d.areas.town == town]


async def test_a_device_is_commissioning_until_its_first_reading(live):
    before = await _device(live, "noise-000002")
    assert before["lifecycle"] == "commissioning" and before["lifecycle_at"] is not None
    await _read(live, "noise-000002")
    after = await _device(live, "noise-000002")
    assert after["lifecycle"] == "active" and after["lifecycle_at"] >= before["lifecycle_at"]
    # Saved in a batch (not per reading), then the store has it.
    await lifecycle.save_unsaved(live.node)
    stored = {d.id: d for d in await live.node.store.load_devices()}
    assert stored["noise-000002"].lifecycle.value == "active"
    assert stored["noise-000003"].lifecycle.value == "commissioning"
    async with live.client(await live.key("admin")) as c:
        listed = (await c.get("/api/v1/devices", params={"lifecycle": "active"})).json()
        bad = await c.get("/api/v1/devices", params={"lifecycle": "sleeping"})
    assert [d["id"] for d in listed["items"]] == ["noise-000002"]
    assert bad.status_code == 400 and "lifecycle" in bad.text


async def test_bulk_by_ids_is_audited_and_counted(live):
    await _read(live, "noise-000001")
    admin = await live.key("admin")
    ids = ["noise-000000", "noise-000001", "noise-000000"]
    async with live.client(admin) as c:
        r = await c.post("/api/v1/devices/lifecycle", json={
            "to": "maintenance", "devices": ids, "reason": "pole repainted"})
    assert r.status_code == 200, r.text
    assert r.json() == {"to": "maintenance", "selected": 2, "changed": 2,
                        "before": {"commissioning": 1, "active": 1, "maintenance": 0,
                                   "decommissioned": 0},
                        "after": {"commissioning": 0, "active": 0, "maintenance": 2,
                                  "decommissioned": 0}}
    assert _states(live, ["noise-000000", "noise-000001"]) == ["maintenance"] * 2
    stored = {d.id: d for d in await live.node.store.load_devices()}
    assert stored["noise-000001"].lifecycle.value == "maintenance"
    audit = await live.node.store.list_audit(subject="device:noise-000001")
    assert [(a.action, a.before, a.after, a.reason) for a in audit] == [
        ("device.lifecycle", "active", "maintenance", "pole repainted")]
    assert audit[0].actor.startswith("k_")
    # Back from maintenance: active again, from now.
    async with live.client(admin) as c:
        r = await c.post("/api/v1/devices/lifecycle", json={
            "to": "active", "devices": ["noise-000001"], "reason": "done"})
    assert r.status_code == 200 and _states(live, ["noise-000001"]) == ["active"]


async def test_bulk_by_area_and_kind(live):
    admin = await live.key("admin")
    async with live.client(admin) as c:
        r = await c.post("/api/v1/devices/lifecycle", json={
            "to": "decommissioned", "area": TOWN_2, "kind": "noise", "reason": "road works"})
    assert r.status_code == 200, r.text
    gone = _in_town(live, TOWN_2)
    assert r.json()["changed"] == len(gone) > 0
    assert set(_states(live, gone)) == {"decommissioned"}
    assert set(_states(live, _in_town(live, TOWN_1))) == {"commissioning"}
    assert set(_states(live, _in_town(live, TOWN_2, "air_quality"))) == {"commissioning"}
    assert len(await live.node.store.list_audit(limit=1000)) == len(gone)


async def test_bad_input_is_named_and_changes_nothing(live):
    admin = await live.key("admin")
    cases = [
        ({"to": "broken", "devices": ["noise-000000"], "reason": "x"}, 400, "$.to"),
        ({"to": "maintenance", "reason": "x"}, 400, "devices, area or kind"),
        ({"to": "maintenance", "kind": "lava", "reason": "x"}, 400, "kind: unknown device kind"),
        ({"to": "maintenance", "area": "990009", "reason": "x"}, 400, "area: no area"),
        ({"to": "maintenance", "area": "99", "reason": "x"}, 400, "$.area"),
        ({"to": "maintenance", "devices": ["noise-000000"], "area": TOWN_1, "reason": "x"},
         400, "devices: give a list of ids"),
        ({"to": "maintenance", "devices": ["noise-000000"]}, 400, "reason"),
        ({"to": "maintenance", "devices": ["noise-000000"], "reason": "x", "when": 1}, 400,
         "when"),
        ({"to": "maintenance", "devices": ["noise-000000", "ghost"], "reason": "x"}, 404,
         "devices[1]: no device 'ghost'"),
        # One refused move refuses them all: the first device is not moved either.
        ({"to": "active", "devices": ["noise-000000", "noise-000001"], "reason": "x"}, 409,
         "device 'noise-000000': becomes active by itself at its first reading"),
    ]
    async with live.client(admin) as c:
        for body, status, text in cases:
            r = await c.post("/api/v1/devices/lifecycle", json=body)
            assert r.status_code == status, (body, r.text)
            assert text in r.text, (body, r.text)
    assert set(_states(live, [d.id for d in live.node.registry.devices])) == {"commissioning"}
    assert await live.node.store.list_audit(limit=10) == []


async def test_half_refused_changes_nothing(live):
    admin = await live.key("admin")
    async with live.client(admin) as c:
        r = await c.post("/api/v1/devices/lifecycle", json={
            "to": "decommissioned", "devices": ["noise-000005"], "reason": "stolen"})
        assert r.status_code == 200
        r = await c.post("/api/v1/devices/lifecycle", json={
            "to": "maintenance", "kind": "noise", "reason": "all of them"})
    assert r.status_code == 409
    assert "noise-000005" in r.json()["error"] and "decommissioned to maintenance" in r.text
    assert _states(live, ["noise-000004", "noise-000005"]) == ["commissioning",
                                                                "decommissioned"]


async def test_scope_is_checked_against_the_devices_as_stored(live):
    operator = await live.key("operator", TOWN_1)
    theirs, mine = _in_town(live, TOWN_2)[0], _in_town(live, TOWN_1)[0]
    async with live.client(operator) as c:
        outside = await c.post("/api/v1/devices/lifecycle", json={
            "to": "maintenance", "area": TOWN_2, "reason": "x"})
        listed = await c.post("/api/v1/devices/lifecycle", json={
            "to": "maintenance", "devices": [mine, theirs], "reason": "x"})
        by_kind = await c.post("/api/v1/devices/lifecycle", json={
            "to": "maintenance", "kind": "noise", "reason": "town 1's noise meters"})
    assert outside.status_code == 403 and "area: 990001002 lies outside" in outside.text
    assert listed.status_code == 404 and f"devices[1]: no device '{theirs}'" in listed.text
    # By kind alone, a scoped key moves only the devices of its scope.
    assert by_kind.status_code == 200, by_kind.text
    assert set(_states(live, _in_town(live, TOWN_1))) == {"maintenance"}
    assert set(_states(live, _in_town(live, TOWN_2))) == {"commissioning"}
    for role in ("department", "station", "device", "citizen"):
        key = await live.key(role, TOWN_1 if role != "department" else "environment")
        async with live.client(key) as c:
            r = await c.post("/api/v1/devices/lifecycle", json={
                "to": "maintenance", "devices": [mine], "reason": "x"})
        assert r.status_code == 403, role


async def test_registering_a_device_again_keeps_its_lifecycle(live):
    await _read(live, "noise-000007")
    device = live.node.registry.get("noise-000007")
    async with live.client(await live.key("admin")) as c:
        r = await c.post("/api/v1/devices", json={
            "id": device.id, "kind": "noise", "lat": device.lat, "lon": device.lon,
            "name": "renamed"})
        made = await c.post("/api/v1/devices", json={
            "id": "fresh-meter", "kind": "noise", "lat": device.lat, "lon": device.lon})
    assert r.status_code in (200, 201) and r.json()["lifecycle"] == "active"
    assert r.json()["name"] == "renamed"
    assert made.json()["lifecycle"] == "commissioning" and made.json()["lifecycle_at"]


async def test_never_reported_lists_commissioning_devices_past_their_window(
        tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d", commissioning_window_s=0.0) as live:
        await _read(live, "noise-000000")
        admin, operator = await live.key("admin"), await live.key("operator", TOWN_1)
        async with live.client(admin) as c:
            everything = (await c.get("/api/v1/devices/never-reported",
                                      params={"limit": 1000})).json()
            gps = (await c.get("/api/v1/devices/never-reported",
                               params={"kind": "gps"})).json()
            in_town = (await c.get("/api/v1/devices/never-reported",
                                   params={"area": TOWN_2, "limit": 1000})).json()
            page = (await c.get("/api/v1/devices/never-reported", params={"limit": 5})).json()
            bad = await c.get("/api/v1/devices/never-reported", params={"kind": "lava"})
        async with live.client(operator) as c:
            scoped = (await c.get("/api/v1/devices/never-reported",
                                  params={"limit": 1000})).json()
    ids = [d["id"] for d in everything["items"]]
    assert len(ids) == len(grid_pack.devices) - 1 and "noise-000000" not in ids
    assert everything["window_s"] == 0.0 and everything["next"] is None
    assert everything["items"][0]["waiting_s"] >= 0
    assert [d["id"] for d in gps["items"]] == ["gps-000000", "gps-000001", "gps-000002"]
    assert in_town["items"] and all(d["areas"]["town"] == TOWN_2 for d in in_town["items"])
    assert len(page["items"]) == 5 and page["next"] is not None
    assert scoped["items"] and all(d["areas"]["town"] == TOWN_1 for d in scoped["items"])
    assert bad.status_code == 400


async def test_never_reported_waits_for_the_window(live):
    async with live.client(await live.key("admin")) as c:
        page = (await c.get("/api/v1/devices/never-reported")).json()
    assert page["items"] == [] and page["window_s"] == 7 * 86400
