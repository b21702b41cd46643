"""Shared fixtures. Real servers (PostgreSQL, Mosquitto, NATS) are used, never mocks: a test
that needs one skips with the reason when it is not reachable, unless CITYOPS_REQUIRE_SERVICES=1
(as in CI), where a missing server fails the test instead.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
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


@pytest.fixture
def mqtt_url() -> str:
    require_service("Mosquitto (MQTT)", "127.0.0.1", 1883)
    return MQTT_URL


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("CITYOPS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"real data folder {SHARED_DATA} is missing")
        pytest.skip(f"real data folder {SHARED_DATA} is missing")
    return SHARED_DATA
