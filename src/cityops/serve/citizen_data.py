"""A citizen's data on request (PIPL articles 45 and 47): everything CityOps holds about one
person exported, or erased, each with an entry in the audit trail.

What is held about a citizen, all as records of the store:

| kind | found by | on erasure |
|---|---|---|
| `citizen` (the registry) | its id | deleted (its ID number's hash goes with it) |
| `open311.request` | owner `citizen:<id>` | kept for the public case: contact and account cleared, text scrubbed, unlinked |
| `hotline_order` | owner `<id>` | kept for the case: caller, phone and citizen cleared, texts scrubbed, unlinked |
| `review` | owner `<id>` | kept in the department's figures: citizen cleared, comments scrubbed, unlinked |
| `submission`, its `application`s | owner `<id>`; the submission's list | kept for the department's case: applicant and form answers cleared, notes scrubbed |
| `licence` | owner (holder) `<id>` | kept in the issuer's register, unlinked from the person |
| `benefit` | owner `<id>` | kept for the policy's accounts: citizen cleared, the facts the condition read dropped |
| `cabinet_item` | owner (recipient) `<id>` | kept for the cabinet's log: recipient and phone cleared, texts scrubbed |
| `citizen.photo` | owner `<id>` | filed with a case: kept as its evidence, unlinked; else deleted with its file |
| `kiosk_code` | owner `<id>` | deleted (exported without the code's keyed hash, saying it is held and until when) |
| `kiosk_sends` | owner `<id>` | deleted (its id, a keyed hash of the ID card's number, is not exported) |
| `kiosk_session` | owner `<id>` | deleted; its key is revoked with the others |
| `care_retrofit` | owner `<id>` | kept for the subsidy's accounts: citizen cleared, rooms and notes scrubbed |

and the citizen's part of records shared with other people (queue numbers in a counter's day,
nursing-home entries and beds, caregiver visits, video calls), taken out by each feature's
own moves: see `citizen_shared`. The citizen's API keys (a citizen key's name is the
citizen's id; a kiosk's short-lived key is one of them) are exported with their expiry, never
a hash, and revoked on erasure. A kiosk's printed receipt is not kept: it is drawn from the
submission each time it is printed, so it goes with the submission's erasure.
"Scrubbed" text has the person's name, phone, ID number and address as held replaced by a
marker, and every other phone or ID number masked (`privacy.scrub_text`).

Not reached: the reports a citizen's Open311 requests filed with the incident desk keep the
reporter's id, the masked phone and what the form's contact fields said (an e-mail, a name);
cases and their reports are append-only in the store, and their erasure is the act side's to
add. A hotline order or cabinet drop-off made for a phone number alone, with no citizen named,
is not found by the citizen's id. A video call still ringing or talking, and the last calls
a node shows its clerks, are in that node's memory only (the application's id and the
citizen's id, no name), gone at its restart; the erasure revokes the keys, which closes the
citizen's window socket within seconds.

Every step saves version-checked and re-reads on a concurrent change, so an erasure racing
another move neither loses that move nor leaves the record unscrubbed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from cityops.domain.citizens import Citizen
from cityops.domain.privacy import ERASED, scrub_text
from cityops.serve import citizens as registry
from cityops.serve import report_photos
from cityops.serve.citizen_shared import POINTERS, Shared
from cityops.serve.kiosk import signin as kiosk
from cityops.serve.seniorcare import retrofits
from cityops.store.base import AuditEntry, Record, Store
from cityops.store.update import DELETE, RecordDecision, UpdateGaveUp, update_record

log = logging.getLogger(__name__)

# Kinds by the owner their records carry (kept here as plain names: the services that write
# them are the ones that define them, and tests hold this table to theirs).
OPEN311 = "open311.request"
HOTLINE = "hotline_order"
REVIEW = "review"
SUBMISSION = "submission"
APPLICATION = "application"
LICENCE = "licence"
BENEFIT = "benefit"
CABINET_ITEM = "cabinet_item"
PHOTO = report_photos.KIND
KIOSK_CODE = kiosk.CODE
KIOSK_SENDS = kiosk.SENDS
KIOSK_SESSION = kiosk.SESSION
RETROFIT = retrofits.KIND
CITIZEN_OWNER = "citizen:"  # Open311 requests' owner prefix (open311.service_requests)

# (section of the export, kind, owner form)
OWNED = (
    ("open311_requests", OPEN311, CITIZEN_OWNER + "{}"),
    ("hotline_orders", HOTLINE, "{}"),
    ("reviews", REVIEW, "{}"),
    ("submissions", SUBMISSION, "{}"),
    ("licences", LICENCE, "{}"),
    ("benefits", BENEFIT, "{}"),
    ("cabinet_items", CABINET_ITEM, "{}"),
    ("photos", PHOTO, "{}"),
    ("kiosk_codes", KIOSK_CODE, "{}"),
    ("kiosk_card_sends", KIOSK_SENDS, "{}"),
    ("kiosk_sessions", KIOSK_SESSION, "{}"),
    ("retrofit_assessments", RETROFIT, "{}"),
)
# Deleted outright on erasure, never kept anonymised: a sign-in's traces are worth nothing
# once the person cannot sign in (their registry entry goes, so their card is unknown at
# every kiosk and no rate limit is left to keep), and nothing else refers to them.
DELETED = frozenset({KIOSK_CODE, KIOSK_SENDS, KIOSK_SESSION})
PAGE = 500
RETRIES = 8
# Secrets of CityOps's own in a citizen's records, which an export has no reason to carry.
NOT_EXPORTED = {CABINET_ITEM: ("code_hash",), KIOSK_CODE: ("code_hash",)}
# What the export says instead of a secret it leaves out, and of a record id that is itself
# a keyed hash (of the ID card's number).
SECRET_NOTES = {
    CABINET_ITEM: {"code": "the pick-up code is held only as a one-way hash (PBKDF2); the "
                           "item waits until `expires`, then goes back to the sender"},
    KIOSK_CODE: {"code": "the sign-in code is held only as a keyed hash; it cannot be used "
                         "after `expires`, and the record is deleted some ten minutes after"},
    KIOSK_SENDS: {"id_note": "this record's id is a keyed hash of the ID card's number; it "
                             "counts the codes sent lately, for the kiosk's rate limit"},
    KIOSK_SESSION: {"key": "the session's key is one of `keys` (this record's id); only a "
                           "hash of its secret is held, and it expires at `expires_at`"},
}

_any = msgspec.json.Decoder()
_json = msgspec.json.Encoder()


class NotFound(LookupError):
    """Nothing is held about this citizen."""


class CitizenData:
    """`await export(citizen_id)` and `await erase(citizen_id, by, reason)` on one store."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time, *,
                 data_dir: Path | None = None, zone: dt.tzinfo | None = None,
                 teller: Any = None) -> None:
        self.store = store
        self.clock = clock
        self.data_dir = data_dir  # where uploaded photos lie (serve/report_photos.py)
        # The city's zone (what counts as a visit still to come); None, on the command line
        # without the city: this machine's own.
        self.shared = Shared(store, clock, zone)
        # Tells the next in line of a bed an erasure let go (seniorcare.tell.CitizenTeller);
        # None on the command line, which then says whom the home's staff must tell.
        self.teller = teller

    # -- reading -------------------------------------------------------------------------------

    async def _owned(self, kind: str, owner: str) -> list[Record]:
        out: list[Record] = []
        before: tuple[float, str] | None = None
        while True:
            page = await self.store.find_records(kind, owner=owner, limit=PAGE, before=before)
            out.extend(page)
            if len(page) < PAGE:
                return out
            before = (page[-1].created, page[-1].id)

    async def _pointers(self, citizen_id: str) -> list[Record]:
        found = [await self.store.get_record(kind, citizen_id) for _, kind in POINTERS]
        return [r for r in found if r is not None]

    async def _held(self, citizen_id: str) -> tuple[Record | None, dict[str, list[Record]]]:
        citizen = await self.store.get_record(registry.KIND, citizen_id)
        found: dict[str, list[Record]] = {}
        for section, kind, owner in OWNED:
            found[section] = await self._owned(kind, owner.format(citizen_id))
        apps: list[Record] = []
        for sub in found["submissions"]:
            for app_id in _any.decode(sub.doc).get("applications", []):
                rec = await self.store.get_record(APPLICATION, app_id)
                if rec is not None:
                    apps.append(rec)
        found["applications"] = apps
        return citizen, found

    async def _keys(self, citizen_id: str) -> list[Any]:
        return [k for k in await self.store.list_keys()
                if k.role == "citizen" and k.name == citizen_id]

    # -- export --------------------------------------------------------------------------------

    async def export(self, citizen_id: str, by: str = "system", reason: str = "") -> dict:
        """Everything held about the citizen, clear (it is for the person themself): the
        registry entry, each record with its kind, dates and document, and their keys (never
        a key's hash). Raises NotFound when nothing is held."""
        citizen, found = await self._held(citizen_id)
        shared = await self.shared.find(citizen_id)
        keys = await self._keys(citizen_id)
        # A revoked key is the trail of an access that ended (an erasure revokes them all),
        # not something held about the person on its own.
        if citizen is None and not any(found.values()) and not any(shared.values()) \
                and all(k.revoked for k in keys):
            raise NotFound(f"nothing is held about citizen {citizen_id!r}")
        now = self.clock()
        records = {section: [_record_view(r) for r in recs] for section, recs in found.items()}
        records.update(shared)
        out: dict[str, Any] = {
            "citizen_id": citizen_id,
            "exported_at": now,
            "citizen": _any.decode(citizen.doc) if citizen is not None else None,
            "records": records,
            # A key's secret is never stored; its hash is not the person's to need.
            "keys": [{"id": k.id, "role": k.role, "scope": k.scope, "created_at": k.created_at,
                      "expires_at": k.expires_at, "revoked": k.revoked} for k in keys],
        }
        counts = {section: len(recs) for section, recs in records.items() if recs}
        await self._audit(by, "citizen.export", citizen_id, reason or "export on request",
                          {"records": counts, "registered": citizen is not None})
        return out

    # -- erasure -------------------------------------------------------------------------------

    async def erase(self, citizen_id: str, by: str, reason: str) -> dict:
        """Removes or anonymises everything held about the citizen (see the module's table)
        and says what it did, which the audit entry repeats. Raises NotFound when nothing is
        held; ValueError without a reason."""
        if not reason.strip():
            raise ValueError("an erasure needs a reason (the request it answers)")
        citizen, found = await self._held(citizen_id)
        pointers = await self._pointers(citizen_id)
        every_key = await self._keys(citizen_id)
        keys = [k for k in every_key if not k.revoked]
        shared_found = await self.shared.find(citizen_id)
        if citizen is None and not keys and not any(found.values()) and not pointers \
                and not any(shared_found.values()):
            raise NotFound(f"nothing is held about citizen {citizen_id!r}")
        known = _known(citizen, found, shared_found)
        summary: dict[str, Any] = {"citizen_id": citizen_id, "anonymised": {}, "deleted": {},
                                   "kept": {}, "moved": {}, "keys_revoked": 0}
        try:
            # First the shared records: they are found through the pointers deleted below, so
            # an erasure cut short is finished by the next one.
            shared = await self.shared.erase(citizen_id, ERASED,
                                             frozenset(k.id for k in every_key))
            for bucket, counts in shared.buckets.items():
                summary[bucket].update(counts)
            untold = await self._tell(shared.told)
            if untold:
                summary["care_offers_untold"] = untold
            sections = {kind: section for section, kind in POINTERS}
            for rec in pointers:
                if await self._delete(rec):
                    summary["deleted"][sections[rec.kind]] = 1
            for section, recs in found.items():
                for rec in recs:
                    what = await self._erase_record(rec, citizen_id, known)
                    if what:
                        bucket = summary[what]
                        bucket[section] = bucket.get(section, 0) + 1
            for key in keys:
                if await self.store.revoke_key(key.id):
                    summary["keys_revoked"] += 1
            # Last: until everything else is done, a retry still finds what to scrub by.
            if citizen is not None and await self._delete(citizen):
                summary["deleted"]["citizen"] = 1
        except Exception as error:
            await self._audit(by, "citizen.erase", citizen_id, reason,
                              {**summary, "incomplete": type(error).__name__})
            raise
        summary["erased_at"] = self.clock()
        await self._audit(by, "citizen.erase", citizen_id, reason, summary)
        return summary

    async def _tell(self, told: list) -> list[dict]:
        """Sends the notices the erasure's moves owe others (a bed offered to the next in
        line); without a teller, says whom the home's staff must tell instead."""
        untold = []
        for home, notices in told:
            if self.teller is not None:
                try:
                    await self.teller.tell(notices, self.clock(), home=home)
                    continue
                except Exception as error:  # the offers stand: the erasure goes on, and says
                    log.warning("bed offers of home %s after an erasure not sent: %s", home,
                                error)
            untold += [{"home": home, "citizen": t.citizen, "notice": t.kind, "text": t.text}
                       for t in notices]
        return untold

    async def _delete(self, rec: Record) -> bool:
        def step(held: Record | None) -> RecordDecision[bool]:
            return (None, False) if held is None else (DELETE, True)

        try:
            return await update_record(self.store, rec.kind, rec.id, step, tries=RETRIES)
        except UpdateGaveUp:
            raise RuntimeError(f"{rec.kind} {rec.id} kept changing while it was "
                               "erased") from None

    async def _erase_record(self, rec: Record, citizen_id: str, known: list[str]) -> str | None:
        """'anonymised', 'deleted', or None when there was nothing left to do."""
        def step(held: Record | None) -> RecordDecision[str | None]:
            if held is None:
                return None, None
            doc = _any.decode(held.doc)
            if held.kind in DELETED or (held.kind == PHOTO and not doc.get("incidents")):
                return DELETE, "deleted"
            changed = anonymise(held, doc, citizen_id, known)
            if changed is None:
                return None, None
            return changed, "anonymised"

        try:
            done = await update_record(self.store, rec.kind, rec.id, step, tries=RETRIES)
        except UpdateGaveUp:
            raise RuntimeError(f"{rec.kind} {rec.id} kept changing while it was "
                               "erased") from None
        if done == "deleted" and rec.kind == PHOTO:
            self._remove_photo_file(rec.id)
        return done

    def _remove_photo_file(self, name: str) -> None:
        if self.data_dir is None:
            return
        try:
            report_photos.file_of(self.data_dir, name).unlink(missing_ok=True)
        except OSError as error:  # the record is gone; the file is for the operator to remove
            log.warning("photo file %s of an erased citizen could not be removed: %s", name,
                        error)

    async def _audit(self, by: str, action: str, citizen_id: str, reason: str,
                     after: dict) -> None:
        await self.store.append_audit([AuditEntry(
            actor=by or "system", action=action, subject=f"citizen:{citizen_id}", before=None,
            after=_json.encode(after).decode(), reason=reason, at=self.clock())])


# -- what an erased record keeps ---------------------------------------------------------------

def _known(citizen: Record | None, found: dict[str, list[Record]],
           shared: dict[str, list[dict]] | None = None) -> list[str]:
    """The identifying strings held about the person, to scrub out of free text."""
    known: list[str] = [str(v["doc"].get("address", ""))
                        for v in (shared or {}).get("caregiver_visits", [])]
    if citizen is not None:
        c = msgspec.json.decode(citizen.doc, type=Citizen)
        known += [c.name, c.phone, c.id_number, c.address]
    for rec in found.get("hotline_orders", []):
        doc = _any.decode(rec.doc)
        known += [doc.get("caller_name", ""), doc.get("phone", "")]
    for rec in found.get("open311_requests", []):
        contact = _any.decode(rec.doc).get("contact") or {}
        known += [str(contact.get(k, "")) for k in ("phone", "email", "first_name",
                                                    "last_name")]
    for rec in found.get("cabinet_items", []):
        known.append(_any.decode(rec.doc).get("phone", ""))
    return [k for k in known if k]


def _scrub(value: Any, known: list[str]) -> Any:
    if isinstance(value, str):
        return scrub_text(value, known)
    if isinstance(value, dict):
        return {k: _scrub(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, known) for v in value]
    return value


def _scrub_entries(entries: Any, known: list[str], names: tuple[str, ...]) -> Any:
    """A timeline with the free text of each entry scrubbed; its actions, states and times
    stay as they are (they are the case's history, and enum values a decoder checks)."""
    if not isinstance(entries, list):
        return entries
    return [{k: _scrub(v, known) if k in names else v for k, v in e.items()}
            if isinstance(e, dict) else e for e in entries]


TIMELINE_TEXT = ("note", "reason", "detail", "data", "comment")


def _erase_answers(answers: Any) -> Any:
    # A form's text answers are the applicant's own words and facts; numbers and yes/no
    # answers say nothing of who gave them and keep the decision readable.
    if not isinstance(answers, dict):
        return {}
    return {k: ERASED if isinstance(v, str) and v else v for k, v in answers.items()
            if not isinstance(v, (dict, list))}


def anonymise(rec: Record, doc: dict, citizen_id: str, known: list[str]) -> Record | None:
    """The record as kept once its person is erased; None when it already is."""
    d = dict(doc)
    owner, unique = rec.owner, rec.unique

    def scrub(*names: str) -> None:
        for name in names:
            if name in d:
                d[name] = _scrub(d[name], known)

    def scrub_entries(*names: str) -> None:
        for name in names:
            if name in d:
                d[name] = _scrub_entries(d[name], known, TIMELINE_TEXT)

    def clear(*names: str) -> None:
        for name in names:
            if isinstance(d.get(name), str):
                d[name] = ""

    kind = rec.kind
    if kind == OPEN311:
        d.pop("contact", None)
        clear("account_id")
        scrub("description", "address")
        owner = ""
    elif kind == HOTLINE:
        clear("caller_name", "phone", "citizen_id")
        scrub("title", "content", "answer", "address", "extension_reason", "reason")
        scrub_entries("timeline")
        owner = ""
    elif kind == REVIEW:
        clear("citizen_id")
        scrub("title", "comment")
        scrub_entries("ratings")
        owner, unique = "", None
    elif kind in (SUBMISSION, APPLICATION):
        clear("applicant")
        d["answers"] = _erase_answers(d.get("answers"))
        scrub_entries("timeline")
        if kind == SUBMISSION:
            owner = ""
    elif kind == LICENCE:
        clear("holder")
        owner = ""
    elif kind == BENEFIT:
        clear("citizen")
        d["audit"] = [{k: v for k, v in entry.items() if k != "values"}
                      for entry in d.get("audit", []) if isinstance(entry, dict)]
        owner, unique = "", None
    elif kind == CABINET_ITEM:
        clear("recipient_citizen", "phone")
        scrub("description", "note")
        owner = ""
    elif kind == PHOTO:
        owner = ""
    elif kind == RETROFIT:
        # Kept for the subsidy's accounts (money paid out is audited for years) and the
        # works filed on it: who it was for goes, the findings' rooms and notes are scrubbed.
        # The hardship class stays: the subsidy paid says it anyway (full or half), and the
        # accounts are checked against the rule that read it.
        clear("citizen")
        scrub("note")
        if isinstance(d.get("findings"), list):
            d["findings"] = [{**f, "room": _scrub(f.get("room", ""), known),
                              "note": _scrub(f.get("note", ""), known)}
                             if isinstance(f, dict) else f for f in d["findings"]]
        if isinstance(d.get("works"), list):
            d["works"] = [{**w, "room": _scrub(w.get("room", ""), known)}
                          if isinstance(w, dict) else w for w in d["works"]]
        owner = ""
    else:
        raise ValueError(f"no erasure rule for records of kind {kind!r}")
    if d == doc and owner == rec.owner and unique == rec.unique:
        return None
    return msgspec.structs.replace(rec, doc=_json.encode(d), owner=owner, unique=unique)


def _record_view(rec: Record) -> dict:
    doc = _any.decode(rec.doc)
    if isinstance(doc, dict):
        for name in NOT_EXPORTED.get(rec.kind, ()):
            doc.pop(name, None)
        doc.update(SECRET_NOTES.get(rec.kind, {}))
    if rec.kind == KIOSK_SENDS:
        return {"kind": rec.kind, "id": "(a keyed hash)", "status": rec.status,
                "created": rec.created, "updated": rec.updated, "doc": doc}
    return {"kind": rec.kind, "id": rec.id, "status": rec.status, "created": rec.created,
            "updated": rec.updated, "doc": doc}
