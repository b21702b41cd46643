"""The state-store contract: `Store`, every aggregate's protocol (protocols.py) at once, as
each backend (memory, SQLite, PostgreSQL) implements it. Raw reading history is not here: it
lives in `cityops.history`.

Every adapter passes the same contract tests in `tests/store/test_contract.py` and the
aggregate-specific ones beside it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cityops.store.incident_rows import IncidentFilter, StaleVersion
from cityops.store.protocols import (
    AlertStore,
    AreaStateStore,
    AuditStore,
    CellOwnerStore,
    DeadLetterStore,
    DeviceStore,
    IncidentStore,
    KeyStore,
    LatestStore,
    MetaStore,
    RecordStore,
    StaffStore,
)
from cityops.store.record_rows import Record
from cityops.store.staff_rows import StaffRecord
from cityops.store.values import (
    ApiKeyRecord,
    AuditEntry,
    DeadLetter,
    DuplicateKey,
    LatestRows,
    StoreBusy,
)

__all__ = ["AlertStore", "ApiKeyRecord", "AreaStateStore", "AuditEntry", "AuditStore",
           "CellOwnerStore", "DeadLetter", "DeadLetterStore", "DeviceStore", "DuplicateKey", "IncidentFilter",
           "IncidentStore", "KeyStore", "LatestRows", "LatestStore", "MetaStore", "Record",
           "RecordStore", "StaffRecord", "StaffStore", "StaleVersion", "Store", "StoreBusy",
           "open_store"]


@runtime_checkable
class Store(DeviceStore, KeyStore, LatestStore, DeadLetterStore, AlertStore, AreaStateStore,
            CellOwnerStore, StaffStore, AuditStore, IncidentStore, RecordStore, MetaStore, Protocol):
    url: str

    async def open(self) -> None:
        """Connect and create the schema if it is missing."""

    async def close(self) -> None:
        """Commit every write already accepted, then release connections and threads."""

    def queue_depth(self) -> int:
        """Writes accepted but not yet committed (0 for stores that write synchronously).

        A store with a bounded write backlog raises `StoreBusy` from any write when it is full.
        """


def open_store(url: str, data_dir: str | None = None) -> Store:
    """Make the store named by `url`: `memory://`, `sqlite:///path.db` or `postgresql://...`.

    A bare data directory with no URL means the embedded default, `DATA/state.db`.
    """
    if url.startswith("memory:"):
        from cityops.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:"):
        from cityops.store.sqlite import SQLiteStore

        return SQLiteStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        from cityops.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"store URL {url!r} is not understood: use memory://, sqlite:///PATH or postgresql://..."
    )
