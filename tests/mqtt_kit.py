"""A Mosquitto of the test's own, with the dynamic-security plugin and no anonymous clients,
on a free loopback port: the shared broker on 1883 is never changed.

    # in a conftest.py beside the tests (tests/ingest/conftest.py does this)
    from tests.mqtt_kit import secure_broker  # noqa: F401

    async def test_x(secure_broker): ...

Skips with the reason when Mosquitto, its plugin or `mosquitto_ctrl` is missing; fails instead
when CITYOPS_REQUIRE_SERVICES=1, as the shared servers' fixtures do (tests/conftest.py).
"""

from __future__ import annotations

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
    process = subprocess.Popen([str(MOSQUITTO), "-c", str(config)], stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    return process, SecureBroker("127.0.0.1", port, ADMIN, password, log)


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
        deadline = time.monotonic() + 10.0
        while process.poll() is None and not _listening(broker.port) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        if process.poll() is None and _listening(broker.port):
            break
        process.kill()
        process.wait()
    else:
        pytest.fail(f"the test's Mosquitto did not start:\n{broker.log_text()}")
    try:
        yield broker
    finally:
        process.terminate()
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
