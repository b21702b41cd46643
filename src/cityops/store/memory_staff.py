"""The roster's changes in memory: the twin of the SQL stores' `staff` table."""

from __future__ import annotations

from collections.abc import Callable

from cityops.store.staff_rows import StaffRecord, saved, stale
from cityops.store.values import AuditEntry


class MemoryStaff:
    """Mixed into `MemoryStore`: uses its audit trail (`_append_audit_entry`)."""

    _append_audit_entry: Callable[[AuditEntry], None]

    def __init__(self) -> None:
        self._staff: dict[str, StaffRecord] = {}  # first-insertion order, as the tables' seq

    async def put_staff(self, record: StaffRecord, entry: AuditEntry, *,
                        expect_version: int) -> StaffRecord:
        out = saved(record, expect_version)
        stored = self._staff.get(record.person.id)
        if (stored.version if stored is not None else 0) != expect_version:
            raise stale(record.person.id, expect_version)
        from cityops.store.memory import _check_audit_entry  # the host module imports this one

        _check_audit_entry(entry)  # before anything changes: both land, or neither
        self._staff[record.person.id] = out
        self._append_audit_entry(entry)
        return out

    async def load_staff(self) -> list[StaffRecord]:
        return list(self._staff.values())
