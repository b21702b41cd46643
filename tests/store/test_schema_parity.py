"""SQLite's and PostgreSQL's schemas, as the databases themselves report them once a store has
opened, have the same tables, columns and indexes: the two DDL definitions cannot drift apart
unnoticed.

Types are compared in a common vocabulary, since each dialect spells them its own way: SQLite
keeps JSON as TEXT and booleans as INTEGER 0/1. Indexes are compared by table, columns in
order, uniqueness and whether they are partial; the ones a constraint makes are named by each
database its own way, so only explicitly created ones are compared by name too.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

import psycopg

from cityops.store.postgres import split_url
from cityops.store.sqlite import sqlite_path

from .conftest import OpenStore

COMMON_TYPE = {
    "text": "text", "json": "text", "jsonb": "text",
    "integer": "integer", "bigint": "integer", "smallint": "integer", "boolean": "integer",
    "real": "real", "double precision": "real",
}

Columns = dict[str, dict[str, str]]  # table -> column -> common type
Index = tuple[str, tuple[str, ...], bool, bool]  # table, columns, unique, partial


class Schema:
    def __init__(self, columns: Columns, indexes: set[Index], named: set[tuple[str, str]]):
        self.columns, self.indexes, self.named = columns, indexes, named


def sqlite_schema(path: str) -> Schema:
    columns: Columns = {}
    indexes: set[Index] = set()
    named: set[tuple[str, str]] = set()
    with closing(sqlite3.connect(path)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()
            columns[table] = {c[1]: COMMON_TYPE[c[2].lower()] for c in info}
            pk = [c for c in info if c[5]]
            if len(pk) == 1 and pk[0][2].upper() == "INTEGER":
                # A rowid alias: unique by being the rowid, so SQLite lists no index for it.
                indexes.add((table, (pk[0][1],), True, False))
            for _, name, unique, origin, partial in conn.execute(
                    f"PRAGMA index_list({table})"):
                cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({name})"))
                indexes.add((table, cols, bool(unique), bool(partial)))
                if origin == "c":
                    named.add((table, name))
    return Schema(columns, indexes, named)


def _index_columns(indexdef: str) -> tuple[str, ...]:
    # "CREATE [UNIQUE] INDEX name ON s.t USING btree (a, b) [WHERE ...]"
    inside = indexdef.split(" USING ", 1)[1].split("(", 1)[1].rsplit(")", 1)[0]
    if " WHERE " in indexdef:
        inside = indexdef.split(" USING ", 1)[1].split(" WHERE ", 1)[0]
        inside = inside.split("(", 1)[1].rsplit(")", 1)[0]
    return tuple(c.strip().split(" ")[0].strip('"') for c in inside.split(","))


def postgres_schema(url: str) -> Schema:
    conninfo, schema = split_url(url)
    columns: Columns = {}
    indexes: set[Index] = set()
    named: set[tuple[str, str]] = set()
    with psycopg.connect(conninfo) as conn:
        for table, column, data_type in conn.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s", (schema,)):
            columns.setdefault(table, {})[column] = COMMON_TYPE[data_type]
        constraint_indexes = {r[0] for r in conn.execute(
            "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = %s AND c.contype IN ('p', 'u')", (schema,))}
        for table, name, indexdef in conn.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
                (schema,)):
            indexes.add((table, _index_columns(indexdef), indexdef.startswith("CREATE UNIQUE"),
                         " WHERE " in indexdef))
            if name not in constraint_indexes:
                named.add((table, name))
    return Schema(columns, indexes, named)


async def test_sqlite_and_postgres_report_the_same_schema(tmp_path, fresh_postgres_url,
                                                          open_stores: OpenStore) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/state.db"
    pg_url = fresh_postgres_url()
    await open_stores(sqlite_url)
    await open_stores(pg_url)
    lite, pg = sqlite_schema(str(sqlite_path(sqlite_url))), postgres_schema(pg_url)

    assert sorted(lite.columns) == sorted(pg.columns)
    assert ("records", ("kind", "uniq"), True, True) in lite.indexes  # the schema was read
    for table in lite.columns:
        assert lite.columns[table] == pg.columns[table], table
    assert sorted(lite.indexes) == sorted(pg.indexes)
    assert sorted(lite.named) == sorted(pg.named)


def test_the_comparison_sees_what_differs(tmp_path) -> None:
    # The readers themselves: a column's type, an index's columns and uniqueness all show.
    path = str(tmp_path / "x.db")
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b REAL UNIQUE)")
        conn.execute("CREATE INDEX t_a ON t (a, b) WHERE a IS NOT NULL")
    got = sqlite_schema(path)
    assert got.columns == {"t": {"id": "integer", "a": "text", "b": "real"}}
    assert got.indexes == {("t", ("id",), True, False), ("t", ("b",), True, False),
                           ("t", ("a", "b"), False, True)}
    assert got.named == {("t", "t_a")}
    assert _index_columns('CREATE INDEX x ON s.t USING btree (a, "b") WHERE (c IS NOT NULL)') \
        == ("a", "b")


async def test_a_sqlite_file_from_before_the_lease_column_gets_it(tmp_path,
                                                                  open_stores: OpenStore) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    store = await open_stores(url)
    await store.close()
    with closing(sqlite3.connect(sqlite_path(url))) as conn:
        conn.execute("ALTER TABLE incidents DROP COLUMN claimed_until")
    await open_stores(url)
    assert "claimed_until" in sqlite_schema(str(sqlite_path(url))).columns["incidents"]
