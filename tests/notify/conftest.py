"""A real HTTP receiver on loopback for the webhook and SMS notifiers: a small Starlette app
served by uvicorn on a free port, in the test's own event loop."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

import pytest

from cityops.notify import Notification, notification_id


@dataclass
class Received:
    name: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HookServer:
    """Every POST to /hook/NAME is recorded. `script[NAME]` lists (status, headers) answers to
    give first; after it runs out the answer is 200. A NAME in `hang` is never answered until
    the server shuts down (a slow endpoint)."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, name: str) -> str:
        return f"{self.base}/hook/{name}"

    def count(self, name: str) -> int:
        return sum(r.name == name for r in self.received)

    def bodies(self, name: str) -> list[bytes]:
        return [r.body for r in self.received if r.name == name]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: self.count(name) >= count)
        return [r for r in self.received if r.name == name]

    async def handle(self, request):
        from starlette.responses import JSONResponse

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
        return JSONResponse({"ok": True})


@pytest.fixture
async def hooks():
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    server_state = HookServer()
    app = Starlette(routes=[Route("/hook/{name}", server_state.handle, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server_state.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2,
    ))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield server_state
    finally:
        server_state.release.set()
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hook/dead"


@pytest.fixture
def note():
    """Makes a notification; `ref` names the event, so the same ref gives the same id."""
    return make_notification


def make_notification(ref: str = "wo-1", recipient: str = "310115-cg", **fields) -> Notification:
    kind = fields.pop("kind", "work_order.dispatched")
    values = {
        "subject": f"Work order {ref}",
        "body": "Manhole cover missing at Zhangjiang Rd 88",
        "data": {"work_order": ref},
        "created": 1_760_000_000.0,
        "urgency": "high",
        **fields,
    }
    return Notification(id=notification_id(kind, recipient, ref), kind=kind,
                        recipient=recipient, **values)
