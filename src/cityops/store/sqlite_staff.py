"""The roster's changes in the SQLite store (see staff_rows.py), written by its one writer."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from cityops.store.staff_rows import StaffRecord, from_row, row, saved, stale
from cityops.store.values import AuditEntry

INSERT = """INSERT INTO staff (id, version, active, changed_at, doc) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING"""
UPDATE = """UPDATE staff SET version = ?, active = ?, changed_at = ?, doc = ?
WHERE id = ? AND version = ?"""


class SQLiteStaff:
    """Mixed into `SQLiteStore`: uses its `_write` and `_read`."""

    _write: Callable[..., Any]
    _read: Callable[..., Any]

    async def put_staff(self, record: StaffRecord, entry: AuditEntry, *,
                        expect_version: int) -> StaffRecord:
        from cityops.store.sqlite import _insert_audit  # the host module imports this one

        out = saved(record, expect_version)
        person_id, version, active, at, doc = row(out)

        def apply(conn: sqlite3.Connection) -> None:
            if expect_version == 0:
                cur = conn.execute(INSERT, (person_id, version, active, at, doc))
            else:
                cur = conn.execute(UPDATE, (version, active, at, doc, person_id, expect_version))
            if cur.rowcount != 1:
                raise stale(person_id, expect_version)
            _insert_audit(conn, [entry])  # failing, it undoes the row too (one savepoint)

        await self._write(apply)
        return out

    async def load_staff(self) -> list[StaffRecord]:
        def query(conn: sqlite3.Connection) -> list[StaffRecord]:
            return [from_row(*r) for r in conn.execute(
                "SELECT version, active, changed_at, doc FROM staff ORDER BY seq")]

        found: list[StaffRecord] = await self._read(query)
        return found
