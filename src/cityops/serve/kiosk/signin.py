"""Signing in at a kiosk: the card's number, then a one-time code sent by SMS to the phone the
citizen registered (never to one typed in), then a citizen key that lives a few minutes.

Records:
  "kiosk_code"   one per code sent, id the challenge the kiosk holds; the code itself is never
                 stored, only its keyed hash (`Pii.lookup`, keyed with the node's data key, so
                 a copy of the database cannot be searched through the million six-digit
                 codes); `due` its expiry; status open, used or locked. Single use and the
                 attempt count are one version-checked write each, so two kiosks racing with
                 one code cannot both get in.
  "kiosk_sends"  per card (its keyed hash): when codes were sent lately, for the rate limit
                 (a minimum gap, and a cap per window), so a card left in a reader, or a
                 script, cannot flood someone's phone.

The key a kiosk gets is an ordinary citizen key (role citizen, named with the citizen's id, so
it sees and changes only that citizen's things, checked on each record as stored) that
expires after `session_s` by the wall clock; signing out revokes it at once."""

from __future__ import annotations

import contextlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec

from cityops.auth import new_key
from cityops.domain.citizens import Citizen, mask_phone
from cityops.notify.base import Notification, NotifierFull, NotifyError, notification_id
from cityops.serve.kiosk.idcard import check_card
from cityops.store.base import Record, StaleVersion, Store
from cityops.store.update import RecordDecision, update_record

CODE = "kiosk_code"
SENDS = "kiosk_sends"
SESSION = "kiosk_session"  # one per key a kiosk was given, id the key's id: only those are
# ended by a kiosk's sign-out, never a citizen's own long-lived key
CODE_DIGITS = 6


class Challenge(msgspec.Struct, kw_only=True):
    citizen: str
    code_hash: str
    sent_at: float
    expires: float
    attempts: int = 0
    used_at: float | None = None


class Sends(msgspec.Struct):
    times: list[float] = []


class Started(msgspec.Struct, kw_only=True):
    challenge: str
    phone: str  # masked: the person at the kiosk sees which phone to look at
    expires_at: float
    resend_after: float


class Session(msgspec.Struct, kw_only=True):
    key: str  # the secret, shown once
    key_id: str
    expires_at: float
    citizen: str
    name: str


# -- refusals: each a stable code the page translates ------------------------------------------


class KioskRefusal(Exception):
    """A refusal of the kiosk's sign-in; its HTTP status is declared with the routes
    (api/kiosk.py), its `code` is what the page translates."""

    code = "kiosk_refused"

    def __init__(self, message: str, *, retry_after: float | None = None,
                 detail: Any = None) -> None:
        super().__init__(message)
        self.reason = message
        self.retry_after = retry_after
        self.detail = detail


class UnknownCard(KioskRefusal):
    code = "kiosk_unknown_card"


class NoPhone(KioskRefusal):
    code = "kiosk_no_phone"


class TooManyCodes(KioskRefusal):
    code = "kiosk_too_many_codes"


class UnknownChallenge(KioskRefusal):
    code = "kiosk_unknown_challenge"


class CodeUsed(KioskRefusal):
    code = "kiosk_code_used"


class CodeExpired(KioskRefusal):
    code = "kiosk_code_expired"


class CodeLocked(KioskRefusal):
    code = "kiosk_code_locked"


class WrongCode(KioskRefusal):
    code = "kiosk_wrong_code"


class SmsUnavailable(KioskRefusal):
    code = "kiosk_sms_unavailable"


class NotKioskSession(KioskRefusal):
    code = "kiosk_not_a_session"


class KioskSignIn:
    def __init__(self, store: Store, citizens: Any, pii: Any, notifier: Any, *,
                 now: Callable[[], float] = time.time, wall: Callable[[], float] = time.time,
                 today: Callable[[], Any], code_ttl_s: float = 300.0,
                 session_s: float = 900.0, attempts: int = 5, resend_gap_s: float = 60.0,
                 window_s: float = 3600.0, per_window: int = 5) -> None:
        self.store = store
        self.citizens = citizens
        self.pii = pii
        self.notifier = notifier
        self.now = now
        self.wall = wall  # key expiries are read against the wall clock (auth.KeyResolver)
        self.today = today
        self.code_ttl_s = code_ttl_s
        self.session_s = session_s
        self.attempts = attempts
        self.resend_gap_s = resend_gap_s
        self.window_s = window_s
        self.per_window = per_window

    def _code_hash(self, challenge: str, code: str) -> str:
        return self.pii.lookup(f"kiosk-code:{challenge}:{code}")

    async def start(self, card_number: str, lang: str = "") -> Started:
        """Check the card, find its citizen, send a code; BadCard, UnknownCard, NoPhone,
        TooManyCodes or SmsUnavailable otherwise (and then nothing is left behind). `lang`:
        the kiosk page's language, which the SMS is written in (else the city's)."""
        number = check_card(card_number, self.today())
        await self.sweep()
        citizen: Citizen | None = await self.citizens.by_id_number(number)
        if citizen is None:
            raise UnknownCard("no citizen is registered with this ID card; register at a "
                              "service window first")
        if not citizen.phone:
            raise NoPhone("no phone number is registered for this citizen; a code cannot be "
                          "sent (add one at a service window)")
        card = self.pii.lookup(f"kiosk-card:{number}")
        sent_at = await self._count_send(card, citizen.id)
        challenge = "kc-" + secrets.token_urlsafe(18)
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        doc = Challenge(citizen=citizen.id, code_hash=self._code_hash(challenge, code),
                        sent_at=sent_at, expires=sent_at + self.code_ttl_s)
        await self.store.put_record(self._record(challenge, doc))
        try:
            await self._send(citizen.phone, challenge, code, sent_at, lang)
        except Exception:
            await self.store.delete_record(CODE, challenge)
            await self._uncount_send(card, sent_at)
            raise
        return Started(challenge=challenge, phone=mask_phone(citizen.phone),
                       expires_at=doc.expires, resend_after=sent_at + self.resend_gap_s)

    async def sweep(self, limit: int = 50) -> int:
        """Forget codes ten minutes past their expiry (until then a late try is still told
        "expired") and sessions past their key's: a few each time a card is read, so the
        records stay about as many as the codes of the last quarter hour."""
        gone = 0
        for kind, now in ((CODE, self.now() - 600.0), (SESSION, self.wall())):
            for rec in await self.store.find_records(kind, due_before=now, limit=limit):
                gone += await self.store.delete_record(kind, rec.id, expect_version=rec.version)
        return gone

    def _record(self, challenge: str, doc: Challenge, created: float | None = None) -> Record:
        status = ("used" if doc.used_at is not None
                  else "locked" if doc.attempts >= self.attempts else "open")
        return Record(kind=CODE, id=challenge, doc=msgspec.json.encode(doc), owner=doc.citizen,
                      status=status, due=doc.expires,
                      created=created if created is not None else doc.sent_at,
                      updated=self.now())

    async def _send(self, phone: str, challenge: str, code: str, now: float,
                    lang: str = "") -> None:
        minutes = max(1, round(self.code_ttl_s / 60))
        note = Notification(
            id=notification_id("kiosk.code", phone, challenge), kind="kiosk.code",
            recipient=phone, subject="Kiosk sign-in code 自助终端登录验证码",
            body=f"{code}, valid {minutes} min. Never tell it to anyone. "
                 f"{minutes}分钟内有效，请勿告诉他人。",
            # The code again, for the SMS's text in the reader's language (notify/texts.py).
            data={"channel": "sms", "phone": phone, "challenge": challenge, "code": code,
                  "minutes": minutes, **({"lang": lang} if lang else {})}, created=now,
            urgency="high")
        if self.notifier is None:
            raise SmsUnavailable("this node sends no SMS; sign in at a service window")
        try:
            await self.notifier.async_send(note)
        except NotifierFull as error:
            raise SmsUnavailable("the SMS service is busy; try again in a moment",
                                 retry_after=error.retry_after) from None
        except NotifyError:
            raise SmsUnavailable("the SMS service is unavailable; try again later",
                                 retry_after=30.0) from None

    async def _count_send(self, card: str, citizen: str) -> float:
        def step(rec: Record | None) -> RecordDecision[float]:
            now = self.now()
            sends = Sends() if rec is None else msgspec.json.decode(rec.doc, type=Sends)
            recent = [t for t in sends.times if now - t < self.window_s]
            if recent and now - recent[-1] < self.resend_gap_s:
                wait = self.resend_gap_s - (now - recent[-1])
                raise TooManyCodes(f"a code was sent {round(now - recent[-1])} s ago; wait "
                                   f"{max(1, round(wait))} s for another", retry_after=wait)
            if len(recent) >= self.per_window:
                wait = self.window_s - (now - recent[0])
                raise TooManyCodes(f"{len(recent)} codes were sent for this card within "
                                   f"{round(self.window_s / 60)} min; try again in "
                                   f"{max(1, round(wait / 60))} min", retry_after=wait)
            recent.append(now)
            return Record(kind=SENDS, id=card, doc=msgspec.json.encode(Sends(recent)),
                          owner=citizen, status="active", created=rec.created if rec else now,
                          updated=now), now

        return await update_record(self.store, SENDS, card, step)

    async def _uncount_send(self, card: str, at: float) -> None:
        def step(rec: Record | None) -> RecordDecision[None]:
            if rec is None:
                return None, None
            sends = msgspec.json.decode(rec.doc, type=Sends)
            left = [t for t in sends.times if t != at]
            return msgspec.structs.replace(rec, doc=msgspec.json.encode(Sends(left))), None

        await update_record(self.store, SENDS, card, step)

    async def end(self, key_id: str, keys: Any) -> None:
        """Revoke a key a kiosk was given (the page's sign-out and idle wipe); `keys` is the
        node's key resolver, told to forget it at once."""
        rec = await self.store.get_record(SESSION, key_id)
        if rec is None:
            raise NotKioskSession("this key was not given by a kiosk; it is not ended here")
        await self.store.revoke_key(key_id)
        keys.forget(key_id)
        if rec.status != "ended":
            with contextlib.suppress(StaleVersion):  # ended by another call meanwhile
                await self.store.put_record(msgspec.structs.replace(
                    rec, status="ended", updated=self.now()),
                    expect_version=rec.version)

    async def verify(self, challenge: str, code: str) -> Session:
        """The code checked once (single use, `attempts` tries, before its expiry), then a
        citizen key for `session_s`."""

        def step(rec: Record | None) -> RecordDecision[tuple[bool, Challenge]]:
            if rec is None:
                raise UnknownChallenge("this sign-in is not known here; insert the card again")
            doc = msgspec.json.decode(rec.doc, type=Challenge)
            now = self.now()
            if doc.used_at is not None:
                raise CodeUsed("this code was used already; insert the card again for a new "
                               "one")
            if now >= doc.expires:
                raise CodeExpired("this code has expired; insert the card again for a new one")
            if doc.attempts >= self.attempts:
                raise CodeLocked("too many wrong codes; insert the card again for a new one",
                                 retry_after=doc.expires - now)
            good = hmac.compare_digest(doc.code_hash, self._code_hash(challenge, code.strip()))
            if good:
                doc = msgspec.structs.replace(doc, used_at=now)
            else:
                doc = msgspec.structs.replace(doc, attempts=doc.attempts + 1)
            return self._record(challenge, doc, rec.created), (good, doc)

        good, doc = await update_record(self.store, CODE, challenge, step)
        if not good:
            left = self.attempts - doc.attempts
            raise WrongCode(f"wrong code; {left} {'try' if left == 1 else 'tries'} left"
                            if left else "wrong code; no tries left: insert the card again",
                            detail={"attempts_left": left})
        citizen = await self.citizens.get(doc.citizen)
        if citizen is None:  # erased between the code and now
            raise UnknownCard("this citizen is no longer registered")
        expires = self.wall() + self.session_s
        secret, record = new_key("citizen", None, citizen.id, expires_at=expires,
                                 now=self.wall())
        await self.store.put_record(Record(
            kind=SESSION, id=record.id, doc=msgspec.json.encode({"expires_at": expires}),
            owner=citizen.id, status="open", due=expires, created=self.now(),
            updated=self.now()))
        await self.store.add_key(record)
        return Session(key=secret, key_id=record.id, expires_at=expires, citizen=citizen.id,
                       name=citizen.name)
