"""The records table of the PostgreSQL store (see record_rows.py)."""

from __future__ import annotations

import msgspec
import psycopg

from cityops.store import record_sql as q
from cityops.store.base import DuplicateKey
from cityops.store.incident_rows import StaleVersion
from cityops.store.postgres_incidents import POSTGRES
from cityops.store.record_rows import Record, Sealing, check_record


class PostgresRecords(Sealing):
    """Mixed into `PostgresStore`: uses its `_connection` and `_schema_quoted`."""

    async def put_record(self, rec: Record, *, expect_version: int | None = None) -> Record:
        check_record(rec)
        version = (expect_version or 0) + 1
        doc = bytes(self._sealed(rec).doc).decode()
        p = f"{self._schema_quoted}."
        async with self._connection(write=True) as conn:
            try:
                if expect_version is None:
                    await conn.execute(q.insert(POSTGRES, p), q.row(rec, version, doc))
                else:
                    cur = await conn.execute(q.update(POSTGRES, p),
                                             q.update_params(rec, version, doc, expect_version))
                    if cur.rowcount != 1:
                        raise StaleVersion(f"{rec.kind} {rec.id} was changed by someone else; "
                                           "read it again")
            except psycopg.errors.UniqueViolation:
                raise DuplicateKey(f"{rec.kind} {rec.id} (or its unique key) exists") from None
        return msgspec.structs.replace(rec, version=version, doc=bytes(rec.doc))

    async def get_record(self, kind: str, record_id: str) -> Record | None:
        p = f"{self._schema_quoted}."
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {q.COLUMNS} FROM {p}records WHERE kind = %s AND id = %s",
                (kind, record_id))
            row = await cur.fetchone()
        return self._opened(q.record_of(row)) if row else None

    async def find_records(
        self, kind: str, *, owner: str | None = None, status: str | None = None,
        due_before: float | None = None, unique: str | None = None, limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[Record]:
        sql, params = q.find(POSTGRES, f"{self._schema_quoted}.", kind, owner, status,
                             due_before, unique, limit, before)
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            rows = await cur.fetchall()
        return [self._opened(q.record_of(r)) for r in rows]

    async def delete_record(self, kind: str, record_id: str, *,
                            expect_version: int | None = None) -> bool:
        sql, params = q.delete("%s", f"{self._schema_quoted}.", kind, record_id, expect_version)
        async with self._connection(write=True) as conn:
            cur = await conn.execute(sql, params)
            return cur.rowcount > 0
