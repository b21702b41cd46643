"""A grid city for the Open311 tests, a node on it in-process (ASGI) or served over real HTTP
by uvicorn in a thread, for clients that make their own connections."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
from pathlib import Path

import msgspec
import pytest

from cityops.domain.city import Department, Staff
from cityops.packs.categories_file import default_categories
from cityops.packs.grid import generate as grid_city
from tests.clock_kit import Clock as Clock  # the tests import it from here

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI).timestamp()
HERE = {"lat": "31.15", "long": "121.45"}  # Town 1, Village 1
VILLAGE = "990001001001"
BASE = "/open311/v2"
NOISE = "event-environment-noise_nuisance"
GARBAGE = "event-sanitation-exposed_garbage"


def open311_city():
    departments = [
        Department("police", "Police", "110", ["990001"]),
        Department("fire", "Fire", "119", ["990001"]),
        Department("city_management", "City management", None, ["990001"]),
        Department("sanitation", "Sanitation", None, ["990001"]),
        Department("environment", "Environment", None, ["990001"]),
        Department("transport", "Transport", None, ["990001"]),
        Department("water_affairs", "Water affairs", None, ["990001"]),
    ]
    staff = [Staff("san-01", "Wang", "sanitation", "gps-000000", VILLAGE)]
    return msgspec.structs.replace(
        grid_city(devices={"noise": 4, "gps": 1}), departments=departments, staff=staff,
        categories=default_categories([d.code for d in departments]))


@pytest.fixture
def city():
    return open311_city()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A node serving the city over HTTP on a free loopback port from its own thread and
    event loop; `call` runs a coroutine there (the node's store lives in that loop)."""

    def __init__(self, pack, data: Path) -> None:
        import uvicorn

        from cityops.api.app import create_app
        from cityops.node import Node
        from cityops.settings import Settings

        self.node = Node(pack, Settings(data_dir=data, notify_url="memory:"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            create_app(self.node), host="127.0.0.1", port=self.port, log_level="warning",
            access_log=False, lifespan="on", timeout_graceful_shutdown=1))
        self.loop: asyncio.AbstractEventLoop | None = None

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.serve())

        self.thread = threading.Thread(target=run, name=f"open311-{self.port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Open311 test node did not start")
            time.sleep(0.05)

    def call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def key(self, role: str, scope: str | None = None, name: str = "") -> str:
        from cityops.auth import new_key

        secret, record = new_key(role, scope, name)
        self.call(self.node.store.add_key(record))
        return secret

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    node = Served(open311_city(), tmp_path_factory.mktemp("open311") / "data")
    yield node
    node.stop()
