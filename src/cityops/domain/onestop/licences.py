"""Electronic licences and certificates, and the two exemptions from submission: a material
the government itself issued (a valid e-licence) or holds in the citizen registry (data
sharing) is never asked of the citizen; a licence that has expired, been revoked or is not yet
valid is not attached, and the citizen is told why.

Validity is by local calendar date in the city's time zone: a licence valid until 31 March is
valid all of that day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from typing import Literal, TypedDict

import msgspec

from cityops.domain.citizens import Citizen
from cityops.domain.onestop.catalogue import Catalogue, Material

LicenceState = Literal["valid", "expired", "not_yet_valid", "revoked"]
MaterialStatus = Literal["attached", "shared", "pending", "provided", "asked"]
# Materials the citizen need not hand in: the government holds them or is about to issue them.
EXEMPT = frozenset({"attached", "shared", "pending"})


class Licence(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    holder: str  # citizen id
    issuer: str  # department code
    type: str  # licence type code of the catalogue
    number: str  # unique within its type
    valid_from: dt.date
    valid_until: dt.date | None = None  # None: valid without an end date
    name: str = ""  # the type's name when it was issued
    issued_at: float = 0.0
    revoked_at: float | None = None
    revoked_reason: str = ""
    application: str = ""  # the application whose result it is, if any
    # Printed on it for anyone to check it with (domain/onestop/verification.py); canonical
    # form, empty on a licence stored before codes were given (one is given when printed).
    verify_code: str = ""

    def state_on(self, day: dt.date) -> LicenceState:
        if self.revoked_at is not None:
            return "revoked"
        if day < self.valid_from:
            return "not_yet_valid"
        if self.valid_until is not None and day > self.valid_until:
            return "expired"
        return "valid"


class _MaterialFacts(TypedDict):
    """What a material's state repeats of the material itself."""

    code: str
    name: str
    required: bool
    licence: str
    shared: str


class MaterialState(msgspec.Struct, frozen=True, kw_only=True):
    """One material of an application and how it is satisfied."""

    code: str
    name: str
    status: MaterialStatus
    required: bool = True
    licence: str = ""  # the licence type that satisfies it
    licence_id: str = ""
    licence_number: str = ""
    valid_until: str = ""
    shared: str = ""  # the citizen fact got by data sharing
    pending_item: str = ""  # the item of the same submission that will issue it
    ref: str = ""  # what the citizen handed in (a file id, an upload URL)
    reason: str = ""

    @property
    def exempt(self) -> bool:
        return self.status in EXEMPT


def type_phrase(name: str) -> str:
    """"Food operating permit" as it reads inside a sentence; acronyms stay as they are."""
    if len(name) > 1 and name[0].isupper() and not name[1].isupper():
        return name[0].lower() + name[1:]
    return name


def decide_material(
    material: Material,
    licences: Iterable[Licence],
    citizen: Citizen | None,
    day: dt.date,
    cat: Catalogue,
    pending: Mapping[str, tuple[str, str]] | None = None,
) -> MaterialState:
    """How `material` is satisfied for this citizen on `day`.

    `licences` are the citizen's; `pending` maps a licence type to the (item code, item name)
    of the same submission whose result will issue it. Order: a valid e-licence is attached;
    else one being issued in this submission is awaited; else a fact in the registry is
    shared; else the citizen is asked, with the reason when the store holds a licence of the
    type that cannot be used."""
    base: _MaterialFacts = {"code": material.code, "name": material.name,
                            "required": material.required, "licence": material.licence,
                            "shared": material.shared}
    blocked: Licence | None = None
    if material.licence:
        valid, blocked = best_licence(licences, material.licence, day)
        if valid is not None:
            until = valid.valid_until.isoformat() if valid.valid_until else ""
            return MaterialState(
                status="attached", licence_id=valid.id, licence_number=valid.number,
                valid_until=until, reason=_attached_reason(valid, cat), **base)
        issuing = (pending or {}).get(material.licence)
        if issuing is not None:
            return MaterialState(
                status="pending", pending_item=issuing[0],
                reason=f"issued by '{issuing[1]}' in this same application and attached then",
                **base)
    if material.shared and citizen is not None and _fact(citizen, material.shared):
        return MaterialState(status="shared",
                             reason=f"taken from the citizen registry ({material.shared}) "
                                    "by data sharing", **base)
    reason = ""
    if material.licence:
        what = type_phrase(cat.licence_name(material.licence))
        reason = (_blocked_reason(blocked, what, day) if blocked is not None
                  else f"no {what} of yours is in the e-licence store")
    return MaterialState(status="asked", reason=reason, **base)


def best_licence(licences: Iterable[Licence], type_code: str, day: dt.date
                 ) -> tuple[Licence | None, Licence | None]:
    """The valid licence of a type that lasts longest, and, when there is none, the one to
    explain the refusal with (the most recently valid)."""
    valid: Licence | None = None
    other: Licence | None = None
    for lic in licences:
        if lic.type != type_code:
            continue
        if lic.state_on(day) == "valid":
            if valid is None or _end(lic) > _end(valid):
                valid = lic
        elif other is None or _end(lic) > _end(other):
            other = lic
    return valid, (None if valid is not None else other)


def _end(lic: Licence) -> dt.date:
    return lic.valid_until or dt.date.max


def _attached_reason(lic: Licence, cat: Catalogue) -> str:
    what = type_phrase(lic.name or cat.licence_name(lic.type))
    until = f"valid until {lic.valid_until.isoformat()}" if lic.valid_until else "valid"
    return f"your {what} No. {lic.number} ({until}) is attached from the e-licence store"


def _blocked_reason(lic: Licence, what: str, day: dt.date) -> str:
    state = lic.state_on(day)
    if state == "revoked":
        why = f": {lic.revoked_reason}" if lic.revoked_reason else ""
        return f"your {what} No. {lic.number} was revoked{why}; a valid one is needed"
    if state == "expired" and lic.valid_until is not None:
        return (f"your {what} No. {lic.number} expired on {lic.valid_until.isoformat()}; "
                "renew it or hand in a valid one")
    return f"your {what} No. {lic.number} is valid only from {lic.valid_from.isoformat()}"


def _fact(citizen: Citizen, name: str) -> object:
    return getattr(citizen, name, None)


def decide_materials(materials: Iterable[Material], licences: Iterable[Licence],
                     citizen: Citizen | None, day: dt.date, cat: Catalogue,
                     pending: Mapping[str, tuple[str, str]] | None = None
                     ) -> list[MaterialState]:
    held = list(licences)
    return [decide_material(m, held, citizen, day, cat, pending) for m in materials]


def attach_issued(state: MaterialState, lic: Licence, cat: Catalogue) -> MaterialState:
    """A material awaited from a sibling application, now that its licence is issued."""
    until = lic.valid_until.isoformat() if lic.valid_until else ""
    return msgspec.structs.replace(
        state, status="attached", licence_id=lic.id, licence_number=lic.number,
        valid_until=until, pending_item="", reason=_attached_reason(lic, cat))


def issue_licence(*, application_id: str, holder: str, issuer: str, type_code: str,
                  type_name: str, valid_years: int, day: dt.date, now: float) -> Licence:
    """The licence an approved application results in. Its id and number derive from the
    application, so issuing again after a retry finds the one already issued."""
    digest = hashlib.sha256(f"{type_code}\x1f{application_id}".encode()).hexdigest()
    number = f"{day.year}{int(digest[:12], 16) % 10**10:010d}"
    until = None
    if valid_years:
        try:
            until = day.replace(year=day.year + valid_years) - dt.timedelta(days=1)
        except ValueError:  # 29 February
            until = day.replace(year=day.year + valid_years, day=28)
    return Licence(id=f"lic-{application_id.removeprefix('app-')}", holder=holder,
                   issuer=issuer, type=type_code, number=number, valid_from=day,
                   valid_until=until, name=type_name, issued_at=now,
                   application=application_id)
