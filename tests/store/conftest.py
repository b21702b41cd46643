"""Store fixtures: every contract test runs against memory, SQLite (in tmp_path) and a real
PostgreSQL server, each PostgreSQL test in a fresh schema that is dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from cityops.store.base import Store, open_store
from cityops.store.postgres import split_url

OpenStore = Callable[[str], Awaitable[Store]]


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Makes URLs naming new, empty schemas; drops them all after the test."""
    schemas: list[str] = []

    def make() -> str:
        schema = f"cityops_test_{uuid.uuid4().hex[:16]}"
        schemas.append(schema)
        separator = "&" if "?" in postgres_url else "?"
        return f"{postgres_url}{separator}schema={schema}"

    yield make
    conninfo, _ = split_url(postgres_url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _url_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/data/state.db"
    return request.getfixturevalue("fresh_postgres_url")()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url_for(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def durable_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url_for(request.param, request, tmp_path)


@pytest.fixture
async def open_stores() -> AsyncIterator[OpenStore]:
    """Opens stores by URL (the same URL twice for reopen tests) and closes them afterwards."""
    opened: list[Store] = []

    async def make(url: str) -> Store:
        store = open_store(url)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def store(store_url: str, open_stores: OpenStore) -> Store:
    return await open_stores(store_url)
