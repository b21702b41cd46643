"""Incidents in memory: the twin of the SQL stores' incident tables, kept as JSON documents so
that what comes back is what a round trip through SQLite or PostgreSQL gives."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from cityops.domain.incidents.model import Event, Incident, Report
from cityops.store.base import DuplicateKey
from cityops.store.incident_rows import (
    CLOSED_STATUSES,
    Columns,
    IncidentFilter,
    StaleVersion,
    columns_of,
    decode_event,
    decode_incident,
    decode_report,
    encode,
    matches,
)


class MemoryIncidents:
    def __init__(self) -> None:
        self._incidents: dict[str, tuple[Columns, bytes]] = {}
        self._events: dict[str, list[bytes]] = {}
        self._reports: dict[str, list[bytes]] = {}
        self._report_owner: dict[str, str] = {}

    async def save_incident(
        self,
        incident: Incident,
        events: Sequence[Event] = (),
        reports: Sequence[Report] = (),
        *,
        expect_version: int | None = None,
    ) -> Incident:
        stored = self._incidents.get(incident.id)
        if expect_version is None:
            if stored is not None:
                raise DuplicateKey(f"incident {incident.id} exists")
        elif stored is None or stored[0].version != expect_version:
            raise StaleVersion(f"incident {incident.id} was changed by someone else; read it again")
        clash = [r.key for r in reports if r.key in self._report_owner]
        if clash:
            raise DuplicateKey(f"report {clash[0]} is already filed")
        saved = msgspec.structs.replace(incident, version=(expect_version or 0) + 1)
        self._put(saved)
        self._events.setdefault(saved.id, []).extend(encode(e) for e in events)
        for r in reports:
            self._report_owner[r.key] = saved.id
            self._reports.setdefault(saved.id, []).append(encode(r))
        return saved

    def _put(self, incident: Incident) -> None:
        self._incidents[incident.id] = (columns_of(incident), encode(incident))

    async def insert_incidents(self, incidents: Sequence[Incident]) -> None:
        for inc in incidents:
            if inc.id in self._incidents:
                raise DuplicateKey(f"incident {inc.id} exists")
        for inc in incidents:
            self._put(msgspec.structs.replace(inc, version=max(1, inc.version)))

    async def get_incident(self, incident_id: str) -> Incident | None:
        stored = self._incidents.get(incident_id)
        return None if stored is None else decode_incident(stored[1])

    async def incident_of_report(self, key: str) -> str | None:
        return self._report_owner.get(key)

    async def list_incidents(
        self, f: IncidentFilter, *, limit: int = 100, before: tuple[float, str] | None = None
    ) -> list[Incident]:
        found = [
            (c, doc) for c, doc in self._incidents.values()
            if matches(c, f) and (before is None or (c.reported_at, c.id) < before)
        ]
        found.sort(key=lambda item: (item[0].reported_at, item[0].id), reverse=True)
        return [decode_incident(doc) for _, doc in found[: max(0, limit)]]

    async def count_incidents(self, f: IncidentFilter) -> int:
        return sum(1 for c, _ in self._incidents.values() if matches(c, f))

    async def open_incidents_in_cells(
        self, category: str, cells: Sequence[str], since: float
    ) -> list[Incident]:
        wanted = set(cells)
        return [
            decode_incident(doc) for c, doc in self._incidents.values()
            if c.category == category and c.cell in wanted and c.status not in CLOSED_STATUSES
            and c.updated_at >= since
        ]

    async def due_incidents(self, now: float, limit: int = 100) -> list[str]:
        due = sorted((c.next_due, c.id) for c, _ in self._incidents.values()
                     if c.next_due is not None and c.next_due <= now)
        return [incident_id for _, incident_id in due[:limit]]

    async def claim_due_incidents(self, now: float, limit: int = 100,
                                  lease_s: float = 30.0) -> list[str]:
        """One process owns this store, so there is no other scheduler to keep out."""
        return await self.due_incidents(now, limit)

    async def incident_events(self, incident_id: str) -> list[Event]:
        return [decode_event(e) for e in self._events.get(incident_id, [])]

    async def incident_reports(self, incident_id: str) -> list[Report]:
        return [decode_report(r) for r in self._reports.get(incident_id, [])]

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
        stored = self._incidents.get(kept.id)
        if stored is None or stored[0].version != expect_version:
            raise StaleVersion(f"incident {kept.id} was changed by someone else; read it again")
        if self._report_owner.get(report_key) != kept.id:
            raise StaleVersion(f"report {report_key} is no longer filed in incident {kept.id}")
        if new.id in self._incidents:
            raise DuplicateKey(f"incident {new.id} exists")
        docs = self._reports[kept.id]
        doc = next(d for d in docs if decode_report(d).key == report_key)
        saved_kept = await self.save_incident(kept, kept_events, expect_version=expect_version)
        saved_new = await self.save_incident(new, new_events)
        docs.remove(doc)
        self._reports.setdefault(new.id, []).append(doc)
        self._report_owner[report_key] = new.id
        return saved_kept, saved_new

    async def incidents_for_period(self, start: float, end: float) -> list[Incident]:
        return [
            decode_incident(doc) for c, doc in self._incidents.values()
            if c.reported_at < end and (c.status not in CLOSED_STATUSES or c.updated_at >= start)
        ]
