"""API keys: made here, stored hashed, resolved per request with a short cache."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from cityops.domain.access import Principal, Role, Scope
from cityops.store.base import ApiKeyRecord, Store

PREFIX = "co_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(
    role: str, scope: str | None = None, name: str = "", *, expires_at: float | None = None,
    now: float | None = None,
) -> tuple[str, ApiKeyRecord]:
    """Make a key. Returns the secret (shown once) and the record to store."""
    try:
        role_value = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ValueError(f"role {role!r} is not one of: {roles}") from None
    parsed = Scope.parse(scope)
    created = time.time() if now is None else now
    if expires_at is not None and expires_at <= created:
        raise ValueError("the expiry must lie in the future")
    secret = PREFIX + secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        id="k_" + secrets.token_hex(6),
        hash=hash_secret(secret),
        role=role_value.value,
        scope=str(parsed),
        name=name,
        created_at=created,
        expires_at=expires_at,
    )
    return secret, record


def principal_of(record: ApiKeyRecord) -> Principal:
    return Principal(record.id, Role(record.role), Scope.parse(record.scope), record.name,
                     record.expires_at)


class KeyResolver:
    """Finds the principal behind a bearer secret. Misses are cached too, briefly, so a flood
    of bad keys does not reach the store; a revoked key stops working within `ttl` seconds
    (at once on this node when revoked through `forget`), and an expired key at its expiry,
    cache or not.

    `clock` is wall time (expiries are epoch seconds), never a replay's simulated time; the
    cache's own ageing uses the monotonic clock."""

    def __init__(
        self,
        store: Store,
        ttl: float = 10.0,
        max_entries: int = 10_000,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def resolve(self, secret: str) -> Principal | None:
        digest = hash_secret(secret)
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return self._unexpired(hit[1])
        return await self._lookup(digest)

    async def resolve_fresh(self, secret: str) -> Principal | None:
        """As `resolve`, but asks the store whatever the cache holds: for a long-lived
        connection that must notice a revocation made by another process."""
        return await self._lookup(hash_secret(secret))

    def forget(self, key_id: str) -> None:
        """Drop a key from the cache (it was just revoked or changed here)."""
        for digest, (_, who) in list(self._cache.items()):
            if who is not None and who.key_id == key_id:
                del self._cache[digest]

    async def _lookup(self, digest: str) -> Principal | None:
        record = await self.store.find_key(digest)
        principal = None if record is None or record.revoked else principal_of(record)
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + self.ttl, principal)
        return self._unexpired(principal)

    def _unexpired(self, who: Principal | None) -> Principal | None:
        if who is None or who.expires_at is None or self.clock() < who.expires_at:
            return who
        return None
