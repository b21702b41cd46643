"""The incident tables of the SQLite store, written through its one writer thread.

An incident is kept whole as JSON beside the columns it is filtered, sorted and scheduled on;
its departments get a row each (so "every case of the fire department" is an index range);
its timeline and its reports are rows of their own. The timeline is append-only: triggers
refuse any UPDATE or DELETE, so no code path, API or bug can rewrite history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from cityops.domain.incidents.model import Event, Incident, Report
from cityops.store import incident_sql as q
from cityops.store.alert_query import Dialect
from cityops.store.base import DuplicateKey
from cityops.store.incident_rows import (
    IncidentFilter,
    StaleVersion,
    columns_of,
    decode_event,
    decode_incident,
    decode_report,
    encode,
)

SQLITE = Dialect("?", lambda code: ("substr(village, 1, ?) = ?", [len(code), code]), int)


_P = ""  # no schema prefix in SQLite


class SQLiteIncidents:
    """Mixed into `SQLiteStore`: uses its `_write` (the writer thread) and `_read`."""

    async def save_incident(
        self,
        incident: Incident,
        events: Sequence[Event] = (),
        reports: Sequence[Report] = (),
        *,
        expect_version: int | None = None,
    ) -> Incident:
        saved = msgspec.structs.replace(incident, version=(expect_version or 0) + 1)

        def apply(conn: sqlite3.Connection) -> Incident:
            _save(conn, saved, events, reports, expect_version)
            return saved

        return await self._write(apply)

    async def insert_incidents(self, incidents: Sequence[Incident]) -> None:
        rows, depts = [], []
        for inc in incidents:
            inc = msgspec.structs.replace(inc, version=max(1, inc.version))
            c = columns_of(inc)
            rows.append(q.row_of(c, encode(inc).decode()))
            depts += [(d, c.reported_at, c.id) for d in c.departments]

        def apply(conn: sqlite3.Connection) -> None:
            try:
                conn.executemany(q.insert_incident(SQLITE, _P), rows)
            except sqlite3.IntegrityError as error:
                raise DuplicateKey(f"an incident id is already stored: {error}") from None
            conn.executemany(_INSERT_DEPT, depts)

        await self._write(apply)

    async def get_incident(self, incident_id: str) -> Incident | None:
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT doc FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            return None if row is None else row[0]

        doc = await self._read(query)
        return None if doc is None else decode_incident(doc)

    async def incident_of_report(self, key: str) -> str | None:
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT incident_id FROM incident_reports WHERE key = ?",
                               (key,)).fetchone()
            return None if row is None else row[0]

        return await self._read(query)

    async def list_incidents(
        self, f: IncidentFilter, *, limit: int = 100, before: tuple[float, str] | None = None
    ) -> list[Incident]:
        sql, params = q.list_query(SQLITE, _P, f, limit, before)
        docs = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [decode_incident(doc) for (doc,) in docs]

    async def count_incidents(self, f: IncidentFilter) -> int:
        sql, params = q.count_query(SQLITE, _P, f)
        row = await self._read(lambda conn: conn.execute(sql, params).fetchone())
        return int(row[0])

    async def open_incidents_in_cells(
        self, category: str, cells: Sequence[str], since: float
    ) -> list[Incident]:
        if not cells:
            return []
        sql = q.cells_query(SQLITE, _P, len(cells))
        params = [*cells, category, since]
        docs = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [decode_incident(doc) for (doc,) in docs]

    async def due_incidents(self, now: float, limit: int = 100) -> list[str]:
        sql = q.due_query(SQLITE, _P)
        rows = await self._read(lambda conn: conn.execute(sql, (now, limit)).fetchall())
        return [incident_id for (incident_id,) in rows]

    async def claim_due_incidents(self, now: float, limit: int = 100,
                                  lease_s: float = 30.0) -> list[str]:
        """One process owns this store, so there is no other scheduler to keep out."""
        return await self.due_incidents(now, limit)

    async def incident_events(self, incident_id: str) -> list[Event]:
        sql = "SELECT doc FROM incident_events WHERE incident_id = ? ORDER BY id"
        rows = await self._read(lambda conn: conn.execute(sql, (incident_id,)).fetchall())
        return [decode_event(doc) for (doc,) in rows]

    async def incident_reports(self, incident_id: str) -> list[Report]:
        sql = "SELECT doc FROM incident_reports WHERE incident_id = ? ORDER BY at, key"
        rows = await self._read(lambda conn: conn.execute(sql, (incident_id,)).fetchall())
        return [decode_report(doc) for (doc,) in rows]

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
        saved_kept = msgspec.structs.replace(kept, version=expect_version + 1)
        saved_new = msgspec.structs.replace(new, version=1)

        def apply(conn: sqlite3.Connection) -> tuple[Incident, Incident]:
            # One write, so one savepoint: a refusal anywhere undoes all of it.
            _save(conn, saved_kept, kept_events, (), expect_version)
            _save(conn, saved_new, new_events, (), None)
            cur = conn.execute(q.move_report(SQLITE, _P), (new.id, report_key, kept.id))
            if cur.rowcount != 1:
                raise StaleVersion(f"report {report_key} is no longer filed in incident "
                                   f"{kept.id}")
            return saved_kept, saved_new

        return await self._write(apply)

    async def incidents_for_period(self, start: float, end: float) -> list[Incident]:
        sql = q.period_query(SQLITE, _P)
        rows = await self._read(lambda conn: conn.execute(sql, (end, start)).fetchall())
        return [decode_incident(doc) for (doc,) in rows]


_INSERT_DEPT = ("INSERT OR IGNORE INTO incident_departments (department, reported_at, incident_id) "
                "VALUES (?, ?, ?)")


def _save(conn: sqlite3.Connection, inc: Incident, events: Sequence[Event],
          reports: Sequence[Report], expect_version: int | None) -> None:
    c = columns_of(inc)
    doc = encode(inc).decode()
    if expect_version is None:
        try:
            conn.execute(q.insert_incident(SQLITE, _P), q.row_of(c, doc))
        except sqlite3.IntegrityError:
            raise DuplicateKey(f"incident {inc.id} exists") from None
    else:
        cur = conn.execute(q.update_incident(SQLITE, _P), q.update_params(c, doc, expect_version))
        if cur.rowcount != 1:
            raise StaleVersion(f"incident {inc.id} was changed by someone else; read it again")
        conn.execute("DELETE FROM incident_departments WHERE incident_id = ?", (inc.id,))
    conn.executemany(_INSERT_DEPT, [(d, c.reported_at, c.id) for d in c.departments])
    conn.executemany(
        "INSERT INTO incident_events (incident_id, at, doc) VALUES (?, ?, ?)",
        [(inc.id, e.at, encode(e).decode()) for e in events],
    )
    try:
        conn.executemany(
            "INSERT INTO incident_reports (key, incident_id, at, doc) VALUES (?, ?, ?, ?)",
            [(r.key, inc.id, r.at, encode(r).decode()) for r in reports],
        )
    except sqlite3.IntegrityError:
        raise DuplicateKey("a report of this save is already filed") from None


