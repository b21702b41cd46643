"""Shared fixtures. Real servers (PostgreSQL, Mosquitto, NATS) are used, never mocks: a test
that needs one skips with the reason when it is not reachable, unless CITYOPS_REQUIRE_SERVICES=1
(as in CI), where a missing server fails the test instead.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("CITYOPS_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)
POSTGRES_URL = os.environ.get("CITYOPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MQTT_URL = os.environ.get("CITYOPS_TEST_MQTT", "mqtt://127.0.0.1:1883")
NATS_URL = os.environ.get("CITYOPS_TEST_NATS", "nats://127.0.0.1:4222")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CITYOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and CITYOPS_REQUIRE_SERVICES=1 says it must be")
    pytest.skip(f"{message}; start it to run this test")


@pytest.fixture
def postgres_url() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def each_store_url(request, tmp_path):
    """A node's `store_url` for each backend in turn: memory, SQLite in tmp_path, and a fresh
    schema on the shared PostgreSQL server, dropped afterwards."""
    if request.param == "memory":
        yield "memory://"
        return
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store/state.db"
        return
    yield request.getfixturevalue("postgres_schema_url")


@pytest.fixture
def postgres_schema_url(postgres_url):
    """A `store_url` of a fresh schema on the shared PostgreSQL server, dropped afterwards."""
    import uuid

    import psycopg

    from cityops.store.postgres import split_url

    schema = f"cityops_test_{uuid.uuid4().hex[:16]}"
    yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema={schema}"
    with psycopg.connect(split_url(postgres_url)[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def mqtt_url() -> str:
    require_service("Mosquitto (MQTT)", "127.0.0.1", 1883)
    return MQTT_URL


@pytest.fixture
def nats_url() -> str:
    require_service("NATS (JetStream)", "127.0.0.1", 4222)
    return NATS_URL


@pytest.fixture(scope="session", autouse=True)
def _manifests_parsed_once():
    """Every node a test starts loads the built-in scenario packs, and PyYAML's pure-Python
    parser took a third of a node's start (some 40 of 115 ms, hundreds of nodes a run). A
    manifest's text alone decides its document, so each distinct text is parsed once a run
    and every load gets a deep copy of its own; a text that does not parse is not kept, so it
    fails again each time. `load_yaml` itself is unchanged and tested on its own. The checks'
    look-ups of a rule field's name (a pure function of the rule type and the name, which
    evaluates the type's annotations each time) are kept for the run likewise."""
    import copy
    import functools

    from cityops.scenarios import checks, loader

    parse = loader.load_yaml
    parsed: dict[str, object] = {}

    def once(text: str) -> object:
        if text not in parsed:
            parsed[text] = parse(text)
        return copy.deepcopy(parsed[text])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loader, "load_yaml", once)
        patch.setattr(checks, "encoded", functools.cache(checks.encoded))
        patch.setattr(checks, "attribute", functools.cache(checks.attribute))
        yield


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("CITYOPS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"real data folder {SHARED_DATA} is missing")
        pytest.skip(f"real data folder {SHARED_DATA} is missing")
    return SHARED_DATA


# -- a small live node, in-process ------------------------------------------------------------

import contextlib  # noqa: E402

import httpx  # noqa: E402

from cityops.auth import new_key  # noqa: E402
from cityops.packs.grid import generate as grid_city  # noqa: E402


@pytest.fixture
def grid_pack():
    """2 towns x 2 villages; 20 noise meters, 5 air-quality stations, 3 GPS trackers."""
    return grid_city(devices={"noise": 20, "air_quality": 5, "gps": 3})


class LiveNode:
    """A started node and an HTTP client on its ASGI app, with helpers to make keys."""

    def __init__(self, node, app) -> None:
        self.node = node
        self.app = app

    async def key(self, role: str, scope: str | None = None, name: str = "") -> str:
        secret, record = new_key(role, scope, name)
        await self.node.store.add_key(record)
        return secret

    def client(self, secret: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url="http://cityops.test", headers=headers)


@pytest.fixture
async def live(tmp_path, grid_pack):
    """A node on the grid city with the embedded SQLite store, started and stopped around the
    test."""
    async with start_live(grid_pack, tmp_path / "data") as node:
        yield node


@contextlib.asynccontextmanager
async def start_live(pack, data_dir, clock=None, **settings):
    from cityops.api.app import create_app
    from cityops.node import Node
    from cityops.settings import Settings

    node = Node(pack, Settings(data_dir=data_dir, **settings), **({"clock": clock} if clock
                                                                   else {}))
    await node.start()
    try:
        yield LiveNode(node, create_app(node, manage_node=False))
    finally:
        await node.stop()


@pytest.fixture
def live_node():
    """`async with live_node(pack, data_dir, **settings) as live:` for tests that need their
    own settings."""
    return start_live
