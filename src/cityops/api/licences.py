"""The e-licence store:

    POST /api/v1/licences                     an issuer (department key) puts a licence in
    GET  /api/v1/licences[?holder=]           a citizen's own; staff name the holder
    GET  /api/v1/licences/{id}                one, with its state today
    GET  /api/v1/licences/{id}.pdf            the same, as a page to print (QR code and
                                              verification code on it)
    POST /api/v1/licences/{id}/revoke         the issuer withdraws it
    GET  /api/v1/licences/verify/{code}       public: is the licence with this code genuine,
                                              and valid today?

A department key issues, sees and revokes only licences its department issues (an admin any);
what an application's result issues goes in by itself. An area key sees the licences of
holders living in its area, a citizen their own. Each licence is shown with its `state` on the
city's calendar today: valid, expired, not_yet_valid or revoked.

Verification takes no key (whoever holds the paper, a shop's customer, an inspector) and so
answers only the minimum: the type, the holder's name masked, the validity dates and the
state. A code no licence has, one mistyped (its check symbol says so without asking the
store) and a forged one all get the one answer `genuine: false`, in the same shape, so the
answer tells nothing about which codes exist; text that cannot be a code at all (wrong
length, characters no code has, past 64 characters) is refused with 400
`licence_code_malformed`. The route's budget is the address's, as on every public route.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Annotated, Any

import msgspec

from starlette.responses import Response

from cityops.api.errors import ApiError
from cityops.api.params import cursor_of
from cityops.api.route import PUBLIC, Call, Endpoint, Guard, Reply, Scope, errors_map
from cityops.api.serve_util import in_area_scope, is_citizen
from cityops.api.services import Code, narrowed, onestop
from cityops.domain.access import Principal, Role
from cityops.domain.onestop import verification
from cityops.domain.onestop.licences import Licence, LicenceState
from cityops.serve.onestop import OneStop
from cityops.serve.onestop.licence_pdf import PrintBusy, licence_pdf
from cityops.serve.onestop.licences import LicenceGone, LicenceTaken

ISSUE = frozenset({Role.ADMIN, Role.DEPARTMENT})
READ = frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})
_PLAIN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

errors_map({LicenceTaken: 409, LicenceGone: 404, PrintBusy: 503, verification.NotACode: 400})
NO_STORE = {"Cache-Control": "no-store"}  # a licence may be revoked a minute later


class LicenceIn(msgspec.Struct, forbid_unknown_fields=True):
    holder: Code  # citizen id
    type: Code  # a licence type of the catalogue
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    valid_from: dt.date
    valid_until: dt.date | None = None  # none: valid without an end date
    issuer: Code | None = None  # an admin names it; a department key issues as itself


class RevokeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class LicenceOut(Licence, kw_only=True):
    state: LicenceState  # on the city's calendar today
    type_name: str


class LicenceList(msgspec.Struct):
    items: list[LicenceOut]
    next: str | None


class VerifyOut(msgspec.Struct, kw_only=True):
    """What anyone may learn of a licence from its code: nothing more than its paper says."""

    genuine: bool  # a licence in the store has this code
    code: str  # the code as read, in its printed form
    checked_on: dt.date  # the city's calendar day the state is for
    state: LicenceState | None = None
    type: str | None = None
    type_name: str | None = None
    type_name_zh: str | None = None
    holder: str | None = None  # masked: 张*三, J*** S***
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None  # null on a genuine licence: valid without an end
    revoked_on: dt.date | None = None


class LicenceQuery(msgspec.Struct, forbid_unknown_fields=False):
    holder: Code | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    cursor: Annotated[str, msgspec.Meta(max_length=200)] | None = None


def licence_id(type_code: str, number: str) -> str:
    """Readable when the number is plain ASCII; numbers with Chinese characters (沪2020浦字001)
    are hashed, so that ids stay safe in paths and headers."""
    if _PLAIN.match(number):
        return f"lic-{type_code}-{number}"
    return f"lic-{type_code}-{hashlib.sha256(number.encode()).hexdigest()[:16]}"


def licence_out(lic: Licence, side: OneStop, now: float) -> LicenceOut:
    fields = msgspec.structs.asdict(lic)
    if lic.verify_code:  # shown as printed
        fields["verify_code"] = verification.grouped(lic.verify_code)
    return LicenceOut(**fields, state=lic.state_on(side.clock.local_date(now)),
                      type_name=side.catalogue.licence_name(lic.type))


# -- scope --------------------------------------------------------------------------------------


async def holder_in_scope(call: Call[Any, Any], holder: str) -> bool:
    """Whether an area key covers where the holder lives (as the registry has it now)."""
    who = call.principal
    if who.scope.area is None:
        return True
    citizen = await onestop(call).citizens.get(holder)
    return citizen is not None and in_area_scope(who, citizen.area)


async def sees_licence(call: Call[Any, Any], lic: Licence) -> bool:
    who = call.principal
    if who.role is Role.CITIZEN:
        return is_citizen(who, lic.holder)
    if who.scope.department is not None:
        return lic.issuer == who.scope.department
    if who.role is Role.DEPARTMENT:
        return False  # a department key names its department
    return await holder_in_scope(call, lic.holder)


async def load_licence(call: Call[Any, Any]) -> Licence | None:
    return await onestop(call).book.get(call.path["licence_id"])


LICENCE = Guard("licence", "licence_id", load_licence, sees_licence)


# -- handlers -----------------------------------------------------------------------------------


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


async def post_licence(call: Call[LicenceIn, Any]) -> Reply:
    who = call.principal
    side = onestop(call)
    body = call.body
    now = call.node.clock()
    issuer = _issuer(who, side, body.type, body.issuer)
    number = body.number.strip()
    if not number:
        raise ApiError(400, "a licence needs a number")
    if body.valid_until is not None and body.valid_until < body.valid_from:
        raise ApiError(400, "valid_until is before valid_from")
    # A department issues its own types to anyone; an area-scoped admin only to its residents.
    if await side.citizens.get(body.holder) is None or (
            who.scope.department is None and not await holder_in_scope(call, body.holder)):
        raise ApiError(400, f"holder {body.holder!r} is not in the citizen registry")
    lic = Licence(id=licence_id(body.type, number), holder=body.holder, issuer=issuer,
                  type=body.type, number=number, valid_from=body.valid_from,
                  valid_until=body.valid_until, name=side.catalogue.licence_name(body.type),
                  issued_at=now)
    stored = await side.book.get(lic.id)
    if stored is not None and not await sees_licence(call, stored):
        raise ApiError(403, f"{lic.type} No. {lic.number} is not this key's to issue")
    held, created = await side.book.issue(lic)
    if not created and (held.holder, held.valid_from, held.valid_until) != (
            lic.holder, lic.valid_from, lic.valid_until):
        raise ApiError(409, f"{lic.type} No. {lic.number} is already in the store with other "
                            "details; revoke it first")
    return Reply(licence_out(held, side, now), 201 if created else 200,
                 {"Location": f"/api/v1/licences/{held.id}"})


async def list_licences(call: Call[None, LicenceQuery]) -> LicenceList:
    who = call.principal
    side = onestop(call)
    q = call.query
    holder = q.holder
    if who.role is Role.CITIZEN:
        if holder not in (None, who.name):
            raise ApiError(403, "a citizen key sees its own licences only")
        holder = who.name
    elif holder is None:
        raise ApiError(400, "name the holder (?holder=citizen id)")
    elif who.scope.department is None and (
            who.role is Role.DEPARTMENT or not await holder_in_scope(call, holder)):
        return LicenceList([], None)
    own = who.scope.department if who.role is not Role.CITIZEN else None

    async def fetch(before: tuple[float, str] | None, n: int
                    ) -> list[tuple[Licence, float, str]]:
        recs = await side.book.page(holder=holder, limit=n, before=before)
        return [(msgspec.json.decode(r.doc, type=Licence), r.created, r.id) for r in recs]

    async def issued_here(lic: Licence) -> bool:
        return lic.issuer == own

    found, nxt = await narrowed(fetch, issued_here if own is not None else None, q.limit,
                                cursor_of(q.cursor))
    now = call.node.clock()
    return LicenceList([licence_out(lic, side, now) for lic in found], nxt)


async def get_licence(call: Call[None, Any]) -> LicenceOut:
    return licence_out(call.record, onestop(call), call.node.clock())


def public_base(call: Call[Any, Any]) -> str:
    """Where the verify page is, for the QR code: the node's public address when it has one.
    Else the address this request came to, Host header and all: the PDF goes back to this
    caller only, and nothing stored or shown to others carries it."""
    configured = call.node.settings.public_base_url
    if configured:
        return configured.rstrip("/")
    url = call.request.url
    return f"{url.scheme}://{url.netloc}"


async def get_licence_pdf(call: Call[None, Any]) -> Response:
    lic: Licence = call.record
    node = call.node
    font = node.settings.reports_font
    pdf = await licence_pdf(onestop(call), lic, base_url=public_base(call), now=node.clock(),
                            city=node.pack.info.name, font=str(font) if font else None)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", lic.id)
    return Response(pdf, media_type="application/pdf",
                    headers={**NO_STORE, "Content-Disposition": f'inline; filename="{name}.pdf"'})


async def verify_licence(call: Call[None, Any]) -> Reply:
    side = onestop(call)
    code = verification.canonical(call.path["code"])  # NotACode: 400
    lic = await side.book.by_code(code) if verification.is_well_formed(code) else None
    today = side.clock.local_date(call.node.clock())
    if lic is None:
        return Reply(VerifyOut(genuine=False, code=verification.grouped(code), checked_on=today),
                     headers=NO_STORE)
    t = side.catalogue.licence_type(lic.type)
    holder = await side.citizens.get(lic.holder) if lic.holder else None
    revoked = side.clock.local_date(lic.revoked_at) if lic.revoked_at is not None else None
    return Reply(VerifyOut(
        genuine=True, code=verification.grouped(code), checked_on=today,
        state=lic.state_on(today), type=lic.type,
        type_name=t.name if t is not None else (lic.name or lic.type),
        type_name_zh=t.name_zh if t is not None else "",
        holder=verification.mask_name(holder.name) if holder is not None else "",
        valid_from=lic.valid_from, valid_until=lic.valid_until, revoked_on=revoked),
        headers=NO_STORE)


async def revoke_licence(call: Call[RevokeIn, Any]) -> LicenceOut:
    side = onestop(call)
    lic: Licence = call.record
    reason = call.body.reason.strip()
    if not reason:
        raise ApiError(400, "a revocation needs a reason the holder can read")
    revoked = await side.book.revoke(lic.id, reason)
    if revoked is None:
        raise ApiError(404, f"no licence {lic.id!r}")
    return licence_out(revoked, side, call.node.clock())


ROUTES = [
    Endpoint("POST", "/api/v1/licences", post_licence,
             "Put a licence in the store (its issuer); the same again answers 200", ISSUE,
             Scope.CREATE, kind="licence", body=LicenceIn, response=LicenceOut, status=201,
             also_ok=(200,), errors=(409,)),
    Endpoint("GET", "/api/v1/licences", list_licences,
             "A holder's licences, newest first (a citizen: their own)", READ, Scope.LIST,
             kind="licence", query=LicenceQuery, response=LicenceList),
    # Before "/licences/{licence_id}", which would take "X.pdf" for an id.
    Endpoint("GET", "/api/v1/licences/{licence_id}.pdf", get_licence_pdf,
             "One licence as a PDF to print, with its verification code and QR code", READ,
             Scope.RECORD, guard=LICENCE, media_type="application/pdf", errors=(503,)),
    Endpoint("GET", "/api/v1/licences/verify/{code}", verify_licence,
             "Whether the licence with this verification code is genuine and valid today "
             "(no key)", PUBLIC, Scope.NONE, response=VerifyOut, errors=(400,),
             examples={"code": "52EA-P1JT-V0WA-AAQ3-D5CA"},
             description="Shows only the type, the holder's masked name, the validity dates and "
                         "the state. An unknown, mistyped or forged code answers "
                         "`genuine: false`; text that cannot be a code answers 400 "
                         "`licence_code_malformed`."),
    Endpoint("GET", "/api/v1/licences/{licence_id}", get_licence,
             "One licence, with its state today", READ, Scope.RECORD, guard=LICENCE,
             response=LicenceOut),
    Endpoint("POST", "/api/v1/licences/{licence_id}/revoke", revoke_licence,
             "Withdraw a licence (its issuer), with a reason the holder reads", ISSUE,
             Scope.RECORD, guard=LICENCE, body=RevokeIn, response=LicenceOut),
]
