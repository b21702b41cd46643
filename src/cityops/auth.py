"""API keys: made here, stored hashed, resolved per request with a short cache."""

from __future__ import annotations

import hashlib
import secrets
import time

from cityops.domain.access import Principal, Role, Scope
from cityops.store.base import ApiKeyRecord, Store

PREFIX = "co_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(role: str, scope: str | None = None, name: str = "") -> tuple[str, ApiKeyRecord]:
    """Make a key. Returns the secret (shown once) and the record to store."""
    try:
        role_value = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ValueError(f"role {role!r} is not one of: {roles}") from None
    parsed = Scope.parse(scope)
    secret = PREFIX + secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        id="k_" + secrets.token_hex(6),
        hash=hash_secret(secret),
        role=role_value.value,
        scope=str(parsed),
        name=name,
        created_at=time.time(),
    )
    return secret, record


def principal_of(record: ApiKeyRecord) -> Principal:
    return Principal(record.id, Role(record.role), Scope.parse(record.scope), record.name)


class KeyResolver:
    """Finds the principal behind a bearer secret. Misses are cached too, briefly, so a flood
    of bad keys does not reach the store; a revoked key stops working within `ttl` seconds."""

    def __init__(self, store: Store, ttl: float = 10.0, max_entries: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def resolve(self, secret: str) -> Principal | None:
        digest = hash_secret(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = await self.store.find_key(digest)
        principal = None if record is None or record.revoked else principal_of(record)
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl, principal)
        return principal
