"""The incident statements both SQL stores run: one text, two dialects (placeholders, schema
prefix, and how a village code prefix is tested)."""

from __future__ import annotations

from typing import Any

from cityops.domain.incidents.model import OPEN, Status
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


OPEN_STATUSES = tuple(s.value for s in Status if s in OPEN)
_CLOSED = ", ".join(f"'{s}'" for s in CLOSED_STATUSES)
# The predicate of the open-case indexes, word for word: SQLite uses a partial index only for
# a query that repeats its WHERE term.
OPEN_ONLY = f"i.status NOT IN ({_CLOSED})"
AREA_LEVELS = ("district", "town", "village")
AREA_INDEXES = tuple((level, f"{level}, reported_at, id, status, category")
                     for level in AREA_LEVELS)
# (name, columns) of the open-case indexes: time order alone, or after one filter's column,
# then the columns the open-case filters test, so that they are tested in the index.
OPEN_INDEXES = (
    ("recent", "reported_at, id, status, late_at"),
    *((c, f"{c}, reported_at, id, status, late_at")
      for c in ("category", *AREA_LEVELS)),
)


def statuses_of(f: IncidentFilter) -> tuple[str, ...] | None:
    """The statuses a filter lets through, or None when it does not narrow them."""
    if f.status:
        return f.status
    if f.open or f.overdue_at is not None:  # an overdue case is an open one
        return OPEN_STATUSES
    if f.open is False:
        return CLOSED_STATUSES
    return None


def list_query(
    d: Dialect, p: str, f: IncidentFilter, limit: int, before: tuple[float, str] | None
) -> tuple[str, list[Any]]:
    """The SELECT of `list_incidents`: newest report first.

    The page's keys are found first, on the indexes alone, and only the page's documents are
    read: a filter an index cannot answer by itself then costs index entries, not a fetch of
    each passed-over case (which is what a PostgreSQL plan otherwise does).

    Which rows lead follows from how a city's cases are spread: nearly all of them are
    closed (a year's archive), the open ones a small backlog. So a department's filter walks
    the department's rows in time order (its key) when closed cases may be among the
    answers, and they come at once; when only open (or only cancelled) cases are wanted, the
    cases lead, in time order, and each is checked for the department: that is bounded by
    the backlog, where the department's walk could pass a year's archive before it found a
    page. For the same reason a filter that wants open cases only says so in the open-case
    indexes' own words, so that the backlog, or an area's or a category's share of it, is an
    index of its own."""
    m = d.mark
    where: list[str] = []
    params: list[Any] = []
    statuses = statuses_of(f)
    if f.department is not None and (statuses is None or "closed" in statuses):
        source = (f"{p}incident_departments AS x JOIN {p}incidents AS i ON i.id = x.incident_id")
        where.append(f"x.department = {m}")
        params.append(f.department)
        keys = "x.incident_id AS id, x.reported_at"
        order = "x.reported_at DESC, x.incident_id DESC"
        key = "(x.reported_at, x.incident_id)"
    else:
        source = f"{p}incidents AS i"
        keys = "i.id, i.reported_at"
        order = "i.reported_at DESC, i.id DESC"
        key = "(i.reported_at, i.id)"
        if f.department is not None:
            where.append(_has_department(p, m))
            params.append(f.department)
    _narrow(d, p, f, where, params)
    if before is not None:
        where.append(f"{key} < ({m}, {m})")
        params += [before[0], before[1]]
    page = (f"SELECT {keys} FROM {source} {'WHERE ' + ' AND '.join(where) if where else ''} "
            f"ORDER BY {order} LIMIT {m}")
    sql = (f"SELECT i.doc FROM ({page}) AS k JOIN {p}incidents AS i ON i.id = k.id "
           "ORDER BY k.reported_at DESC, k.id DESC")
    return sql, [*params, max(0, limit)]


def _narrow(d: Dialect, p: str, f: IncidentFilter, where: list[str], params: list[Any]) -> None:
    """The filter's terms on the case row `i`, but its department: appended to `where` and
    `params`."""
    m = d.mark
    statuses = statuses_of(f)
    if f.status:
        where.append(f"i.status IN ({', '.join([m] * len(f.status))})")
        params += list(f.status)
    if f.open is False:
        where.append(f"i.status IN ({_CLOSED})")
    elif f.open or not set(statuses or CLOSED_STATUSES) & set(CLOSED_STATUSES):
        where.append(OPEN_ONLY)
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
    if f.scope_areas or f.scope_departments:
        ors: list[str] = []
        for code in f.scope_areas:
            clause, values = _area(d, code)
            ors.append(clause)
            params += values
        for dept in f.scope_departments:
            ors.append(_has_department(p, m, one_of_several=True))
            params.append(dept)
        where.append("(" + " OR ".join(ors) + ")")


def count_query(d: Dialect, p: str, f: IncidentFilter) -> tuple[str, list[Any]]:
    """The SELECT of `count_incidents`: how many cases `list_incidents` would return with no
    limit. The screens ask it every few seconds, mostly of the open backlog (open, overdue, by
    status, within a scope), which the open-case indexes answer without a case row read: the
    filter says "open" in those indexes' own words, as `list_query` does."""
    m = d.mark
    where: list[str] = []
    params: list[Any] = []
    if f.department is not None:
        where.append(_has_department(p, m))
        params.append(f.department)
    _narrow(d, p, f, where, params)
    return (f"SELECT COUNT(*) FROM {p}incidents AS i "
            f"{'WHERE ' + ' AND '.join(where) if where else ''}", params)


def _has_department(p: str, m: str, *, one_of_several: bool = False) -> str:
    # The whole key of the department row: probes made while walking cases in time order
    # land next to each other in the table, where probing by incident id lands anywhere.
    # (A department row carries its case's reported_at: both are written from one Columns.)
    rows = (f"FROM {p}incident_departments AS s WHERE s.department = {m} "
            "AND s.reported_at = i.reported_at AND s.incident_id = i.id")
    if one_of_several:
        # Not EXISTS: PostgreSQL turns an EXISTS that is one alternative of an OR into a
        # hashed subplan, which reads all of the department's rows before the first case,
        # where the page needs a probe for each of the few cases it passes.
        return f"(SELECT 1 {rows} LIMIT 1) IS NOT NULL"
    return f"EXISTS (SELECT 1 {rows})"


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


def move_report(d: Dialect, p: str) -> str:
    m = d.mark
    return f"UPDATE {p}incident_reports SET incident_id = {m} WHERE key = {m} AND incident_id = {m}"


def due_query(d: Dialect, p: str) -> str:
    m = d.mark
    return (f"SELECT id FROM {p}incidents WHERE next_due IS NOT NULL AND next_due <= {m} "
            f"ORDER BY next_due LIMIT {m}")


def period_query(d: Dialect, p: str) -> str:
    m = d.mark
    closed = ", ".join(f"'{s}'" for s in CLOSED_STATUSES)
    return (f"SELECT doc FROM {p}incidents WHERE reported_at < {m} "
            f"AND (status NOT IN ({closed}) OR updated_at >= {m})")
