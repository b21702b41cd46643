"""`Store` is the aggregates' protocols together, each method in exactly one of them, and every
backend has all of them."""

from __future__ import annotations

import pytest

from cityops.store import protocols
from cityops.store.base import Store
from cityops.store.memory import MemoryStore
from cityops.store.postgres import PostgresStore
from cityops.store.sqlite import SQLiteStore

AGGREGATES = [getattr(protocols, name) for name in protocols.__all__]
LIFECYCLE = {"url", "open", "close", "queue_depth"}


def members(cls: type) -> set[str]:
    return {n for n in vars(cls) if not n.startswith("_")} | set(
        getattr(cls, "__annotations__", {}))


def test_each_method_belongs_to_one_aggregate_and_store_adds_only_its_lifecycle() -> None:
    seen: set[str] = set()
    for aggregate in AGGREGATES:
        assert aggregate in Store.__mro__
        assert members(aggregate), aggregate
        assert not members(aggregate) & seen, aggregate
        seen |= members(aggregate)
    assert members(Store) == LIFECYCLE
    assert len(seen) == 44  # the whole contract, split and nothing lost


@pytest.mark.parametrize("backend", [MemoryStore, SQLiteStore, PostgresStore])
def test_every_backend_implements_every_aggregate(backend: type) -> None:
    for aggregate in AGGREGATES:
        for name in members(aggregate):
            assert callable(getattr(backend, name, None)), f"{backend.__name__}.{name}"
