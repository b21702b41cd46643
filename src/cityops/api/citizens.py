"""The citizen registry:

    POST /api/v1/citizens         register or update a citizen (admin, operator)
    GET  /api/v1/citizens/me      the calling citizen, whole
    GET  /api/v1/citizens/{id}    staff see phone and ID number masked; the citizen's own key
                                  sees them whole; any other citizen key gets 404

An area-scoped operator re-registers only a citizen it could see as stored: the record's
present area and the new one must both lie in the key's scope, so no key moves someone else's
resident (and their phone, where pickup codes and results go) into its own town.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Guard, Reply, Scope
from cityops.api.serve_util import CENTRE, STAFF, covers, in_area_scope, is_citizen, serve_of
from cityops.domain.access import Principal, Role
from cityops.domain.citizens import Citizen, masked
from cityops.serve.citizens import Invalid, Taken

Text = Annotated[str, msgspec.Meta(max_length=200)]


class CitizenIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    id_number: Annotated[str, msgspec.Meta(max_length=18)] = ""
    phone: Annotated[str, msgspec.Meta(max_length=25)] = ""
    birth_date: dt.date | None = None
    area: Annotated[str, msgspec.Meta(max_length=12)] = ""
    address: Annotated[str, msgspec.Meta(max_length=300)] = ""
    attributes: Annotated[dict[str, Any], msgspec.Meta(max_length=50)] = {}


def citizen_view(citizen: Citizen, who: Principal) -> Citizen:
    return citizen if is_citizen(who, citizen.id) else masked(citizen)


async def post_citizen(call: Call[CitizenIn, Any]) -> Reply:
    who = call.principal
    side = serve_of(call.request)
    citizen = Citizen(**msgspec.structs.asdict(call.body))
    if not in_area_scope(who, citizen.area):
        raise ApiError(403, f"this key's scope {who.scope} does not cover area "
                            f"{citizen.area or '(none)'}")
    held = await side.citizens.get(citizen.id)
    if held is not None and not in_area_scope(who, held.area):
        # Someone else's resident: the key may not learn that the account exists.
        raise ApiError(403, f"this key's scope {who.scope} does not cover citizen "
                            f"{citizen.id!r}")
    try:
        saved, created = await side.citizens.register(citizen)
    except Invalid as error:
        raise ApiError(400, str(error)) from None
    except Taken as error:
        raise ApiError(409, str(error)) from None
    return Reply(citizen_view(saved, who), 201 if created else 200,
                 {"Location": f"/api/v1/citizens/{saved.id}"})


async def get_me(call: Call[None, Any]) -> Citizen:
    who = call.principal
    citizen = await serve_of(call.request).citizens.get(who.name) if who.name else None
    if citizen is None:
        raise ApiError(404, "this key's citizen is not registered")
    return citizen_view(citizen, who)


async def load_citizen(call: Call[Any, Any]) -> Citizen | None:
    return await serve_of(call.request).citizens.get(call.path["citizen_id"])


def sees_citizen(call: Call[Any, Any], citizen: Citizen) -> bool:
    who = call.principal
    if who.role is Role.CITIZEN:
        return is_citizen(who, citizen.id)
    return covers(call.node, who, citizen.area)


CITIZEN = Guard("citizen", "citizen_id", load_citizen, sees_citizen)


async def get_citizen(call: Call[None, Any]) -> Citizen:
    return citizen_view(call.record, call.principal)


ROUTES = [
    Endpoint("POST", "/api/v1/citizens", post_citizen, "Register or update a citizen",
             CENTRE, Scope.CREATE, kind="citizen", body=CitizenIn, response=Citizen, status=201,
             also_ok=(200,), errors=(409, 503)),
    Endpoint("GET", "/api/v1/citizens/me", get_me, "The calling citizen, whole",
             frozenset({Role.CITIZEN}), Scope.OWN, response=Citizen, errors=(404, 503)),
    Endpoint("GET", "/api/v1/citizens/{citizen_id}", get_citizen,
             "A citizen; phone and ID number masked unless it is the caller",
             STAFF | {Role.CITIZEN}, Scope.RECORD, guard=CITIZEN, response=Citizen,
             errors=(503,)),
]
