"""Property-based fuzzing of every operation in the OpenAPI document (schemathesis +
hypothesis) against a node served in this process: no 5xx, and every answer conforms to the
document (status codes and bodies). Bugs it found have their own tests beside the code."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import msgspec
import pytest
import schemathesis
from schemathesis.checks import positive_data_acceptance
from hypothesis import HealthCheck, given, settings

from cityops.auth import new_key
from cityops.domain.city import Department, Staff
from cityops.packs.categories_file import default_categories
from cityops.packs.grid import generate as grid_city
from cityops.store.sqlite import SQLiteStore


EXAMPLES = 25  # per operation; CI time is bounded, and each run seeds differently

pytestmark = pytest.mark.timeout(900)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _city():
    departments = [Department(c, c.title(), None, ["990001"])
                   for c in ("police", "fire", "city_management", "sanitation", "environment",
                             "water_affairs", "transport")]
    return msgspec.structs.replace(
        grid_city(devices={"noise": 20, "gps": 2}), departments=departments,
        staff=[Staff("san-01", "Wang", "sanitation", "gps-000000", "990001001001")],
        categories=default_categories([d.code for d in departments]))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """uvicorn in a thread of its own; the app's lifespan starts and stops the node there."""
    import uvicorn

    from cityops.api.app import create_app
    from cityops.node import Node
    from cityops.settings import Settings

    data = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{data}/state.db"
    secret, record = new_key("admin")

    async def add_key() -> None:
        store = SQLiteStore(url)
        await store.open()
        await store.add_key(record)
        await store.close()

    asyncio.run(add_key())
    node = Node(_city(), Settings(data_dir=data, store_url=url, notify_url="memory:"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(node), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the fuzzed node did not come up")
        time.sleep(0.1)
    yield base, secret
    server.should_exit = True
    thread.join(60)


def test_no_server_errors_and_answers_match_the_document(served):
    """Each operation gets its own hypothesis run; failures are gathered, not stopped at the
    first, so one run shows every operation that misbehaves."""
    base, secret = served
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {"Authorization": f"Bearer {secret}"}
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            # Every check but "schema-valid data must be accepted": a cursor is opaque text to
            # the document, yet only the cursors this API gave out are cursors; a device kind
            # or area code the city does not have is refused with 400 and the reason.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # failure groups too: each reported with its operation
            failures[operation.label] = f"{type(error).__name__}: {error}"[:1500]
    assert operations >= 30
    assert failures == {}, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
