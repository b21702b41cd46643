"""The remote virtual window's signalling over Starlette's test WebSocket client: who may open
the socket, presence per department, a call refused when no clerk of the department is online
(nothing kept), ringing the least busy free clerk, accept and decline, relaying only between
the two parties of one call, the form pushed and its values checked and saved to the
application, a dropped socket ending the call and freeing the clerk, the audit of each call,
the bounds (message size, rate, a reader that never reads), and a revoked key's socket closed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from cityops.api.app import create_app
from cityops.api.window import hub_of
from cityops.auth import new_key
from cityops.domain.city import Department
from cityops.node import Node
from cityops.packs.categories_file import default_categories
from cityops.serve.window import hub as hub_module
from cityops.settings import Settings

pytestmark = pytest.mark.timeout(120)

DEPARTMENTS = ["police", "city_management", "market_regulation"]
LI = {"id": "c-000123", "name": "Li Wei", "phone": "13812345678",
      "id_number": "310115198001011234", "birth_date": "1980-01-01", "area": "990001001001",
      "address": "8 Zhangyang Road"}
WANG = {**LI, "id": "c-000124", "name": "Wang Fang", "phone": "13812345679",
        "id_number": "310115198001021236"}
SIGN = {"service": "outdoor_signage_permit",
        "answers": {"business_name": "Li's Noodles", "business_address": "8 Zhangyang Road",
                    "sign_area": 3.5, "sign_text": "李记面馆"},
        "materials": {"business_licence": "scan-1", "premises_title": "scan-2",
                      "sign_design": "scan-3"}}


class World:
    def __init__(self, client: TestClient, node: Node) -> None:
        self.client = client
        self.node = node

    def key(self, role: str, scope: str | None = None, name: str = "") -> str:
        secret, record = new_key(role, scope, name)
        assert self.client.portal is not None
        self.client.portal.call(self.node.store.add_key, record)
        return secret

    def http(self, method: str, path: str, key: str, **kw: Any) -> Any:
        return self.client.request(method, path, headers={"Authorization": f"Bearer {key}"},
                                   **kw)

    @contextlib.contextmanager
    def socket(self, key: str) -> Iterator[Any]:
        with self.client.websocket_connect("/api/v1/window/socket") as ws:
            ws.send_json({"type": "hello", "key": key})
            welcome = ws.receive_json()
            assert welcome["type"] == "welcome", welcome
            yield ws

    def audit(self) -> list[Any]:
        assert self.client.portal is not None
        return self.client.portal.call(self._audit)

    async def _audit(self) -> list[Any]:
        return await self.node.store.list_audit(limit=100)


@pytest.fixture
def world(tmp_path, grid_pack) -> Iterator[World]:
    departments = [Department(c, c.replace("_", " ").title(), None, ["990001"])
                   for c in DEPARTMENTS]
    pack = msgspec.structs.replace(grid_pack, departments=departments,
                                   categories=default_categories(DEPARTMENTS))
    node = Node(pack, Settings(data_dir=tmp_path / "data", notify_url="memory:"))
    with TestClient(create_app(node)) as client:
        yield World(client, node)


def citizen_with_application(w: World, person: dict[str, Any]) -> tuple[str, str]:
    operator = w.key("operator")
    assert w.http("POST", "/api/v1/citizens", operator, json=person).status_code == 201
    key = w.key("citizen", name=person["id"])
    r = w.http("POST", "/api/v1/applications", key, json=SIGN)
    assert r.status_code == 201, r.text
    return key, r.json()["applications"][0]["id"]


def pong(ws: Any) -> None:
    """What a socket was sent before now, drained up to the pong of a ping: the socket
    answers in order, so anything queued for it earlier arrives first."""
    ws.send_json({"type": "ping"})
    got = ws.receive_json()
    assert got == {"type": "pong"}, f"expected nothing before the pong, got {got}"


def test_who_may_open_the_socket(world: World) -> None:
    w = world
    # A plain GET is told to upgrade; the route still asks for a key first.
    assert w.client.get("/api/v1/window/socket").status_code == 401
    r = w.http("GET", "/api/v1/window/socket", w.key("citizen", name="c-1"))
    assert (r.status_code, r.json()["code"]) == (426, "window_websocket_required")
    with w.client.websocket_connect("/api/v1/window/socket") as ws:
        ws.send_json({"type": "hello", "key": "k_nothing.nothing"})
        assert ws.receive_json()["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401
    with w.client.websocket_connect("/api/v1/window/socket") as ws:
        ws.send_json({"type": "signal", "data": {}})  # not a hello
        assert ws.receive_json()["code"] == "window_hello_required"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4400
    for role, scope in (("operator", None), ("field", None), ("department", None)):
        with w.client.websocket_connect("/api/v1/window/socket") as ws:
            ws.send_json({"type": "hello", "key": w.key(role, scope, name="x")})
            assert ws.receive_json()["code"] == "forbidden", role
    with w.socket(w.key("department", "police")) as ws:
        # A citizen's message from a clerk is refused, and a clerk's from a citizen.
        ws.send_json({"type": "form_values", "call": "x", "values": {}})
        assert ws.receive_json()["code"] == "forbidden"
    with w.socket(w.key("citizen", name="c-1")) as ws:
        ws.send_json({"type": "presence", "online": True})
        assert ws.receive_json()["code"] == "forbidden"
        ws.send_text("not json")
        assert ws.receive_json()["code"] == "window_bad_message"
        ws.send_json({"type": "teleport"})
        assert ws.receive_json()["code"] == "window_bad_message"


def test_a_call_to_a_department_with_no_clerk_online_is_refused(world: World) -> None:
    w = world
    key, app_id = citizen_with_application(w, LI)
    # No socket yet: the call could never ring back.
    r = w.http("POST", "/api/v1/window/calls", key, json={"application_id": app_id})
    assert (r.status_code, r.json()["code"]) == (409, "window_not_connected")
    with w.socket(key), w.socket(w.key("department", "city_management")) as clerk:
        # Connected but not online: refused, and nothing is kept.
        r = w.http("POST", "/api/v1/window/calls", key, json={"application_id": app_id})
        assert (r.status_code, r.json()["code"]) == (409, "window_no_clerk_online")
        # Another department's clerk online does not help.
        with w.socket(w.key("department", "police")) as police:
            police.send_json({"type": "presence", "online": True})
            assert police.receive_json()["online"] is True
            r = w.http("POST", "/api/v1/window/calls", key, json={"application_id": app_id})
            assert r.json()["code"] == "window_no_clerk_online"
            pong(police)  # and it was never rung
        pong(clerk)
        dept = w.key("department", "city_management")
        assert w.http("GET", "/api/v1/window/calls", dept).json()["items"] == []
        assert not [e for e in w.audit() if e.action.startswith("window.")]
        # An application that is not the citizen's: not found, as one that does not exist.
        other, _ = citizen_with_application(w, WANG)
        r = w.http("POST", "/api/v1/window/calls", other, json={"application_id": app_id})
        assert r.status_code == 404
        r = w.http("POST", "/api/v1/window/calls", key, json={"application": app_id})
        assert r.status_code == 400


def test_a_call_rings_accepts_relays_pushes_a_form_and_ends(world: World) -> None:
    w = world
    key, app_id = citizen_with_application(w, LI)
    wang, wang_app = citizen_with_application(w, WANG)
    clerk_key = w.key("department", "city_management")
    with w.socket(key) as citizen, w.socket(clerk_key) as busy, w.socket(clerk_key) as clerk, \
            w.socket(w.key("department", "police")) as police, w.socket(wang) as stranger:
        for ws in (busy, clerk, police):
            ws.send_json({"type": "presence", "online": True})
            assert ws.receive_json()["type"] == "presence"
        r = w.http("GET", "/api/v1/window/presence", key)
        assert {x["department"]: x["online"] for x in r.json()["items"]} == {
            "city_management": 2, "police": 1}
        # `busy` has taken a call already (Wang's): the next one rings the other clerk.
        r = w.http("POST", "/api/v1/window/calls", wang, json={"application_id": wang_app})
        assert r.status_code == 201, r.text
        first = r.json()["id"]
        ring = busy.receive_json()  # the least busy is the one idle longest: `busy`
        assert (ring["type"], ring["call"]) == ("ring", first)
        busy.send_json({"type": "accept", "call": first})
        assert busy.receive_json()["type"] == "accepted"
        assert stranger.receive_json() == {"type": "accepted", "call": first}
        stranger.send_json({"type": "hangup", "call": first})
        assert busy.receive_json()["reason"] == "hangup"
        assert stranger.receive_json()["type"] == "ended"

        r = w.http("POST", "/api/v1/window/calls", key, json={"application_id": app_id})
        assert r.status_code == 201, r.text
        call = r.json()
        assert (call["state"], call["department"]) == ("ringing", "city_management")
        ring = clerk.receive_json()
        assert ring["type"] == "ring" and ring["application"]["id"] == app_id
        assert "answers" not in ring["application"]  # the console reads those with its key
        pong(busy)  # one clerk rung, not both
        # The same citizen cannot ring twice at once.
        r = w.http("POST", "/api/v1/window/calls", key, json={"application_id": app_id})
        assert r.json()["code"] == "window_already_in_call"
        # Nothing is relayed before the clerk accepts; another clerk cannot accept it.
        citizen.send_json({"type": "signal", "call": call["id"], "data": {"sdp": "x"}})
        assert citizen.receive_json()["code"] == "window_not_active"
        busy.send_json({"type": "accept", "call": call["id"]})
        assert busy.receive_json()["code"] == "window_no_such_call"
        police.send_json({"type": "accept", "call": call["id"]})
        assert police.receive_json()["code"] == "window_no_such_call"

        clerk.send_json({"type": "accept", "call": call["id"]})
        assert citizen.receive_json() == {"type": "accepted", "call": call["id"]}
        assert clerk.receive_json()["type"] == "accepted"
        # Signalling goes to the other party of this call, and to no one else.
        offer = {"type": "offer", "sdp": "v=0 fake"}
        citizen.send_json({"type": "signal", "call": call["id"], "data": offer})
        assert clerk.receive_json() == {"type": "signal", "call": call["id"], "data": offer}
        clerk.send_json({"type": "signal", "call": call["id"], "data": {"type": "answer"}})
        assert citizen.receive_json()["data"] == {"type": "answer"}
        stranger.send_json({"type": "signal", "call": call["id"], "data": {"x": 1}})
        assert stranger.receive_json()["code"] == "window_no_such_call"
        busy.send_json({"type": "signal", "call": call["id"], "data": {"x": 1}})
        assert busy.receive_json()["code"] == "window_no_such_call"
        for ws in (busy, police, stranger, citizen, clerk):
            pong(ws)

        # The department's list: its own calls only.
        mine = w.http("GET", "/api/v1/window/calls", clerk_key).json()["items"]
        assert [c["id"] for c in mine] == [call["id"], first]
        police_key = w.key("department", "police")
        assert w.http("GET", "/api/v1/window/calls", police_key).json()["items"] == []
        r = w.http("GET", "/api/v1/window/calls", police_key,
                   params={"department": "city_management"})
        assert r.status_code == 403
        assert w.http("GET", "/api/v1/window/calls", key).status_code == 403

        # The clerk pushes the application's form; the citizen's values are checked.
        citizen.send_json({"type": "form_values", "call": call["id"], "values": {}})
        assert citizen.receive_json()["code"] == "window_no_form"
        clerk.send_json({"type": "push_form", "call": call["id"]})
        form = citizen.receive_json()
        assert form["type"] == "form" and form["form"]["application"] == app_id
        fields = {f["code"]: f for f in form["form"]["fields"]}
        assert fields["sign_text"]["value"] == "李记面馆"  # filled from the application
        assert clerk.receive_json()["type"] == "form_pushed"
        bad = {"sign_area": "large", "wings": 2}
        citizen.send_json({"type": "form_values", "call": call["id"], "values": bad})
        refused = citizen.receive_json()
        assert refused["code"] == "window_invalid_form"
        problems = " ".join(refused["detail"])
        assert "sign_area" in problems and "'wings' is not on this form" in problems
        pong(clerk)  # nothing was saved, so nothing told
        values = {f: fields[f].get("value") for f in fields}
        values.update(sign_area=6, sign_text="李记面馆 · 二店")
        citizen.send_json({"type": "form_values", "call": call["id"], "values": values})
        saved = citizen.receive_json()
        assert saved["type"] == "form_saved" and saved["application"] == app_id
        assert clerk.receive_json()["type"] == "form_saved"
        app = w.http("GET", f"/api/v1/applications/{app_id}", clerk_key).json()
        assert (app["answers"]["sign_area"], app["answers"]["sign_text"]) == (6, "李记面馆 · 二店")
        assert app["timeline"][-1]["action"] == "window_form"
        assert app["timeline"][-1]["data"]["fields"] == ["sign_area", "sign_text"]

        clerk.send_json({"type": "hangup", "call": call["id"]})
        ended = citizen.receive_json()
        assert (ended["type"], ended["reason"]) == ("ended", "hangup")
        assert clerk.receive_json()["type"] == "ended"
    actions = [(e.action, e.subject) for e in reversed(w.audit()) if e.action.startswith("window")]
    assert actions == [("window.call.start", f"window_call:{first}"),
                       ("window.call.accept", f"window_call:{first}"),
                       ("window.call.end", f"window_call:{first}"),
                       ("window.call.start", f"window_call:{call['id']}"),
                       ("window.call.accept", f"window_call:{call['id']}"),
                       ("window.form", f"window_call:{call['id']}"),
                       ("window.call.end", f"window_call:{call['id']}")]
    end = next(e for e in w.audit() if e.action == "window.call.end")
    assert end.after.startswith("ended (hangup); talked") and end.reason == f"application {app_id}"


def test_decline_rings_the_next_clerk_and_a_dropped_socket_frees_the_clerk(world: World
                                                                            ) -> None:
    w = world
    key, app_id = citizen_with_application(w, LI)
    clerk_key = w.key("department", "city_management")
    with w.socket(key) as citizen, w.socket(clerk_key) as one, w.socket(clerk_key) as two:
        for ws in (one, two):
            ws.send_json({"type": "presence", "online": True})
            ws.receive_json()
        call = w.http("POST", "/api/v1/window/calls", key,
                      json={"application_id": app_id}).json()
        assert one.receive_json()["type"] == "ring"
        one.send_json({"type": "decline", "call": call["id"]})
        assert one.receive_json()["type"] == "declined"
        assert two.receive_json()["type"] == "ring"
        two.send_json({"type": "decline", "call": call["id"]})
        two.receive_json()
        # Nobody left to ring: the call ends as declined.
        assert citizen.receive_json() == {"type": "ended", "call": call["id"],
                                          "reason": "declined", "missed": True}

        call = w.http("POST", "/api/v1/window/calls", key,
                      json={"application_id": app_id}).json()
        assert one.receive_json()["type"] == "ring"
        one.send_json({"type": "accept", "call": call["id"]})
        one.receive_json()
        citizen.receive_json()
        r = w.http("GET", "/api/v1/window/presence", key,
                   params={"department": "city_management"})
        assert r.json()["items"] == [{"department": "city_management", "online": 2,
                                      "free": 1}]
    # `citizen` dropped (the block closed every socket); a new pair shows the clerk freed.
    with w.socket(key) as citizen, w.socket(clerk_key) as clerk:
        clerk.send_json({"type": "presence", "online": True})
        clerk.receive_json()
        listed = w.http("GET", "/api/v1/window/calls", clerk_key).json()["items"]
        assert listed[0]["state"] == "ended"
        assert listed[0]["reason"] in ("dropped", "hangup")
        call = w.http("POST", "/api/v1/window/calls", key,
                      json={"application_id": app_id}).json()
        clerk.receive_json()
        clerk.send_json({"type": "accept", "call": call["id"]})
        clerk.receive_json()
        citizen.receive_json()
        citizen.close()
        dropped = clerk.receive_json()
        assert (dropped["type"], dropped["reason"]) == ("ended", "dropped")
        r = w.http("GET", "/api/v1/window/presence", clerk_key)
        assert r.json()["items"] == [{"department": "city_management", "online": 1,
                                      "free": 1}]


def test_bounds(world: World, monkeypatch) -> None:
    w = world
    key, app_id = citizen_with_application(w, LI)
    with w.socket(key) as ws:
        ws.send_text("x" * (64 * 1024 + 1))
        assert ws.receive_json()["code"] == "window_message_too_large"
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()
    # A burst past the bucket (no refill meanwhile, so the count does not hang on the
    # machine's speed): what is over is refused with its code, and the socket stays.
    monkeypatch.setattr(hub_module, "RATE", 0.0)
    with w.socket(key) as ws:
        for _ in range(130):
            ws.send_json({"type": "ping"})
        got = [ws.receive_json() for _ in range(130)]
        assert [m["type"] for m in got].count("pong") == hub_module.BURST
        assert {m.get("code") for m in got if m["type"] == "error"} == {"window_too_fast"}
    monkeypatch.undo()
    # A party that never reads is cut off once its outbox is full, and its call ends.
    monkeypatch.setattr(hub_module, "OUTBOX", 4)
    clerk_key = w.key("department", "city_management")
    with w.socket(key) as citizen, w.socket(clerk_key) as clerk:
        clerk.send_json({"type": "presence", "online": True})
        clerk.receive_json()
        call = w.http("POST", "/api/v1/window/calls", key,
                      json={"application_id": app_id}).json()
        clerk.receive_json()
        clerk.send_json({"type": "accept", "call": call["id"]})
        clerk.receive_json()
        citizen.receive_json()
        hub = hub_of(w.node)
        party = next(p for p in hub.parties if p.role == "citizen")
        # Messages sent faster than the socket drains them: stand in for a stalled reader
        # by filling its outbox directly.
        async def flood() -> None:  # in the node's loop, as the relay runs
            for i in range(10):
                hub.send(party, {"type": "signal", "call": call["id"], "data": {"n": i}})

        assert w.client.portal is not None
        w.client.portal.call(flood)
        assert party.cut
        ended = clerk.receive_json()
        assert (ended["type"], ended["reason"]) == ("ended", "dropped")


def test_a_revoked_key_closes_its_socket_and_ends_its_call(world: World, monkeypatch) -> None:
    """A kiosk's wiped session revokes its key: the call it held ends though nothing more is
    said on its socket."""
    from cityops.api import window as window_api

    monkeypatch.setattr(window_api, "RECHECK_S", 0.05)
    w = world
    key, app_id = citizen_with_application(w, LI)
    assert w.client.portal is not None
    key_id = next(k.id for k in w.client.portal.call(w.node.store.list_keys)
                  if k.name == LI["id"])
    with w.socket(key) as citizen, w.socket(w.key("department", "city_management")) as clerk:
        clerk.send_json({"type": "presence", "online": True})
        clerk.receive_json()
        call = w.http("POST", "/api/v1/window/calls", key,
                      json={"application_id": app_id}).json()
        clerk.receive_json()
        clerk.send_json({"type": "accept", "call": call["id"]})
        clerk.receive_json()
        citizen.receive_json()
        assert w.client.portal.call(w.node.store.revoke_key, key_id)
        assert citizen.receive_json()["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect):
            citizen.receive_json()
        ended = clerk.receive_json()
        assert (ended["type"], ended["reason"]) == ("ended", "dropped")
