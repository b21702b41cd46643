"""`cityops serve` as a real process on a real port."""

import asyncio
import signal
import time

import httpx
import msgspec
from typer.testing import CliRunner

from cityops.auth import new_key
from cityops.bench.server import ServerProcess
from cityops.cli.main import app
from cityops.packs.format import save_pack
from cityops.store.base import open_store


def test_serve_takes_readings_and_stops_cleanly(tmp_path, grid_pack):
    save_pack(grid_pack, tmp_path / "city")
    data = tmp_path / "data"
    secret, record = new_key("device")

    async def add():
        store = open_store(f"sqlite:///{data / 'state.db'}")
        await store.open()
        await store.add_key(record)
        await store.close()

    asyncio.run(add())
    server = ServerProcess(tmp_path / "city", data, f"sqlite:///{data / 'state.db'}",
                           extra=["--open-status", "--public-url", "https://ops.example/"])
    server.start(timeout=60)
    try:
        r = httpx.post(server.url + "/api/v1/readings",
                       headers={"Authorization": f"Bearer {secret}"},
                       content=msgspec.json.encode([{"device_id": "noise-000000",
                                                     "ts": time.time(), "value": 50}]))
        assert r.status_code == 202 and r.json()["accepted"] == 1
        page = httpx.get(server.url + "/").text
        assert "Grid City" in page and "Readings stored per second" in page
        # --open-status publishes the node's figures without a key.
        assert httpx.get(server.url + "/status.json").json()["stored"] == 1
        assert httpx.get(server.url + "/metrics").status_code == 200
    finally:
        code = server.stop()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the parent sees the signal.
    assert code in (0, -signal.SIGTERM)

    async def latest():
        store = open_store(f"sqlite:///{data / 'state.db'}")
        await store.open()
        try:
            return await store.load_latest()
        finally:
            await store.close()

    # The node's shutdown ran: its last latest-value snapshot is in the store.
    assert "noise-000000" in asyncio.run(latest()).device_id
    # The data dir remembers its store, so `cityops keys` finds the same one.
    assert (data / "cityops.json").exists()


def test_serve_refuses_a_missing_city_in_one_line(tmp_path):
    r = CliRunner().invoke(app, ["serve", "--city", str(tmp_path / "nowhere"),
                                 "--data", str(tmp_path / "d")])
    assert r.exit_code == 2 and "is not a folder" in r.output and "Traceback" not in r.output


def test_serve_refuses_a_bad_mqtt_url(tmp_path, grid_pack):
    save_pack(grid_pack, tmp_path / "city")
    r = CliRunner().invoke(app, ["serve", "--city", str(tmp_path / "city"), "--data",
                                 str(tmp_path / "d"), "--mqtt", "tcp://x"])
    assert r.exit_code == 2 and "mqtt://host:port" in r.output


def test_serve_refuses_a_public_url_that_is_no_web_address(tmp_path, grid_pack):
    save_pack(grid_pack, tmp_path / "city")
    r = CliRunner().invoke(app, ["serve", "--city", str(tmp_path / "city"), "--data",
                                 str(tmp_path / "d"), "--public-url", "ops.example"])
    assert r.exit_code == 2 and "http:// or https://" in r.output


def test_serve_refuses_an_unknown_storm_level(tmp_path, grid_pack):
    save_pack(grid_pack, tmp_path / "city")
    r = CliRunner().invoke(app, ["serve", "--city", str(tmp_path / "city"), "--data",
                                 str(tmp_path / "d"), "--storm-level", "street"])
    assert r.exit_code == 2 and "village, town or district" in r.output
    assert "Traceback" not in r.output
