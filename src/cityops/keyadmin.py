"""Managing API keys: made, revoked and rotated the same way from the command line
(`cityops keys`) and from the browser (`/api/v1/keys`, api/admin.py), and audited either way.

Who may mint what is decided here, once. A key made through the API is never wider than the
key that made it: an admin scoped to an area makes keys inside that area only (any role, its
own included), one scoped to a department keys of that department only, and only an unscoped
admin makes unscoped keys. Revoking and rotating follow the same rule against the key as
stored. The command line runs with the store's own authority (whoever can open the store owns
it), so it passes no principal and is refused nothing by scope.

With a broker admin (`mqtt://ADMIN:PASSWORD@HOST:PORT`) a device key also gets its broker client,
made here because only here is the secret at hand (ingest/broker_accounts.py says why).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass

from cityops.auth import new_key
from cityops.domain.access import Principal, Scope
from cityops.store.base import ApiKeyRecord, AuditEntry, Store

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class KeyRefused(Exception):
    """The key asking may not make or change this key (its scope or the stored key's is wider
    than its own)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NoSuchKey(LookupError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no key {key_id!r}")
        self.reason = str(self)


class KeyNotActive(Exception):
    """A revoked or expired key cannot be rotated (make a new one)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BrokerFailed(Exception):
    """The MQTT broker refused or could not be reached: no device key was made."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = 5.0


@dataclass(frozen=True)
class Broker:
    """Where device keys get their broker clients: the dynamic-security admin URL and the
    readings topic filter the nodes subscribe to."""

    admin_url: str
    topic: str = "cityops/readings/+"


@dataclass(frozen=True)
class Made:
    secret: str  # shown once, never stored
    record: ApiKeyRecord
    topics: list[str] | None  # the broker topics a device key may publish to, if it got a client


@dataclass(frozen=True)
class Rotated:
    made: Made
    old: ApiKeyRecord
    old_ends: float | None  # None: the old key was revoked at once


def parse_duration(text: str, option: str) -> float:
    """`90m`, `12h`, `30d`, `2w` (or `0`) in seconds."""
    text = text.strip().lower()
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{option} {text!r} is not a duration: use e.g. 90m, 12h, 30d or 2w")
    return float(match[1]) * _UNIT_S[match[2]]


def parse_expiry(text: str, now: float, option: str = "--expires") -> float:
    """A duration from now (`30d`) or a moment (`2026-12-31T00:00Z`; without a zone: UTC)."""
    if _DURATION.fullmatch(text.strip().lower()):
        return now + parse_duration(text, option)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{option} {text!r} is neither a duration (30d, 12h) nor a time "
                         "(2026-12-31T00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    at = moment.timestamp()
    if at <= now:
        raise ValueError(f"{option} {text!r} has already passed")
    return at


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- who may mint what ------------------------------------------------------------------------


def scope_within(inner: Scope, outer: Scope) -> bool:
    """Whether everything `inner` covers lies inside `outer`. Area codes nest by prefix; a
    department's reach is not an area's (it follows what the department owns and serves), so
    an area never contains a department scope, nor a department an area."""
    if outer.area is None and outer.department is None:
        return True
    if outer.area is not None:
        return inner.area is not None and inner.area.startswith(outer.area)
    return inner.area is None and inner.department == outer.department


def may_manage(by: Principal | None, record: ApiKeyRecord) -> bool:
    """Whether `by` may see, revoke or rotate the stored key (None: the command line)."""
    return by is None or scope_within(Scope.parse(record.scope), by.scope)


def _check_mint(by: Principal | None, scope: Scope) -> None:
    if by is not None and not scope_within(scope, by.scope):
        raise KeyRefused(f"scope {scope} lies outside this key's scope {by.scope}: a key "
                         "may only make keys within its own scope")


def _check_manage(by: Principal | None, record: ApiKeyRecord) -> None:
    if not may_manage(by, record):
        assert by is not None
        raise KeyRefused(f"key {record.id} (scope {record.scope}) lies outside this key's "
                         f"scope {by.scope}")


def _describe(record: ApiKeyRecord) -> str:
    until = f" until {when(record.expires_at)}" if record.expires_at else ""
    name = f" {record.name!r}" if record.name else ""
    return f"{record.role} key{name} scope {record.scope}{until}"


# -- the changes ------------------------------------------------------------------------------


async def find(store: Store, key_id: str) -> ApiKeyRecord:
    found = next((k for k in await store.list_keys() if k.id == key_id), None)
    if found is None:
        raise NoSuchKey(key_id)
    return found


async def visible(store: Store, by: Principal | None) -> list[ApiKeyRecord]:
    """The stored keys `by` may manage, in the order they were made."""
    return [k for k in await store.list_keys() if may_manage(by, k)]


async def _store_with_broker(store: Store, record: ApiKeyRecord, secret: str,
                             broker: Broker | None) -> list[str] | None:
    """Store the key, and give a device key its broker client first: a key whose devices
    cannot publish is not handed out."""
    if record.role != "device" or broker is None:
        await store.add_key(record)
        return None
    from cityops.ingest.broker_accounts import BrokerAccounts, BrokerError, topic_prefix

    devices = await store.load_devices()
    try:
        async with BrokerAccounts(broker.admin_url, topic_prefix(broker.topic)) as accounts:
            topics = await accounts.add_device_key(record, secret, devices)
            try:
                await store.add_key(record)
            except BaseException:
                await accounts.remove_key(record.id)
                raise
    except BrokerError as exc:
        raise BrokerFailed(f"{exc}; no key was made") from None
    return topics


async def remove_from_broker(key_id: str, broker: Broker | None) -> str | None:
    """Delete a key's broker client; a warning to show when the broker could not be reached
    (the nodes' broker sync removes it once it can)."""
    if broker is None:
        return None
    from cityops.ingest.broker_accounts import BrokerAccounts, BrokerError, topic_prefix

    try:
        async with BrokerAccounts(broker.admin_url, topic_prefix(broker.topic)) as accounts:
            await accounts.remove_key(key_id)
    except (BrokerError, ValueError) as exc:
        return (f"the key is off in the store, but its MQTT client is still on the broker "
                f"({exc}); a node with --mqtt-admin removes it once it reaches the broker")
    return None


async def create(store: Store, *, role: str, scope: str | None, name: str = "",
                 expires_at: float | None = None, actor: str, by: Principal | None = None,
                 reason: str = "", broker: Broker | None = None,
                 now: float | None = None) -> Made:
    """Make, store and audit a key. ValueError for a role, scope or expiry that is not one;
    KeyRefused when `by` may not mint it."""
    now = time.time() if now is None else now
    _check_mint(by, Scope.parse(scope))
    secret, record = new_key(role, scope, name, expires_at=expires_at, now=now)
    topics = await _store_with_broker(store, record, secret, broker)
    await store.append_audit([AuditEntry(actor=actor, action="key.create",
                                         subject=f"key:{record.id}", before=None,
                                         after=_describe(record), reason=reason, at=now)])
    return Made(secret, record, topics)


async def revoke(store: Store, key_id: str, *, actor: str, by: Principal | None = None,
                 reason: str = "", now: float | None = None) -> ApiKeyRecord:
    """Revoke and audit; the record as it was. Revoking a revoked key changes nothing and is
    not audited again."""
    now = time.time() if now is None else now
    old = await find(store, key_id)
    _check_manage(by, old)
    if old.revoked:
        return old
    if not await store.revoke_key(key_id):
        raise NoSuchKey(key_id)
    await store.append_audit([AuditEntry(actor=actor, action="key.revoke",
                                         subject=f"key:{key_id}", before=_describe(old),
                                         after="revoked", reason=reason, at=now)])
    return old


async def rotate(store: Store, key_id: str, *, actor: str, grace_s: float = 0.0,
                 expires_at: float | None = None, by: Principal | None = None,
                 reason: str = "", broker: Broker | None = None,
                 now: float | None = None) -> Rotated:
    """A new key with the old one's role, scope and name; the old one revoked at once, or
    kept `grace_s` seconds more (never past its own expiry). Both halves are audited."""
    now = time.time() if now is None else now
    old = await find(store, key_id)
    _check_manage(by, old)
    if old.revoked:
        raise KeyNotActive(f"key {key_id} is revoked: make a new one")
    if not old.active_at(now):
        raise KeyNotActive(f"key {key_id} expired at {when(old.expires_at or now)}: make a "
                           "new one")
    secret, record = new_key(old.role, old.scope, old.name, expires_at=expires_at, now=now)
    topics = await _store_with_broker(store, record, secret, broker)
    if grace_s <= 0:
        await store.revoke_key(old.id)
        ends, fate = None, "revoked"
    else:
        ends = now + grace_s if old.expires_at is None else min(now + grace_s, old.expires_at)
        await store.set_key_expiry(old.id, ends)
        fate = f"works until {when(ends)}"
    await store.append_audit([
        AuditEntry(actor=actor, action="key.rotate", subject=f"key:{old.id}",
                   before=_describe(old), after=f"{fate}; replaced by {record.id}",
                   reason=reason, at=now),
        AuditEntry(actor=actor, action="key.create", subject=f"key:{record.id}", before=None,
                   after=f"{_describe(record)}; replaces {old.id}", reason=reason, at=now),
    ])
    return Rotated(Made(secret, record, topics), old, ends)
