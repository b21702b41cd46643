"""Citizens' report photos through the API: uploaded with a citizen key, checked as work-order
evidence is (type, content, size, count), sent as an Open311 request's media_url, and readable
by the citizen who took it and by staff who may see the case, by no one else."""

from __future__ import annotations

from tests.photo_kit import png

from .conftest import MONDAY_10, Clock

UPLOAD = "/api/v1/citizens/me/photos"
GARBAGE = "event-sanitation-exposed_garbage"
TOWN2 = "990001002"
PNG = png()
PUBLIC = "https://cityops.example.cn"


async def _upload(client, body: bytes = PNG, media: str = "image/png"):
    return await client.post(UPLOAD, content=body, headers={"Content-Type": media})


async def test_a_photo_is_uploaded_reported_and_shown_to_who_may_see_it(
        tmp_path, city, live_node) -> None:
    async with live_node(city, tmp_path / "data", notify_url="memory:",
                         public_base_url=PUBLIC + "/") as live:
        li = live.client(await live.key("citizen", name="c-000123"))
        wang = live.client(await live.key("citizen", name="c-000456"))
        op = live.client(await live.key("operator"))
        town2 = live.client(await live.key("operator", TOWN2))
        sanitation = live.client(await live.key("department", "sanitation"))

        r = await _upload(li)
        assert r.status_code == 201, r.text
        url = r.json()["url"]
        assert url.startswith(PUBLIC + "/api/v1/citizen-photos/")
        assert url.endswith(".png") and r.headers["location"] == url
        assert r.json()["bytes"] == len(PNG) and r.json()["type"] == "image/png"
        assert (await _upload(li)).json()["url"] == url  # a retry keeps one photo

        got = await li.get(url)
        assert got.status_code == 200 and got.content == PNG
        assert got.headers["content-type"] == "image/png"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["cache-control"].startswith("private")
        assert (await wang.get(url)).status_code == 404
        # Not reported with any case yet: no staff key sees it.
        assert (await op.get(url)).status_code == 404

        r = await li.post("/open311/v2/requests.json", data={
            "service_code": GARBAGE, "lat": "31.15", "long": "121.45",
            "description": "Bags by the gate", "media_url": url})
        assert r.status_code == 200, r.text
        request_id = r.json()[0]["service_request_id"]
        published = (await live.client().get(f"/open311/v2/requests/{request_id}.json")).json()
        assert published[0]["media_url"] == url
        case = (await li.get(f"/api/v1/citizens/me/reports/{request_id}")).json()
        inc = (await op.get(f"/api/v1/incidents/{case['incident_id']}")).json()
        assert inc["reports_filed"][0]["data"]["media_url"] == url

        assert (await op.get(url)).content == PNG
        assert (await sanitation.get(url)).status_code == 200
        assert (await town2.get(url)).status_code == 404  # a case outside its area
        assert (await wang.get(url)).status_code == 404

        # Another citizen cannot pass Li's photo off as theirs (the URL is public in Open311).
        r = await wang.post("/open311/v2/requests.json", data={
            "service_code": GARBAGE, "lat": "31.15", "long": "121.45", "media_url": url})
        assert r.status_code == 400 and "no photo of this key's citizen" in r.text
        r = await li.post("/open311/v2/requests.json", data={
            "service_code": GARBAGE, "lat": "31.15", "long": "121.45",
            "media_url": url.rsplit("/", 1)[0] + "/nothere.png"})
        assert r.status_code == 400
        # A photo hosted elsewhere is still just a link.
        r = await wang.post("/open311/v2/requests.json", data={
            "service_code": GARBAGE, "lat": "31.15", "long": "121.45",
            "media_url": "https://photos.example.cn/1.jpg"})
        assert r.status_code == 200, r.text

        folder = live.node.settings.data_dir / "citizen-photos"
        assert not list(folder.rglob("*.part"))
        for c in (li, wang, op, town2, sanitation):
            await c.aclose()


async def test_the_url_never_comes_from_the_host_header(tmp_path, city, live_node) -> None:
    """The Host header is the client's to write: a forged one must not reach the url that
    goes into public Open311 requests. With no public base URL set the answer is a path on
    this node, which Open311 takes as media_url."""
    forged = {"Host": "evil.example"}
    async with live_node(city, tmp_path / "bare", notify_url="memory:") as live:
        li = live.client(await live.key("citizen", name="c-000123"))
        r = await li.post(UPLOAD, content=PNG, headers={"Content-Type": "image/png", **forged})
        assert r.status_code == 201, r.text
        url = r.json()["url"]
        assert url.startswith("/api/v1/citizen-photos/") and r.headers["location"] == url
        assert "evil" not in r.text and "evil" not in r.headers["location"]
        assert (await li.get(url)).content == PNG
        r = await li.post("/open311/v2/requests.json", data={
            "service_code": GARBAGE, "lat": "31.15", "long": "121.45", "media_url": url})
        assert r.status_code == 200, r.text
        request_id = r.json()[0]["service_request_id"]
        published = (await live.client().get(f"/open311/v2/requests/{request_id}.json")).json()
        assert published[0]["media_url"] == url
        await li.aclose()
    async with live_node(city, tmp_path / "public", notify_url="memory:",
                         public_base_url=PUBLIC) as live:
        li = live.client(await live.key("citizen", name="c-000123"))
        r = await li.post(UPLOAD, content=PNG, headers={"Content-Type": "image/png", **forged})
        assert r.json()["url"].startswith(PUBLIC + "/api/v1/citizen-photos/")
        assert "evil" not in r.text and "evil" not in r.headers["location"]
        await li.aclose()


async def test_what_is_refused(live) -> None:
    li = live.client(await live.key("citizen", name="c-000123"))
    assert (await _upload(li, b"hello", "text/plain")).status_code == 415
    r = await li.post(UPLOAD, content=PNG)
    assert r.status_code == 415 and "no Content-Type" in r.json()["error"]
    assert (await _upload(li, b"GIF89a" + PNG, "image/png")).status_code == 400
    assert (await _upload(li, PNG, "image/jpeg")).status_code == 400
    assert (await _upload(li, b"", "image/png")).status_code == 400

    big = b"\x89PNG\r\n\x1a\n" + bytes(8 << 20)
    r = await _upload(li, big)
    assert r.status_code == 413 and "8 MiB" in r.json()["error"]

    # Streamed with no Content-Length: refused once the limit is passed, not read to the end.
    sent = []

    async def stream():
        for _ in range(64):  # 16 MiB offered in all
            sent.append(1)
            yield b"\x89PNG\r\n\x1a\n" + bytes((256 << 10) - 8)

    r = await li.post(UPLOAD, content=stream(), headers={"Content-Type": "image/png"})
    assert r.status_code == 413
    assert 32 <= len(sent) < 64

    op = live.client(await live.key("operator"))
    assert (await _upload(op)).status_code == 403
    nameless = live.client(await live.key("citizen"))
    assert (await _upload(nameless)).status_code == 403
    assert (await _upload(live.client())).status_code == 401
    device = live.client(await live.key("device"))
    assert (await device.get("/api/v1/citizen-photos/aaaaaaaaaaaaaaaaaaaaaaaaaa.png")
            ).status_code == 403
    for name in ("aaaaaaaaaaaaaaaaaaaaaaaaaa.png", "..%2Fstate.db", "x.gif"):
        assert (await li.get(f"/api/v1/citizen-photos/{name}")).status_code == 404
    assert not (live.node.settings.data_dir / "citizen-photos").exists()


async def test_a_citizen_sends_at_most_twenty_photos_a_day(tmp_path, grid_pack,
                                                           live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(grid_pack, tmp_path / "data", clock=clock) as live:
        li = live.client(await live.key("citizen", name="c-000123"))
        wang = live.client(await live.key("citizen", name="c-000456"))
        first = await _upload(li, png(rgb=(0, 0, 0)))
        for n in range(1, 20):
            assert (await _upload(li, png(rgb=(n, 0, 0)))).status_code == 201
        r = await _upload(li, png(rgb=(99, 0, 0)))
        assert r.status_code == 409 and "20 photos a day" in r.json()["error"]
        # Sending one already kept again is no new photo; other citizens are not held up.
        again = await _upload(li, png(rgb=(0, 0, 0)))
        assert again.status_code == 201 and again.json()["url"] == first.json()["url"]
        assert (await _upload(wang, png(rgb=(99, 0, 0)))).status_code == 201
        clock.now += 86400 + 1
        assert (await _upload(li, png(rgb=(99, 0, 0)))).status_code == 201
