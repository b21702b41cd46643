"""The citizen registry through the API: staff see phone and ID numbers masked, the citizen's
own key sees them whole, other citizens see nothing."""

from __future__ import annotations

LI = {"id": "c-000123", "name": "Li Wei", "phone": "13812345678",
      "id_number": "310115198001011234", "birth_date": "1946-03-01", "area": "990001001001",
      "attributes": {"lives_alone": True}}


async def test_register_read_masked_and_whole(live) -> None:
    op = live.client(await live.key("operator"))
    r = await op.post("/api/v1/citizens", json=LI)
    assert r.status_code == 201, r.text
    assert r.json()["phone"] == "138****5678"
    assert r.json()["id_number"] == "310115********1234"
    r = await op.post("/api/v1/citizens", json={**LI, "address": "1 Century Ave"})
    assert r.status_code == 200 and r.json()["address"] == "1 Century Ave"

    staff = await op.get("/api/v1/citizens/c-000123")
    assert staff.status_code == 200
    assert "12345678" not in staff.text and "19800101" not in staff.text
    station = live.client(await live.key("station", "990001001"))
    assert (await station.get("/api/v1/citizens/c-000123")).json()["phone"] == "138****5678"
    other_area = live.client(await live.key("station", "990001002"))
    assert (await other_area.get("/api/v1/citizens/c-000123")).status_code == 404

    own = live.client(await live.key("citizen", name="c-000123"))
    me = await own.get("/api/v1/citizens/me")
    assert me.status_code == 200
    assert me.json()["phone"] == "13812345678"
    assert me.json()["id_number"] == "310115198001011234"
    assert (await own.get("/api/v1/citizens/c-000123")).json()["phone"] == "13812345678"

    stranger = live.client(await live.key("citizen", name="c-000999"))
    assert (await stranger.get("/api/v1/citizens/c-000123")).status_code == 404
    assert (await stranger.get("/api/v1/citizens/me")).status_code == 404
    assert (await stranger.post("/api/v1/citizens", json=LI)).status_code == 403


async def test_refusals(live) -> None:
    op = live.client(await live.key("operator"))
    assert (await op.post("/api/v1/citizens", json={**LI, "phone": "call me"})).status_code \
        == 400
    assert (await op.post("/api/v1/citizens", json={**LI, "id_number": "123"})).status_code \
        == 400
    assert (await op.post("/api/v1/citizens", json={**LI, "shoe_size": 42})).status_code == 400
    assert (await op.post("/api/v1/citizens", json=LI)).status_code == 201
    # One person, one account: the same ID number under another id is refused.
    r = await op.post("/api/v1/citizens", json={**LI, "id": "c-000124"})
    assert r.status_code == 409 and "another citizen" in r.json()["error"]
    scoped = live.client(await live.key("operator", "990001002"))
    assert (await scoped.post("/api/v1/citizens", json=LI)).status_code == 403


async def test_a_town_operator_cannot_take_over_another_towns_citizen(live) -> None:
    """Found in issue 12: an operator of one town re-registered a citizen of another town with
    an area in its own town, replacing name and phone (where pickup codes and results go)."""
    admin = live.client(await live.key("admin"))
    assert (await admin.post("/api/v1/citizens", json=LI)).status_code == 201  # town 1
    town2 = live.client(await live.key("operator", "990001002"))
    r = await town2.post("/api/v1/citizens", json={
        **LI, "name": "Someone Else", "phone": "13900000000", "area": "990001002001"})
    assert r.status_code in (403, 404)
    held = (await admin.get("/api/v1/citizens/c-000123")).json()
    assert held["name"] == "Li Wei" and held["area"] == "990001001001"
    assert held["phone"] == "138****5678"
