"""The incident statements both SQL stores run: one text, two dialects (placeholders, schema
prefix, and how a village code prefix is tested)."""

from __future__ import annotations

from typing import Any

from cityops.store.alert_query import AREA_COLUMN_BY_LENGTH, Dialect
from cityops.store.incident_rows import CLOSED_STATUSES, Columns, IncidentFilter

INCIDENT_COLUMNS = ("id, status, category, district, town, village, cell, reported_at, "
                    "updated_at, next_due, late_at, version, doc")


def row_of(c: Columns, doc: Any) -> tuple[Any, ...]:
    return (c.id, c.status, c.category, c.district, c.town, c.village, c.cell, c.reported_at,
            c.updated_at, c.next_due, c.late_at, c.version, doc)


def insert_incident(d: Dialect, p: str) -> str:
    marks = ", ".join([d.mark] * 13)
    return f"INSERT INTO {p}incidents ({INCIDENT_COLUMNS}) VALUES ({marks})"


def update_incident(d: Dialect, p: str) -> str:
    m = d.mark
    return (f"UPDATE {p}incidents SET status = {m}, category = {m}, district = {m}, town = {m}, "
            f"village = {m}, cell = {m}, reported_at = {m}, updated_at = {m}, next_due = {m}, "
            f"late_at = {m}, version = {m}, doc = {m} WHERE id = {m} AND version = {m}")


def update_params(c: Columns, doc: Any, expect_version: int) -> tuple[Any, ...]:
    return (c.status, c.category, c.district, c.town, c.village, c.cell, c.reported_at,
            c.updated_at, c.next_due, c.late_at, c.version, doc, c.id, expect_version)


def list_query(
    d: Dialect, p: str, f: IncidentFilter, limit: int, before: tuple[float, str] | None
) -> tuple[str, list[Any]]:
    """The SELECT of `list_incidents`: newest report first. With a department filter the
    department table leads (its key is ordered by time), otherwise the incident table."""
    m = d.mark
    where: list[str] = []
    params: list[Any] = []
    if f.department is not None:
        source = (f"{p}incident_departments AS x JOIN {p}incidents AS i ON i.id = x.incident_id")
        where.append(f"x.department = {m}")
        params.append(f.department)
        order = "x.reported_at DESC, x.incident_id DESC"
        key = "(x.reported_at, x.incident_id)"
    else:
        source = f"{p}incidents AS i"
        order = "i.reported_at DESC, i.id DESC"
        key = "(i.reported_at, i.id)"
    if f.status:
        where.append(f"i.status IN ({', '.join([m] * len(f.status))})")
        params += list(f.status)
    if f.category is not None:
        where.append(f"i.category = {m}")
        params.append(f.category)
    if f.area is not None:
        clause, values = _area(d, f.area)
        where.append(clause)
        params += values
    if f.overdue_at is not None:
        where.append(f"i.late_at <= {m}")
        params.append(f.overdue_at)
    if f.open is not None:
        closed = ", ".join(f"'{s}'" for s in CLOSED_STATUSES)
        where.append(f"i.status {'NOT IN' if f.open else 'IN'} ({closed})")
    if f.scope_areas or f.scope_departments:
        ors: list[str] = []
        for code in f.scope_areas:
            clause, values = _area(d, code)
            ors.append(clause)
            params += values
        for dept in f.scope_departments:
            ors.append(f"EXISTS (SELECT 1 FROM {p}incident_departments AS s "
                       f"WHERE s.incident_id = i.id AND s.department = {m})")
            params.append(dept)
        where.append("(" + " OR ".join(ors) + ")")
    if before is not None:
        where.append(f"{key} < ({m}, {m})")
        params += [before[0], before[1]]
    sql = (f"SELECT i.doc FROM {source} {'WHERE ' + ' AND '.join(where) if where else ''} "
           f"ORDER BY {order} LIMIT {m}")
    return sql, [*params, max(0, limit)]


def _area(d: Dialect, code: str) -> tuple[str, list[Any]]:
    column = AREA_COLUMN_BY_LENGTH.get(len(code))
    if column is not None:
        return f"i.{column} = {d.mark}", [code]
    clause, values = d.starts_with(code)
    return clause.replace("village", "i.village"), values


def cells_query(d: Dialect, p: str, n_cells: int) -> str:
    m = d.mark
    closed = ", ".join(f"'{s}'" for s in CLOSED_STATUSES)
    return (f"SELECT doc FROM {p}incidents WHERE cell IN ({', '.join([m] * n_cells)}) "
            f"AND category = {m} AND status NOT IN ({closed}) AND updated_at >= {m}")


def due_query(d: Dialect, p: str) -> str:
    m = d.mark
    return (f"SELECT id FROM {p}incidents WHERE next_due IS NOT NULL AND next_due <= {m} "
            f"ORDER BY next_due LIMIT {m}")


def period_query(d: Dialect, p: str) -> str:
    m = d.mark
    closed = ", ".join(f"'{s}'" for s in CLOSED_STATUSES)
    return (f"SELECT doc FROM {p}incidents WHERE reported_at < {m} "
            f"AND (status NOT IN ({closed}) OR updated_at >= {m})")
