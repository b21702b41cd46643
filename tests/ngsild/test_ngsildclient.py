"""The stock NGSI-LD client, ngsildclient from PyPI, against a node served on loopback.

The client runs in its own venv (`.venv-clients`, made by `make install`; see
tests/ngsild/clients/requirements.txt for why) as a subprocess, over real HTTP: create,
retrieve, query by q and by georel, a subscription whose notification a real receiver gets,
an update, and a Smart Data Models producer's upsert that becomes a reading."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from pathlib import Path

import pytest

from tests.ngsild.ngsild_kit import receiver, serve_app, stop_app

ROOT = Path(__file__).resolve().parents[2]
CLIENT_PY = ROOT / ".venv-clients" / "bin" / "python"
SCRIPT = Path(__file__).parent / "clients" / "ngsildclient_run.py"


def _client_python() -> Path:
    if CLIENT_PY.exists():
        return CLIENT_PY
    reason = f"{CLIENT_PY} is missing: `make install` makes it (pip install -r " \
             "tests/ngsild/clients/requirements.txt)"
    if os.environ.get("CITYOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


async def test_the_stock_client_creates_retrieves_queries_and_subscribes(live):
    python = _client_python()
    node = live.node
    key = await live.key("admin")
    observed = dt.datetime.fromtimestamp(node.clock() - 30, dt.UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")
    base, server, task, sock = await serve_app(live.app)
    try:
        async with receiver() as got:
            proc = await asyncio.create_subprocess_exec(
                str(python), str(SCRIPT), base, key, got.url("client"), observed,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            async with asyncio.timeout(120):
                out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()[-3000:]
            result = json.loads(out.decode().strip().splitlines()[-1])
            assert result["errors"] == {}, "\n".join(
                f"{k}: {v}" for k, v in result["errors"].items())

            assert result["retrieve"] == {
                "id": "urn:ngsi-ld:Building:client-0", "type": "Building",
                "category": "school", "floors": 3, "coordinates": [121.47, 31.231]}
            assert result["query_q"] == ["urn:ngsi-ld:Building:client-1"]
            # 1 km around a point between the two schools; the hospital is ~15 km away.
            assert result["query_georel"] == ["urn:ngsi-ld:Building:client-0",
                                              "urn:ngsi-ld:Building:client-1"]
            assert result["subscription"] == "urn:ngsi-ld:Subscription:client-1"
            assert result["update"] == 9

            notices = await got.wait_for("client")
            data = [e for n in notices for e in n.json()["data"]]
            assert any(e["id"] == "urn:ngsi-ld:Building:client-2"
                       and (e["floors"]["value"] if isinstance(e["floors"], dict)
                            else e["floors"]) == 9 for e in data), data
            assert notices[0].json()["subscriptionId"] == "urn:ngsi-ld:Subscription:client-1"
    finally:
        await stop_app(server, task, sock)

    # The producer's NoiseLevelObserved went in as a reading of the noise meter.
    index = node.registry.index["noise-000003"]
    ts, value = node.history.state.latest(index)
    assert float(value[0]) == pytest.approx(61.5)

