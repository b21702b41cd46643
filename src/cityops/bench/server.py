"""A CityOps node in a child process, for benchmarks that must measure over loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from cityops.auth import new_key
from cityops.packs.format import save_pack
from cityops.store.base import open_store


async def asgi_body(receive: Callable[[], Awaitable[dict[str, Any]]], limit: int) -> bytes:
    """A bare ASGI app's request body, whole (a loopback receiver in a benchmark or a test);
    past `limit` bytes it raises ValueError rather than keep reading."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > limit:
            raise ValueError(f"request body over {limit} bytes")
        if not message.get("more_body"):
            return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, city: Path, data: Path, store_url: str, port: int | None = None,
                 extra: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "cityops", "serve", "--city", str(city),
                     "--data", str(data), "--port", str(self.port), "--store", store_url,
                     *(extra or [])]
        self.log_path = data.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; log:\n"
                                   + self.log_path.read_text()[-3000:])
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not come up within {timeout:.0f} s")

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class BenchNode:
    """A city saved under `root`, its store holding a device key and an admin key, and a node
    serving it from its own process (not yet started)."""

    def __init__(self, root: Path, pack, store_url: str | None = None,
                 extra: list[str] | None = None) -> None:
        self.city = root / "city"
        self.data = root / "data"
        save_pack(pack, self.city)
        self.data.mkdir(parents=True, exist_ok=True)
        self.store_url = store_url or f"sqlite:///{(self.data / 'state.db').resolve()}"
        self.device_key, device = new_key("device", None, "bench")
        self.admin_key, admin = new_key("admin", None, "bench")
        asyncio.run(self._add_keys([device, admin]))
        self.server = ServerProcess(self.city, self.data, self.store_url, extra=extra)

    async def _add_keys(self, records) -> None:
        store = open_store(self.store_url)
        await store.open()
        try:
            for record in records:
                await store.add_key(record)
        finally:
            await store.close()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}
