"""Queue numbers for the service hall:

    GET  /api/v1/queue/counters                        the hall's board: each counter's
                                                       numbers being served, how many wait,
                                                       the recent average wait, an estimate
    POST /api/v1/queue/tickets                         a citizen takes a number (kiosk or
                                                       portal); one live number per counter
    GET  /api/v1/queue/tickets                         the citizen's numbers today, each with
                                                       the people ahead and the estimated wait
    GET  /api/v1/queue/counters/{counter}              a counter's day, for its clerks
    POST /api/v1/queue/counters/{counter}/call         the next number, to a window
    POST /api/v1/queue/counters/{counter}/actions/{action}   served, no_show or recall a
                                                       called number

A counter is a department of the city; only that department's keys (and an admin) call its
numbers: another department's counter is not found for them, as for any record outside a
key's scope. Citizens are never named on the clerks' view, only numbers. Refusals carry a
stable code: queue_already_waiting, queue_nobody_waiting, queue_not_called, queue_full,
queue_unknown_counter.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from cityops.api.errors import ApiError
from cityops.api.route import ALL_ROLES, Call, Endpoint, Guard, Reply, Scope, errors_map
from cityops.api.serve_util import serve_of
from cityops.domain.access import Principal, Role
from cityops.serve.queue import QueueHall, hall_of
from cityops.serve.queue.hall import (
    AlreadyWaiting,
    NobodyWaiting,
    NotCalled,
    QueueFull,
    QueueRefused,
    TicketStatus,
)
from cityops.serve.queue.service import (
    ClerkTicket,
    CounterDetail,
    CounterView,
    TicketView,
    UnknownCounter,
)

errors_map({QueueRefused: 409, AlreadyWaiting: 409, NobodyWaiting: 409, NotCalled: 409,
            QueueFull: 409, UnknownCounter: 404})

BOARD = ALL_ROLES - {Role.DEVICE}
CITIZEN = frozenset({Role.CITIZEN})
CLERKS = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})
CALLERS = frozenset({Role.ADMIN, Role.DEPARTMENT})
Code = Annotated[str, msgspec.Meta(max_length=64)]


class TakeIn(msgspec.Struct, forbid_unknown_fields=True):
    counter: Code
    channel: Literal["kiosk", "portal"] = "portal"


class CallIn(msgspec.Struct, forbid_unknown_fields=True):
    window: Annotated[str, msgspec.Meta(min_length=1, max_length=8,
                                        pattern=r"^[A-Za-z0-9-]+$")] = "1"


class ActionIn(msgspec.Struct, forbid_unknown_fields=True):
    number: Annotated[int, msgspec.Meta(ge=1, le=999)]


class Board(msgspec.Struct):
    items: list[CounterView]


class Tickets(msgspec.Struct):
    items: list[TicketView]


def hall(call: Call[Any, Any]) -> QueueHall:
    serve_of(call.request)
    return hall_of(call.node)


def clerk_of(who: Principal, counter: str) -> bool:
    """The counter's own department; unscoped centre keys see (an admin also calls) every
    counter. An area key is no clerk of a city-wide hall's counters."""
    if who.role is Role.DEPARTMENT:
        return who.scope.department == counter
    return who.scope.area is None and who.scope.department is None


async def load_counter(call: Call[Any, Any]) -> str | None:
    counter = call.path["counter"]
    return counter if counter in hall(call).counters else None


COUNTER = Guard("queue", "counter", load_counter,
                lambda call, counter: clerk_of(call.principal, counter))


async def get_board(call: Call[None, Any]) -> Board:
    return Board(await hall(call).board())


async def take_ticket(call: Call[TakeIn, Any]) -> Reply:
    who = call.principal
    if not who.name:
        raise ApiError(403, "this citizen key names no citizen (its name)")
    view = await hall(call).take(who.name, call.body.counter, call.body.channel)
    return Reply(view, 201)


async def my_tickets(call: Call[None, Any]) -> Tickets:
    return Tickets(await hall(call).mine(call.principal.name))


async def get_counter(call: Call[None, Any]) -> CounterDetail:
    return await hall(call).detail(call.record)


async def call_next(call: Call[CallIn, Any]) -> ClerkTicket:
    return await hall(call).call_next(call.record, call.body.window, call.principal.key_id)


async def counter_action(call: Call[ActionIn, Any]) -> ClerkTicket:
    action = call.path["action"]
    h = hall(call)
    if action == "recall":
        return await h.recall(call.record, call.body.number)
    if action in ("served", "no_show"):
        return await h.close(call.record, call.body.number, TicketStatus(action))
    raise QueueRefused(f"unknown action {action!r}; one of: served, no_show, recall")


ROUTES = [
    Endpoint("GET", "/api/v1/queue/counters", get_board,
             "The service hall's board: numbers served, waiting, average and estimated wait",
             BOARD, Scope.NONE, response=Board),
    Endpoint("POST", "/api/v1/queue/tickets", take_ticket,
             "Take a queue number for a counter (one live number per person and counter)",
             CITIZEN, Scope.OWN, body=TakeIn, response=TicketView, status=201,
             errors=(404, 409)),
    Endpoint("GET", "/api/v1/queue/tickets", my_tickets,
             "The calling citizen's queue numbers today, with the estimated wait", CITIZEN,
             Scope.OWN, response=Tickets),
    Endpoint("GET", "/api/v1/queue/counters/{counter}", get_counter,
             "A counter's numbers today, for its clerks", CLERKS, Scope.RECORD,
             guard=COUNTER, response=CounterDetail),
    Endpoint("POST", "/api/v1/queue/counters/{counter}/call", call_next,
             "Call the next waiting number to a window (the one it had is closed as served)",
             CALLERS, Scope.RECORD, guard=COUNTER, body=CallIn, body_required=False,
             response=ClerkTicket, errors=(409,)),
    Endpoint("POST", "/api/v1/queue/counters/{counter}/actions/{action}", counter_action,
             "A called number: served, no_show (nobody came) or recall (announce again)",
             CALLERS, Scope.RECORD, guard=COUNTER, body=ActionIn, response=ClerkTicket,
             errors=(409,), examples={"action": "served"}),
]
