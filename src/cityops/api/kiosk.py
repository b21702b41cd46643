"""The 24-hour self-service kiosk:

    POST   /api/v1/kiosk/card                 the card reader hands over an ID card's number:
                                              a one-time code goes by SMS to the citizen's
                                              registered phone; answers the challenge to
                                              quote with the code
    POST   /api/v1/kiosk/session              challenge + code: a citizen key for a few
                                              minutes (the kiosk keeps it in memory only)
    DELETE /api/v1/kiosk/session              the kiosk's sign-out and idle wipe: its key is
                                              revoked at once
    GET    /api/v1/kiosk/receipts/{id}        a submission's receipt as a PDF, for the
                                              kiosk's printer

The two sign-in steps need no key (the person at the kiosk has none yet): what guards them is
the card's checksum, the code sent only to the phone the registry holds, single use, five tries
per code, a five-minute expiry, a minute between codes and five codes an hour per card, and the
address's fair share of requests. With the key the kiosk then uses the ordinary citizen routes
(the catalogue with `channel=kiosk`, forms, `POST /api/v1/applications` with `channel: kiosk`,
licences, queue numbers), each scoped to that citizen as stored. Refusals carry a stable
`code` (kiosk_bad_card, kiosk_unknown_card, kiosk_wrong_code, kiosk_code_expired,
kiosk_code_used, kiosk_code_locked, kiosk_too_many_codes ...) that the page translates.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from starlette.responses import Response

from cityops.api.applications import SUBMISSION
from cityops.api.route import PUBLIC, Call, Endpoint, Reply, Scope, errors_map
from cityops.api.serve_util import serve_of
from cityops.api.services import onestop
from cityops.domain.access import Role
from cityops.serve.kiosk import signin_of
from cityops.serve.kiosk.idcard import BadCard
from cityops.serve.kiosk.receipt import render_receipt
from cityops.serve.kiosk.signin import (
    CodeExpired,
    CodeLocked,
    CodeUsed,
    KioskRefusal,
    NoPhone,
    NotKioskSession,
    Session,
    SmsUnavailable,
    Started,
    TooManyCodes,
    UnknownCard,
    UnknownChallenge,
    WrongCode,
)

errors_map({BadCard: 400, KioskRefusal: 409, UnknownCard: 404, NoPhone: 409,
            TooManyCodes: 429, UnknownChallenge: 404, CodeUsed: 409, CodeExpired: 410,
            CodeLocked: 429, WrongCode: 403, SmsUnavailable: 503, NotKioskSession: 409})

RECEIPT_READERS = frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})


class CardIn(msgspec.Struct, forbid_unknown_fields=True):
    card_number: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    # The page's language: the code's SMS is written in it (else in the city's).
    lang: Annotated[str, msgspec.Meta(max_length=16)] = ""


class CodeIn(msgspec.Struct, forbid_unknown_fields=True):
    challenge: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=12)]


async def post_card(call: Call[CardIn, Any]) -> Started:
    serve_of(call.request)
    return await signin_of(call.node).start(call.body.card_number, lang=call.body.lang)


async def post_session(call: Call[CodeIn, Any]) -> Reply:
    serve_of(call.request)
    session = await signin_of(call.node).verify(call.body.challenge, call.body.code)
    return Reply(session, 201, {"Cache-Control": "no-store"})


async def end_session(call: Call[None, Any]) -> Reply:
    serve_of(call.request)
    await signin_of(call.node).end(call.principal.key_id, call.node.keys)
    return Reply(None, 204)


async def get_receipt(call: Call[None, Any]) -> Response:
    sub, apps = call.record
    side = onestop(call)
    node = call.node
    citizen = await side.citizens.get(sub.applicant)
    pdf = await asyncio.to_thread(
        render_receipt, sub, apps, citizen, side.catalogue, city=node.pack.info.name,
        tz=ZoneInfo(node.pack.info.timezone), printed_at=node.clock(),
        department_names=side.department_names)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="receipt-{sub.id}.pdf"',
        "Cache-Control": "no-store"})


ROUTES = [
    Endpoint("POST", "/api/v1/kiosk/card", post_card,
             "A kiosk's card reader hands over an ID card number: a one-time code is sent by "
             "SMS to the citizen's registered phone", PUBLIC, Scope.NONE, body=CardIn,
             response=Started, errors=(404, 409, 503)),
    Endpoint("POST", "/api/v1/kiosk/session", post_session,
             "The one-time code for the challenge: a short-lived citizen key", PUBLIC,
             Scope.NONE, body=CodeIn, response=Session, status=201,
             errors=(403, 404, 409, 410)),
    Endpoint("DELETE", "/api/v1/kiosk/session", end_session,
             "End a kiosk session: the key the kiosk was given is revoked at once",
             frozenset({Role.CITIZEN}), Scope.OWN, status=204, errors=(409,)),
    Endpoint("GET", "/api/v1/kiosk/receipts/{submission_id}", get_receipt,
             "A submission's receipt as a PDF, for the kiosk's printer", RECEIPT_READERS,
             Scope.RECORD, guard=SUBMISSION, media_type="application/pdf"),
]
