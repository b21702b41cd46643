"""Silences over HTTP: made, listed by state, read and expired (each audited), refused with
the field named and nothing stored, kept to the key's scope; and the alerts list's
`silenced` filter."""

from __future__ import annotations

import time

import pytest

from cityops.domain.alerts import Alert
from cityops.domain.city import AreaCodes
from tests.clock_kit import Clock

TOWN_A, TOWN_B = "990001001", "990001002"
VILLAGE_A = "990001001001"
URL = "/api/v1/silences"


def body(**kw):
    out = {"matchers": {"area": [TOWN_A], "pack": ["noise"]}, "duration": "2h",
           "comment": "street festival"}
    out.update(kw)
    return out


@pytest.fixture
async def node(tmp_path, city, live_node):
    clock = Clock(time.time())
    async with live_node(city, tmp_path / "d", clock=clock) as live:
        live.clock = clock
        live.admin = await live.key("admin")
        yield live


async def audit(live, sid):
    return [(e.action, e.reason) for e in await live.node.store.list_audit(
        subject=f"silence:{sid}")]


HERE = AreaCodes("990001", TOWN_A, VILLAGE_A)


def alert(areas=HERE, **kw) -> Alert:
    now = time.time()
    fields = dict(id="a-1", scenario="noise", rule="noise.night_residential",
                  category="event.environment.noise_nuisance", severity="minor",
                  urgency="normal", departments=["environment"], subject="noise-000000",
                  title="Loud", areas=areas, first_seen=now, last_seen=now)
    fields.update(kw)
    return Alert(**fields)


async def test_make_read_list_and_expire_each_audited(node) -> None:
    book = node.node.services.silences
    async with node.client(node.admin) as c:
        r = await c.post(URL, json=body(matchers={"area": [TOWN_A], "rule":
                                                  ["noise.night_residential"]}))
        assert r.status_code == 201, r.text
        made = r.json()
        sid = made["id"]
        assert made["state"] == "active" and made["comment"] == "street festival"
        assert made["ends_at"] - made["starts_at"] == 7200
        assert made["created_by"] and made["matchers"] == {
            "area": [TOWN_A], "rule": ["noise.night_residential"]}
        # The node's book holds it at once: the engine asks it for every alert raised.
        assert book.match(alert()) == sid
        assert book.match(alert(rule="noise.day_residential")) is None

        later = await c.post(URL, json=body(starts_at=node.clock.now + 3600))
        assert later.json()["state"] == "pending"

        assert (await c.get(f"{URL}/{sid}")).json()["id"] == sid
        active = (await c.get(URL, params={"state": "active"})).json()
        assert [s["id"] for s in active["items"]] == [sid]
        pending = (await c.get(URL, params={"state": "pending"})).json()
        assert [s["id"] for s in pending["items"]] == [later.json()["id"]]
        every = (await c.get(URL, params={"limit": 1})).json()
        assert len(every["items"]) == 1 and every["next"]
        rest = (await c.get(URL, params={"limit": 1, "cursor": every["next"]})).json()
        assert {every["items"][0]["id"], rest["items"][0]["id"]} == {sid, later.json()["id"]}

        gone = await c.request("DELETE", f"{URL}/{sid}", json={"reason": "festival over"})
        assert gone.status_code == 200, gone.text
        assert gone.json()["state"] == "ended" and gone.json()["expired_by"]
        assert book.match(alert()) is None
        assert book.take_ended() == [sid]
        again = await c.delete(f"{URL}/{sid}")  # no body: the reason is optional
        assert again.status_code == 409
        ended = (await c.get(URL, params={"state": "ended"})).json()
        assert [s["id"] for s in ended["items"]] == [sid]
    assert await audit(node, sid) == [("silence.expire", "festival over"),
                                      ("silence.create", "street festival")]


async def test_a_silence_ends_by_its_time(node) -> None:
    async with node.client(node.admin) as c:
        sid = (await c.post(URL, json=body(duration="10m"))).json()["id"]
        node.clock.now += 601
        assert (await c.get(f"{URL}/{sid}")).json()["state"] == "ended"
        assert (await c.delete(f"{URL}/{sid}")).status_code == 409


@pytest.mark.parametrize(("sent", "field"), [
    (body(matchers={"severity": ["major"]}), "severity"),
    (body(matchers={"all": True}), "all"),
    (body(matchers={}), "matchers"),
    (body(matchers={"rule": ["noise.nope"]}), "matchers.rule"),
    (body(matchers={"area": ["990009"]}), "matchers.area"),
    (body(matchers={"kind": ["volcano"]}), "matchers.kind"),
    (body(matchers={"device": ["ghost"]}), "matchers.device"),
    (body(duration=None, starts_at=time.time() + 7200, ends_at=time.time() + 3600),
     "ends_at"),
    (body(duration=None, ends_at=1000.0), "ends_at"),
    (body(duration="45d"), "duration"),
    (body(comment=""), "comment"),
    (body(comment="x" * 501), "comment"),
    ({"matchers": {"area": [TOWN_A]}, "duration": "1h"}, "comment"),
    (body(colour="red"), "colour"),
])
async def test_refused_naming_the_field_and_nothing_stored(node, sent, field) -> None:
    sent = {k: v for k, v in sent.items() if v is not None}
    async with node.client(node.admin) as c:
        r = await c.post(URL, json=sent)
        assert r.status_code == 400, r.text
        assert field in r.json()["error"]
        assert (await c.get(URL)).json()["items"] == []
    assert [e for e in await node.node.store.list_audit() if e.action.startswith("silence")] \
        == []
    assert len(node.node.services.silences) == 0


async def test_a_scoped_key_silences_only_inside_its_scope(node) -> None:
    op_a = await node.key("operator", TOWN_A)
    async with node.client(op_a) as c:
        wide = await c.post(URL, json=body(matchers={"pack": ["noise"]}))
        assert wide.status_code == 403 and "matchers.area" in wide.json()["error"]
        other = await c.post(URL, json=body(matchers={"area": [TOWN_A, TOWN_B]}))
        assert other.status_code == 403 and TOWN_B in other.json()["error"]
        mine = await c.post(URL, json=body(matchers={"area": [VILLAGE_A]}))
        assert mine.status_code == 201, mine.text
    assert [s.id for s in node.node.services.silences.active()] == [mine.json()["id"]]
    station = await node.key("station", TOWN_A)
    async with node.client(station) as c:
        assert (await c.post(URL, json=body())).status_code == 403  # may read, not silence
        assert [s["id"] for s in (await c.get(URL)).json()["items"]] == [mine.json()["id"]]


async def test_a_department_key_keeps_to_packs_sent_to_it_alone(node) -> None:
    dept = await node.key("operator", "city_management")
    async with node.client(dept) as c:
        noise = await c.post(URL, json=body(matchers={"area": [TOWN_A], "pack": ["noise"]}))
        assert noise.status_code == 403 and "matchers.pack" in noise.json()["error"]
        any_pack = await c.post(URL, json=body(matchers={"area": [TOWN_A]}))
        assert any_pack.status_code == 403
        own = await c.post(URL, json=body(matchers={"area": [TOWN_A],
                                                    "pack": ["device_health"]}))
        assert own.status_code == 201, own.text


async def test_a_key_sees_and_ends_only_the_silences_it_could_make(node) -> None:
    async with node.client(node.admin) as c:
        in_b = (await c.post(URL, json=body(matchers={"area": [TOWN_B]}))).json()["id"]
        city = (await c.post(URL, json=body(matchers={"pack": ["noise"]}))).json()["id"]
        in_a = (await c.post(URL, json=body(matchers={"area": [TOWN_A]}))).json()["id"]
    op_a = await node.key("operator", TOWN_A)
    async with node.client(op_a) as c:
        assert [s["id"] for s in (await c.get(URL)).json()["items"]] == [in_a]
        for sid in (in_b, city):
            assert (await c.get(f"{URL}/{sid}")).status_code == 404
            assert (await c.delete(f"{URL}/{sid}")).status_code == 404
        assert (await c.delete(f"{URL}/{in_a}")).status_code == 200
    for sid in (in_b, city):
        assert await audit(node, sid) == [("silence.create", "street festival")]


async def test_alerts_show_what_held_them_and_filter_by_it(node) -> None:
    await node.node.store.upsert_alerts([
        alert(id="loud", first_seen=1.0), alert(id="held", silenced_by="sil-x", first_seen=2.0),
        alert(id="explained", inhibited_by="outage-1", first_seen=3.0)])
    async with node.client(node.admin) as c:
        every = (await c.get("/api/v1/alerts")).json()["items"]
        assert {a["id"]: (a["silenced_by"], a["inhibited_by"]) for a in every} == {
            "loud": (None, None), "held": ("sil-x", None), "explained": (None, "outage-1")}
        held = (await c.get("/api/v1/alerts", params={"silenced": "true"})).json()
        assert [a["id"] for a in held["items"]] == ["held"]
        free = (await c.get("/api/v1/alerts", params={"silenced": "false", "limit": 1})).json()
        assert [a["id"] for a in free["items"]] == ["explained"] and free["next"]
        rest = (await c.get("/api/v1/alerts", params={"silenced": "false",
                                                      "cursor": free["next"]})).json()
        assert [a["id"] for a in rest["items"]] == ["loud"]
        bad = await c.get("/api/v1/alerts", params={"silenced": "perhaps"})
        assert bad.status_code == 400 and "silenced" in bad.json()["error"]
