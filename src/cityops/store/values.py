"""The plain values the stores keep beside records and incidents (keys, dead letters, latest
readings, audit lines), and the errors every backend raises alike."""

from __future__ import annotations

import msgspec


class StoreBusy(RuntimeError):
    """The store's write backlog is full; the write was not taken. Retry after `retry_after`
    seconds (the HTTP layer answers 503 with a Retry-After header)."""

    def __init__(self, message: str = "store is busy", retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DuplicateKey(ValueError):
    """`add_key` was given a key whose id or hash is already stored."""


class ApiKeyRecord(msgspec.Struct, frozen=True):
    id: str  # public id, shown in lists and audit trails ("k_3f9a...")
    hash: str  # sha256 hex of the secret; the secret itself is never stored
    role: str
    scope: str  # "*", an area code, or a department code
    name: str = ""
    created_at: float = 0.0
    revoked: bool = False
    expires_at: float | None = None  # epoch seconds; from then on the key is as if unknown

    def active_at(self, now: float) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


class DeadLetter(msgspec.Struct, frozen=True):
    source: str  # "mqtt", "http"
    where: str  # topic, or request path
    reason: str
    payload: str  # text as received, truncated; undecodable bytes shown as hex
    received_at: float
    index: int | None = None  # which element of an array payload was bad
    id: int = 0  # assigned by the store


class LatestRows(msgspec.Struct):
    """The latest reading per (device, channel), column-wise."""

    device_id: list[str]
    channel: list[str]
    ts_us: list[int]
    value: list[float]

    def __len__(self) -> int:
        return len(self.device_id)


class AuditEntry(msgspec.Struct, frozen=True):
    """One line of the append-only audit trail: who did what to which subject, and when."""

    actor: str  # key id ("k_...") or "system"
    action: str  # e.g. "area.state"
    subject: str  # e.g. "area:310115001"
    before: str | None
    after: str | None
    reason: str
    at: float  # epoch seconds
    id: int = 0  # assigned by the store
