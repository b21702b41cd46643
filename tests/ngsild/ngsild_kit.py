"""Shared helpers of the NGSI-LD tests (add functions; do not rewrite others')."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

# -- a real HTTP receiver on loopback (subscription notifications) ----------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Every POST to /{name} is recorded. `script[name]` lists (status, headers) answers to give
    first; after it runs out the answer is 200. A name in `hang` is answered only once
    `release` is set (a slow subscriber)."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def of(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == name]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 10.0
                       ) -> list[Received]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.of(name)) >= count)
        return self.of(name)

    async def handle(self, request):
        from starlette.responses import JSONResponse, Response

        name = request.path_params["name"]
        body = await request.body()
        async with self._arrived:
            self.received.append(Received(name, dict(request.headers), body))
            self._arrived.notify_all()
        if name in self.hang:
            await self.release.wait()
        answers = self.script.get(name)
        if answers:
            status, headers = answers.pop(0)
            return JSONResponse({"error": f"scripted {status}"}, status, headers)
        return Response(status_code=200)


async def serve_app(app) -> tuple[str, Any, asyncio.Task[None], socket.socket]:
    """`app` served by uvicorn on a free loopback port, in the running loop; returns its base
    URL and what `stop_app` needs."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    return base, server, task, sock


async def stop_app(server, task: asyncio.Task[None], sock: socket.socket) -> None:
    server.should_exit = True
    await task
    sock.close()


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    """A `Receiver` served on a free loopback port for the length of the block."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    state = Receiver()
    app = Starlette(routes=[Route("/{name}", state.handle, methods=["POST"])])
    state.base, server, task, sock = await serve_app(app)
    try:
        yield state
    finally:
        state.release.set()
        await stop_app(server, task, sock)


def dead_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/dead"
