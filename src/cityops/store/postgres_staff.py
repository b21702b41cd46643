"""The roster's changes in the PostgreSQL store (see staff_rows.py)."""

from __future__ import annotations

from typing import Any

import psycopg

from cityops.store.staff_rows import StaffRecord, from_row, row, saved, stale
from cityops.store.values import AuditEntry


class PostgresStaff:
    """Mixed into `PostgresStore`: uses its `_connection`, `_schema_quoted` and `_sql`."""

    _connection: Any
    _schema_quoted: str
    _sql: dict[str, str]

    async def put_staff(self, record: StaffRecord, entry: AuditEntry, *,
                        expect_version: int) -> StaffRecord:
        from cityops.store.postgres import _audit_row  # the host module imports this one

        out = saved(record, expect_version)
        person_id, version, active, at, doc = row(out)
        s = self._schema_quoted
        try:
            async with self._connection(write=True) as conn:  # one transaction for both
                if expect_version == 0:
                    cur = await conn.execute(
                        f"INSERT INTO {s}.staff (id, version, active, changed_at, doc) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                        (person_id, version, active, at, doc))
                else:
                    cur = await conn.execute(
                        f"UPDATE {s}.staff SET version = %s, active = %s, changed_at = %s, "
                        "doc = %s WHERE id = %s AND version = %s",
                        (version, active, at, doc, person_id, expect_version))
                if cur.rowcount != 1:
                    raise stale(person_id, expect_version)
                await conn.execute(self._sql["insert_audit"], _audit_row(entry))
        except psycopg.errors.IntegrityError as error:
            raise ValueError(f"audit entry refused: {error}") from error
        return out

    async def load_staff(self) -> list[StaffRecord]:
        async with self._connection() as conn:
            cursor = await conn.execute(
                f"SELECT version, active, changed_at, doc::text FROM {self._schema_quoted}.staff "
                "ORDER BY seq")
            return [from_row(*r) for r in await cursor.fetchall()]
