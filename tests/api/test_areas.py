async def test_the_hierarchy_and_one_area(live):
    key = await live.key("citizen")
    async with live.client(key) as c:
        all_areas = (await c.get("/api/v1/areas")).json()["items"]
        towns = (await c.get("/api/v1/areas", params={"level": "town"})).json()["items"]
        one = (await c.get(f"/api/v1/areas/{towns[0]['code']}")).json()
        missing = await c.get("/api/v1/areas/123456789")
        bad = await c.get("/api/v1/areas", params={"level": "planet"})
    assert len(all_areas) == 1 + 2 + 4
    assert [t["level"] for t in towns] == ["town", "town"]
    assert one["ancestors"] == ["990001"] and len(one["children"]) == 2
    assert one["geometry"]["type"] == "Polygon"
    assert missing.status_code == 404 and bad.status_code == 400
    # Each with its name in the pack's other languages (the admin page's beats, in Chinese).
    assert towns[0]["names"] == {"zh-CN": "第1街镇"} and one["names"] == {"zh-CN": "第1街镇"}


async def test_a_village_key_sees_its_branch_only(live):
    key = await live.key("station", "990001001001")
    async with live.client(key) as c:
        codes = [a["code"] for a in (await c.get("/api/v1/areas")).json()["items"]]
        sibling = await c.get("/api/v1/areas/990001002001")
    assert codes == ["990001", "990001001", "990001001001"]
    assert sibling.status_code == 404


async def test_openapi_document_is_valid_and_lists_the_api(live):
    from openapi_spec_validator import validate

    async with live.client() as c:
        spec = (await c.get("/openapi.json")).json()
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    assert {"/api/v1/readings", "/api/v1/devices/{device_id}", "/api/v1/areas"} <= set(
        spec["paths"])


async def test_metrics_speak_prometheus(live):
    async with live.client(await live.key("admin")) as c:
        text = (await c.get("/metrics")).text
    for name in ("cityops_readings_accepted_total", "cityops_readings_rejected_total",
                 'cityops_queue_depth{queue="history_writer"}', "cityops_store_seconds",
                 "cityops_ingest_rate", "cityops_devices 28.0"):
        assert name in text


async def test_readyz_says_ready_then_degraded_when_mqtt_is_unreachable(tmp_path, grid_pack,
                                                                        live_node):
    async with live_node(grid_pack, tmp_path / "a") as live:
        async with live.client() as c:
            r = await c.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready"
        assert set(r.json()["checks"]) == {"store", "history", "bus"}
    # A broker nobody listens on: the node starts, keeps retrying, and says it is degraded.
    async with live_node(grid_pack, tmp_path / "b", mqtt_url="mqtt://127.0.0.1:1") as live:
        async with live.client() as c:
            r = await c.get("/readyz")
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["checks"]["mqtt"] == {"ok": False, "state": "reconnecting"}
