"""The incident tables of the PostgreSQL store (the same contract as SQLite's).

The timeline is append-only here too: a trigger refuses UPDATE and DELETE. Bulk loads go
through COPY. The escalation scheduler's claim of due cases uses `FOR UPDATE SKIP LOCKED` so
that several act processes never escalate the same order twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import psycopg

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

POSTGRES = Dialect("%s", lambda code: ("starts_with(village, %s)", [code]), bool)


class PostgresIncidents:
    """Mixed into `PostgresStore`: uses its `_connection` and `_schema_quoted`."""

    @property
    def _p(self) -> str:
        return f"{self._schema_quoted}."

    async def save_incident(
        self,
        incident: Incident,
        events: Sequence[Event] = (),
        reports: Sequence[Report] = (),
        *,
        expect_version: int | None = None,
    ) -> Incident:
        saved = msgspec.structs.replace(incident, version=(expect_version or 0) + 1)
        async with self._connection(write=True) as conn:
            await self._save(conn, saved, events, reports, expect_version)
        return saved

    async def _save(self, conn: psycopg.AsyncConnection, saved: Incident,
                    events: Sequence[Event], reports: Sequence[Report],
                    expect_version: int | None) -> None:
        """The statements of one save, on a connection whose transaction the caller holds."""
        c = columns_of(saved)
        doc = encode(saved).decode()
        p = self._p
        try:
            if expect_version is None:
                await conn.execute(q.insert_incident(POSTGRES, p), q.row_of(c, doc))
            else:
                cur = await conn.execute(q.update_incident(POSTGRES, p),
                                         q.update_params(c, doc, expect_version))
                if cur.rowcount != 1:
                    raise StaleVersion(
                        f"incident {saved.id} was changed by someone else; read it again")
                await conn.execute(f"DELETE FROM {p}incident_departments "
                                   "WHERE incident_id = %s", (saved.id,))
            async with conn.cursor() as cur:
                if c.departments:
                    await cur.executemany(_insert_dept(p),
                                          [(d, c.reported_at, c.id) for d in c.departments])
                if events:
                    await cur.executemany(
                        f"INSERT INTO {p}incident_events (incident_id, at, doc) "
                        "VALUES (%s, %s, %s)",
                        [(saved.id, e.at, encode(e).decode()) for e in events])
                if reports:
                    await cur.executemany(
                        f"INSERT INTO {p}incident_reports (key, incident_id, at, doc) "
                        "VALUES (%s, %s, %s, %s)",
                        [(r.key, saved.id, r.at, encode(r).decode()) for r in reports])
        except psycopg.errors.UniqueViolation as error:
            raise DuplicateKey(f"incident {saved.id} or one of its reports exists: "
                               f"{error.diag.message_detail or error}") from None

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
        # One connection, one transaction: the pool rolls it all back on any refusal.
        async with self._connection(write=True) as conn:
            await self._save(conn, saved_kept, kept_events, (), expect_version)
            await self._save(conn, saved_new, new_events, (), None)
            cur = await conn.execute(q.move_report(POSTGRES, self._p),
                                     (new.id, report_key, kept.id))
            if cur.rowcount != 1:
                raise StaleVersion(f"report {report_key} is no longer filed in incident "
                                   f"{kept.id}")
        return saved_kept, saved_new

    async def insert_incidents(self, incidents: Sequence[Incident]) -> None:
        p = self._p
        async with self._connection(write=True) as conn:
            async with conn.cursor() as cur:
                try:
                    async with cur.copy(f"COPY {p}incidents ({q.INCIDENT_COLUMNS}) "
                                        "FROM STDIN") as copy:
                        for inc in incidents:
                            inc = msgspec.structs.replace(inc, version=max(1, inc.version))
                            c = columns_of(inc)
                            await copy.write_row(q.row_of(c, encode(inc).decode()))
                    async with cur.copy(f"COPY {p}incident_departments "
                                        "(department, reported_at, incident_id) FROM STDIN") as copy:
                        for inc in incidents:
                            for d in inc.departments:
                                await copy.write_row((d, inc.reported_at, inc.id))
                except psycopg.errors.UniqueViolation as error:
                    raise DuplicateKey(f"an incident id is already stored: {error}") from None

    async def _docs(self, sql: str, params) -> list:
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def get_incident(self, incident_id: str) -> Incident | None:
        rows = await self._docs(f"SELECT doc::text FROM {self._p}incidents WHERE id = %s",
                                (incident_id,))
        return decode_incident(rows[0][0]) if rows else None

    async def incident_of_report(self, key: str) -> str | None:
        rows = await self._docs(
            f"SELECT incident_id FROM {self._p}incident_reports WHERE key = %s", (key,))
        return rows[0][0] if rows else None

    async def list_incidents(
        self, f: IncidentFilter, *, limit: int = 100, before: tuple[float, str] | None = None
    ) -> list[Incident]:
        sql, params = q.list_query(POSTGRES, self._p, f, limit, before)
        rows = await self._docs(sql.replace("SELECT i.doc ", "SELECT i.doc::text ", 1), params)
        return [decode_incident(doc) for (doc,) in rows]

    async def count_incidents(self, f: IncidentFilter) -> int:
        rows = await self._docs(*q.count_query(POSTGRES, self._p, f))
        return int(rows[0][0])

    async def open_incidents_in_cells(
        self, category: str, cells: Sequence[str], since: float
    ) -> list[Incident]:
        if not cells:
            return []
        sql = q.cells_query(POSTGRES, self._p, len(cells)).replace("SELECT doc ",
                                                                   "SELECT doc::text ", 1)
        rows = await self._docs(sql, [*cells, category, since])
        return [decode_incident(doc) for (doc,) in rows]

    async def due_incidents(self, now: float, limit: int = 100) -> list[str]:
        rows = await self._docs(q.due_query(POSTGRES, self._p), (now, limit))
        return [incident_id for (incident_id,) in rows]

    async def claim_due_incidents(self, now: float, limit: int = 100,
                                  lease_s: float = 30.0) -> list[str]:
        """Due cases no other scheduler holds, each now held by the caller for `lease_s`.

        SKIP LOCKED lets two act nodes that claim at the same moment take disjoint sets
        instead of queueing on each other's rows; the lease keeps a case from being taken
        again while its escalation is under way (a node that dies holding one only delays
        it by the lease). The version check on save still refuses a double move."""
        p = self._p
        sql = (f"UPDATE {p}incidents AS i SET claimed_until = %s FROM ("
               f"SELECT id FROM {p}incidents WHERE next_due IS NOT NULL AND next_due <= %s "
               "AND (claimed_until IS NULL OR claimed_until <= %s) "
               "ORDER BY next_due LIMIT %s FOR UPDATE SKIP LOCKED) AS d "
               "WHERE i.id = d.id RETURNING i.id, i.next_due")
        async with self._connection(write=True) as conn:
            cur = await conn.execute(sql, (now + lease_s, now, now, limit))
            rows = await cur.fetchall()
        return [incident_id for incident_id, _ in sorted(rows, key=lambda r: (r[1], r[0]))]

    async def incident_events(self, incident_id: str) -> list[Event]:
        rows = await self._docs(f"SELECT doc::text FROM {self._p}incident_events "
                                "WHERE incident_id = %s ORDER BY id", (incident_id,))
        return [decode_event(doc) for (doc,) in rows]

    async def incident_reports(self, incident_id: str) -> list[Report]:
        rows = await self._docs(f"SELECT doc::text FROM {self._p}incident_reports "
                                "WHERE incident_id = %s ORDER BY at, key", (incident_id,))
        return [decode_report(doc) for (doc,) in rows]

    async def incidents_for_period(self, start: float, end: float) -> list[Incident]:
        sql = q.period_query(POSTGRES, self._p).replace("SELECT doc ", "SELECT doc::text ", 1)
        rows = await self._docs(sql, (end, start))
        return [decode_incident(doc) for (doc,) in rows]


def _insert_dept(p: str) -> str:
    return (f"INSERT INTO {p}incident_departments (department, reported_at, incident_id) "
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING")
