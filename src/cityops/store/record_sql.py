"""The records statements both SQL stores run (see record_rows.py)."""

from __future__ import annotations

from typing import Any

from cityops.store.alert_query import Dialect
from cityops.store.record_rows import Record

COLUMNS = "kind, id, owner, status, due, uniq, created, updated, version, doc"


def row(rec: Record, version: int, doc: Any) -> tuple[Any, ...]:
    return (rec.kind, rec.id, rec.owner, rec.status, rec.due, rec.unique, rec.created,
            rec.updated, version, doc)


def insert(d: Dialect, p: str) -> str:
    return f"INSERT INTO {p}records ({COLUMNS}) VALUES ({', '.join([d.mark] * 10)})"


def update(d: Dialect, p: str) -> str:
    m = d.mark
    return (f"UPDATE {p}records SET owner = {m}, status = {m}, due = {m}, uniq = {m}, "
            f"created = {m}, updated = {m}, version = {m}, doc = {m} "
            f"WHERE kind = {m} AND id = {m} AND version = {m}")


def update_params(rec: Record, version: int, doc: Any, expect: int) -> tuple[Any, ...]:
    return (rec.owner, rec.status, rec.due, rec.unique, rec.created, rec.updated, version, doc,
            rec.kind, rec.id, expect)


def find(d: Dialect, p: str, kind: str, owner: str | None, status: str | None,
         due_before: float | None, unique: str | None, limit: int,
         before: tuple[float, str] | None) -> tuple[str, list[Any]]:
    m = d.mark
    where, params = [f"kind = {m}"], [kind]
    for column, value in (("owner", owner), ("status", status), ("uniq", unique)):
        if value is not None:
            where.append(f"{column} = {m}")
            params.append(value)
    if due_before is not None:
        where.append(f"due <= {m}")
        params.append(due_before)
        order = "due, id"
    else:
        order = "created DESC, id DESC"
    if before is not None:
        where.append(f"(created, id) < ({m}, {m})")
        params += [before[0], before[1]]
    return (f"SELECT {COLUMNS} FROM {p}records WHERE {' AND '.join(where)} "
            f"ORDER BY {order} LIMIT {m}", [*params, max(0, limit)])


def delete(mark: str, p: str, kind: str, record_id: str, expect_version: int | None
           ) -> tuple[str, list[Any]]:
    sql = f"DELETE FROM {p}records WHERE kind = {mark} AND id = {mark}"
    params: list[Any] = [kind, record_id]
    if expect_version is not None:
        sql += f" AND version = {mark}"
        params.append(expect_version)
    return sql, params


def record_of(r: tuple[Any, ...]) -> Record:
    kind, id_, owner, status, due, uniq, created, updated, version, doc = r
    return Record(kind=kind, id=id_, owner=owner, status=status, due=due, unique=uniq,
                  created=created, updated=updated, version=version,
                  doc=doc.encode() if isinstance(doc, str) else bytes(doc))


def own_open311_by_citizen(p: str) -> str:
    """Schema 5: an Open311 request filed with a key that names a citizen is owned by that
    citizen (`open311.service_requests.owner_of`), no longer by the key, so that a citizen's
    list of reports finds it from any key of theirs. Revoked keys count: the request was
    theirs all the same."""
    return (f"UPDATE {p}records SET owner = 'citizen:' || (SELECT k.name FROM {p}api_keys k "
            f"WHERE k.id = {p}records.owner) "
            f"WHERE kind = 'open311.request' AND owner IN (SELECT id FROM {p}api_keys "
            "WHERE role = 'citizen' AND name <> '')")
