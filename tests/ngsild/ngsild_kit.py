"""Shared helpers of the NGSI-LD tests (add functions; do not rewrite others')."""

from __future__ import annotations

import json
from typing import Any

# The loopback server and receiver are shared with other tests; NGSI-LD tests import them from
# here.
from tests.http_kit import Received as Received
from tests.http_kit import Receiver as Receiver
from tests.http_kit import dead_url as dead_url
from tests.http_kit import free_socket as free_socket
from tests.http_kit import receiver as receiver
from tests.http_kit import serve_app as serve_app
from tests.http_kit import stop_app as stop_app

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
