"""Subscribing to other NGSI-LD brokers and taking their notifications in.

Each configured source (`Settings.ngsild_federation`, or the YAML list in
`ngsild_federation_file`; `cityops serve --ngsild-subscribe URL#Type1,Type2` adds one) makes
this node keep a subscription at that broker: `POST {url}/ngsi-ld/v1/subscriptions` for the
source's entity types (sent as full IRIs, so no context need be shared), whose endpoint is
this node's `POST /ngsi-ld/v1/notify` under its public base URL, with `receiverInfo` carrying
a Bearer key of this node's. The key is an unscoped operator key the node makes for the
source at start (named `ngsild-federation:<source>`; the one made at the previous start is
revoked), so a notification is authenticated and refused like any request.

The subscription has a stable id (this node's name and the source's), so a restart finds the
one it made before and brings it up to date (PATCH) instead of leaving one behind. Every
`CHECK_S` the node asks the broker for it and makes it again when the broker has forgotten
it (404/410: the broker was reset). While the broker cannot be reached the node tries again
with a backoff that doubles up to `RETRY_MAX_S`. At stop the subscription is deleted and the
key revoked. The state of each source is served at `GET /api/v1/ngsild/federation`.

Notifications taken in: entities of mapped Smart Data Models types (CityOps device kinds) go
to `feed.write_mapped(mode="upsert")`, so they become readings (validation, WAL, detection)
and unknown devices are registered where their location says; other entities are upserted as
context entities (the notified entity replaces the stored one). Each entity succeeds or fails
alone: 204 when all were taken, 207 with the per-entity outcomes otherwise.

In a cluster, give the sources to one web node only: each node keeps its own subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import msgspec
from starlette.responses import Response

from cityops.api.route import Call
from cityops.background import cancel_all
from cityops.domain.access import Principal
from cityops.ngsild import PREFIX
from cityops.ngsild.errors import NgsiError
from cityops.settings import FederationSource

log = logging.getLogger(__name__)

NOTIFY_PATH = f"{PREFIX}/notify"
KEY_NAME = "ngsild-federation:"
CHECK_S = 60.0  # how often the remote subscription is looked for
RETRY_BASE_S = 1.0
RETRY_MAX_S = 300.0
TIMEOUT_S = 10.0
NOTIFY_BODY = 16 << 20  # a notification carries up to a broker's batch of entities
MAX_ENTITIES = 5_000  # entities in one notification taken in
_SNIPPET = 200


def sources_of(settings: Any) -> list[FederationSource]:
    """The configured sources, from the settings' list and the YAML file, checked."""
    raw: list[Any] = list(getattr(settings, "ngsild_federation", []) or [])
    path: Path | None = getattr(settings, "ngsild_federation_file", None)
    if path is not None:
        import yaml

        loaded = yaml.safe_load(Path(path).read_text()) or []
        if isinstance(loaded, dict):
            loaded = loaded.get("sources", [])
        if not isinstance(loaded, list):
            raise ValueError(f"{path}: give a list of sources (url, types, ...)")
        raw.extend(loaded)
    out: list[FederationSource] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        try:
            source = item if isinstance(item, FederationSource) else \
                msgspec.convert(item, FederationSource)
        except msgspec.ValidationError as error:
            raise ValueError(f"NGSI-LD federation source {i + 1}: {error}") from None
        parts = urlsplit(source.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"NGSI-LD federation source {i + 1}: url {source.url!r} is not "
                             "an http(s) URL")
        if not source.types:
            raise ValueError(f"NGSI-LD federation source {i + 1}: give the entity types")
        name = source.name or _slug(parts.netloc)
        if name in names:
            raise ValueError(f"NGSI-LD federation source {name!r} is given twice")
        names.add(name)
        out.append(msgspec.structs.replace(source, name=name))
    return out


def source_from_flag(text: str) -> FederationSource:
    """`--ngsild-subscribe URL#Type1,Type2`: a source from the command line."""
    url, _, types = text.partition("#")
    names = [t.strip() for t in types.split(",") if t.strip()]
    if not names:
        raise ValueError(f"--ngsild-subscribe {text!r}: name the types after '#' "
                         "(http://broker:1026#NoiseLevelObserved,Building)")
    return FederationSource(url=url.rstrip("/"), types=names)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "source"


@dataclass
class Link:
    """One source: the subscription kept at its broker, and what came of it."""

    source: FederationSource
    subscription_id: str
    state: str = "starting"  # subscribed | retrying | no-callback | stopped
    last_error: str = ""
    attempts: int = 0
    subscribed_at: float | None = None
    checked_at: float | None = None
    created_remote: bool = False
    received: int = 0  # notifications taken in
    entities: int = 0  # entities in them
    failed_entities: int = 0
    key_id: str = ""
    secret: str = field(default="", repr=False)

    def status(self) -> dict[str, Any]:
        return {"name": self.source.name, "url": self.source.url,
                "types": list(self.source.types), "subscriptionId": self.subscription_id,
                "state": self.state, "lastError": self.last_error, "attempts": self.attempts,
                "subscribedAt": self.subscribed_at, "checkedAt": self.checked_at,
                "notificationsReceived": self.received, "entitiesReceived": self.entities,
                "entitiesFailed": self.failed_entities}


class Federation:
    def __init__(self, node: Any) -> None:
        self.node = node
        self.links: dict[str, Link] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._rng = random.Random()
        self.transport: httpx.AsyncBaseTransport | None = None  # tests may set one

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        sources = sources_of(self.node.settings)
        if not sources:
            return
        self._client = httpx.AsyncClient(timeout=TIMEOUT_S, transport=self.transport,
                                         follow_redirects=False)
        base = (self.node.settings.public_base_url or "").rstrip("/")
        me = _slug(self.node.name or urlsplit(base).netloc or "cityops")
        for source in sources:
            sub_id = f"urn:ngsi-ld:Subscription:cityops:{me}:{_slug(source.name)}"
            link = self.links[source.name] = Link(source, sub_id)
            if not base:
                link.state = "no-callback"
                link.last_error = ("this node has no public base URL (--public-url): the "
                                   "broker could not call it back")
                log.error("NGSI-LD federation %s: %s", source.name, link.last_error)
                continue
            await self._mint_key(link)
            self._tasks.append(asyncio.create_task(self._keep(link),
                                                   name=f"ngsild-federation-{source.name}"))

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        for link in self.links.values():
            if link.created_remote:
                with contextlib.suppress(Exception):
                    await self._request(link, "DELETE",
                                        f"/subscriptions/{quote(link.subscription_id, safe='')}")
            if link.key_id:
                with contextlib.suppress(Exception):
                    await self.node.store.revoke_key(link.key_id)
            link.state = "stopped"
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def status(self) -> list[dict[str, Any]]:
        return [link.status() for link in self.links.values()]

    # -- keeping the remote subscription -----------------------------------------------------

    async def _mint_key(self, link: Link) -> None:
        from cityops.auth import new_key

        name = KEY_NAME + link.source.name
        for record in await self.node.store.list_keys():
            if record.name == name and not record.revoked:
                await self.node.store.revoke_key(record.id)
        secret, record = new_key("operator", None, name)
        await self.node.store.add_key(record)
        link.key_id, link.secret = record.id, secret

    async def _keep(self, link: Link) -> None:
        while True:
            try:
                await self.ensure(link)
                link.attempts = 0
                delay = CHECK_S
            except asyncio.CancelledError:
                raise
            except Exception as error:
                link.attempts += 1
                link.state = "retrying"
                link.last_error = f"{type(error).__name__}: {error}"[:_SNIPPET]
                delay = min(RETRY_MAX_S, RETRY_BASE_S * 2.0 ** min(link.attempts - 1, 30))
                delay *= 1.0 - 0.2 * self._rng.random()
                if link.attempts == 1:
                    log.warning("NGSI-LD federation %s: %s; retrying with backoff",
                                link.source.name, link.last_error)
            await asyncio.sleep(delay)

    async def ensure(self, link: Link) -> bool:
        """Make sure the broker holds our subscription: look for it, make it if missing
        (True when it was made or brought up to date now). Raises on a broker that cannot be
        reached or refuses."""
        path = f"/subscriptions/{quote(link.subscription_id, safe='')}"
        now = self.node.clock()
        if link.state == "subscribed":
            answer = await self._request(link, "GET", path)
            link.checked_at = now
            if answer.status_code == 200:
                return False
            if answer.status_code not in (404, 410):
                raise RemoteRefused(_refusal(answer))
            log.warning("NGSI-LD federation %s: the broker forgot subscription %s; making it "
                        "again", link.source.name, link.subscription_id)
        body = self._subscription(link)
        answer = await self._request(link, "POST", "/subscriptions", body)
        if answer.status_code == 409:
            # Ours from an earlier start: bring its endpoint and key up to date.
            fragment = {k: v for k, v in body.items() if k not in ("id", "type")}
            answer = await self._request(link, "PATCH", path, fragment)
        if answer.status_code not in (200, 201, 204):
            raise RemoteRefused(_refusal(answer))
        link.state = "subscribed"
        link.last_error = ""
        link.created_remote = True
        link.subscribed_at = link.checked_at = now
        return True

    def _subscription(self, link: Link) -> dict[str, Any]:
        from cityops.ngsild.contexts import DEFAULT_CONTEXT_URL, resolve

        source = link.source
        terms = resolve(source.context or DEFAULT_CONTEXT_URL)
        base = self.node.settings.public_base_url.rstrip("/")
        body: dict[str, Any] = {
            "id": link.subscription_id, "type": "Subscription",
            "description": f"CityOps {self.node.settings.public_base_url} takes these in",
            "entities": [{"type": terms.expand(t)} for t in source.types],
            "notification": {"format": "normalized", "endpoint": {
                "uri": f"{base}{NOTIFY_PATH}", "accept": "application/json",
                "receiverInfo": [{"key": "Authorization", "value": f"Bearer {link.secret}"}]}},
        }
        if source.q:
            body["q"] = source.q
        if source.watched_attributes:
            body["watchedAttributes"] = [terms.expand(a) for a in source.watched_attributes]
        return body

    async def _request(self, link: Link, method: str, path: str,
                       body: dict[str, Any] | None = None) -> httpx.Response:
        assert self._client is not None, "federation is not started"
        headers = {"Accept": "application/json"}
        if link.source.key:
            headers["Authorization"] = f"Bearer {link.source.key}"
        if link.source.tenant:
            headers["NGSILD-Tenant"] = link.source.tenant
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = msgspec.json.encode(body)
        url = f"{link.source.url.rstrip('/')}{PREFIX}{path}"
        return await self._client.request(method, url, content=content, headers=headers)

    def link_of(self, who: Principal) -> Link | None:
        for link in self.links.values():
            if link.key_id and link.key_id == who.key_id:
                return link
        return None


class RemoteRefused(Exception):
    pass


def _refusal(answer: httpx.Response) -> str:
    return f"HTTP {answer.status_code}: {answer.text[:_SNIPPET]}"


# -- taking notifications in ------------------------------------------------------------------


async def take_notification(call: Call[Any, Any]) -> Response:
    from cityops.ngsild import sdm
    from cityops.ngsild.api_subscriptions import json_body, request_terms
    from cityops.ngsild.entity import expand_entity
    from cityops.ngsild.feed import write_mapped

    body = await json_body(call, "the notification")
    terms = request_terms(call, body)
    if body.get("type") != "Notification":
        raise NgsiError("BadRequestData", 'type: must be "Notification"')
    data = body.get("data")
    if not isinstance(data, list):
        raise NgsiError("BadRequestData", "data: must be an array of entities")
    if len(data) > MAX_ENTITIES:
        raise NgsiError("BadRequestData", f"data: at most {MAX_ENTITIES} entities in one "
                                          "notification")
    node = call.node
    who = call.principal
    errors: list[dict[str, Any]] = []
    mapped: list[dict[str, Any]] = []
    context: list[dict[str, Any]] = []
    for i, doc in enumerate(data):
        where = f"data[{i}]"
        try:
            if isinstance(doc, dict) and "@context" in doc:
                doc = {k: v for k, v in doc.items() if k != "@context"}
            entity = expand_entity(doc, terms, where=where)
        except NgsiError as error:
            errors.append(_outcome(doc, error))
            continue
        if any(sdm.is_view(t) for t in entity["type"]):
            # Alerts and service requests are CityOps's own records, shown as entities: a
            # broker's entity of such a type would pass itself off as one.
            errors.append(_outcome(entity, NgsiError(
                "OperationNotSupported", f"{where}: entities of type "
                f"{sdm.type_term(entity['type'][0])} are CityOps's own records, read-only")))
            continue
        (mapped if any(sdm.is_mapped(t) for t in entity["type"]) else context).append(entity)
    ok: list[str] = []
    if mapped:
        for entity_id, error in await write_mapped(node, who, mapped, mode="upsert"):
            if error is None:
                ok.append(entity_id)
            else:
                errors.append(_outcome({"id": entity_id}, error))
    store = node.ngsild.entities
    for entity in context:
        try:
            await store.modify(entity["id"], lambda before, e=entity: e)
            ok.append(entity["id"])
        except NgsiError as error:
            errors.append(_outcome(entity, error))
    link = node.ngsild.federation.link_of(who)
    if link is not None:
        link.received += 1
        link.entities += len(data)
        link.failed_entities += len(errors)
    if not errors:
        return Response(status_code=204)
    return Response(msgspec.json.encode({"success": ok, "errors": errors}), 207,
                    media_type="application/json")


def _outcome(doc: Any, error: NgsiError) -> dict[str, Any]:
    entity_id = doc.get("id") if isinstance(doc, dict) else None
    return {"entityId": entity_id if isinstance(entity_id, str) else None,
            "error": error.problem()}


async def federation_status(call: Call[Any, Any]) -> list[dict[str, Any]]:
    return call.node.ngsild.federation.status()
