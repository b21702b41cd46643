"""The in-memory store: the same contract as the durable ones, kept in dicts, lost on exit.

Alerts are kept as their JSON, as the durable stores keep them, so that a caller changing an
`Alert` it was handed (they are mutable) cannot change what is stored, and what comes back is
exactly what a round trip through SQLite or PostgreSQL would give.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import msgspec

from cityops.domain.alerts import Alert
from cityops.domain.city import Device
from cityops.domain.lifecycle import may_settle
from cityops.store.base import ApiKeyRecord, AuditEntry, DeadLetter, DuplicateKey, LatestRows
from cityops.store.memory_incidents import MemoryIncidents
from cityops.store.memory_records import MemoryRecords
from cityops.store.memory_staff import MemoryStaff
from cityops.store.schema import SCHEMA_VERSION

_alert_encoder = msgspec.json.Encoder()
_alert_decoder = msgspec.json.Decoder(Alert)


class _StoredAlert(msgspec.Struct, frozen=True):
    first_seen: float
    id: str
    scenario: str
    village: str | None
    active: bool
    doc: bytes


def _check_audit_entry(entry: AuditEntry) -> None:
    """What the durable stores' CHECK constraints refuse: a line must say who did what.
    Every adapter answers such an entry with ValueError."""
    if not entry.actor or not entry.action:
        raise ValueError(f"audit entry needs an actor and an action: {entry!r}")


class MemoryStore(MemoryIncidents, MemoryRecords, MemoryStaff):
    def __init__(self, url: str = "memory://") -> None:
        MemoryIncidents.__init__(self)
        MemoryRecords.__init__(self)
        MemoryStaff.__init__(self)
        self.url = url
        self._devices: dict[str, Device] = {}  # dicts keep first-insertion order
        self._keys: dict[str, ApiKeyRecord] = {}
        self._key_ids_by_hash: dict[str, str] = {}
        self._latest: dict[tuple[str, str], tuple[int, float]] = {}
        self._dead: list[DeadLetter] = []  # in id order
        self._dead_ids = 0
        self._alerts: dict[str, _StoredAlert] = {}
        self._area_states: dict[str, str] = {}
        self._cell_owners: dict[str, str] = {}
        self._audit: list[AuditEntry] = []  # appended to, never changed: ids are 1..n
        self._meta: dict[str, str] = {}

    async def open(self) -> None:
        self._meta.setdefault("schema_version", str(SCHEMA_VERSION))

    async def close(self) -> None:
        pass

    def queue_depth(self) -> int:
        return 0

    async def upsert_devices(self, devices: Sequence[Device]) -> None:
        for device in devices:
            self._devices[device.id] = device

    async def load_devices(self) -> list[Device]:
        return list(self._devices.values())

    async def settle_devices(self, devices: Sequence[Device]) -> list[str]:
        settled = []
        for device in {d.id: d for d in devices}.values():
            stored = self._devices.get(device.id)
            if stored is not None and may_settle(stored.lifecycle, stored.lifecycle_at,
                                                 device.lifecycle):
                self._devices[device.id] = msgspec.structs.replace(
                    stored, lifecycle=device.lifecycle, lifecycle_at=device.lifecycle_at)
                settled.append(device.id)
        return settled

    async def add_key(self, record: ApiKeyRecord) -> None:
        if record.id in self._keys or record.hash in self._key_ids_by_hash:
            raise DuplicateKey(f"API key {record.id!r} clashes with a stored key")
        self._keys[record.id] = record
        self._key_ids_by_hash[record.hash] = record.id

    async def find_key(self, key_hash: str) -> ApiKeyRecord | None:
        key_id = self._key_ids_by_hash.get(key_hash)
        return None if key_id is None else self._keys[key_id]

    async def list_keys(self) -> list[ApiKeyRecord]:
        return list(self._keys.values())

    async def revoke_key(self, key_id: str) -> bool:
        record = self._keys.get(key_id)
        if record is None:
            return False
        self._keys[key_id] = msgspec.structs.replace(record, revoked=True)
        return True

    async def set_key_expiry(self, key_id: str, expires_at: float | None) -> bool:
        record = self._keys.get(key_id)
        if record is None:
            return False
        self._keys[key_id] = msgspec.structs.replace(record, expires_at=expires_at)
        return True

    async def save_latest(self, rows: LatestRows) -> None:
        latest = self._latest
        for device_id, channel, ts_us, value in zip(
            rows.device_id, rows.channel, rows.ts_us, rows.value, strict=True
        ):
            key = (device_id, channel)
            stored = latest.get(key)
            if stored is None or ts_us > stored[0]:
                latest[key] = (int(ts_us), float(value))

    async def load_latest(self) -> LatestRows:
        keys = sorted(self._latest)  # sorting keys alone is much cheaper than whole items
        stored = [self._latest[key] for key in keys]
        return LatestRows(
            [device_id for device_id, _ in keys],
            [channel for _, channel in keys],
            [ts_us for ts_us, _ in stored],
            [value for _, value in stored],
        )

    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            self._dead_ids += 1
            self._dead.append(msgspec.structs.replace(letter, id=self._dead_ids))

    async def list_dead_letters(
        self, *, limit: int = 100, before_id: int | None = None
    ) -> list[DeadLetter]:
        # Ids only grow, but retention leaves gaps: find the page by id, not by position.
        end = len(self._dead)
        if before_id is not None:
            end = bisect.bisect_left(self._dead, before_id, key=lambda d: d.id)
        start = max(0, end - max(0, limit))
        return self._dead[start:end][::-1]

    async def count_dead_letters(self) -> int:
        return len(self._dead)

    async def delete_dead_letters(self, received_before: float, limit: int = 10_000) -> int:
        kept: list[DeadLetter] = []
        dropped = 0
        for d in self._dead:
            if d.received_at < received_before and dropped < limit:
                dropped += 1
            else:
                kept.append(d)
        self._dead = kept
        return dropped

    async def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            self._alerts[alert.id] = _StoredAlert(
                alert.first_seen,
                alert.id,
                alert.scenario,
                alert.areas.village if alert.areas else None,
                alert.active,
                _alert_encoder.encode(alert),
            )

    async def get_alert(self, alert_id: str) -> Alert | None:
        stored = self._alerts.get(alert_id)
        return None if stored is None else _alert_decoder.decode(stored.doc)

    async def list_alerts(
        self,
        *,
        scenario: str | None = None,
        area: str | None = None,
        active: bool | None = None,
        limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[Alert]:
        found = [
            a
            for a in self._alerts.values()
            if (scenario is None or a.scenario == scenario)
            and (area is None or (a.village is not None and a.village.startswith(area)))
            and (active is None or a.active == active)
            and (before is None or (a.first_seen, a.id) < before)
        ]
        found.sort(key=lambda a: (a.first_seen, a.id), reverse=True)
        return [_alert_decoder.decode(a.doc) for a in found[: max(0, limit)]]

    async def set_area_state(self, code: str, state: str, entry: AuditEntry) -> None:
        # An explicit row is kept whatever the state, "daily" included: whether an area back
        # to daily is forgotten is the caller's decision, not the store's.
        _check_audit_entry(entry)  # before anything changes: both land, or neither
        self._area_states[code] = state
        self._append_audit_entry(entry)

    async def load_area_states(self) -> dict[str, str]:
        return dict(sorted(self._area_states.items()))

    async def set_cell_owner(self, cell: str, owner: str | None, entry: AuditEntry) -> None:
        _check_audit_entry(entry)  # before anything changes: both land, or neither
        if owner is None:
            self._cell_owners.pop(cell, None)
        else:
            self._cell_owners[cell] = owner
        self._append_audit_entry(entry)

    async def load_cell_owners(self) -> dict[str, str]:
        return dict(sorted(self._cell_owners.items()))

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        for entry in entries:  # a bad entry refuses the whole batch, as a transaction would
            _check_audit_entry(entry)
        for entry in entries:
            self._append_audit_entry(entry)

    def _append_audit_entry(self, entry: AuditEntry) -> None:
        self._audit.append(msgspec.structs.replace(entry, id=len(self._audit) + 1))

    async def list_audit(
        self, *, subject: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEntry]:
        # ids are 1..n, so an id is also its position plus one
        end = len(self._audit)
        if before_id is not None:
            end = max(0, min(before_id - 1, end))
        found: list[AuditEntry] = []
        for entry in reversed(self._audit[:end]):
            if len(found) >= limit:
                break
            if subject is None or entry.subject == subject:
                found.append(entry)
        return found

    async def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    async def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)
