"""What only the SQLite store promises: WAL, one writer, group commit, back-pressure and
acknowledged writes that are already committed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from cityops.store import record_sql
from cityops.store import sqlite as sqlite_module
from cityops.store.base import LatestRows, StoreBusy
from cityops.store.sqlite import SQLiteStore, alerts_query, sqlite_path
from cityops.store.sqlite_incidents import SQLITE

from . import samples


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "state.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(f"sqlite://{db_path}")
    await store.open()
    yield store
    await store.close()


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another process's writer, as SQLite sees it: the store's writer cannot begin."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_url_to_path() -> None:
    assert sqlite_path("sqlite:///abs/path/state.db") == Path("/abs/path/state.db")
    assert sqlite_path("sqlite:////abs/state.db") == Path("/abs/state.db")
    assert sqlite_path("sqlite:///with%20space/x.db") == Path("/with space/x.db")
    with pytest.raises(ValueError):
        sqlite_path("postgresql://x/y")


async def test_creates_parent_dirs_and_uses_wal(store: SQLiteStore, db_path: Path) -> None:
    assert db_path.is_file()
    with sqlite3.connect(db_path) as fresh:
        assert fresh.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_only_one_connection_can_write(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, sqlite3.Connection]] = []
    real_connect = sqlite3.connect

    def spy(database: object, *args: object, **kwargs: object) -> sqlite3.Connection:
        conn = real_connect(database, *args, **kwargs)  # type: ignore[arg-type]
        opened.append((str(database), conn))
        return conn

    monkeypatch.setattr(sqlite_module.sqlite3, "connect", spy)
    store = SQLiteStore(f"sqlite://{db_path}", readers=3)
    await store.open()
    try:
        writes = [store.set_meta(f"k{i}", "v") for i in range(100)]
        reads = [store.get_meta(f"k{i}") for i in range(100)]
        await asyncio.gather(*writes, *reads)
        writers = [t for t in threading.enumerate() if t.name.startswith("cityops-sqlite-writer")]
        assert len(writers) == 1

        writable = [(name, conn) for name, conn in opened if "mode=ro" not in name]
        read_only = [conn for name, conn in opened if "mode=ro" in name]
        assert len(writable) == 1
        assert 1 <= len(read_only) <= 3
        for conn in read_only:
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    finally:
        await store.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("cityops-sqlite-writer")]


async def test_writer_fsyncs_every_commit(store: SQLiteStore) -> None:
    synchronous = await store._write(lambda conn: conn.execute("PRAGMA synchronous").fetchone())
    assert synchronous == (2,)  # FULL


async def test_lock_held_by_another_process_means_busy(db_path: Path) -> None:
    store = SQLiteStore(f"sqlite://{db_path}", busy_timeout=0.1)
    await store.open()
    try:
        with write_lock_held(db_path):
            with pytest.raises(StoreBusy, match="locked"):
                await store.set_meta("k", "v")
        await store.set_meta("k", "v")  # the writer is still there once the lock is gone
        assert await store.get_meta("k") == "v"
    finally:
        await store.close()


async def test_acknowledged_write_is_committed(store: SQLiteStore, db_path: Path) -> None:
    outside = sqlite3.connect(db_path, isolation_level=None)
    try:
        for i in range(20):
            await store.set_meta("counter", str(i))
            # Visible to a connection that is not the store's, as soon as the await returns.
            row = outside.execute("SELECT value FROM meta WHERE key = 'counter'").fetchone()
            assert row == (str(i),)
        await store.save_latest(LatestRows(["a"], ["x"], [7], [1.25]))
        with sqlite3.connect(db_path) as fresh:
            assert fresh.execute("SELECT ts_us, value FROM latest").fetchall() == [(7, 1.25)]
    finally:
        outside.close()


async def test_concurrent_writes_share_commits(store: SQLiteStore) -> None:
    before = store.commits
    await asyncio.gather(*(store.set_meta(f"k{i}", str(i)) for i in range(500)))
    commits = store.commits - before
    assert 1 <= commits < 500
    assert await store.get_meta("k499") == "499"
    assert store.queue_depth() == 0


async def test_full_queue_refuses_writes_at_once(db_path: Path) -> None:
    store = SQLiteStore(f"sqlite://{db_path}", queue_size=4)
    await store.open()
    accepted: list[asyncio.Task[None]] = []
    try:
        with write_lock_held(db_path):
            # The writer takes this one and then waits on the lock, holding nothing else.
            accepted.append(asyncio.create_task(store.set_meta("k0", "v")))
            await asyncio.sleep(0.1)
            refused: BaseException | None = None
            started = time.monotonic()
            for i in range(1, 40):
                task = asyncio.create_task(store.set_meta(f"k{i}", "v"))
                await asyncio.sleep(0)  # runs the write up to its wait for the commit, or refusal
                if task.done():
                    refused = task.exception()
                    break
                accepted.append(task)
            elapsed = time.monotonic() - started
            assert isinstance(refused, StoreBusy)
            assert refused.retry_after > 0
            assert elapsed < 0.5
            assert len(accepted) == 1 + 4  # the one being written, four in the queue
            assert store.queue_depth() == len(accepted)
            assert not any(task.done() for task in accepted)
        await asyncio.wait_for(asyncio.gather(*accepted), timeout=10)
        for i in range(len(accepted)):
            assert await store.get_meta(f"k{i}") == "v"
        assert store.queue_depth() == 0
    finally:
        await store.close()


async def test_reads_do_not_wait_for_the_writer(store: SQLiteStore, db_path: Path) -> None:
    await store.set_meta("k", "old")
    with write_lock_held(db_path):
        pending = asyncio.create_task(store.set_meta("k", "new"))
        await asyncio.sleep(0.05)
        assert not pending.done()
        assert await asyncio.wait_for(store.get_meta("k"), timeout=1) == "old"
    await pending
    assert await store.get_meta("k") == "new"


async def test_close_commits_every_accepted_write(db_path: Path) -> None:
    url = f"sqlite://{db_path}"
    store = SQLiteStore(url)
    await store.open()
    tasks = [
        asyncio.create_task(store.add_dead_letters([samples.dead_letter(i)])) for i in range(50)
    ]
    await asyncio.sleep(0)
    await store.close()
    await asyncio.gather(*tasks)
    with pytest.raises(RuntimeError, match="not open"):
        await store.set_meta("k", "v")

    again = SQLiteStore(url)
    await again.open()
    try:
        assert await again.count_dead_letters() == 50
    finally:
        await again.close()


async def test_newer_schema_is_refused(db_path: Path) -> None:
    store = SQLiteStore(f"sqlite://{db_path}")
    await store.open()
    await store.set_meta("schema_version", "99")
    await store.close()
    with pytest.raises(RuntimeError, match="schema version 99"):
        await SQLiteStore(f"sqlite://{db_path}").open()


async def test_alert_lists_are_read_off_an_index(store: SQLiteStore, db_path: Path) -> None:
    await store.upsert_alerts([samples.alert(n) for n in range(2_000)])
    with closing(sqlite3.connect(db_path)) as conn:
        for filters in samples.LIST_FILTERS:
            args = samples.list_filter_args(filters)
            sql, params = alerts_query(**args)  # type: ignore[arg-type]
            plan = " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, (filters, plan)



async def test_an_owners_records_are_read_off_an_index(store: SQLiteStore, db_path: Path) -> None:
    # A citizen's list of reports must not walk every request in the city.
    for n in range(2_000):
        await store.put_record(samples.record(n))
    with closing(sqlite3.connect(db_path)) as conn:
        for before in (None, (1_000.0, "r01000")):
            sql, params = record_sql.find(SQLITE, "", "open311.request", "citizen:c-7", None,
                                          None, None, 21, before)
            plan = " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "USING INDEX records_owner" in plan and "TEMP B-TREE" not in plan, plan
    found = await store.find_records("open311.request", owner="citizen:c-7", limit=3,
                                     before=(1_000.0, "r01000"))
    assert [r.id for r in found] == ["r00957", "r00907", "r00857"]
