"""A real HTTP server on loopback for tests: an ASGI app served by uvicorn on a free port, in
the test's own event loop (webhook and SMS receivers, NGSI-LD subscribers, peer nodes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


def free_socket() -> tuple[socket.socket, str]:
    """A loopback socket bound to a free port, and its base URL (bind first when the URL must
    be known before the app exists: a node's public URL)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


async def serve_app(app: Any, sock: socket.socket | None = None
                    ) -> tuple[str, Any, asyncio.Task[None], socket.socket]:
    """`app` served by uvicorn on `sock` (a free loopback port by default), in the running
    loop; returns its base URL and what `stop_app` needs."""
    import uvicorn

    if sock is None:
        sock, base = free_socket()
    else:
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    return base, server, task, sock


async def stop_app(server: Any, task: asyncio.Task[None], sock: socket.socket) -> None:
    server.should_exit = True
    await task
    sock.close()


@contextlib.asynccontextmanager
async def served(app: Any, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """`app` served for the length of the block; yields its base URL."""
    base, server, task, sock = await serve_app(app, sock)
    try:
        yield base
    finally:
        await stop_app(server, task, sock)


def dead_url(path: str = "/dead") -> str:
    """A loopback URL where nothing listens: connections are refused."""
    sock, base = free_socket()
    sock.close()
    return base + path


# -- a receiver of POSTs (webhooks, SMS gateways, NGSI-LD subscribers) ------------------------


@dataclass
class Received:
    path: str  # the name the POST went to
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Every POST to {prefix}/{name} is recorded. `script[name]` lists (status, headers)
    answers to give first; after it runs out the answer is 200. A name in `hang` is answered
    only once `release` is set (a slow endpoint)."""

    prefix: str = ""
    base: str = ""
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, name: str) -> str:
        return f"{self.base}{self.prefix}/{name}"

    def of(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == name]

    def count(self, name: str) -> int:
        return len(self.of(name))

    def bodies(self, name: str) -> list[bytes]:
        return [r.body for r in self.of(name)]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 10.0
                       ) -> list[Received]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: self.count(name) >= count)
        return self.of(name)

    async def handle(self, request: Any) -> Any:
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


@contextlib.asynccontextmanager
async def receiver(prefix: str = "") -> AsyncIterator[Receiver]:
    """A `Receiver` served on a free loopback port for the length of the block."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    state = Receiver(prefix)
    app = Starlette(routes=[Route(prefix + "/{name}", state.handle, methods=["POST"])])
    async with served(app) as state.base:
        try:
            yield state
        finally:
            state.release.set()  # a hanging answer must not hold the server's shutdown
