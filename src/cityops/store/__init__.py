"""State stores: one backend per module behind the `Store` protocol."""

from cityops.store.base import ApiKeyRecord, DeadLetter, LatestRows, Store, open_store

__all__ = ["ApiKeyRecord", "DeadLetter", "LatestRows", "Store", "open_store"]
