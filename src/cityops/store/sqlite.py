"""The embedded store: one SQLite file in WAL mode, written by a single group-committing thread.

Every write is a closure handed to the one writer thread through a bounded queue. The writer
takes everything queued at once and commits it in one `BEGIN IMMEDIATE` transaction, so a burst
of small writes costs one fsync, not one each. A caller's await returns only after the commit,
which with `synchronous=FULL` means the write survives a power cut, not just a process crash.
A full queue refuses the write with `StoreBusy` instead of letting memory and latency grow.

Reads go to read-only connections on a small thread pool of their own; in WAL mode they read
the last committed snapshot and never wait for the writer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import msgspec

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
from cityops.store.sqlite_incidents import SQLITE, SQLiteIncidents
from cityops.store.sqlite_records import SQLiteRecords
from cityops.store.sqlite_staff import SQLiteStaff
from cityops.store.sqlite_schema import SCHEMA

T = TypeVar("T")


UPSERT_DEVICE = """
INSERT INTO devices (id, kind, village, doc) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, village = excluded.village, doc = excluded.doc
"""
UPSERT_LATEST = """
INSERT INTO latest (device_id, channel, ts_us, value) VALUES (?, ?, ?, ?)
ON CONFLICT (device_id, channel) DO UPDATE SET ts_us = excluded.ts_us, value = excluded.value
WHERE excluded.ts_us > latest.ts_us
"""
INSERT_KEY = """
INSERT INTO api_keys (id, hash, role, scope, name, created_at, revoked, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
KEY_COLUMNS = "id, hash, role, scope, name, created_at, revoked, expires_at"
INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (source, place, reason, payload, received_at, item)
VALUES (?, ?, ?, ?, ?, ?)
"""
DEAD_LETTER_COLUMNS = "source, place, reason, payload, received_at, item, id"
UPSERT_ALERT = """
INSERT INTO alerts (id, scenario, district, town, village, active, first_seen, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET scenario = excluded.scenario, district = excluded.district,
    town = excluded.town, village = excluded.village, active = excluded.active,
    first_seen = excluded.first_seen, doc = excluded.doc
"""
SET_AREA_STATE = """
INSERT INTO area_states (code, state, changed_at) VALUES (?, ?, ?)
ON CONFLICT (code) DO UPDATE SET state = excluded.state, changed_at = excluded.changed_at
"""
SET_CELL_OWNER = """
INSERT INTO cell_owners (cell, owner, changed_at) VALUES (?, ?, ?)
ON CONFLICT (cell) DO UPDATE SET owner = excluded.owner, changed_at = excluded.changed_at
"""
INSERT_AUDIT = """
INSERT INTO audit (actor, action, subject, before_value, after_value, reason, at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
AUDIT_COLUMNS = "actor, action, subject, before_value, after_value, reason, at, id"
# Area codes nest (a town's code starts with its district's, see cityops.domain.city), so a
# whole district, town or village code matches its own column exactly: an index equality.

_device_encoder = msgspec.json.Encoder()
_device_decoder = msgspec.json.Decoder(Device)
_devices_decoder = msgspec.json.Decoder(list[Device])
_alert_encoder = msgspec.json.Encoder()
_alert_decoder = msgspec.json.Decoder(Alert)
_alerts_decoder = msgspec.json.Decoder(list[Alert])


def sqlite_path(url: str) -> Path:
    """`sqlite:///abs/path/state.db` -> /abs/path/state.db (a relative path is taken as given)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ValueError(f"not a sqlite URL: {url!r}")
    raw = unquote(parts.netloc + parts.path)
    if raw.startswith("//"):  # sqlite:////abs/path, the other common spelling
        raw = "/" + raw.lstrip("/")
    if not raw:
        raise ValueError(f"sqlite URL {url!r} names no file")
    return Path(raw)


class _Write:
    __slots__ = ("apply", "loop", "future")

    def __init__(
        self, apply: Callable[[sqlite3.Connection], Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.apply = apply
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()


_STOP = object()


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.done():  # the caller gave up waiting; the write stands regardless
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class GroupWriter:
    """The only thread, and the only connection, that writes to the database file."""

    def __init__(self, path: Path, queue_size: int, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.commits = 0  # group commits so far: writes / commits is the batching factor
        self._queue: queue.Queue[_Write | object] = queue.Queue(maxsize=queue_size)
        self._pending = 0  # accepted and not yet committed, including the batch in flight
        self._pending_lock = threading.Lock()
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, name=f"cityops-sqlite-writer:{path.name}", daemon=True
        )

    async def start(self) -> None:
        self._thread.start()
        await asyncio.wrap_future(self._ready)

    def submit(self, apply: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        write = _Write(apply, asyncio.get_running_loop())
        with self._pending_lock:
            try:
                self._queue.put_nowait(write)
            except queue.Full:
                raise StoreBusy(
                    f"SQLite write queue is full ({self._queue.maxsize} writes waiting)"
                ) from None
            self._pending += 1
        return write.future

    def depth(self) -> int:
        return self._pending

    def stop(self) -> None:
        """Blocking: waits for room in the queue, then for the last commit."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # How long to wait for another process's write lock before failing with StoreBusy.
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        # FULL fsyncs the WAL at every commit: an acknowledged write survives power loss.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA temp_store = MEMORY")
        # Rows rewritten or deleted for privacy (personal data sealed, a citizen erased) must
        # not live on in the file's free pages: what SQLite frees, it overwrites with zeros.
        conn.execute("PRAGMA secure_delete = ON")
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Statement by statement: executescript() would commit the open transaction first.
            for statement in SCHEMA:
                conn.execute(statement)
            # Like PostgreSQL's ADD COLUMN IF NOT EXISTS: a file made before the column was
            # in both dialects gets it, with no version step (nothing reads it here).
            if "claimed_until" not in {c[1] for c in conn.execute("PRAGMA table_info(incidents)")}:
                conn.execute("ALTER TABLE incidents ADD COLUMN claimed_until REAL")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has store schema version {row[0]}, newer than this "
                    f"CityOps knows ({SCHEMA_VERSION}); upgrade CityOps to open it"
                )
            elif int(row[0]) < SCHEMA_VERSION:
                # Up to version 4 each version only added tables and indexes, which the
                # CREATE ... IF NOT EXISTS above has just made. Version 5 rewrites owners.
                if int(row[0]) < 5:
                    conn.execute(record_sql.own_open311_by_citizen(""))
                if int(row[0]) < 6:  # no expiry on the keys made before
                    columns = {c[1] for c in conn.execute("PRAGMA table_info(api_keys)")}
                    if "expires_at" not in columns:
                        conn.execute("ALTER TABLE api_keys ADD COLUMN expires_at REAL")
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    (str(SCHEMA_VERSION),),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            self._create_schema(conn)
        except BaseException as error:
            if conn is not None:
                conn.close()
            self._ready.set_exception(error)
            return
        self._ready.set_result(None)
        try:
            stopping = False
            while not stopping or not self._queue.empty():
                batch = [self._queue.get()] if not stopping else []
                while True:  # group commit: take everything already waiting
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                writes = [item for item in batch if item is not _STOP]
                stopping = stopping or len(writes) < len(batch)
                if writes:
                    self._commit(conn, writes)
            try:  # tidy-up only: leave a compact file and an empty WAL behind
                conn.execute("PRAGMA optimize")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, writes: list[_Write]) -> None:
        try:
            outcomes = self._apply_group(conn, writes)
        except Exception as error:
            # The transaction as a whole failed (another process holds the lock, disk full,
            # I/O error): nothing in it was committed, so every write in it failed.
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            code = getattr(error, "sqlite_errorcode", None)
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                error = StoreBusy(f"{self.path} is locked by another writer: {error}")
            outcomes = [(write, None, error) for write in writes]
        with self._pending_lock:
            self._pending -= len(writes)
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for write, result, error in outcomes:
            by_loop.setdefault(write.loop, []).append((write.future, result, error))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # that loop is closed; nobody is waiting any more
                pass

    def _apply_group(
        self, conn: sqlite3.Connection, writes: list[_Write]
    ) -> list[tuple[_Write, Any, BaseException | None]]:
        outcomes: list[tuple[_Write, Any, BaseException | None]] = []
        conn.execute("BEGIN IMMEDIATE")
        for write in writes:
            # A savepoint per write: one failing write (a duplicate key, say) is undone
            # alone and the rest of the group still commits.
            conn.execute("SAVEPOINT one_write")
            try:
                result = write.apply(conn)
            except Exception as error:
                if not conn.in_transaction:
                    raise  # SQLite itself rolled the whole transaction back
                conn.execute("ROLLBACK TO one_write")
                outcomes.append((write, None, error))
            else:
                outcomes.append((write, result, None))
            conn.execute("RELEASE one_write")
        conn.execute("COMMIT")
        self.commits += 1
        return outcomes


class SQLiteStore(SQLiteIncidents, SQLiteRecords, SQLiteStaff):
    def __init__(
        self, url: str, *, queue_size: int = 1024, readers: int = 4, busy_timeout: float = 5.0
    ) -> None:
        self.url = url
        self._busy_timeout = busy_timeout
        self.path = sqlite_path(url).absolute()
        self._queue_size = queue_size
        self._reader_count = readers
        self._writer: GroupWriter | None = None
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._read_conns_lock = threading.Lock()

    @property
    def commits(self) -> int:
        return self._writer.commits if self._writer else 0

    async def open(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        private_files(self.path)
        writer = GroupWriter(self.path, self._queue_size, self._busy_timeout)
        await writer.start()
        self._writer = writer
        self._readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._reader_count, thread_name_prefix="cityops-sqlite-read"
        )

    async def close(self) -> None:
        writer, readers = self._writer, self._readers
        if writer is None or readers is None:
            return
        self._writer = None
        self._readers = None
        await asyncio.to_thread(writer.stop)
        await asyncio.to_thread(readers.shutdown, True)
        with self._read_conns_lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()

    def queue_depth(self) -> int:
        return self._writer.depth() if self._writer else 0

    # -- plumbing

    async def _write(self, apply: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None:
            raise RuntimeError(f"store {self.url} is not open")
        return await self._writer.submit(apply)

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise RuntimeError(f"store {self.url} is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_here, query)

    def _read_here(self, query: Callable[[sqlite3.Connection], T]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect_reader()
            self._local.conn = conn
        return query(conn)

    def _connect_reader(self) -> sqlite3.Connection:
        # mode=ro: the writer thread's connection stays the only one able to write.
        conn = sqlite3.connect(
            f"{self.path.as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,  # used by one reader thread only; closed by close()
        )
        with self._read_conns_lock:
            self._read_conns.append(conn)
        return conn

    # -- devices

    async def upsert_devices(self, devices: Sequence[Device]) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            conn.executemany(
                UPSERT_DEVICE,
                (
                    (
                        d.id,
                        d.kind,
                        d.areas.village if d.areas else None,
                        _device_encoder.encode(d).decode(),
                    )
                    for d in devices
                ),
            )

        await self._write(apply)

    async def settle_devices(self, devices: Sequence[Device]) -> list[str]:
        unique = {d.id: d for d in devices}
        if not unique:
            return []

        def apply(conn: sqlite3.Connection) -> list[str]:
            # Read and rewritten inside the writer's transaction (BEGIN IMMEDIATE): no other
            # process can move a device in between. The ids go in as one JSON array, so a
            # first start stamping 40,000 devices stays one statement, under SQLite's limit
            # on bound parameters.
            stored = dict(conn.execute(
                "SELECT id, doc FROM devices WHERE id IN (SELECT value FROM json_each(?))",
                (_device_encoder.encode(list(unique)).decode(),),
            ).fetchall())
            changed = settled_docs(unique, stored)
            conn.executemany("UPDATE devices SET doc = ? WHERE id = ?",
                             [(doc, device_id) for device_id, doc in changed])
            return [device_id for device_id, _ in changed]

        return await self._write(apply)

    async def load_devices(self) -> list[Device]:
        def query(conn: sqlite3.Connection) -> list[str]:
            return [row[0] for row in conn.execute("SELECT doc FROM devices ORDER BY seq")]

        docs = await self._read(query)
        # One decode of a JSON array is much faster than one decode per device.
        return _devices_decoder.decode("[" + ",".join(docs) + "]")

    # -- API keys

    async def add_key(self, record: ApiKeyRecord) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    INSERT_KEY,
                    (
                        record.id,
                        record.hash,
                        record.role,
                        record.scope,
                        record.name,
                        record.created_at,
                        int(record.revoked),
                        record.expires_at,
                    ),
                )
            except sqlite3.IntegrityError as error:
                raise DuplicateKey(f"API key {record.id!r} clashes with a stored key") from error

        await self._write(apply)

    async def find_key(self, key_hash: str) -> ApiKeyRecord | None:
        def query(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            row = conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?", (key_hash,)
            ).fetchone()
            return None if row is None else _key_record(row)

        return await self._read(query)

    async def list_keys(self) -> list[ApiKeyRecord]:
        def query(conn: sqlite3.Connection) -> list[ApiKeyRecord]:
            rows = conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY seq")
            return [_key_record(row) for row in rows]

        return await self._read(query)

    async def revoke_key(self, key_id: str) -> bool:
        def apply(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("UPDATE api_keys SET revoked = 1 WHERE id = ?", (key_id,))
            return cursor.rowcount > 0

        return await self._write(apply)

    async def set_key_expiry(self, key_id: str, expires_at: float | None) -> bool:
        def apply(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE api_keys SET expires_at = ? WHERE id = ?", (expires_at, key_id)
            )
            return cursor.rowcount > 0

        return await self._write(apply)

    # -- latest values

    async def save_latest(self, rows: LatestRows) -> None:
        if not len(rows):
            return

        def apply(conn: sqlite3.Connection) -> None:
            columns = (rows.device_id, rows.channel, rows.ts_us, rows.value)
            conn.executemany(UPSERT_LATEST, zip(*columns, strict=True))

        await self._write(apply)

    async def load_latest(self) -> LatestRows:
        def query(conn: sqlite3.Connection) -> list[tuple[str, str, int, float | None]]:
            return conn.execute(
                "SELECT device_id, channel, ts_us, value FROM latest ORDER BY device_id, channel"
            ).fetchall()

        rows = await self._read(query)
        if not rows:
            return LatestRows([], [], [], [])
        device_id, channel, ts_us, value = (list(column) for column in zip(*rows))
        if None in value:
            value = [float("nan") if v is None else v for v in value]
        return LatestRows(device_id, channel, ts_us, value)

    # -- dead letters

    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return

        def apply(conn: sqlite3.Connection) -> None:
            conn.executemany(
                INSERT_DEAD_LETTER,
                (
                    (d.source, d.where, d.reason, d.payload, d.received_at, d.index)
                    for d in letters
                ),
            )

        await self._write(apply)

    async def list_dead_letters(
        self, *, limit: int = 100, before_id: int | None = None
    ) -> list[DeadLetter]:
        def query(conn: sqlite3.Connection) -> list[DeadLetter]:
            if before_id is None:
                rows = conn.execute(
                    f"SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters ORDER BY id DESC LIMIT ?",
                    (limit,),
                )
            else:
                rows = conn.execute(
                    f"SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id < ? "
                    "ORDER BY id DESC LIMIT ?",
                    (before_id, limit),
                )
            return [DeadLetter(*row) for row in rows]

        return await self._read(query)

    async def count_dead_letters(self) -> int:
        return await self._read(
            lambda conn: conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        )

    async def delete_dead_letters(self, received_before: float, limit: int = 10_000) -> int:
        def apply(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters "
                "WHERE received_at < ? LIMIT ?)",
                (received_before, limit),
            )
            return cursor.rowcount

        return await self._write(apply)

    # -- alerts

    async def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        # Encoded now: alerts are mutable, and the caller's may change while this write waits.
        rows = [_alert_row(alert) for alert in alerts]

        def apply(conn: sqlite3.Connection) -> None:
            conn.executemany(UPSERT_ALERT, rows)

        await self._write(apply)

    async def get_alert(self, alert_id: str) -> Alert | None:
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT doc FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            return None if row is None else row[0]

        doc = await self._read(query)
        return None if doc is None else _alert_decoder.decode(doc)

    async def list_alerts(
        self,
        *,
        scenario: str | None = None,
        area: str | None = None,
        active: bool | None = None,
        limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[Alert]:
        sql, params = alerts_query(scenario, area, active, limit, before)

        def query(conn: sqlite3.Connection) -> list[str]:
            return [row[0] for row in conn.execute(sql, params)]

        docs = await self._read(query)
        return _alerts_decoder.decode("[" + ",".join(docs) + "]")

    # -- operating states and the audit trail

    async def set_area_state(self, code: str, state: str, entry: AuditEntry) -> None:
        # An explicit row is kept whatever the state, "daily" included: whether an area back
        # to daily is forgotten is the caller's decision, not the store's.
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute(SET_AREA_STATE, (code, state, entry.at))
            _insert_audit(conn, [entry])  # failing, it undoes the state too (one savepoint)

        await self._write(apply)

    async def load_area_states(self) -> dict[str, str]:
        def query(conn: sqlite3.Connection) -> dict[str, str]:
            return dict(conn.execute("SELECT code, state FROM area_states ORDER BY code"))

        return await self._read(query)

    async def set_cell_owner(self, cell: str, owner: str | None, entry: AuditEntry) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            if owner is None:
                conn.execute("DELETE FROM cell_owners WHERE cell = ?", (cell,))
            else:
                conn.execute(SET_CELL_OWNER, (cell, owner, entry.at))
            _insert_audit(conn, [entry])  # failing, it undoes the owner too (one savepoint)

        await self._write(apply)

    async def load_cell_owners(self) -> dict[str, str]:
        def query(conn: sqlite3.Connection) -> dict[str, str]:
            return dict(conn.execute("SELECT cell, owner FROM cell_owners ORDER BY cell"))

        return await self._read(query)

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        await self._write(lambda conn: _insert_audit(conn, entries))

    async def list_audit(
        self, *, subject: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEntry]:
        where: list[str] = []
        params: list[Any] = []
        if subject is not None:
            where.append("subject = ?")
            params.append(subject)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        sql = (
            f"SELECT {AUDIT_COLUMNS} FROM audit "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT ?"
        )

        def query(conn: sqlite3.Connection) -> list[AuditEntry]:
            return [AuditEntry(*row) for row in conn.execute(sql, (*params, max(0, limit)))]

        return await self._read(query)

    # -- meta

    async def set_meta(self, key: str, value: str) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

        await self._write(apply)

    async def get_meta(self, key: str) -> str | None:
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else row[0]

        return await self._read(query)


def private_files(path: Path) -> None:
    """The database holds citizens' data: it is made 0600, before SQLite makes it with the
    process's umask, and so are its -wal and -shm, which SQLite creates with the database
    file's own mode. Files an older CityOps left readable to others are closed up."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError:
        return  # unwritable or missing folder: SQLite's own error says it better
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        try:
            if part.stat().st_mode & 0o077:
                os.chmod(part, 0o600)
        except OSError:  # absent, or another user's file: SQLite reads it as it is
            pass


def _key_record(row: tuple[Any, ...]) -> ApiKeyRecord:
    key_id, key_hash, role, scope, name, created_at, revoked, expires_at = row
    return ApiKeyRecord(key_id, key_hash, role, scope, name, created_at, bool(revoked),
                        expires_at)


def _alert_row(alert: Alert) -> tuple[Any, ...]:
    areas = alert.areas
    return (
        alert.id,
        alert.scenario,
        areas.district if areas else None,
        areas.town if areas else None,
        areas.village if areas else None,
        int(alert.active),
        alert.first_seen,
        _alert_encoder.encode(alert).decode(),
    )


def alerts_query(
    scenario: str | None,
    area: str | None,
    active: bool | None,
    limit: int,
    before: tuple[float, str] | None,
) -> tuple[str, list[Any]]:
    """The SELECT of `list_alerts` and its parameters."""
    return shared_alerts_query(SQLITE, "alerts", "doc", scenario, area, active, limit, before)


def _insert_audit(conn: sqlite3.Connection, entries: Sequence[AuditEntry]) -> None:
    try:
        conn.executemany(
            INSERT_AUDIT,
            ((e.actor, e.action, e.subject, e.before, e.after, e.reason, e.at) for e in entries),
        )
    except sqlite3.IntegrityError as error:
        raise ValueError(f"audit entry refused: {error}") from error


__all__ = ["SQLiteStore", "StoreBusy", "sqlite_path"]
