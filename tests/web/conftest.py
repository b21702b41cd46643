"""Browser tests: a node on a small grid city served by uvicorn in a thread, and Debian's
Chromium driven by Playwright (never `playwright install`: the browser is the system's).

A test module shares one server (starting a node and a browser per test would take most of
the run); each test gets its own browser context, so sign-ins and storage never leak between
tests. Screenshots go to var/test-artifacts/web/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from cityops.domain.city import Department, Staff, Vehicle
from cityops.packs.categories_file import default_categories
from cityops.packs.grid import generate as grid_city

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "web"
TOWN1 = "990001001"
TOWN2 = "990001002"
VILLAGE11 = "990001001001"
# Where the grid city's people and trucks start: town 1 (west) and town 2 (east).
PLACES = {
    "gps-000000": (31.15, 121.45), "gps-000001": (31.17, 121.43),
    "gps-000002": (31.16, 121.47), "gps-000003": (31.24, 121.44),
    "gps-000004": (31.25, 121.55), "gps-000005": (31.14, 121.57),
    "gps-000006": (31.22, 121.56), "gps-000007": (31.26, 121.58),
}


def web_city():
    """The grid city with departments, field staff of two departments and muck trucks."""
    pack = grid_city(devices={"noise": 20, "air_quality": 5, "manhole_tilt": 6, "gps": 8})
    departments = [
        Department("police", "Police", "110", ["990001"]),
        Department("city_management", "City management", None, ["990001"]),
        Department("sanitation", "Sanitation", None, ["990001"]),
        Department("environment", "Environment", None, [TOWN1]),
    ]
    staff = [
        Staff("san-01", "Wang Fang", "sanitation", "gps-000000", VILLAGE11),
        Staff("san-02", "Zhao Lei", "sanitation", "gps-000001", VILLAGE11),
        Staff("cm-01", "Li Na", "city_management", "gps-000002", VILLAGE11),
        Staff("cm-02", "Chen Jie", "city_management", "gps-000003", f"{TOWN1}002"),
        Staff("cm-03", "Sun Hao", "city_management", "gps-000006", f"{TOWN2}001"),
    ]
    vehicles = [Vehicle("truck-01", "沪B·12345", "muck_truck", "gps-000004", "Pudong Earthworks"),
                Vehicle("truck-02", "沪B·67890", "muck_truck", "gps-000005", "Pudong Earthworks"),
                Vehicle("truck-03", "沪B·24680", "muck_truck", "gps-000007", "Pudong Earthworks")]
    return msgspec.structs.replace(pack, departments=departments, staff=staff, vehicles=vehicles,
                                   categories=default_categories([d.code for d in departments]))


def city_with_departments(extra: list[str]):
    """The web city with more city-wide departments (their codes, names made from them), and the
    default categories routed to all of them: the one-stop services' departments."""
    from cityops.packs.categories_file import default_categories

    pack = web_city()
    departments = [*pack.departments,
                   *(Department(c, c.replace("_", " ").title(), None, ["990001"]) for c in extra)]
    return msgspec.structs.replace(pack, departments=departments, categories=default_categories(
        [d.code for d in departments]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebNode:
    """A node serving a city over real HTTP on a free loopback port, from a thread."""

    def __init__(self, pack, data: Path, keys: dict[str, tuple[str, str | None, str]],
                 clock=None) -> None:
        """`clock`: what the node takes for now (a test's simulated clock), else wall time."""
        self.pack = pack
        self.clock = clock
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # A thread of its own: Playwright's sync API keeps an event loop in this one.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            self.keys = pool.submit(asyncio.run, self._make_keys(keys)).result()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def _make_keys(self, wanted):
        from cityops.auth import new_key
        from cityops.store.base import open_store

        store = open_store(f"sqlite:///{(self.data / 'state.db').resolve()}")
        self.data.mkdir(parents=True, exist_ok=True)
        await store.open()
        out = {}
        try:
            for label, (role, scope, name) in wanted.items():
                secret, record = new_key(role, scope, name)
                await store.add_key(record)
                out[label] = secret
        finally:
            await store.close()
        return out

    def start(self) -> None:
        import uvicorn

        from cityops.api.app import create_app
        from cityops.node import Node
        from cityops.settings import Settings

        # The node's own address as its public one: photo urls are absolute, as in a city's
        # deployment behind its public name.
        self.node = Node(self.pack, Settings(data_dir=self.data, notify_url="memory:",
                                             escalate_tick_s=1.0, public_base_url=self.url),
                         **({"clock": self.clock} if self.clock is not None else {}))
        from cityops.api.live import graceful_server

        self.server = graceful_server(uvicorn.Config(
            create_app(self.node), host="127.0.0.1", port=self.port, log_level="warning",
            access_log=False, timeout_graceful_shutdown=1, lifespan="on"))

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.serve())

        self.thread = threading.Thread(target=run, name=f"cityops-{self.port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test node did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def restart(self) -> None:
        """Stop the node and start a new one on the same data and port, as an operator
        restarting the service would."""
        self.stop()
        self.start()

    def call(self, coro, timeout: float = 10.0):
        """Run a coroutine in the server's event loop (the node lives there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def client(self, label: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0,
                            headers={"Authorization": f"Bearer {self.keys[label]}"})

    def send(self, readings: list[dict]) -> dict:
        with self.client("device") as c:
            r = c.post("/api/v1/readings", json=readings)
            r.raise_for_status()
            return r.json()

    def place_everyone(self, ts: float | None = None) -> None:
        ts = ts or time.time()
        self.send([{"device_id": d, "ts": ts, "values": {"lat": lat, "lon": lon}}
                   for d, (lat, lon) in PLACES.items()])


KEYS = {
    "admin": ("admin", None, "test admin"),
    "operator": ("operator", None, "duty operator"),
    "operator_town2": ("operator", TOWN2, "town 2 operator"),
    "device": ("device", None, "test devices"),
    "san-01": ("field", None, "san-01"),
    "cm-01": ("field", None, "cm-01"),
}


@pytest.fixture(scope="module")
def web_node(tmp_path_factory):
    node = WebNode(web_city(), tmp_path_factory.mktemp("web") / "data", KEYS)
    node.start()
    node.place_everyone()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def browser():
    """Per module: Playwright's sync API runs an event loop in this thread while it lives,
    which the asyncio tests of other modules could not run beside."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium; make install does it)"
        if os.environ.get("CITYOPS_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=[*args, "--use-gl=angle", "--use-angle=swiftshader",
                                    "--enable-unsafe-swiftshader"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    # Old screenshots would pass for new ones: each run starts from an empty folder.
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def signed_in(browser, url: str, key: str, path: str, viewport=(1920, 1080), **options):
    """A fresh context and page, signed in through the one-time fragment (never the query)."""
    # bypass_csp: Playwright evaluates the tests' probes as strings, which the pages' own
    # Content-Security-Policy (script-src 'self') rightly forbids.
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                  bypass_csp=True, **options)
    page = context.new_page()
    page.goto(f"{url}{path}#key={key}")
    return context, page

