"""A cluster on this machine: `cityops serve --role ...` processes (or in-process nodes) over the
real NATS JetStream on 4222 and PostgreSQL on 5432. Each test has a stream and a schema of its
own, deleted afterwards, so that tests of other engineers on the same servers are untouched."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats
import pytest

from cityops.auth import new_key
from cityops.domain.incidents.categories import Category
from cityops.bench.cluster import start_all  # noqa: F401  (the tests' process starter)
from cityops.bench.server import ServerProcess
from cityops.packs.format import save_pack
from cityops.packs.grid import generate as grid_city
from cityops.store.base import open_store
from tests.pack_kit import LOUD


@dataclass
class Cluster:
    root: Path
    city: Path
    packs: Path
    pack: object
    stream: str
    schema: str
    store_url: str
    bus_url: str
    device_key: str = ""
    admin_key: str = ""
    procs: list[ServerProcess] = field(default_factory=list)

    def process(self, name: str, *roles: str, worker: int = 0, workers: int = 1,
                extra: tuple[str, ...] = ()) -> ServerProcess:
        data = self.root / name
        data.mkdir(parents=True, exist_ok=True)
        args = ["--bus", self.bus_url, "--name", name, "--role", ",".join(roles),
                "--worker", str(worker), "--workers", str(workers),
                "--scenarios", str(self.packs), "--notify", "log:", "--log-level", "warning",
                # The tests count one case per alert; thousands of loud spells in one town
                # would otherwise be held by the storm guard (tested in tests/act).
                "--storm-cases", "0", *extra]
        proc = ServerProcess(self.city, data, self.store_url, extra=args)
        self.procs.append(proc)
        return proc

    def settings(self, name: str, *roles: str, **more):
        from cityops.settings import Settings

        data = self.root / name
        more = {"storm_cases": 0, **more}  # as for processes: one case per alert
        return Settings(data_dir=data, store_url=self.store_url, bus_url=self.bus_url,
                        roles=list(roles), node_name=name, scenario_dirs=[self.packs], **more)


async def consumer_backlog(bus_url: str, stream: str, group: str, subject: str,
                           partitions: int) -> tuple[int, int]:
    """(not yet delivered, delivered but not acknowledged) over a group's partitions."""
    nc = await nats.connect(bus_url.split("?")[0])
    try:
        jsm = nc.jsm()
        pending = unacked = 0
        for p in range(partitions):
            try:
                info = await jsm.consumer_info(stream, f"{group}-{subject}-{p}")
            except nats.js.errors.NotFoundError:
                continue
            pending += int(info.num_pending or 0)
            unacked += int(info.num_ack_pending or 0)
        return pending, unacked
    finally:
        await nc.close()


async def wait_drained(bus_url: str, stream: str, group: str, subject: str, partitions: int,
                       timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pending, unacked = await consumer_backlog(bus_url, stream, group, subject, partitions)
        if pending == 0 and unacked == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{group} still has {pending} pending, {unacked} unacked")
        await asyncio.sleep(0.25)


@pytest.fixture
def cluster(tmp_path, postgres_url, nats_url):
    tag = uuid.uuid4().hex[:10]
    city = tmp_path / "city"
    pack = grid_city(devices={"noise": 40, "gps": 2})
    # Alternating loud and quiet spells make one alert episode per loud spell; merging is off
    # so that every alert is a case of its own.
    pack.categories.append(Category(code="event.test.loud", name="Loud", kind="event",
                                    major="test", minor="loud", departments=["environment"],
                                    merge_radius_m=0))
    save_pack(pack, city)
    packs = tmp_path / "packs"
    (packs / "loud").mkdir(parents=True)
    (packs / "loud" / "manifest.yaml").write_text(LOUD)
    schema = f"cluster_{tag}"
    stream = f"TEST_CLUSTER_{tag}"
    sep = "&" if "?" in postgres_url else "?"
    store_url = f"{postgres_url}{sep}schema={schema}"
    # Short acknowledgement waits: redeliveries show up within the test's time.
    bus_url = (f"{nats_url}?stream={stream}&ack_wait=4&fetch_wait=1&max_age=900"
               f"&max_bytes={256 * 1024 * 1024}")
    c = Cluster(tmp_path, city, packs, pack, stream, schema, store_url, bus_url)

    async def keys() -> None:
        store = open_store(store_url)
        await store.open()
        try:
            c.device_key, device = new_key("device", None, "cluster-test")
            c.admin_key, admin = new_key("admin", None, "cluster-test")
            await store.add_key(device)
            await store.add_key(admin)
        finally:
            await store.close()

    asyncio.run(keys())
    yield c
    for proc in c.procs:
        with contextlib.suppress(Exception):
            proc.stop(timeout=15)
    asyncio.run(_drop(nats_url, stream, store_url, schema))


async def _drop(nats_url: str, stream: str, store_url: str, schema: str) -> None:
    with contextlib.suppress(Exception):
        nc = await nats.connect(nats_url)
        try:
            await nc.jsm().delete_stream(stream)
        finally:
            await nc.close()
    store = open_store(store_url)
    await store.open()
    try:
        async with store._connection(write=True) as conn:  # noqa: SLF001
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await store.close()


def client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {key}"})
