"""Presence, calls and the relay between the two parties of a call.

Every open socket is a `Party`. A clerk (a department key) is online for its department while
its socket is open and it has said so; a citizen starts a call for one of their applications
and it rings one free online clerk of the application's department, the one who has taken the
fewest calls (then the one idle longest). A decline rings the next such clerk; when none is
left the call ends. Either party hangs up; a socket that drops ends its call and the clerk is
free again, since nothing else would ever end it.

What a party sends is relayed only to the other party of the same call, and only while the
call is active. Each party has a bounded outbox drained by its own socket writer: a party that
does not read (a stalled browser) is cut off and its call ended rather than letting the queue
grow. Calls are kept in this node's memory: both sockets of a call must reach the same node
(in a cluster, the web process that holds the window's sockets).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

OUTBOX = 256  # messages waiting for one socket; ICE candidates come a few dozen at a time
RATE = 20.0  # messages a second a party may send, on average ...
BURST = 100.0  # ... and at once (an offer with its candidates)
ENDED_KEPT = 200  # ended calls remembered for the clerks' list


class WindowRefused(Exception):
    """A call that cannot be made or a move that does not fit the call's state (HTTP 409)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class NoSuchCall(LookupError):
    """A call that does not exist or is not the party's: the same answer for both."""

    code = "window_no_such_call"


@dataclass(eq=False)
class Party:
    """One open socket: a citizen (`citizen` is their id) or a clerk (`department`)."""

    key_id: str
    role: str  # "citizen" or "clerk"
    citizen: str = ""
    department: str = ""
    online: bool = False
    call: Call | None = None
    taken: int = 0  # calls accepted on this socket: "least busy" among free clerks
    idle_since: float = 0.0
    outbox: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(OUTBOX))
    tokens: float = BURST
    refilled: float = 0.0
    cut: bool = False  # its outbox overflowed: the socket is being closed

    def allow(self, now: float) -> bool:
        """The party's rate: a token bucket on the monotonic clock."""
        self.tokens = min(BURST, self.tokens + (now - self.refilled) * RATE)
        self.refilled = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass(eq=False)
class Call:
    id: str
    application: dict[str, Any]  # id, item, item_name, department, applicant, status
    department: str
    citizen: Party
    clerk: Party | None = None
    state: str = "ringing"  # ringing -> active -> ended
    asked: list[Party] = field(default_factory=list)  # clerks rung, in order
    started_at: float = 0.0
    accepted_at: float | None = None
    ended_at: float | None = None
    reason: str = ""  # why it ended
    form_pushed: bool = False

    def other(self, party: Party) -> Party | None:
        return self.clerk if party is self.citizen else self.citizen

    def view(self) -> dict[str, Any]:
        duration = (None if self.accepted_at is None or self.ended_at is None
                    else round(self.ended_at - self.accepted_at, 3))
        return {"id": self.id, "state": self.state, "department": self.department,
                "application": self.application, "started_at": self.started_at,
                "accepted_at": self.accepted_at, "ended_at": self.ended_at,
                "reason": self.reason, "duration_s": duration,
                "clerk": self.clerk.key_id if self.clerk is not None else None}


Audit = Callable[[str, Call, Party | None, str], Awaitable[None]]


class WindowHub:
    def __init__(self, now: Callable[[], float], audit: Audit) -> None:
        self.now = now
        self.audit = audit
        self.parties: dict[Party, None] = {}  # in the order the sockets opened
        self.calls: dict[str, Call] = {}
        self.ended: list[Call] = []
        self._seq = itertools.count(1)
        self._leaving: set[asyncio.Task[None]] = set()

    # -- parties ---------------------------------------------------------------------------------

    def join(self, party: Party) -> None:
        party.idle_since = self.now()
        self.parties[party] = None

    async def leave(self, party: Party) -> None:
        """The socket closed: its call ends as dropped, a clerk is no longer online."""
        self.parties.pop(party, None)
        party.online = False
        if party.call is not None:
            await self.end(party.call, "dropped", party)

    def send(self, party: Party, message: dict[str, Any]) -> None:
        """Queue `message` for the party's socket; a full outbox cuts the party off (its
        writer sees None and closes the socket, and its call ends as dropped)."""
        if party.cut:
            return
        try:
            party.outbox.put_nowait(message)
        except asyncio.QueueFull:
            self.cut_off(party)

    def cut_off(self, party: Party, last: dict[str, Any] | None = None) -> None:
        """Close the party's socket after `last` (what it missed is dropped), and end its
        call now, not when the socket's close is finally acknowledged."""
        party.cut = True
        while not party.outbox.empty():
            party.outbox.get_nowait()
        if last is not None:
            party.outbox.put_nowait(last)
        party.outbox.put_nowait(None)
        task = asyncio.get_running_loop().create_task(self.leave(party))
        self._leaving.add(task)
        task.add_done_callback(self._leaving.discard)

    def online(self, department: str | None = None) -> dict[str, dict[str, int]]:
        """Clerks online and free, per department (or for one)."""
        out: dict[str, dict[str, int]] = {}
        for p in self.parties:
            if p.role == "clerk" and p.online and department in (None, p.department):
                row = out.setdefault(p.department, {"online": 0, "free": 0})
                row["online"] += 1
                row["free"] += p.call is None
        return out

    def set_online(self, clerk: Party, online: bool) -> None:
        clerk.online = online
        if online:
            clerk.idle_since = self.now()

    # -- calls -----------------------------------------------------------------------------------

    def _free_clerk(self, call: Call) -> Party | None:
        free = [p for p in self.parties
                if p.role == "clerk" and p.online and p.call is None and not p.cut
                and p.department == call.department and p not in call.asked]
        return min(free, key=lambda p: (p.taken, p.idle_since), default=None)

    async def start(self, citizen: Party, application: dict[str, Any]) -> Call:
        """Ring a clerk of the application's department; refused, with nothing kept, when the
        citizen is already in a call or no clerk of that department is online and free."""
        if citizen.call is not None:
            raise WindowRefused("window_already_in_call",
                                f"you are already in call {citizen.call.id}; hang up first")
        department = application["department"]
        call = Call(f"wc-{next(self._seq)}-{secrets.token_hex(4)}", application, department,
                    citizen, started_at=self.now())
        clerk = self._free_clerk(call)
        if clerk is None:
            counts = self.online(department).get(department)
            if counts is None:
                raise WindowRefused("window_no_clerk_online",
                                    f"no clerk of {department} is online now; try again in "
                                    "working hours or apply at the hall")
            raise WindowRefused("window_clerks_busy",
                                f"every clerk of {department} online is in a call; try again "
                                "in a few minutes")
        self.calls[call.id] = call
        citizen.call = call
        await self.audit("window.call.start", call, citizen, "")
        self._ring(call, clerk)
        return call

    def _ring(self, call: Call, clerk: Party) -> None:
        call.asked.append(clerk)
        call.clerk = clerk
        clerk.call = call
        self.send(clerk, {"type": "ring", "call": call.id, "application": call.application})

    def own(self, party: Party, call_id: Any) -> Call:
        """The party's call by its id; the same refusal for a call of someone else's."""
        call = party.call
        if call is None or call.id != call_id or (party.role == "clerk"
                                                   and call.clerk is not party):
            raise NoSuchCall(f"no call {call_id!r} of yours")
        return call

    async def accept(self, clerk: Party, call_id: Any) -> Call:
        call = self.own(clerk, call_id)
        if clerk.role != "clerk" or call.state != "ringing":
            raise WindowRefused("window_not_ringing", f"call {call.id} is {call.state}, "
                                "not ringing for you")
        call.state = "active"
        call.accepted_at = self.now()
        clerk.taken += 1
        await self.audit("window.call.accept", call, clerk, "")
        # The citizen's browser makes the offer: the clerk's page is already on the call.
        self.send(call.citizen, {"type": "accepted", "call": call.id})
        self.send(clerk, {"type": "accepted", "call": call.id})
        return call

    async def decline(self, clerk: Party, call_id: Any) -> None:
        call = self.own(clerk, call_id)
        if clerk.role != "clerk" or call.state != "ringing":
            raise WindowRefused("window_not_ringing", f"call {call.id} is {call.state}, "
                                "not ringing for you")
        clerk.call = None
        clerk.idle_since = self.now()
        nxt = self._free_clerk(call)
        if nxt is None:
            call.clerk = None
            await self.end(call, "declined", clerk)
            return
        self._ring(call, nxt)

    async def end(self, call: Call, reason: str, by: Party | None) -> None:
        if call.state == "ended":
            return
        was_ringing = call.state == "ringing"
        call.state = "ended"
        call.ended_at = self.now()
        call.reason = reason
        self.calls.pop(call.id, None)
        self.ended.append(call)
        del self.ended[:-ENDED_KEPT]
        told = []
        for party in (call.citizen, call.clerk):
            if party is None:
                continue
            if party.call is call:
                party.call = None
                party.idle_since = self.now()
            if party is not by or reason != "dropped":
                told.append(party)
        # Recorded before either party hears of it: what they are told is on the record.
        await self.audit("window.call.end", call, by, reason)
        for party in told:
            self.send(party, {"type": "ended", "call": call.id, "reason": reason,
                              "missed": was_ringing})

    async def hangup(self, party: Party, call_id: Any) -> None:
        await self.end(self.own(party, call_id), "hangup", party)

    def relay(self, party: Party, call_id: Any, data: Any) -> None:
        """A WebRTC message (an offer, an answer, a candidate) to the other party only."""
        call = self.own(party, call_id)
        other = call.other(party)
        if call.state != "active" or other is None:
            raise WindowRefused("window_not_active", f"call {call.id} is {call.state}: "
                                "nothing is relayed until the clerk accepts")
        self.send(other, {"type": "signal", "call": call.id, "data": data})

    def calls_of(self, department: str | None) -> list[Call]:
        """Live calls then the recent ended ones, newest first, of one department or all."""
        live = sorted(self.calls.values(), key=lambda c: c.started_at, reverse=True)
        done = list(reversed(self.ended))
        return [c for c in live + done if department in (None, c.department)]
