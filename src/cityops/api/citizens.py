"""The citizen registry:

    POST /api/v1/citizens         register or update a citizen (admin, operator)
    GET  /api/v1/citizens/me      the calling citizen, whole
    GET  /api/v1/citizens/{id}    staff see phone and ID number masked; the citizen's own key
                                  sees them whole; any other citizen key gets 404
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.serve_util import CENTRE, STAFF, body_of, in_area_scope, is_citizen, serve_of
from cityops.domain.access import Principal, Role
from cityops.domain.citizens import Citizen, masked
from cityops.serve.citizens import Invalid, Taken


class CitizenIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str
    name: str
    id_number: str = ""
    phone: str = ""
    birth_date: dt.date | None = None
    area: str = ""
    address: str = ""
    attributes: dict[str, Any] = {}


def citizen_view(citizen: Citizen, who: Principal) -> dict:
    shown = citizen if is_citizen(who, citizen.id) else masked(citizen)
    return msgspec.to_builtins(shown)


async def post_citizen(request: Request) -> Response:
    who = await principal(request, CENTRE)
    side = serve_of(request)
    body: CitizenIn = await body_of(request, CitizenIn)
    citizen = Citizen(**msgspec.structs.asdict(body))
    if not in_area_scope(who, citizen.area):
        raise ApiError(403, f"this key's scope {who.scope} does not cover area "
                            f"{citizen.area or '(none)'}")
    try:
        saved, created = await side.citizens.register(citizen)
    except Invalid as error:
        raise ApiError(400, str(error)) from None
    except Taken as error:
        raise ApiError(409, str(error)) from None
    return json_response(citizen_view(saved, who), 201 if created else 200,
                         {"Location": f"/api/v1/citizens/{saved.id}"})


async def get_me(request: Request) -> Response:
    who = await principal(request, {Role.CITIZEN})
    citizen = await serve_of(request).citizens.get(who.name) if who.name else None
    if citizen is None:
        raise ApiError(404, "this key's citizen is not registered")
    return json_response(citizen_view(citizen, who))


async def get_citizen(request: Request) -> Response:
    who = await principal(request, STAFF | {Role.CITIZEN})
    citizen_id = request.path_params["citizen_id"]
    citizen = await serve_of(request).citizens.get(citizen_id)
    own = is_citizen(who, citizen_id)
    if citizen is None or (who.role is Role.CITIZEN and not own) \
            or (not own and not in_area_scope(who, citizen.area)):
        raise ApiError(404, f"no citizen {citizen_id!r}")
    return json_response(citizen_view(citizen, who))
