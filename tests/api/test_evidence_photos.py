"""Evidence photos of work orders (issue 12): a case's evidence names CityOps photos by the id
their upload answered, and only photos the caller may see; a URL pointing anywhere else is
refused. The URLs the node gives out start with its configured public base URL, never with the
Host header a client sent."""

from __future__ import annotations

from tests.photo_kit import png

from .conftest import HERE

GARBAGE = "event.sanitation.exposed_garbage"
TOWN2 = {"lat": 31.15, "lon": 121.55}
PNG = {"Content-Type": "image/png"}


async def _order(op, place: dict, key: str) -> str:
    """A sanitation work order for a new case at `place`."""
    r = await op.post("/api/v1/incidents", json={"category": GARBAGE, **place, "key": key})
    path = f"/api/v1/incidents/{r.json()['id']}"
    await op.post(f"{path}/actions/register")
    r = await op.post(f"{path}/actions/dispatch", json={"departments": ["sanitation"]})
    assert r.status_code == 200, r.text
    return r.json()["orders"][0]["id"]


async def _upload(client, order: str, colour: tuple[int, int, int]) -> str:
    r = await client.post(f"/api/v1/work-orders/{order}/photos", content=png(rgb=colour),
                          headers=PNG)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_evidence_names_cityops_photos_the_caller_may_see(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        town1 = live.client(await live.key("operator", "990001001"))
        st1 = live.client(await live.key("station", "990001001"))
        st2 = live.client(await live.key("station", "990001002"))
        mine, theirs = await _order(op, HERE, "one"), await _order(op, TOWN2, "two")
        ours = await _upload(st1, mine, (1, 2, 3))
        other = await _upload(st2, theirs, (4, 5, 6))
        assert (await st1.post(f"/api/v1/work-orders/{mine}/actions/accept")).status_code == 200
        finish = f"/api/v1/work-orders/{mine}/actions/finish"
        for url in ("https://evil.example/after.jpg", "after.jpg", "../../state.db",
                    f"/api/v1/work-orders/{mine}/photos/{ours}"):
            r = await st1.post(finish, json={"photos": [url]})
            assert r.status_code == 400 and "`$.photos[0]`" in r.json()["error"], r.text
        for unseen in ("0" * 24 + ".png", other):
            r = await st1.post(finish, json={"photos": [ours, unseen]})
            assert r.status_code == 404 and unseen in r.json()["error"], r.text
        order = (await op.get(f"/api/v1/incidents/{mine.rsplit('-', 1)[0]}")).json()["orders"][0]
        assert order["status"] == "accepted" and order["photos"] == []

        r = await st1.post(finish, json={"photos": [ours]})
        assert r.status_code == 200, r.text
        stored = r.json()["orders"][0]["photos"]
        assert stored == [f"/api/v1/work-orders/{mine}/photos/{ours}"]
        got = await st1.get(stored[0])
        assert got.status_code == 200 and got.content == png(rgb=(1, 2, 3))

        # A new report's photos are held to the same rule.
        r = await town1.post("/api/v1/incidents", json={"category": GARBAGE, **HERE,
                                                        "key": "three", "photos": [other]})
        assert r.status_code == 404 and other in r.json()["error"], r.text
        r = await town1.post("/api/v1/incidents", json={
            "category": "event.street_order.illegal_parking", **HERE, "photos": [ours]})
        assert r.status_code == 201, r.text
        detail = (await town1.get(f"/api/v1/incidents/{r.json()['id']}")).json()
        assert detail["reports_filed"][0]["data"]["photos"] == stored
        for c in (op, town1, st1, st2):
            await c.aclose()


async def test_the_uploader_may_name_its_own_photo(tmp_path, city, live_node):
    """A field person's photo stays theirs to cite after the order went to someone else."""
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        # Scoped to the other town: san-01 sees Town 1's case only while offered its order.
        field = live.client(await live.key("field", "990001002", "san-01"))
        order = await _order(op, HERE, "one")
        r = await op.post(f"/api/v1/work-orders/{order}/assign", json={"staff_id": "san-01"})
        assert r.status_code == 200, r.text
        photo = await _upload(field, order, (7, 8, 9))
        r = await op.post(f"/api/v1/work-orders/{order}/assign", json={"staff_id": "san-02"})
        assert r.status_code == 200, r.text
        assert (await field.get(f"/api/v1/work-orders/{order}/photos/{photo}")).status_code \
            == 404
        r = await field.post("/api/v1/incidents", json={"category": GARBAGE, **TOWN2,
                                                       "photos": [photo]})
        assert r.status_code == 201, r.text
        for c in (op, field):
            await c.aclose()


async def test_photo_urls_never_come_from_the_host_header(tmp_path, city, live_node):
    for base in ("", "https://city.example.cn/ops"):
        async with live_node(city, tmp_path / f"data{len(base)}", notify_url="memory:",
                             public_base_url=base) as live:
            op = live.client(await live.key("operator"))
            order = await _order(op, HERE, "one")
            r = await op.post(f"/api/v1/work-orders/{order}/photos", content=png(),
                              headers={**PNG, "Host": "evil.example",
                                       "X-Forwarded-Host": "evil.example"})
            assert r.status_code == 201, r.text
            path = f"/api/v1/work-orders/{order}/photos/{r.json()['id']}"
            assert r.json()["url"] == base + path
            assert r.headers["location"] == base + path
            assert "evil.example" not in r.text
            await op.aclose()
