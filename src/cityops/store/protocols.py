"""One protocol per aggregate the stores keep. `Store` (base.py) is all of them together, as
every backend implements it; code that works on one aggregate types against that one alone, so
what it may touch is visible in its signature and a test double needs only those methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cityops.domain.alerts import Alert
from cityops.domain.city import Device
from cityops.domain.incidents.model import Event, Incident, Report
from cityops.store.incident_rows import IncidentFilter
from cityops.store.record_rows import Record
from cityops.store.staff_rows import StaffRecord
from cityops.store.values import ApiKeyRecord, AuditEntry, DeadLetter, LatestRows

__all__ = ["AlertStore", "AreaStateStore", "AuditStore", "CellOwnerStore", "DeadLetterStore",
           "DeviceStore", "IncidentStore", "KeyStore", "LatestStore", "MetaStore", "RecordStore",
           "StaffStore"]


class DeviceStore(Protocol):
    # Devices. Registration order is kept: `load_devices` returns devices in the order they
    # were first registered, and re-registering a device updates it in place.
    async def upsert_devices(self, devices: Sequence[Device]) -> None: ...

    async def load_devices(self) -> list[Device]: ...

    # A node's own lifecycle changes (first readings, stamps: `domain.lifecycle.may_settle`)
    # written in one atomic step, so a move made elsewhere after the node last read the
    # devices is never written over: of each device given, only its lifecycle and
    # lifecycle_at are taken, and only while the stored device may still settle. Returns the
    # ids changed, in the order given; the others (moved meanwhile, or unknown) stay as
    # stored.
    async def settle_devices(self, devices: Sequence[Device]) -> list[str]: ...


class KeyStore(Protocol):
    # API keys. Ids and hashes are unique: `add_key` raises `DuplicateKey` on a clash.
    # `find_key` returns revoked and expired keys too (the caller checks `active_at`);
    # `list_keys` returns keys in the order they were added; `revoke_key` and
    # `set_key_expiry` are False only when no key has that id.
    async def add_key(self, record: ApiKeyRecord) -> None: ...

    async def find_key(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def list_keys(self) -> list[ApiKeyRecord]: ...

    async def revoke_key(self, key_id: str) -> bool: ...

    async def set_key_expiry(self, key_id: str, expires_at: float | None) -> bool: ...


class LatestStore(Protocol):
    # Latest value per (device, channel); a row only replaces a stored one with a newer ts
    # (an equal ts keeps what is stored). `load_latest` is ordered by (device_id, channel).
    async def save_latest(self, rows: LatestRows) -> None: ...

    async def load_latest(self) -> LatestRows: ...


class DeadLetterStore(Protocol):
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


class AlertStore(Protocol):
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


class AreaStateStore(Protocol):
    # Operating states per area code ("daily", "special", "emergency"); each change is
    # written together with its audit entry, in one transaction.
    async def set_area_state(self, code: str, state: str, entry: AuditEntry) -> None: ...

    async def load_area_states(self) -> dict[str, str]: ...


class CellOwnerStore(Protocol):
    # Who keeps a grid cell, where an administrator changed what the city pack says (H3 cell
    # -> a department code, or "" for the local authority of the cell's territory). Each change
    # is written together with its audit entry, in one transaction; `owner=None` drops the
    # cell's override (the pack's owner applies again). `load_cell_owners` is ordered by cell.
    async def set_cell_owner(self, cell: str, owner: str | None, entry: AuditEntry) -> None: ...

    async def load_cell_owners(self) -> dict[str, str]: ...


class StaffStore(Protocol):
    # The roster's changes over the city pack's staff: a person an administrator added or
    # edited, by id, whole. `put_staff` writes the record with its audit entry in one
    # transaction, at `expect_version` (0: nothing stored for that id yet; else the stored
    # version), or raises StaleVersion; the saved copy, returned, carries version + 1. No
    # person is ever deleted (retired: `active=False`). `load_staff` is in the order each id
    # was first stored, so people added later keep their place after everyone before them.
    async def put_staff(self, record: StaffRecord, entry: AuditEntry, *,
                        expect_version: int) -> StaffRecord: ...

    async def load_staff(self) -> list[StaffRecord]: ...


class AuditStore(Protocol):
    # The audit trail: append-only; newest first, paged by id, optionally for one subject.
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None: ...

    async def list_audit(
        self, *, subject: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEntry]: ...


class IncidentStore(Protocol):
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

    async def count_incidents(self, f: IncidentFilter) -> int:
        """How many cases `list_incidents(f)` returns with no limit: what the screens count,
        never a capped list. Cheap for the open backlog (an index's count)."""

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

    async def split_incident(
        self,
        kept: Incident,
        kept_events: Sequence[Event],
        new: Incident,
        new_events: Sequence[Event],
        report_key: str,
        *,
        expect_version: int,
    ) -> tuple[Incident, Incident]:
        """Move the report `report_key` out of `kept` into the new case `new`, in one
        transaction: `kept` is saved at `expect_version` (else StaleVersion), `new` created
        (DuplicateKey if its id is taken), and the report row moves (StaleVersion if it is no
        longer `kept`'s); nothing lands unless all of it does. Returns both as saved."""

    async def incidents_for_period(self, start: float, end: float) -> list[Incident]:
        """Cases reported before `end` that were still open at `start` or changed since."""


class RecordStore(Protocol):
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


class MetaStore(Protocol):
    # Small key/value settings (schema version, last snapshot time ...).
    async def set_meta(self, key: str, value: str) -> None: ...

    async def get_meta(self, key: str) -> str | None: ...
