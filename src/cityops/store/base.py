"""The state-store contract. Raw reading history is not here: it lives in `cityops.history`.

Every adapter (memory, SQLite, PostgreSQL) passes the same contract tests in
`tests/store/test_contract.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec

from cityops.domain.alerts import Alert
from cityops.domain.city import Device
from cityops.domain.incidents.model import Event, Incident, Report
from cityops.store.incident_rows import IncidentFilter, StaleVersion
from cityops.store.record_rows import Record

__all__ = ["StaleVersion", "IncidentFilter", "Record"]


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


@runtime_checkable
class Store(Protocol):
    url: str

    async def open(self) -> None:
        """Connect and create the schema if it is missing."""

    async def close(self) -> None:
        """Commit every write already accepted, then release connections and threads."""

    def queue_depth(self) -> int:
        """Writes accepted but not yet committed (0 for stores that write synchronously).

        A store with a bounded write backlog raises `StoreBusy` from any write when it is full.
        """

    # Devices. Registration order is kept: `load_devices` returns devices in the order they
    # were first registered, and re-registering a device updates it in place.
    async def upsert_devices(self, devices: Sequence[Device]) -> None: ...

    async def load_devices(self) -> list[Device]: ...

    # API keys. Ids and hashes are unique: `add_key` raises `DuplicateKey` on a clash.
    # `find_key` returns revoked and expired keys too (the caller checks `active_at`);
    # `list_keys` returns keys in the order they were added; `revoke_key` and
    # `set_key_expiry` are False only when no key has that id.
    async def add_key(self, record: ApiKeyRecord) -> None: ...

    async def find_key(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def list_keys(self) -> list[ApiKeyRecord]: ...

    async def revoke_key(self, key_id: str) -> bool: ...

    async def set_key_expiry(self, key_id: str, expires_at: float | None) -> bool: ...

    # Latest value per (device, channel); a row only replaces a stored one with a newer ts
    # (an equal ts keeps what is stored). `load_latest` is ordered by (device_id, channel).
    async def save_latest(self, rows: LatestRows) -> None: ...

    async def load_latest(self) -> LatestRows: ...

    # Dead letters: input that could not be taken, kept with the reason.
    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None: ...

    async def list_dead_letters(
        self, *, limit: int = 100, before_id: int | None = None
    ) -> list[DeadLetter]:
        """Newest first; `before_id` pages backwards."""

    async def count_dead_letters(self) -> int: ...

    async def delete_dead_letters(self, received_before: float, limit: int = 10_000) -> int:
        """Retention: drop up to `limit` letters received before `received_before` (epoch
        seconds) and return how many went; the caller repeats while a full `limit` went, so
        no one write holds the store for long."""

    # Alerts (the detect side). `upsert_alerts` replaces by id. `list_alerts` is newest
    # `first_seen` first (ties by id), filtered by pack name, area code prefix of the alert's
    # village (or exact match of its district/town), and active; `before` is the (first_seen,
    # id) of the last alert of the previous page.
    async def upsert_alerts(self, alerts: Sequence[Alert]) -> None: ...

    async def get_alert(self, alert_id: str) -> Alert | None: ...

    async def list_alerts(
        self,
        *,
        scenario: str | None = None,
        area: str | None = None,
        active: bool | None = None,
        limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[Alert]: ...

    # Operating states per area code ("daily", "special", "emergency"); each change is
    # written together with its audit entry, in one transaction.
    async def set_area_state(self, code: str, state: str, entry: AuditEntry) -> None: ...

    async def load_area_states(self) -> dict[str, str]: ...

    # The audit trail: append-only; newest first, paged by id, optionally for one subject.
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None: ...

    async def list_audit(
        self, *, subject: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEntry]: ...

    # Incidents (the act side). An incident is saved whole, with the timeline events and the
    # reports of the move that changed it, in one transaction. `expect_version=None` creates
    # it (DuplicateKey if the id, or a report's key, is already stored); otherwise the stored
    # version must equal `expect_version` (else StaleVersion) and the saved copy, returned,
    # carries version + 1. The timeline is append-only: no method changes or removes an event.
    async def save_incident(
        self,
        incident: Incident,
        events: Sequence[Event] = (),
        reports: Sequence[Report] = (),
        *,
        expect_version: int | None = None,
    ) -> Incident: ...

    async def insert_incidents(self, incidents: Sequence[Incident]) -> None:
        """Bulk load (imports, benchmarks): no events, no reports."""

    async def get_incident(self, incident_id: str) -> Incident | None: ...

    async def incident_of_report(self, key: str) -> str | None: ...

    async def list_incidents(
        self, f: IncidentFilter, *, limit: int = 100, before: tuple[float, str] | None = None
    ) -> list[Incident]:
        """Newest `reported_at` first (ties by id); `before` is the last row of the previous
        page as (reported_at, id)."""

    async def open_incidents_in_cells(
        self, category: str, cells: Sequence[str], since: float
    ) -> list[Incident]:
        """Open cases of `category` in these grid cells, updated at or after `since`: the
        candidates a new report may be merged into."""

    async def due_incidents(self, now: float, limit: int = 100) -> list[str]:
        """Ids of cases with a deadline (`Incident.next_due`) at or before `now`, soonest first."""

    async def claim_due_incidents(self, now: float, limit: int = 100,
                                  lease_s: float = 30.0) -> list[str]:
        """Like `due_incidents`, but each case returned is held for the caller for `lease_s`:
        another caller (an escalation scheduler on another node) is not given it meanwhile."""

    async def incident_events(self, incident_id: str) -> list[Event]: ...

    async def incident_reports(self, incident_id: str) -> list[Report]: ...

    async def incidents_for_period(self, start: float, end: float) -> list[Incident]:
        """Cases reported before `end` that were still open at `start` or changed since."""

    # Records: the serve side's small versioned documents (see record_rows.py). `put_record`
    # creates with `expect_version=None` (DuplicateKey if the id, or the unique key within the
    # kind, is taken) or replaces version `expect_version` (else StaleVersion); the saved copy,
    # returned, carries the next version. `find_records` is newest `created` first, or soonest
    # `due` first when `due_before` is given. `delete_record` (a citizen's data erased on
    # request) is False when there is no such record, or not of version `expect_version`.
    # With a `sealer` set (record_rows.Sealing), documents are stored sealed, read back opened.
    async def put_record(self, rec: Record, *, expect_version: int | None = None) -> Record: ...

    async def get_record(self, kind: str, record_id: str) -> Record | None: ...

    async def find_records(
        self, kind: str, *, owner: str | None = None, status: str | None = None,
        due_before: float | None = None, unique: str | None = None, limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[Record]: ...

    async def delete_record(self, kind: str, record_id: str, *,
                            expect_version: int | None = None) -> bool: ...

    # Small key/value settings (schema version, last snapshot time ...).
    async def set_meta(self, key: str, value: str) -> None: ...

    async def get_meta(self, key: str) -> str | None: ...


def open_store(url: str, data_dir: str | None = None) -> Store:
    """Make the store named by `url`: `memory://`, `sqlite:///path.db` or `postgresql://...`.

    A bare data directory with no URL means the embedded default, `DATA/state.db`.
    """
    if url.startswith("memory:"):
        from cityops.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:"):
        from cityops.store.sqlite import SQLiteStore

        return SQLiteStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        from cityops.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"store URL {url!r} is not understood: use memory://, sqlite:///PATH or postgresql://..."
    )
