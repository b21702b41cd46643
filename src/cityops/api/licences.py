"""The e-licence store:

    POST /api/v1/licences                     an issuer (department key) puts a licence in
    GET  /api/v1/licences[?holder=]           a citizen's own; staff name the holder
    GET  /api/v1/licences/{id}                one, with its state today
    POST /api/v1/licences/{id}/revoke         the issuer withdraws it

A department key issues and revokes only licence types its department issues (an admin any);
what an application's result issues goes in by itself. Each licence is shown with its `state`
on the city's calendar today: valid, expired, not_yet_valid or revoked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.paging import limit_of
from cityops.api.serve_util import body_of, cursor_for, cursor_of
from cityops.api.services import onestop
from cityops.domain.access import Principal, Role
from cityops.domain.onestop.licences import Licence
from cityops.serve.onestop import OneStop
from cityops.serve.onestop.licences import LicenceTaken

ISSUE = frozenset({Role.ADMIN, Role.DEPARTMENT})
READ = frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})
_PLAIN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class LicenceIn(msgspec.Struct, forbid_unknown_fields=True):
    holder: str  # citizen id
    type: str  # a licence type of the catalogue
    number: str
    valid_from: dt.date
    valid_until: dt.date | None = None  # none: valid without an end date
    issuer: str | None = None  # an admin names it; a department key issues as itself


class RevokeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


def licence_id(type_code: str, number: str) -> str:
    """Readable when the number is plain ASCII; numbers with Chinese characters (沪2020浦字001)
    are hashed, so that ids stay safe in paths and headers."""
    if _PLAIN.match(number):
        return f"lic-{type_code}-{number}"
    return f"lic-{type_code}-{hashlib.sha256(number.encode()).hexdigest()[:16]}"


def licence_json(lic: Licence, side: OneStop, now: float) -> dict[str, Any]:
    doc = msgspec.to_builtins(lic)
    doc["state"] = lic.state_on(side.clock.local_date(now))
    doc["type_name"] = side.catalogue.licence_name(lic.type)
    return doc


def _issuer(who: Principal, side: OneStop, type_code: str, named: str | None) -> str:
    t = side.catalogue.licence_type(type_code)
    if t is None:
        raise ApiError(400, f"type {type_code!r} is not a licence type of this city's catalogue")
    if who.role is Role.DEPARTMENT:
        own = who.scope.department
        if own is None or (t.issuer and t.issuer != own) or named not in (None, own):
            raise ApiError(403, f"a {own or 'department'} key may not issue or revoke a "
                                f"{t.name} (issued by {t.issuer or 'another authority'})")
        return own
    return named or t.issuer or "admin"


async def post_licence(request: Request) -> Response:
    who = await principal(request, ISSUE)
    side = onestop(request)
    node = request.app.state.node
    body: LicenceIn = await body_of(request, LicenceIn)
    issuer = _issuer(who, side, body.type, body.issuer)
    if not body.number.strip():
        raise ApiError(400, "a licence needs a number")
    if body.valid_until is not None and body.valid_until < body.valid_from:
        raise ApiError(400, "valid_until is before valid_from")
    if await side.citizens.get(body.holder) is None:
        raise ApiError(400, f"holder {body.holder!r} is not in the citizen registry")
    lic = Licence(id=licence_id(body.type, body.number.strip()), holder=body.holder,
                  issuer=issuer, type=body.type, number=body.number.strip(),
                  valid_from=body.valid_from, valid_until=body.valid_until,
                  name=side.catalogue.licence_name(body.type), issued_at=node.clock())
    try:
        held, created = await side.book.issue(lic)
    except LicenceTaken as error:
        raise ApiError(409, str(error)) from None
    if not created and (held.holder, held.valid_from, held.valid_until) != (
            lic.holder, lic.valid_from, lic.valid_until):
        raise ApiError(409, f"{lic.type} No. {lic.number} is already in the store with other "
                            "details; revoke it first")
    return json_response(licence_json(held, side, node.clock()), 201 if created else 200,
                         {"Location": f"/api/v1/licences/{held.id}"})


async def list_licences(request: Request) -> Response:
    who = await principal(request, READ)
    side = onestop(request)
    q = request.query_params
    holder = q.get("holder") or None
    if who.role is Role.CITIZEN:
        if holder not in (None, who.name):
            raise ApiError(403, "a citizen key sees its own licences only")
        holder = who.name
    elif holder is None:
        raise ApiError(400, "name the holder (?holder=citizen id)")
    limit = limit_of(request)
    recs = await side.book.page(holder=holder, limit=limit + 1,
                                before=cursor_of(q.get("cursor")))
    more = len(recs) > limit
    recs = recs[:limit]
    now = request.app.state.node.clock()
    items = [licence_json(msgspec.json.decode(r.doc, type=Licence), side, now) for r in recs]
    nxt = cursor_for(recs[-1].created, recs[-1].id) if more and recs else None
    return json_response({"items": items, "next": nxt})


async def _visible(request: Request, who: Principal, side: OneStop) -> Licence:
    licence_id = request.path_params["licence_id"]
    lic = await side.book.get(licence_id)
    if lic is None or (who.role is Role.CITIZEN and lic.holder != who.name):
        raise ApiError(404, f"no licence {licence_id!r}")
    return lic


async def get_licence(request: Request) -> Response:
    who = await principal(request, READ)
    side = onestop(request)
    lic = await _visible(request, who, side)
    return json_response(licence_json(lic, side, request.app.state.node.clock()))


async def revoke_licence(request: Request) -> Response:
    who = await principal(request, ISSUE)
    side = onestop(request)
    lic = await _visible(request, who, side)
    if who.role is Role.DEPARTMENT and lic.issuer != who.scope.department:
        raise ApiError(403, f"only its issuer {lic.issuer} may revoke licence {lic.id}")
    body: RevokeIn = await body_of(request, RevokeIn)
    if not body.reason.strip():
        raise ApiError(400, "a revocation needs a reason the holder can read")
    lic = await side.book.revoke(lic.id, body.reason.strip())
    if lic is None:
        raise ApiError(404, f"no licence {request.path_params['licence_id']!r}")
    return json_response(licence_json(lic, side, request.app.state.node.clock()))
