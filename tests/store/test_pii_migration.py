"""A store written by CityOps before the data key (phone and ID numbers in the clear, the
registry's unique key `id:<number>`) is sealed at the first start with one: on SQLite and on a
real PostgreSQL server, once, with look-ups by ID number still working."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import psycopg
import pytest

from cityops.domain.citizens import Citizen
from cityops.serve.citizens import CitizenRegistry, Taken
from cityops.serve.pii import META_SEALED, Pii, WrongKey, seal_at_rest
from cityops.store.base import Record
from cityops.store.postgres import split_url

from .conftest import OpenStore

PHONE, ID = "13812345678", "310115198001011234"
CALLER = "13987654321"


async def _write_as_before(store) -> None:
    """Records as the serve side wrote them before personal data was sealed."""
    li = Citizen(id="c-1", name="Li", phone=PHONE, id_number=ID, area="990001001001")
    await store.put_record(Record(kind="citizen", id="c-1", doc=msgspec.json.encode(li),
                                  owner="c-1", status="active", unique=f"id:{ID}",
                                  created=1.0, updated=1.0))
    wang = Citizen(id="c-2", name="Wang")  # nothing to seal
    await store.put_record(Record(kind="citizen", id="c-2", doc=msgspec.json.encode(wang),
                                  owner="c-2", status="active", created=2.0, updated=2.0))
    order = {"number": "20261123-AAAA", "type": "help", "title": f"call back {CALLER}",
             "phone": CALLER, "created": 3.0, "limit": "5wd", "status": "received"}
    await store.put_record(Record(kind="hotline_order", id="20261123-AAAA",
                                  doc=msgspec.json.encode(order), owner="", status="received",
                                  created=3.0, updated=3.0))


def _raw_text(url: str, tmp_path: Path) -> bytes:
    """Every byte the database holds for these records, as the server keeps them."""
    if url.startswith("sqlite"):
        return b"".join(p.read_bytes() for p in sorted((tmp_path / "data").glob("state.db*")))
    conninfo, schema = split_url(url)
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(f'SELECT kind, id, uniq, doc FROM "{schema}".records').fetchall()
    return repr(rows).encode()


async def test_clear_values_are_sealed_once(durable_store_url: str, open_stores: OpenStore,
                                            tmp_path: Path) -> None:
    old = await open_stores(durable_store_url)  # no sealer: as older CityOps opened it
    await _write_as_before(old)
    await old.close()
    assert PHONE.encode() in _raw_text(durable_store_url, tmp_path)

    pii = Pii.from_file(tmp_path / "data.key")
    store = await open_stores(durable_store_url)
    store.sealer = pii
    assert await seal_at_rest(store, pii) == 2  # the citizen with numbers, the order
    assert await store.get_meta(META_SEALED) == "1"
    assert await seal_at_rest(store, pii) == 0  # once

    registry = CitizenRegistry(store, pii)
    li = await registry.get("c-1")
    assert (li.phone, li.id_number, li.area) == (PHONE, ID, "990001001001")
    assert (await registry.by_id_number(ID)).id == "c-1"
    with pytest.raises(Taken):
        await registry.register(Citizen(id="c-3", name="Li", id_number=ID))
    order = msgspec.json.decode((await store.get_record("hotline_order", "20261123-AAAA")).doc)
    assert order["phone"] == CALLER and order["title"] == f"call back {CALLER}"
    await store.close()

    raw = _raw_text(durable_store_url, tmp_path)
    for number in (PHONE, ID, CALLER):
        assert number.encode() not in raw, number
    assert b"id:3101" not in raw

    # Another key reads none of it, and says so rather than failing later.
    other = Pii.from_file(tmp_path / "other.key")
    again = await open_stores(durable_store_url)
    with pytest.raises(WrongKey):
        await seal_at_rest(again, other)


async def test_a_concurrent_change_is_sealed_too(durable_store_url: str,
                                                 open_stores: OpenStore,
                                                 tmp_path: Path) -> None:
    store = await open_stores(durable_store_url)
    await _write_as_before(store)
    pii = Pii.from_file(tmp_path / "data.key")
    store.sealer = pii
    # Two nodes starting at once both run it: each record ends sealed, nothing is lost.
    await asyncio.gather(seal_at_rest(store, pii), seal_at_rest(store, pii))
    store.sealer = None
    raw = await store.get_record("citizen", "c-1")
    assert PHONE.encode() not in raw.doc and raw.unique == pii.lookup(ID)
