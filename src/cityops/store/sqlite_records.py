"""The records table of the SQLite store (see record_rows.py), written by its one writer."""

from __future__ import annotations

import sqlite3

import msgspec

from cityops.store import record_sql as q
from cityops.store.base import DuplicateKey
from cityops.store.incident_rows import StaleVersion
from cityops.store.record_rows import Record, Sealing, check_record
from cityops.store.sqlite_incidents import SQLITE


class SQLiteRecords(Sealing):
    """Mixed into `SQLiteStore`: uses its `_write` and `_read`."""

    async def put_record(self, rec: Record, *, expect_version: int | None = None) -> Record:
        check_record(rec)
        version = (expect_version or 0) + 1
        doc = bytes(self._sealed(rec).doc).decode()

        def apply(conn: sqlite3.Connection) -> None:
            try:
                if expect_version is None:
                    conn.execute(q.insert(SQLITE, ""), q.row(rec, version, doc))
                    return
                cur = conn.execute(q.update(SQLITE, ""),
                                   q.update_params(rec, version, doc, expect_version))
            except sqlite3.IntegrityError:
                raise DuplicateKey(f"{rec.kind} {rec.id} (or its unique key) exists") from None
            if cur.rowcount != 1:
                raise StaleVersion(f"{rec.kind} {rec.id} was changed by someone else; read it "
                                   "again")

        await self._write(apply)
        return msgspec.structs.replace(rec, version=version, doc=bytes(rec.doc))

    async def get_record(self, kind: str, record_id: str) -> Record | None:
        sql = f"SELECT {q.COLUMNS} FROM records WHERE kind = ? AND id = ?"
        rows = await self._read(lambda conn: conn.execute(sql, (kind, record_id)).fetchall())
        return self._opened(q.record_of(rows[0])) if rows else None

    async def find_records(
        self, kind: str, *, owner: str | None = None, status: str | None = None,
        due_before: float | None = None, unique: str | None = None, limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[Record]:
        sql, params = q.find(SQLITE, "", kind, owner, status, due_before, unique, limit, before)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [self._opened(q.record_of(r)) for r in rows]

    async def delete_record(self, kind: str, record_id: str, *,
                            expect_version: int | None = None) -> bool:
        sql, params = q.delete("?", "", kind, record_id, expect_version)
        return await self._write(lambda conn: conn.execute(sql, params).rowcount > 0)
