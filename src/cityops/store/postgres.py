"""The PostgreSQL store: the same contract as SQLite, for a deployment that already runs a server.

Everything lives in one PostgreSQL schema (default `cityops`, or `?schema=NAME` in the URL), so
several CityOps instances, or test runs, can share a database. Bulk writes go through COPY into
a per-connection temporary staging table and are merged with one INSERT ... ON CONFLICT, which
is an order of magnitude faster than row-by-row statements for 100k rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout, TooManyRequests

from cityops.domain.alerts import Alert
from cityops.domain.city import Device
from cityops.store.device_docs import settled_docs
from cityops.store.alert_query import alerts_query as shared_alerts_query
from cityops.store.base import (
    ApiKeyRecord,
    AuditEntry,
    DeadLetter,
    DuplicateKey,
    LatestRows,
    StoreBusy,
)
from cityops.store import record_sql
from cityops.store.schema import SCHEMA_VERSION
from cityops.store.postgres_incidents import POSTGRES, PostgresIncidents
from cityops.store.postgres_records import PostgresRecords
from cityops.store.postgres_staff import PostgresStaff
from cityops.store.postgres_schema import schema_sql

DEFAULT_SCHEMA = "cityops"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_device_encoder = msgspec.json.Encoder()
_device_decoder = msgspec.json.Decoder(Device)
_devices_decoder = msgspec.json.Decoder(list[Device])
_alert_encoder = msgspec.json.Encoder()
_alert_decoder = msgspec.json.Decoder(Alert)
_alerts_decoder = msgspec.json.Decoder(list[Alert])

# Area codes nest (a town's code starts with its district's, see cityops.domain.city), so a
# whole district, town or village code matches its own column exactly: an index equality.


def split_url(url: str) -> tuple[str, str]:
    """Split `postgresql://...?schema=NAME` into (libpq URL without `schema`, NAME)."""
    parts = urlsplit(url)
    schema = DEFAULT_SCHEMA
    kept = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"schema name {schema!r} must be a plain SQL identifier")
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


# Created once per pooled connection. ON COMMIT DELETE ROWS empties them at each commit, and
# the identity column `n` records the order rows arrived in through COPY.
STAGING_SQL = """
CREATE TEMP TABLE IF NOT EXISTS stage_latest (
    n bigint GENERATED ALWAYS AS IDENTITY,
    device_id text COLLATE "C" NOT NULL,
    channel text COLLATE "C" NOT NULL,
    ts_us bigint NOT NULL,
    value double precision NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_devices (
    n bigint GENERATED ALWAYS AS IDENTITY,
    id text COLLATE "C" NOT NULL,
    kind text NOT NULL,
    village text,
    doc json NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_alerts (
    n bigint GENERATED ALWAYS AS IDENTITY,
    id text COLLATE "C" NOT NULL,
    scenario text NOT NULL,
    district text,
    town text,
    village text,
    active boolean NOT NULL,
    first_seen double precision NOT NULL,
    doc json NOT NULL
) ON COMMIT DELETE ROWS;
"""


def _no_nul(text: str) -> str:
    # PostgreSQL text cannot hold U+0000; write it the way payloads already show odd bytes.
    return text.replace("\x00", "\\x00") if "\x00" in text else text


class PostgresStore(PostgresIncidents, PostgresRecords, PostgresStaff):
    def __init__(self, url: str, *, pool_size: int = 4, max_waiting: int = 1024) -> None:
        self.url = url
        self.conninfo, self.schema = split_url(url)
        s = f'"{self.schema}"'
        self._schema_quoted = s
        self._pool_size = pool_size
        self._max_waiting = max_waiting
        self._pool: AsyncConnectionPool | None = None
        self._writes_in_flight = 0
        self._sql = _statements(s)

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self._pool_size,
            max_waiting=self._max_waiting,
            timeout=10.0,
            open=False,
            configure=_create_staging,
            # A pooled connection that died with a server restart is found out and replaced
            # before a caller gets it, instead of failing that caller's query.
            check=AsyncConnectionPool.check_connection,
            reconnect_timeout=3600.0,
            name=f"cityops-{self.schema}",
        )
        await pool.open(wait=True, timeout=10.0)
        try:
            async with pool.connection() as conn:
                # Two processes opening a fresh schema at once would race on CREATE ... IF NOT
                # EXISTS (it is not atomic); the lock makes the second wait for the first.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cityops.schema:{self.schema}",)
                )
                await conn.execute(schema_sql(self._schema_quoted))
                cursor = await conn.execute(
                    f"SELECT value FROM {self._schema_quoted}.meta WHERE key = 'schema_version'"
                )
                row = await cursor.fetchone()
                if row is None:
                    await conn.execute(
                        f"INSERT INTO {self._schema_quoted}.meta (key, value) "
                        "VALUES ('schema_version', %s)",
                        (str(SCHEMA_VERSION),),
                    )
                elif int(row[0]) > SCHEMA_VERSION:
                    raise RuntimeError(
                        f"PostgreSQL schema {self.schema!r} has store schema version {row[0]}, "
                        f"newer than this CityOps knows ({SCHEMA_VERSION})"
                    )
                elif int(row[0]) < SCHEMA_VERSION:
                    # Up to version 4 each version only added tables and indexes, which the
                    # CREATE ... IF NOT EXISTS above has just made. Version 5 rewrites owners.
                    if int(row[0]) < 5:
                        await conn.execute(
                            record_sql.own_open311_by_citizen(f"{self._schema_quoted}."))
                    if int(row[0]) < 6:  # no expiry on the keys made before
                        await conn.execute(
                            f"ALTER TABLE {self._schema_quoted}.api_keys "
                            "ADD COLUMN IF NOT EXISTS expires_at double precision")
                    await conn.execute(
                        f"UPDATE {self._schema_quoted}.meta SET value = %s "
                        "WHERE key = 'schema_version'",
                        (str(SCHEMA_VERSION),),
                    )
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def queue_depth(self) -> int:
        return self._writes_in_flight

    # -- plumbing

    @asynccontextmanager
    async def _connection(self, *, write: bool = False):  # type: ignore[no-untyped-def]
        if self._pool is None:
            raise RuntimeError(f"store {self.schema!r} is not open")
        if write:
            self._writes_in_flight += 1
        try:
            # The pool's context commits on success and rolls back on error.
            async with self._pool.connection() as conn:
                yield conn
        except (TooManyRequests, PoolTimeout) as error:
            raise StoreBusy(f"PostgreSQL pool is exhausted: {error}") from error
        except psycopg.OperationalError as error:
            # The server went away (restart, failover, network). The caller is told to come
            # back (503); every write here is safe to repeat, since ids and report keys are
            # unique. The pool reconnects on its own, with backoff.
            raise StoreBusy(f"PostgreSQL is unreachable: {error}", retry_after=5.0) from error
        finally:
            if write:
                self._writes_in_flight -= 1

    # -- devices

    async def upsert_devices(self, devices: Sequence[Device]) -> None:
        # Position of first sight, content of last sight: what one-by-one upserts would give.
        unique = {device.id: device for device in devices}
        if not unique:
            return
        async with self._connection(write=True) as conn:
            # Serialise registrations so that concurrent batches can neither deadlock on each
            # other's rows nor interleave their registration order.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cityops.devices:{self.schema}",)
            )
            async with conn.cursor() as cursor:
                async with cursor.copy(
                    "COPY pg_temp.stage_devices (id, kind, village, doc) FROM STDIN"
                ) as copy:
                    for d in unique.values():
                        await copy.write_row(
                            (
                                d.id,
                                d.kind,
                                d.areas.village if d.areas else None,
                                _device_encoder.encode(d).decode(),
                            )
                        )
                await cursor.execute(self._sql["merge_devices"])

    async def settle_devices(self, devices: Sequence[Device]) -> list[str]:
        unique = {d.id: d for d in devices}
        if not unique:
            return []
        async with self._connection(write=True) as conn:
            # The lock `upsert_devices` takes, held to the commit: no other node or CLI can
            # move one of these devices between the read below and the update.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cityops.devices:{self.schema}",)
            )
            cursor = await conn.execute(self._sql["devices_by_id"], (list(unique),))
            stored = dict(await cursor.fetchall())
            settled = settled_docs(unique, stored)
            ids = [device_id for device_id, _ in settled]
            docs = [doc for _, doc in settled]
            if ids:
                await conn.execute(self._sql["set_device_docs"], (ids, docs))
        return ids

    async def load_devices(self) -> list[Device]:
        async with self._connection() as conn:
            cursor = await conn.execute(self._sql["load_devices"])
            docs = [row[0] for row in await cursor.fetchall()]
        return _devices_decoder.decode("[" + ",".join(docs) + "]")

    # -- API keys

    async def add_key(self, record: ApiKeyRecord) -> None:
        try:
            async with self._connection(write=True) as conn:
                await conn.execute(
                    self._sql["insert_key"],
                    (
                        record.id,
                        record.hash,
                        record.role,
                        record.scope,
                        record.name,
                        record.created_at,
                        record.revoked,
                        record.expires_at,
                    ),
                )
        except psycopg.errors.UniqueViolation as error:
            raise DuplicateKey(f"API key {record.id!r} clashes with a stored key") from error

    async def find_key(self, key_hash: str) -> ApiKeyRecord | None:
        async with self._connection() as conn:
            cursor = await conn.execute(self._sql["find_key"], (key_hash,))
            row = await cursor.fetchone()
        return None if row is None else ApiKeyRecord(*row)

    async def list_keys(self) -> list[ApiKeyRecord]:
        async with self._connection() as conn:
            cursor = await conn.execute(self._sql["list_keys"])
            return [ApiKeyRecord(*row) for row in await cursor.fetchall()]

    async def revoke_key(self, key_id: str) -> bool:
        async with self._connection(write=True) as conn:
            cursor = await conn.execute(self._sql["revoke_key"], (key_id,))
            return cursor.rowcount > 0

    async def set_key_expiry(self, key_id: str, expires_at: float | None) -> bool:
        async with self._connection(write=True) as conn:
            cursor = await conn.execute(self._sql["set_key_expiry"], (expires_at, key_id))
            return cursor.rowcount > 0

    # -- latest values

    async def save_latest(self, rows: LatestRows) -> None:
        if not len(rows):
            return
        async with self._connection(write=True) as conn:
            async with conn.cursor() as cursor:
                async with cursor.copy(
                    "COPY pg_temp.stage_latest (device_id, channel, ts_us, value) "
                    "FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["text", "text", "int8", "float8"])
                    columns = (rows.device_id, rows.channel, rows.ts_us, rows.value)
                    for row in zip(*columns, strict=True):
                        await copy.write_row(row)
                await cursor.execute(self._sql["merge_latest"])

    async def load_latest(self) -> LatestRows:
        async with self._connection() as conn:
            async with conn.cursor(binary=True) as cursor:
                await cursor.execute(self._sql["load_latest"])
                rows = await cursor.fetchall()
        if not rows:
            return LatestRows([], [], [], [])
        device_id, channel, ts_us, value = (list(column) for column in zip(*rows))
        return LatestRows(device_id, channel, ts_us, value)

    # -- dead letters

    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        async with self._connection(write=True) as conn:
            async with conn.cursor() as cursor:
                async with cursor.copy(self._sql["copy_dead_letters"]) as copy:
                    for d in letters:
                        await copy.write_row(
                            (
                                _no_nul(d.source),
                                _no_nul(d.where),
                                _no_nul(d.reason),
                                _no_nul(d.payload),
                                d.received_at,
                                d.index,
                            )
                        )

    async def list_dead_letters(
        self, *, limit: int = 100, before_id: int | None = None
    ) -> list[DeadLetter]:
        async with self._connection() as conn:
            if before_id is None:
                cursor = await conn.execute(self._sql["list_dead_letters"], (limit,))
            else:
                cursor = await conn.execute(
                    self._sql["list_dead_letters_before"], (before_id, limit)
                )
            return [DeadLetter(*row) for row in await cursor.fetchall()]

    async def count_dead_letters(self) -> int:
        async with self._connection() as conn:
            cursor = await conn.execute(self._sql["count_dead_letters"])
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def delete_dead_letters(self, received_before: float, limit: int = 10_000) -> int:
        async with self._connection(write=True) as conn:
            cursor = await conn.execute(
                self._sql["delete_dead_letters"], (received_before, limit)
            )
            return cursor.rowcount

    # -- alerts

    async def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        async with self._connection(write=True) as conn:
            async with conn.cursor() as cursor:
                async with cursor.copy(self._sql["copy_alerts"]) as copy:
                    for alert in alerts:
                        areas = alert.areas
                        await copy.write_row(
                            (
                                alert.id,
                                alert.scenario,
                                areas.district if areas else None,
                                areas.town if areas else None,
                                areas.village if areas else None,
                                alert.active,
                                alert.first_seen,
                                _alert_encoder.encode(alert).decode(),
                            )
                        )
                await cursor.execute(self._sql["merge_alerts"])

    async def get_alert(self, alert_id: str) -> Alert | None:
        async with self._connection() as conn:
            cursor = await conn.execute(self._sql["get_alert"], (alert_id,))
            row = await cursor.fetchone()
        return None if row is None else _alert_decoder.decode(row[0])

    async def list_alerts(
        self,
        *,
        scenario: str | None = None,
        area: str | None = None,
        active: bool | None = None,
        limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[Alert]:
        sql, params = alerts_query(self._schema_quoted, scenario, area, active, limit, before)
        async with self._connection() as conn:
            cursor = await conn.execute(sql, params)
            docs = [row[0] for row in await cursor.fetchall()]
        return _alerts_decoder.decode("[" + ",".join(docs) + "]")

    # -- operating states and the audit trail

    async def set_area_state(self, code: str, state: str, entry: AuditEntry) -> None:
        # An explicit row is kept whatever the state, "daily" included: whether an area back
        # to daily is forgotten is the caller's decision, not the store's.
        try:
            async with self._connection(write=True) as conn:  # one transaction for both
                await conn.execute(self._sql["set_area_state"], (code, state, entry.at))
                await conn.execute(self._sql["insert_audit"], _audit_row(entry))
        except psycopg.errors.IntegrityError as error:
            raise ValueError(f"audit entry refused: {error}") from error

    async def load_area_states(self) -> dict[str, str]:
        async with self._connection() as conn:
            cursor = await conn.execute(self._sql["load_area_states"])
            return dict(await cursor.fetchall())

    async def set_cell_owner(self, cell: str, owner: str | None, entry: AuditEntry) -> None:
        try:
            async with self._connection(write=True) as conn:  # one transaction for both
                if owner is None:
                    await conn.execute(self._sql["drop_cell_owner"], (cell,))
                else:
                    await conn.execute(self._sql["set_cell_owner"], (cell, owner, entry.at))
                await conn.execute(self._sql["insert_audit"], _audit_row(entry))
        except psycopg.errors.IntegrityError as error:
            raise ValueError(f"audit entry refused: {error}") from error

    async def load_cell_owners(self) -> dict[str, str]:
        async with self._connection() as conn:
            cursor = await conn.execute(self._sql["load_cell_owners"])
            return dict(await cursor.fetchall())

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        try:
            async with self._connection(write=True) as conn:
                async with conn.cursor() as cursor:
                    async with cursor.copy(self._sql["copy_audit"]) as copy:
                        for entry in entries:
                            await copy.write_row(_audit_row(entry))
        except psycopg.errors.IntegrityError as error:
            raise ValueError(f"audit entry refused: {error}") from error

    async def list_audit(
        self, *, subject: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEntry]:
        where: list[str] = []
        params: list[Any] = []
        if subject is not None:
            where.append("subject = %s")
            params.append(subject)
        if before_id is not None:
            where.append("id < %s")
            params.append(before_id)
        async with self._connection() as conn:
            cursor = await conn.execute(
                f"SELECT {AUDIT_COLUMNS} FROM {self._schema_quoted}.audit "
                f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT %s",
                (*params, max(0, limit)),
            )
            return [AuditEntry(*row) for row in await cursor.fetchall()]

    # -- meta

    async def set_meta(self, key: str, value: str) -> None:
        async with self._connection(write=True) as conn:
            await conn.execute(self._sql["set_meta"], (key, value))

    async def get_meta(self, key: str) -> str | None:
        async with self._connection() as conn:
            cursor = await conn.execute(self._sql["get_meta"], (key,))
            row = await cursor.fetchone()
        return None if row is None else row[0]


AUDIT_COLUMNS = "actor, action, subject, before_value, after_value, reason, at, id"


def _audit_row(e: AuditEntry) -> tuple[Any, ...]:
    text = (e.actor, e.action, e.subject, e.before, e.after, e.reason)
    return (*(None if t is None else _no_nul(t) for t in text), e.at)


def alerts_query(
    s: str,
    scenario: str | None,
    area: str | None,
    active: bool | None,
    limit: int,
    before: tuple[float, str] | None,
) -> tuple[str, list[Any]]:
    """The SELECT of `list_alerts` in the quoted schema `s`, and its parameters."""
    return shared_alerts_query(POSTGRES, f"{s}.alerts", "doc::text", scenario, area, active,
                               limit, before)


async def _create_staging(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(STAGING_SQL)
    await conn.commit()


def _statements(s: str) -> dict[str, str]:
    key_columns = "id, hash, role, scope, name, created_at, revoked, expires_at"
    dead_letter_columns = "source, place, reason, payload, received_at, item, id"
    return {
        # ORDER BY n hands out `seq` in the order devices were given; existing ids keep theirs.
        "merge_devices": f"""
            INSERT INTO {s}.devices AS d (id, kind, village, doc)
            SELECT id, kind, village, doc FROM pg_temp.stage_devices ORDER BY n
            ON CONFLICT (id) DO UPDATE
            SET kind = excluded.kind, village = excluded.village, doc = excluded.doc""",
        "load_devices": f"SELECT doc::text FROM {s}.devices ORDER BY seq",
        "devices_by_id": f"SELECT id, doc::text FROM {s}.devices WHERE id = ANY(%s)",
        "set_device_docs": f"""
            UPDATE {s}.devices AS d SET doc = v.doc::json
            FROM unnest(%s::text[], %s::text[]) AS v(id, doc) WHERE d.id = v.id""",
        "insert_key": f"""
            INSERT INTO {s}.api_keys ({key_columns})
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
        "find_key": f"SELECT {key_columns} FROM {s}.api_keys WHERE hash = %s",
        "list_keys": f"SELECT {key_columns} FROM {s}.api_keys ORDER BY seq",
        "revoke_key": f"UPDATE {s}.api_keys SET revoked = true WHERE id = %s",
        "set_key_expiry": f"UPDATE {s}.api_keys SET expires_at = %s WHERE id = %s",
        # DISTINCT ON keeps one row per key (the newest; the first given on a tie), because
        # ON CONFLICT may not touch a row twice in one statement. Merging in key order also
        # makes concurrent merges lock rows in the same order, so they cannot deadlock.
        "merge_latest": f"""
            INSERT INTO {s}.latest AS l (device_id, channel, ts_us, value)
            SELECT DISTINCT ON (device_id, channel) device_id, channel, ts_us, value
            FROM pg_temp.stage_latest
            ORDER BY device_id, channel, ts_us DESC, n
            ON CONFLICT (device_id, channel) DO UPDATE
            SET ts_us = excluded.ts_us, value = excluded.value
            WHERE excluded.ts_us > l.ts_us""",
        "load_latest": f"""
            SELECT device_id, channel, ts_us, value FROM {s}.latest ORDER BY device_id, channel""",
        "copy_dead_letters": f"""
            COPY {s}.dead_letters (source, place, reason, payload, received_at, item) FROM STDIN""",
        "list_dead_letters": f"""
            SELECT {dead_letter_columns} FROM {s}.dead_letters ORDER BY id DESC LIMIT %s""",
        "list_dead_letters_before": f"""
            SELECT {dead_letter_columns} FROM {s}.dead_letters WHERE id < %s
            ORDER BY id DESC LIMIT %s""",
        "count_dead_letters": f"SELECT count(*) FROM {s}.dead_letters",
        "delete_dead_letters": f"""
            DELETE FROM {s}.dead_letters WHERE id IN (
                SELECT id FROM {s}.dead_letters WHERE received_at < %s LIMIT %s)""",
        "set_meta": f"""
            INSERT INTO {s}.meta (key, value) VALUES (%s, %s)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
        "get_meta": f"SELECT value FROM {s}.meta WHERE key = %s",
        "copy_alerts": """
            COPY pg_temp.stage_alerts
            (id, scenario, district, town, village, active, first_seen, doc) FROM STDIN""",
        # The last given wins when one batch holds an id twice (an episode updated again);
        # merging in id order makes concurrent merges lock rows in the same order.
        "merge_alerts": f"""
            INSERT INTO {s}.alerts AS a
                (id, scenario, district, town, village, active, first_seen, doc)
            SELECT DISTINCT ON (id) id, scenario, district, town, village, active, first_seen, doc
            FROM pg_temp.stage_alerts
            ORDER BY id, n DESC
            ON CONFLICT (id) DO UPDATE
            SET scenario = excluded.scenario, district = excluded.district,
                town = excluded.town, village = excluded.village, active = excluded.active,
                first_seen = excluded.first_seen, doc = excluded.doc""",
        "get_alert": f"SELECT doc::text FROM {s}.alerts WHERE id = %s",
        "set_area_state": f"""
            INSERT INTO {s}.area_states (code, state, changed_at) VALUES (%s, %s, %s)
            ON CONFLICT (code) DO UPDATE
            SET state = excluded.state, changed_at = excluded.changed_at""",
        "load_area_states": f"SELECT code, state FROM {s}.area_states ORDER BY code COLLATE \"C\"",
        "set_cell_owner": f"""
            INSERT INTO {s}.cell_owners (cell, owner, changed_at) VALUES (%s, %s, %s)
            ON CONFLICT (cell) DO UPDATE
            SET owner = excluded.owner, changed_at = excluded.changed_at""",
        "drop_cell_owner": f"DELETE FROM {s}.cell_owners WHERE cell = %s",
        "load_cell_owners": f"SELECT cell, owner FROM {s}.cell_owners ORDER BY cell COLLATE \"C\"",
        "insert_audit": f"""
            INSERT INTO {s}.audit (actor, action, subject, before_value, after_value, reason, at)
            VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        "copy_audit": f"""
            COPY {s}.audit (actor, action, subject, before_value, after_value, reason, at)
            FROM STDIN""",
    }
