"""The remote virtual window (`cityops.serve.window`): the signalling WebSocket and the routes
around it.

    GET  /api/v1/window/socket    the WebSocket (citizens and department clerks): presence,
                                  ringing, accept/decline/hang up, the WebRTC relay, forms
    POST /api/v1/window/calls     a citizen calls the department of one of their applications
    GET  /api/v1/window/calls     a department's live and recent calls (its clerks, admins)
    GET  /api/v1/window/presence  clerks online and free, per department

A browser cannot put `Authorization` on a WebSocket upgrade and a key must never sit in a URL,
so the socket's first message is `{"type": "hello", "key": ...}`; the key is resolved as any
request's and checked again every few seconds while the socket lives (revoked or expired, the
socket is closed). The protocol is in docs/api.md ("Remote virtual window").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Reply, Scope, errors_map
from cityops.api.serve_util import is_citizen
from cityops.domain.access import Principal, Role
from cityops.serve.onestop import onestop_of
from cityops.serve.onestop.desk import FormProblems, NotFound
from cityops.serve.window import calls
from cityops.serve.window.forms import FormClosed, pushed_form, save_values
from cityops.serve.window.hub import NoSuchCall, Party, WindowHub, WindowRefused
from cityops.store.values import AuditEntry

HELLO_S = 10.0  # a socket that does not say who it is within this long is closed
RECHECK_S = 5.0  # how stale a socket's key may get
MAX_MESSAGE = 64 * 1024  # characters of one message: an SDP offer with video is some 6,000

errors_map({WindowRefused: 409, NoSuchCall: 404, FormClosed: 409})

_HUBS: weakref.WeakKeyDictionary[Any, WindowHub] = weakref.WeakKeyDictionary()


def hub_of(node: Any) -> WindowHub:
    hub = _HUBS.get(node)
    if hub is None:
        async def audit(action: str, call: Any, by: Party | None, reason: str) -> None:
            view = call.view()
            after = {"window.call.start": f"ringing {call.department}",
                     "window.call.accept": "active",
                     "window.form": f"answers given: {reason}",
                     "window.call.end": f"ended ({reason}); talked "
                                        f"{view['duration_s'] or 0:.0f} s"}[action]
            if action == "window.call.start" and call.citizen.citizen:
                # Before the call's first entry: a citizen's export finds their calls by it.
                await calls.note(node.store, call.citizen.citizen, call.id, node.clock())
            await node.store.append_audit([AuditEntry(
                actor=by.key_id if by is not None else "system", action=action,
                subject=f"window_call:{call.id}", before=None, after=after[:500],
                reason=f"application {call.application['id']}", at=node.clock())])

        hub = _HUBS[node] = WindowHub(node.clock, audit)
    return hub


# -- HTTP ---------------------------------------------------------------------------------------


class NewCall(msgspec.Struct, forbid_unknown_fields=True):
    application_id: str = msgspec.field(name="application_id")


class CallOut(msgspec.Struct):
    id: str
    state: str
    department: str
    application: dict[str, Any]
    started_at: float
    accepted_at: float | None
    ended_at: float | None
    reason: str
    duration_s: float | None
    clerk: str | None


class CallList(msgspec.Struct):
    items: list[CallOut]


class CallQuery(msgspec.Struct, forbid_unknown_fields=True):
    department: str | None = None


class PresenceRow(msgspec.Struct):
    department: str
    online: int
    free: int


class PresenceList(msgspec.Struct):
    items: list[PresenceRow]


def _out(call: Any) -> CallOut:
    return CallOut(**call.view())


def _summary(app: Any) -> dict[str, Any]:
    """What rings on the clerk's screen: the application, not the citizen's answers (the
    console loads those with the clerk's own key)."""
    return {"id": app.id, "item": app.item, "item_name": app.item_name,
            "department": app.department, "applicant": app.applicant,
            "status": app.status.value, "submission": app.submission}


async def plain_get(call: Call[None, Any]) -> None:
    raise ApiError(426, "this is a WebSocket: open it with an Upgrade request",
                   headers={"Upgrade": "websocket"}, code="window_websocket_required")


async def start_call(call: Call[NewCall, Any]) -> Reply:
    who = call.principal
    hub = hub_of(call.node)
    app = await onestop_of(call.node).desk.find(call.body.application_id)
    if app is None or not is_citizen(who, app.applicant):
        raise ApiError(404, f"no application {call.body.application_id!r} of yours")
    mine = [p for p in hub.parties if p.role == "citizen" and p.citizen == who.name
            and not p.cut]
    if not mine:
        raise ApiError(409, "open the window's socket first (GET /api/v1/window/socket): "
                       "the call rings over it", code="window_not_connected")
    # The socket opened last is the page the citizen is on.
    party = next((p for p in reversed(mine) if p.call is None), mine[-1])
    made = await hub.start(party, _summary(app))
    return Reply(_out(made), 201)


def _department_of(who: Principal, asked: str | None) -> str | None:
    own = who.scope.department
    if who.role is Role.DEPARTMENT or own is not None:
        if own is None:
            raise ApiError(403, "a department key needs a department scope")
        if asked not in (None, own):
            raise ApiError(403, f"a {own} key sees {own}'s calls only")
        return own
    if who.scope.area is not None:
        raise ApiError(403, "calls are kept by department: an area key sees none",
                       code="city_wide_data")
    return asked


async def list_calls(call: Call[None, CallQuery]) -> CallList:
    department = _department_of(call.principal, call.query.department)
    return CallList([_out(c) for c in hub_of(call.node).calls_of(department)])


async def presence(call: Call[None, CallQuery]) -> PresenceList:
    rows = hub_of(call.node).online(call.query.department)
    return PresenceList([PresenceRow(d, r["online"], r["free"]) for d, r in sorted(rows.items())])


# -- the socket ---------------------------------------------------------------------------------


def _error(code: str, message: str, ref: str = "", detail: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref:
        out["ref"] = ref
    if detail is not None:
        out["detail"] = detail
    return out


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    if ws.application_state is WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code, reason)


async def _hello(ws: WebSocket, node: Any) -> tuple[Principal, str] | None:
    try:
        async with asyncio.timeout(HELLO_S):
            raw = await ws.receive_text()
    except (TimeoutError, WebSocketDisconnect, KeyError, RuntimeError):
        await _close(ws, 4408, "say hello first")
        return None
    try:
        msg = msgspec.json.decode(raw[:MAX_MESSAGE]) if len(raw) <= MAX_MESSAGE else None
    except msgspec.DecodeError:
        msg = None
    secret = msg.get("key") if isinstance(msg, dict) and msg.get("type") == "hello" else None
    if not isinstance(secret, str) or not secret.strip():
        await ws.send_json(_error("window_hello_required",
                                  'the first message is {"type": "hello", "key": "<key>"}'))
        await _close(ws, 4400, "hello required")
        return None
    who: Principal | None = await node.keys.resolve(secret.strip())
    if who is None:
        await ws.send_json(_error("unauthorized", "unknown, expired or revoked API key"))
        await _close(ws, 4401, "unauthorized")
        return None
    citizen = who.role is Role.CITIZEN and bool(who.name)
    clerk = who.role is Role.DEPARTMENT and who.scope.department is not None
    if not (citizen or clerk):
        await ws.send_json(_error("forbidden", "the window is for citizens and department "
                                  f"clerks, not a {who.role.value} key"))
        await _close(ws, 4403, "forbidden")
        return None
    return who, secret.strip()


async def window_socket(ws: WebSocket) -> None:
    await ws.accept()
    node = ws.app.state.node
    hello = await _hello(ws, node)
    if hello is None:
        return
    who, secret = hello
    hub = hub_of(node)
    party = (Party(who.key_id, "citizen", citizen=who.name) if who.role is Role.CITIZEN
             else Party(who.key_id, "clerk", department=who.scope.department or ""))
    hub.join(party)
    writer = asyncio.create_task(_write(ws, party))
    hub.send(party, {"type": "welcome", "role": party.role, "department": party.department,
                     "citizen": party.citizen})
    watch = asyncio.create_task(_watch_key(hub, node, party, secret))
    try:
        while not party.cut:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                hub.send(party, _error("window_bad_message", "messages are JSON text"))
                continue
            if len(text) > MAX_MESSAGE:
                hub.send(party, _error("window_message_too_large",
                                       f"a message is at most {MAX_MESSAGE} characters"))
                break
            if not party.allow(time.monotonic()):
                hub.send(party, _error("window_too_fast", "too many messages: at most "
                                       "20 a second, 100 at once; this one was dropped"))
                continue
            await _handle(hub, node, party, text)
    except WebSocketDisconnect:
        pass
    finally:
        watch.cancel()
        await hub.leave(party)
        party.cut = True
        with contextlib.suppress(asyncio.QueueFull):
            party.outbox.put_nowait(None)
        await writer
        await _close(ws, 1000, "bye")


async def _watch_key(hub: WindowHub, node: Any, party: Party, secret: str) -> None:
    """A socket lives as long as its key: revoked or expired (a kiosk's session wiped), the
    socket is closed and its call ended, even while nothing is said on it."""
    while not party.cut:
        await asyncio.sleep(RECHECK_S)
        if await node.keys.resolve_fresh(secret) is None:
            hub.cut_off(party, _error("unauthorized", "the key was revoked or expired"))
            return


async def _write(ws: WebSocket, party: Party) -> None:
    """The party's outbox to its socket, one message at a time; None closes the socket (the
    outbox overflowed, or the reader is done)."""
    while True:
        message = await party.outbox.get()
        if message is None:
            await _close(ws, 1008, "too slow: messages were piling up")
            return
        try:
            await ws.send_text(msgspec.json.encode(message).decode())
        except Exception:  # the peer is gone; the reader sees the disconnect and cleans up
            party.cut = True
            return


async def _handle(hub: WindowHub, node: Any, party: Party, text: str) -> None:
    try:
        msg = msgspec.json.decode(text)
    except msgspec.DecodeError:
        hub.send(party, _error("window_bad_message", "a message is a JSON object"))
        return
    kind = msg.get("type") if isinstance(msg, dict) else None
    if not isinstance(kind, str):
        hub.send(party, _error("window_bad_message", 'a message is {"type": ..., ...}'))
        return
    call_id = msg.get("call")
    try:
        await _dispatch(hub, node, party, kind, call_id, msg)
    except (WindowRefused, NoSuchCall, FormClosed) as error:
        hub.send(party, _error(error.code, str(error), kind))
    except FormProblems as error:
        hub.send(party, _error("window_invalid_form", error.reason, kind, error.problems))
    except NotFound as error:
        hub.send(party, _error("not_found", str(error), kind))


CLERK_ONLY = {"presence", "accept", "decline", "push_form"}
CITIZEN_ONLY = {"form_values"}


async def _dispatch(hub: WindowHub, node: Any, party: Party, kind: str, call_id: Any,
                    msg: dict[str, Any]) -> None:
    if kind == "ping":
        hub.send(party, {"type": "pong"})
        return
    if (kind in CLERK_ONLY and party.role != "clerk") or (kind in CITIZEN_ONLY
                                                          and party.role != "citizen"):
        hub.send(party, _error("forbidden", f"a {party.role} does not send {kind!r}", kind))
        return
    if kind == "presence":
        online = msg.get("online")
        if not isinstance(online, bool):
            hub.send(party, _error("window_bad_message", "presence needs online: true|false",
                                   kind))
            return
        hub.set_online(party, online)
        if not online and party.call is not None and party.call.state == "ringing":
            await hub.decline(party, party.call.id)
        hub.send(party, {"type": "presence", "online": online,
                         "department": party.department})
    elif kind == "accept":
        await hub.accept(party, call_id)
    elif kind == "decline":
        await hub.decline(party, call_id)
        hub.send(party, {"type": "declined", "call": call_id})
    elif kind == "hangup":
        await hub.hangup(party, call_id)
    elif kind == "signal":
        data = msg.get("data")
        if not isinstance(data, dict):
            hub.send(party, _error("window_bad_message", "signal needs data: {...}", kind))
            return
        hub.relay(party, call_id, data)
    elif kind == "push_form":
        call = hub.own(party, call_id)
        if call.state != "active":
            raise WindowRefused("window_not_active", f"call {call.id} is {call.state}")
        desk = onestop_of(node).desk
        app = await desk.find(call.application["id"])
        if app is None:
            raise NotFound(f"no application {call.application['id']!r}")
        form = pushed_form(desk, app)
        call.form_pushed = True
        hub.send(call.citizen, {"type": "form", "call": call.id, "form": form})
        hub.send(party, {"type": "form_pushed", "call": call.id})
    elif kind == "form_values":
        call = hub.own(party, call_id)
        values = msg.get("values")
        if call.state != "active" or not call.form_pushed:
            raise WindowRefused("window_no_form", "no form was pushed on this call")
        if not isinstance(values, dict):
            hub.send(party, _error("window_bad_message", "form_values needs values: {...}",
                                   kind))
            return
        app = await save_values(onestop_of(node).desk, call.application["id"], values,
                                party.key_id)
        saved = {"type": "form_saved", "call": call.id, "application": app.id,
                 "fields": sorted(values)}
        hub.send(party, saved)
        if call.clerk is not None:
            hub.send(call.clerk, saved)
        await hub.audit("window.form", call, party, ", ".join(sorted(values)))
    else:
        hub.send(party, _error("window_bad_message", f"unknown message type {kind!r}", kind))


WINDOW = frozenset({Role.CITIZEN, Role.DEPARTMENT})

ROUTES = [
    Endpoint("GET", "/api/v1/window/socket", plain_get,
             "The virtual window's signalling WebSocket (see docs/api.md for its messages)",
             WINDOW, Scope.OWN, socket=window_socket, errors=(426,), tags=("window",)),
    Endpoint("GET", "/api/v1/window/presence", presence,
             "Clerks online and free for video calls, per department",
             frozenset({Role.CITIZEN, Role.DEPARTMENT, Role.ADMIN, Role.OPERATOR}), Scope.NONE,
             query=CallQuery, response=PresenceList, tags=("window",)),
    Endpoint("POST", "/api/v1/window/calls", start_call,
             "Call the department of one of my applications: rings one free online clerk",
             frozenset({Role.CITIZEN}), Scope.OWN, body=NewCall, response=CallOut,
             status=201, errors=(404, 409), tags=("window",)),
    Endpoint("GET", "/api/v1/window/calls", list_calls,
             "A department's live calls, then its recent ended ones",
             frozenset({Role.DEPARTMENT, Role.ADMIN}), Scope.LIST, kind="application",
             query=CallQuery, response=CallList, tags=("window",)),
]
