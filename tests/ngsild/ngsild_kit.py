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


def free_socket() -> tuple[socket.socket, str]:
    """A loopback socket bound to a free port, and its base URL (bind first when the URL must
    be known before the app exists: a node's public URL)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


async def serve_app(app, sock: socket.socket | None = None
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


# -- subscriptions ----------------------------------------------------------------------------


async def put_entity(node: Any, doc: dict[str, Any], context: Any = None) -> Any:
    """Create or replace a context entity (given in `context`'s terms) as a write through the
    API would, listeners told; returns the entity as stored."""
    from cityops.ngsild.contexts import resolve
    from cityops.ngsild.entity import expand_entity

    entity = expand_entity(doc, resolve(context))
    _, after = await node.ngsild.entities.modify(entity["id"], lambda before: entity)
    return after


def subscription(uri: str, **members: Any) -> dict[str, Any]:
    """A subscription body notifying `uri` of Buildings unless `members` say otherwise
    (`notification` members are merged into the endpoint's notification)."""
    note = {"endpoint": {"uri": uri}, **members.pop("notification", {})}
    body: dict[str, Any] = {"type": "Subscription", "entities": [{"type": "Building"}],
                            "notification": note}
    body.update(members)
    return body


def building(n: int, lat: float = 31.15, lon: float = 121.45, **attrs: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": f"urn:ngsi-ld:Building:{n}", "type": "Building",
                           "location": {"type": "GeoProperty",
                                        "value": {"type": "Point", "coordinates": [lon, lat]}}}
    for name, value in attrs.items():
        doc[name] = {"type": "Property", "value": value}
    return doc


# -- the core API (entities, queries, contexts): keys and clients speaking NGSI-LD -------------

NGSI = "/ngsi-ld/v1"


def link(url: str) -> dict[str, str]:
    """A Link header naming `url` as the request's JSON-LD context."""
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; '
                    'type="application/ld+json"'}


async def ngsi_client(live: Any, role: str = "admin", scope: str | None = None,
                      headers: dict[str, str] | None = None) -> Any:
    """An httpx client on `live`'s app with a new key of `role` (scoped to `scope`)."""
    client = live.client(await live.key(role, scope))
    client.headers.update(headers or {})
    return client


def problem_type(response: Any) -> str:
    """The ETSI error type's last segment of a ProblemDetails answer (checking its shape)."""
    body = response.json()
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert body["title"] and body["detail"] and body["title"] != body["detail"], body
    prefix = "https://uri.etsi.org/ngsi-ld/errors/"
    return body["type"][len(prefix):] if body["type"].startswith(prefix) else body["type"]


# -- contexts ---------------------------------------------------------------------------------


def context_mirror(folder: Any, contexts: dict[str, Any]) -> Any:
    """An operator's context mirror in `folder`: each URL of `contexts` (URL -> the `@context`
    value) as a file, and the index.yaml naming them. Returns the folder."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["urls:"]
    for n, (url, context) in enumerate(contexts.items()):
        name = f"mirrored-{n}.jsonld"
        (folder / name).write_text(json.dumps({"@context": context}))
        lines.append(f"  {json.dumps(url)}: {name}")
    (folder / "index.yaml").write_text("\n".join(lines) + "\n")
    return folder


async def admin_principal(live: Any) -> Any:
    """An unscoped admin's Principal on `live` (for calling providers directly)."""
    return await live.node.keys.resolve(await live.key("admin"))
