import time

import msgspec


async def test_a_device_carries_its_areas_cell_and_latest_reading(live):
    device = live.node.registry.get("noise-000003")
    writer = await live.key("device")
    reader = await live.key("operator")
    ts = int(time.time()) - 30
    async with live.client(writer) as w:
        await w.post("/api/v1/readings", content=msgspec.json.encode(
            [{"device_id": device.id, "ts": ts, "value": 63.5},
             {"device_id": device.id, "ts": ts - 60, "value": 40.0}]))
    async with live.client(reader) as c:
        body = (await c.get(f"/api/v1/devices/{device.id}")).json()
    assert body["kind"] == "noise"
    assert body["areas"] == {"district": device.areas.district, "town": device.areas.town,
                             "village": device.areas.village}
    assert body["cell"] == device.cell and len(body["cell"]) == 15
    assert body["latest"]["value"] == 63.5
    assert body["latest"]["ts"].startswith(time.strftime("%Y-%m-%d", time.gmtime(ts)))


async def test_multichannel_latest_lists_every_channel(live):
    writer = await live.key("device")
    reader = await live.key("admin")
    async with live.client(writer) as w:
        await w.post("/api/v1/readings", content=msgspec.json.encode(
            {"device_id": "gps-000000", "ts": time.time() - 5,
             "values": {"lat": 31.21, "lon": 121.49, "speed": 32.0}}))
    async with live.client(reader) as c:
        latest = (await c.get("/api/v1/devices/gps-000000")).json()["latest"]
    assert latest["values"] == {"lat": 31.21, "lon": 121.49, "speed": 32.0}


async def test_lists_filter_by_kind_and_area_and_page(live):
    key = await live.key("admin")
    town = live.node.registry.get("noise-000000").areas.town
    async with live.client(key) as c:
        noise = (await c.get("/api/v1/devices", params={"kind": "noise", "limit": 1000})).json()
        in_town = (await c.get("/api/v1/devices", params={"area": town, "limit": 1000})).json()
        pages, cursor = [], None
        while True:
            params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
            page = (await c.get("/api/v1/devices", params=params)).json()
            pages.append(page["items"])
            cursor = page["next"]
            if cursor is None:
                break
        bad_kind = await c.get("/api/v1/devices", params={"kind": "lava"})
        bad_limit = await c.get("/api/v1/devices", params={"limit": "many"})
    assert len(noise["items"]) == 20 and noise["next"] is None
    assert in_town["items"] and all(d["areas"]["town"] == town for d in in_town["items"])
    assert sum(len(p) for p in pages) == 28 and len(pages) == 4
    assert len({d["id"] for p in pages for d in p}) == 28
    assert bad_kind.status_code == 400 and "unknown device kind 'lava'" in bad_kind.text
    assert bad_limit.status_code == 400


async def test_a_village_key_sees_only_its_village(live):
    mine = live.node.registry.get("noise-000001")
    village = mine.areas.village
    others = [d for d in live.node.registry.devices if d.areas.village != village]
    key = await live.key("station", village)
    async with live.client(key) as c:
        listed = (await c.get("/api/v1/devices", params={"limit": 1000})).json()["items"]
        direct = await c.get(f"/api/v1/devices/{others[0].id}")
        history = await c.get(f"/api/v1/devices/{others[0].id}/readings")
        own = await c.get(f"/api/v1/devices/{mine.id}")
    assert listed and all(d["areas"]["village"] == village for d in listed)
    assert direct.status_code == 404 and history.status_code == 404
    assert own.status_code == 200


async def test_a_department_key_sees_what_it_serves(live):
    env = await live.key("department", "environment")  # serves town 001 only
    async with live.client(env) as c:
        listed = (await c.get("/api/v1/devices", params={"limit": 1000})).json()["items"]
    assert listed and all(d["areas"]["town"].endswith("001") for d in listed)


async def test_device_and_citizen_keys_cannot_read_devices(live):
    for role in ("device", "citizen"):
        key = await live.key(role)
        async with live.client(key) as c:
            assert (await c.get("/api/v1/devices")).status_code == 403


async def test_register_a_device_resolves_it_once(live):
    key = await live.key("operator")
    centre = live.node.registry.get("noise-000000")
    new = {"id": "flood-gauge-1", "kind": "water_depth", "lat": centre.lat, "lon": centre.lon,
           "name": "Underpass gauge"}
    async with live.client(key) as c:
        r = await c.post("/api/v1/devices", json=new)
        again = await c.get("/api/v1/devices/flood-gauge-1")
        outside = await c.post("/api/v1/devices", json={**new, "id": "far", "lat": 10, "lon": 10})
        bad_kind = await c.post("/api/v1/devices", json={**new, "kind": "teleporter"})
        extra = await c.post("/api/v1/devices", json={**new, "colour": "red"})
    assert r.status_code == 201 and r.json()["areas"] == again.json()["areas"]
    assert r.json()["areas"]["village"] == centre.areas.village
    assert outside.status_code == 422 and "far" in outside.json()["error"]
    assert bad_kind.status_code == 400 and "teleporter" in bad_kind.json()["error"]
    assert extra.status_code == 400 and "colour" in extra.json()["error"]
    stored = await live.node.store.load_devices()
    assert any(d.id == "flood-gauge-1" and d.cell for d in stored)


async def test_a_scoped_operator_cannot_register_outside_its_area(live):
    village = live.node.registry.get("noise-000001").areas.village
    elsewhere = next(d for d in live.node.registry.devices if d.areas.village != village)
    key = await live.key("operator", village)
    async with live.client(key) as c:
        r = await c.post("/api/v1/devices", json={"id": "x1", "kind": "noise",
                                                  "lat": elsewhere.lat, "lon": elsewhere.lon})
    assert r.status_code == 403


async def test_reading_history_pages_in_time_order(live):
    writer = await live.key("device")
    reader = await live.key("operator")
    t0 = int(time.time()) - 1000
    rows = [{"device_id": "noise-000002", "ts": t0 + i, "value": float(i)} for i in range(25)]
    async with live.client(writer) as w:
        await w.post("/api/v1/readings", content=msgspec.json.encode(rows[::-1]))
    got, cursor = [], None
    async with live.client(reader) as c:
        while True:
            params = {"limit": 10, "from": t0 + 5, **({"cursor": cursor} if cursor else {})}
            page = (await c.get("/api/v1/devices/noise-000002/readings", params=params)).json()
            got += page["items"]
            cursor = page["next"]
            if not cursor:
                break
        bad = await c.get("/api/v1/devices/noise-000002/readings", params={"from": "soon"})
        naive = await c.get("/api/v1/devices/noise-000002/readings",
                            params={"from": "2024-01-01T00:00:00"})
    assert [r["value"] for r in got] == [float(i) for i in range(5, 25)]
    assert bad.status_code == 400 and naive.status_code == 400 and "time zone" in naive.text


async def test_a_scoped_operator_cannot_move_another_towns_device_into_its_own(live):
    """Found in issue 12: only the new place was checked, so an operator of one town took over
    another town's device by registering its id again at coordinates in its own town."""
    mine = live.node.registry.get("noise-000001")
    town = mine.areas.town
    theirs = next(d for d in live.node.registry.devices if not d.areas.within(town))
    key = await live.key("operator", town)
    async with live.client(key) as c:
        r = await c.post("/api/v1/devices", json={"id": theirs.id, "kind": theirs.kind,
                                                  "lat": mine.lat, "lon": mine.lon,
                                                  "name": "ours now"})
        many = await c.post("/api/v1/devices", json=[
            {"id": "new-here", "kind": "noise", "lat": mine.lat, "lon": mine.lon},
            {"id": theirs.id, "kind": theirs.kind, "lat": mine.lat, "lon": mine.lon}])
    assert r.status_code == 403 and theirs.id in r.json()["error"]
    assert many.status_code == 403
    assert live.node.registry.get(theirs.id) == theirs
    assert live.node.registry.get("new-here") is None  # nothing of a refused batch is taken
    stored = {d.id: d for d in await live.node.store.load_devices()}
    assert stored.get(theirs.id, theirs).areas == theirs.areas
