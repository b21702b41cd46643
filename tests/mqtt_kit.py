"""A Mosquitto of the test's own on a free loopback port: the shared broker on 1883 is never
changed, stopped or restarted.

`secure_broker`: with the dynamic-security plugin and no anonymous clients.
`plain_broker` (or `with own_plain_broker(folder)`): anonymous clients, as the shared broker;
the test may `stop()` and `start()` it again, and it comes back on the same port (clients
reconnect to the same URL).

    # in a conftest.py beside the tests (tests/ingest/conftest.py does this), or the test module
    from tests.mqtt_kit import secure_broker  # noqa: F401

    async def test_x(secure_broker): ...

Skips with the reason when Mosquitto, its plugin or `mosquitto_ctrl` is missing; fails instead
when CITYOPS_REQUIRE_SERVICES=1, as the shared servers' fixtures do (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MOSQUITTO = Path("/usr/sbin/mosquitto")
PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
ADMIN = "dynsec-admin"


@dataclass(frozen=True)
class SecureBroker:
    host: str
    port: int
    admin: str
    admin_password: str
    log: Path

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"mqtt://{auth}{self.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return self.url(self.admin, self.admin_password)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _unavailable(message: str) -> None:
    if os.environ.get("CITYOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and CITYOPS_REQUIRE_SERVICES=1 says it must be there")
    pytest.skip(f"{message}: install mosquitto (Debian's ships the plugin) to run this test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _start(folder: Path) -> tuple[subprocess.Popen, SecureBroker]:
    password = os.urandom(12).hex()
    dynsec = folder / "dynsec.json"
    dynsec.unlink(missing_ok=True)
    subprocess.run([shutil.which("mosquitto_ctrl") or "mosquitto_ctrl", "dynsec", "init",
                    str(dynsec), ADMIN, password], check=True, capture_output=True)
    port = _free_port()
    log = folder / "mosquitto.log"
    config = folder / "mosquitto.conf"
    # Run as the user of the test: as root Mosquitto would otherwise switch to the
    # `mosquitto` user, who may not read (or save) the plugin's file in the test's folder.
    config.write_text("\n".join([
        f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        "per_listener_settings false",
        "allow_anonymous false",
        "persistence false",
        f"listener {port} 127.0.0.1",
        f"plugin {PLUGIN}",
        f"plugin_opt_config_file {dynsec}",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "",
    ]))
    log.unlink(missing_ok=True)
    return _launch(config, log), SecureBroker("127.0.0.1", port, ADMIN, password, log)


def _launch(config: Path, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:  # appended: a restarted broker keeps the earlier log
        return subprocess.Popen([str(MOSQUITTO), "-c", str(config)], stdout=out,
                                stderr=subprocess.STDOUT)


def _came_up(process: subprocess.Popen, port: int, timeout: float = 10.0) -> bool:
    """Whether the broker listens; if it does not (it died, say on a taken port), it is ended."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and not _listening(port) and time.monotonic() < deadline:
        time.sleep(0.02)
    if process.poll() is None and _listening(port):
        return True
    _end(process)
    return False


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(5.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def secure_broker(tmp_path_factory) -> Iterator[SecureBroker]:
    for need in (MOSQUITTO, PLUGIN):
        if not need.exists():
            _unavailable(f"{need} is missing")
    if shutil.which("mosquitto_ctrl") is None:
        _unavailable("mosquitto_ctrl is missing")
    folder = tmp_path_factory.mktemp("mosquitto")
    for _ in range(3):  # the free port may be taken by someone else before Mosquitto binds it
        process, broker = _start(folder)
        if _came_up(process, broker.port):
            break
    else:
        pytest.fail(f"the test's Mosquitto did not start:\n{broker.log_text()}")
    try:
        yield broker
    finally:
        _end(process)


class PlainBroker:
    """An anonymous Mosquitto (persistence on, as the shared broker's) in `folder`."""

    host = "127.0.0.1"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "mosquitto.log"
        self.config = folder / "mosquitto.conf"
        self.port = 0
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _write_config(self) -> None:
        self.config.write_text("\n".join([
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",  # see _start
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.folder}/",
            f"listener {self.port} {self.host}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "",
        ]))

    def first_start(self) -> None:
        for _ in range(3):  # the free port may be taken by someone else before Mosquitto binds it
            self.port = _free_port()
            self._write_config()
            process = _launch(self.config, self.log)
            if _came_up(process, self.port):
                self._process = process
                return
        pytest.fail(f"the test's Mosquitto did not start:\n{self.log_text()}")

    def start(self) -> None:
        """Start again on the same port, waiting until it listens."""
        if self.running:
            return
        deadline = time.monotonic() + 10.0
        while True:  # the port it just left may take a moment to be free again
            process = _launch(self.config, self.log)
            if _came_up(process, self.port):
                self._process = process
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the test's Mosquitto did not start again on port "
                                     f"{self.port}:\n{self.log_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop (SIGTERM, as a service manager does), waiting until the process is gone."""
        if self._process is not None:
            _end(self._process)
            self._process = None


@contextlib.contextmanager
def own_plain_broker(folder: Path) -> Iterator[PlainBroker]:
    """A started PlainBroker in `folder` for the `with` block, stopped after it."""
    if not MOSQUITTO.exists():
        _unavailable(f"{MOSQUITTO} is missing")
    broker = PlainBroker(folder)
    broker.first_start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def plain_broker(tmp_path_factory) -> Iterator[PlainBroker]:
    with own_plain_broker(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker
