"""NGSI-LD subscriptions (GS CIM 009 clauses 5.2.12, 5.8 and 5.11): what they are, which
changes they match, and the notifications they queue.

A subscription is parsed once into its canonical form (`parse_members`): entity types, watched
and notified attributes and the geoproperty as expanded IRIs, the rest as given and checked.
The canonical form is what the store keeps (record kind `ngsild_subscription`, beside the
context the subscription was made in, which notifications are compacted with, and the key's
scope), so a PATCH made in another context changes names unambiguously.

Matching runs on every change of a context entity (`ContextStore` listeners: before and
after) and on every stored reading batch (the ingestor's listener). For context entities,
subscriptions are indexed by entity type, and within a type by entity id where the selector
names one, so a change looks only at the subscriptions that could want it. Reading batches
are matched column-wise against an index of the subscriptions' interests in devices
(cityops.ngsild.reading_match), and only the entities some subscription hears of are built,
with the attributes it asks for. A match is only offered to the notifier's lane for the
subscription (cityops.ngsild.notifier): no HTTP happens in ingest or in a request.

Scope: a subscription keeps the scope of the key that made it. Only keys whose scope covers
that scope see it, and it only ever notifies entities that scope may see, re-checked for
every notification: a context entity's location must lie in the key's area (or the areas
its department serves), and one without a location is never notified to a scoped
subscription; a device's entities are seen by the device's stored areas and owner, as its
queries are (api/devices.may_see).

A cluster of several web nodes shares the store: each node loads every subscription, and
notifies for the changes it saw itself (the entities written through its API, the readings
its ingestor stored); no change is seen by two nodes, so none is notified twice. A write
bumps a version in the store's meta table, and the other nodes reload when they see it
change (every `ngsild_reload_s`). Each node keeps its own notification figures (timesSent,
lastSuccess ...) in a status record of its own per subscription; a read adds them up. A
periodic (`timeInterval`) subscription is sent by every node that runs it, so in a cluster
it should be served by one web node (see docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import re2  # type: ignore[import-untyped]

from cityops.background import cancel_all
from cityops.domain.access import Principal, Role, Scope, can_see_place
from cityops.domain.readings import ReadingBatch
from cityops.ngsild.contexts import JSONLD_CONTEXT_REL, TermMap, link_header, resolve
from cityops.ngsild.entity import (
    ENTITY_MEMBERS,
    LOCATION,
    compact_entity,
    is_uri,
    now_iso,
    parse_datetime,
    point_of,
)
from cityops.ngsild import sdm
from cityops.ngsild.errors import NgsiError
from cityops.ngsild.notifier import Health, Notifier
from cityops.store.base import DuplicateKey, StaleVersion
from cityops.store.record_rows import Record

log = logging.getLogger(__name__)

KIND = "ngsild_subscription"
STATUS_KIND = "ngsild_subscription_status"
VERSION_META = "ngsild.subscriptions.version"
Entity = dict[str, Any]

FORMATS = {"normalized": "normalized", "keyValues": "keyValues", "simplified": "keyValues",
           "concise": "concise"}
ACCEPTS = ("application/json", "application/ld+json")
TRIGGERS = ("entityCreated", "entityUpdated", "entityDeleted", "attributeCreated",
            "attributeUpdated", "attributeDeleted")
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")  # Table 5.2.12-1's default
READ_ONLY = {"status", "createdAt", "modifiedAt", "timesSent", "timesFailed",
             "lastNotification", "lastSuccess", "lastFailure"}
MAX_SELECTORS = 100
MAX_NAMES = 200  # watched or notified attributes
MAX_INFO = 20  # receiverInfo / notifierInfo pairs
MAX_TEXT = 2_000  # description, q
MAX_PATTERN = 256
BATCH_QUEUE = 256  # stored reading batches waiting to be matched; more are folded (on_batch)
MATCH_ROWS = 8192  # rows of a stored batch matched between two turns of the event loop
HEALTH_SAVE_S = 30.0  # how often this node's notification figures are saved (one record
# per subscription that sent since)
MIN_INTERVAL = 1.0  # seconds: the shortest timeInterval (a tighter loop is polling, not a
# subscription)
_SCHEMES = ("http://", "https://")


def _bad(field_name: str, what: str) -> NgsiError:
    return NgsiError("BadRequestData", f"{field_name}: {what}")


# -- parsing ----------------------------------------------------------------------------------


def _text(raw: Any, name: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _bad(name, "must be a non-empty string")
    if len(raw) > limit:
        raise _bad(name, f"longer than {limit} characters")
    return raw


def _names(raw: Any, name: str, terms: TermMap) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise _bad(name, "must be a non-empty array of attribute names")
    if len(raw) > MAX_NAMES:
        raise _bad(name, f"more than {MAX_NAMES} attribute names")
    out = []
    for i, item in enumerate(raw):
        term = _text(item, f"{name}[{i}]", 512)
        if any(c in term for c in " \t\n<>\"'=;()"):
            raise _bad(f"{name}[{i}]", f"{term[:80]!r} is not an attribute name")
        out.append(terms.expand(term))
    return list(dict.fromkeys(out))


def _seconds(raw: Any, name: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0 \
            or raw > 10 * 365 * 86400:
        raise _bad(name, "must be a positive number of seconds")
    return float(raw)


def _pairs(raw: Any, name: str) -> list[dict[str, str]]:
    if not isinstance(raw, list) or len(raw) > MAX_INFO:
        raise _bad(name, f"must be an array of at most {MAX_INFO} {{key, value}} objects")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"key", "value"}:
            raise _bad(f"{name}[{i}]", "must be an object with exactly key and value")
        key = _text(item["key"], f"{name}[{i}].key", 256)
        value = item["value"]
        if not isinstance(value, str) or len(value) > 4096:
            raise _bad(f"{name}[{i}].value", "must be a string of at most 4096 characters")
        out.append({"key": key, "value": value})
    return out


def _selectors(raw: Any, terms: TermMap) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise _bad("entities", "must be a non-empty array of {type, id?, idPattern?}")
    if len(raw) > MAX_SELECTORS:
        raise _bad("entities", f"more than {MAX_SELECTORS} selectors")
    out = []
    for i, item in enumerate(raw):
        where = f"entities[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, "must be an object")
        unknown = set(item) - {"type", "id", "idPattern"}
        if unknown:
            raise _bad(where, f"unknown member {sorted(unknown)[0]!r}")
        if "type" not in item:
            raise _bad(f"{where}.type", "is required")
        # A type selection may name several types: "A,B" or "A|B" (either matches).
        text = _text(item["type"], f"{where}.type", 1024)
        parts = [p.strip() for p in re.split(r"[,|]", text)]
        if not all(parts) or any(c in text for c in " ()<>\"';"):
            raise _bad(f"{where}.type", f"{text[:80]!r} is not a type or a list of types")
        selector: dict[str, Any] = {"type": [terms.expand(p) for p in parts]}
        if item.get("id") is not None:
            if not is_uri(item["id"]):
                raise _bad(f"{where}.id", f"{str(item['id'])[:80]!r} is not a URI")
            selector["id"] = item["id"]
        if item.get("idPattern") is not None:
            pattern = _text(item["idPattern"], f"{where}.idPattern", MAX_PATTERN)
            try:
                re2.compile(pattern)  # a client's pattern: linear time, never a ReDoS
            except Exception as error:  # re2 raises its own error type
                raise _bad(f"{where}.idPattern", f"not a regular expression: {error}") from None
            selector["idPattern"] = pattern
        out.append(selector)
    return out


def _geoq(raw: Any, terms: TermMap) -> dict[str, Any]:

    if not isinstance(raw, dict):
        raise _bad("geoQ", "must be an object with georel, geometry and coordinates")
    unknown = set(raw) - {"georel", "geometry", "coordinates", "geoproperty"}
    if unknown:
        raise _bad("geoQ", f"unknown member {sorted(unknown)[0]!r}")
    for member in ("georel", "geometry", "coordinates"):
        if member not in raw:
            raise _bad(f"geoQ.{member}", "is required")
    coordinates = raw["coordinates"]
    if not isinstance(coordinates, str):
        coordinates = msgspec.json.encode(coordinates).decode()
    geoproperty = terms.expand(_text(raw.get("geoproperty") or "location",
                                     "geoQ.geoproperty", 512))
    out = {"georel": _text(raw["georel"], "geoQ.georel", 256),
           "geometry": _text(raw["geometry"], "geoQ.geometry", 64),
           "coordinates": coordinates, "geoproperty": geoproperty}
    _compile_geo(out)
    return out


def _compile_geo(geo: dict[str, Any]) -> Any:
    from cityops.ngsild.query import parse_geoquery

    try:
        return parse_geoquery(geo["georel"], geo["geometry"], geo["coordinates"],
                              geo["geoproperty"])
    except NgsiError as error:
        raise _bad("geoQ", error.detail) from None


def _q(raw: Any) -> str:
    from cityops.ngsild.query import parse_q

    text = _text(raw, "q")
    try:
        parse_q(text)
    except NgsiError as error:
        raise _bad("q", error.detail) from None
    return text


def _endpoint(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _bad("notification.endpoint", "must be an object with a uri")
    uri = raw.get("uri")
    if not is_uri(uri):
        raise _bad("notification.endpoint.uri", f"{str(uri)[:80]!r} is not a URI")
    if uri.lower().startswith(("mqtt://", "mqtts://")):
        raise NgsiError("OperationNotSupported", "notification.endpoint.uri: MQTT "
                                                 "notifications are not supported; use http(s)")
    if not uri.lower().startswith(_SCHEMES):
        raise _bad("notification.endpoint.uri", "must be an http:// or https:// URL")
    out: dict[str, Any] = {"uri": uri}
    accept = raw.get("accept")
    if accept is not None:
        if accept not in ACCEPTS:
            raise _bad("notification.endpoint.accept", f"must be one of {', '.join(ACCEPTS)}")
        out["accept"] = accept
    for member in ("receiverInfo", "notifierInfo"):
        if raw.get(member) is not None:
            out[member] = _pairs(raw[member], f"notification.endpoint.{member}")
    for pair in out.get("receiverInfo", []):
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", pair["key"]):
            raise _bad("notification.endpoint.receiverInfo", f"{pair['key']!r} is not an "
                                                             "HTTP header name")
        if any(c in pair["value"] for c in "\r\n\0"):
            raise _bad("notification.endpoint.receiverInfo", "a header value may not hold "
                                                             "line breaks")
    return out


def _notification(raw: Any, terms: TermMap, partial: bool) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _bad("notification", "must be an object with an endpoint")
    out: dict[str, Any] = {}
    if "endpoint" in raw:
        out["endpoint"] = _endpoint(raw["endpoint"])
    elif not partial:  # a PATCH may change the other members and keep the endpoint
        raise _bad("notification.endpoint", "is required")
    if raw.get("attributes") is not None:
        out["attributes"] = _names(raw["attributes"], "notification.attributes", terms)
    fmt = raw.get("format")
    if fmt is not None:
        if fmt not in FORMATS:
            raise _bad("notification.format", f"must be one of {', '.join(FORMATS)}")
        out["format"] = fmt
    for flag in ("sysAttrs", "showChanges"):
        if raw.get(flag) is not None:
            if not isinstance(raw[flag], bool):
                raise _bad(f"notification.{flag}", "must be true or false")
            out[flag] = raw[flag]
    if out.get("showChanges") and FORMATS.get(out.get("format", "normalized")) == "keyValues":
        raise _bad("notification.showChanges", "cannot be used with the keyValues format")
    return out


def _expires(raw: Any, now: float, *, check_future: bool) -> str:
    moment = parse_datetime(raw)
    if moment is None:
        raise _bad("expiresAt", f"{str(raw)[:80]!r} is not a date-time (RFC 3339)")
    if check_future and moment.timestamp() <= now:
        raise _bad("expiresAt", "lies in the past")
    return raw  # type: ignore[no-any-return]


def parse_members(body: dict[str, Any], terms: TermMap, now: float, *,
                  check_future: bool = True, partial: bool = False) -> dict[str, Any]:
    """The subscription members of `body` (a whole subscription or a PATCH fragment) in
    canonical form: names expanded with `terms`, every value checked. Members set to null
    map to None (removed by a PATCH). Read-only members and unknown ones are ignored, as the
    spec asks of read-only members."""
    out: dict[str, Any] = {}
    for member, raw in body.items():
        if member in READ_ONLY or member in ("@context", "id", "type"):
            continue
        if raw is None:
            out[member] = None
            continue
        if member == "entities":
            out[member] = _selectors(raw, terms)
        elif member == "watchedAttributes":
            out[member] = _names(raw, "watchedAttributes", terms)
        elif member == "notificationTrigger":
            if not isinstance(raw, list) or not raw or any(t not in TRIGGERS for t in raw):
                raise _bad("notificationTrigger", f"must be a non-empty array of "
                                                  f"{', '.join(TRIGGERS)}")
            out[member] = list(dict.fromkeys(raw))
        elif member == "q":
            out[member] = _q(raw)
        elif member == "geoQ":
            out[member] = _geoq(raw, terms)
        elif member == "notification":
            out[member] = _notification(raw, terms, partial)
        elif member in ("throttling", "timeInterval"):
            out[member] = _seconds(raw, member)
        elif member == "expiresAt":
            out[member] = _expires(raw, now, check_future=check_future)
        elif member == "isActive":
            if not isinstance(raw, bool):
                raise _bad("isActive", "must be true or false")
            out[member] = raw
        elif member in ("description", "subscriptionName", "lang"):
            out[member] = _text(raw, member)
        elif member == "datasetId":
            ids = raw if isinstance(raw, list) else [raw]
            if not ids or len(ids) > MAX_NAMES or not all(
                    is_uri(d) or d == "@none" for d in ids):
                raise _bad("datasetId", "must be a URI or an array of URIs")
            out[member] = ids
    return out


def check_whole(sub: dict[str, Any]) -> None:
    """The rules that tie members together (clause 5.2.12)."""
    if sub.get("notification") is None:
        raise _bad("notification", "is required")
    if not sub.get("entities") and not sub.get("watchedAttributes"):
        raise _bad("entities", "a subscription needs entities or watchedAttributes")
    if sub.get("timeInterval") is not None:
        if sub.get("watchedAttributes") is not None:
            raise _bad("timeInterval", "cannot be combined with watchedAttributes")
        if sub.get("throttling") is not None:
            raise _bad("timeInterval", "cannot be combined with throttling")
        if not sub.get("entities"):
            raise _bad("timeInterval", "a periodic subscription needs entities")
        if sub["timeInterval"] < MIN_INTERVAL:
            raise _bad("timeInterval", f"must be at least {MIN_INTERVAL:g} seconds")


def new_id() -> str:
    return f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"


# -- one subscription, as matching and the notifier see it -----------------------------------


def principal_of(doc: dict[str, Any]) -> Principal:
    who = doc.get("who") or {}
    return Principal(str(who.get("key_id", "")), Role(who.get("role", "admin")),
                     Scope(who.get("area"), who.get("department")))


def scope_covers(viewer: Scope, owner: Scope) -> bool:
    """Whether a key of scope `viewer` may see a subscription made with scope `owner`."""
    if viewer.area is None and viewer.department is None:
        return True
    if viewer.area is not None:
        return owner.area is not None and owner.area.startswith(viewer.area)
    return owner.department == viewer.department


@dataclass
class _Selector:
    types: frozenset[str]
    id: str | None
    pattern: Any  # re2, which matches in time linear in the id

    def selects(self, entity: Entity) -> bool:
        if not self.types.intersection(entity["type"]):
            return False
        if self.id is not None and entity["id"] != self.id:
            return False
        return self.pattern is None or self.pattern.search(entity["id"]) is not None


@dataclass(eq=False)
class Subscription:
    """A stored subscription made ready for matching and notifying."""

    doc: dict[str, Any]  # the record's document: {"sub", "context", "who", "createdAt" ...}
    version: int
    terms: TermMap
    base_url: str  # this node's public base URL, for the Link header of notifications
    health: Health = field(default_factory=Health)
    next_periodic: float = 0.0

    def __post_init__(self) -> None:
        from cityops.ngsild.query import parse_q

        sub = self.sub
        self.selectors = [_Selector(frozenset(s["type"]), s.get("id"),
                                    re2.compile(s["idPattern"]) if s.get("idPattern") else None)
                          for s in sub.get("entities") or []]
        self._exact = {(t, s.id) for s in self.selectors if s.id is not None
                       and s.pattern is None for t in s.types}
        self._other = [s for s in self.selectors if s.id is None or s.pattern is not None]
        self.watched = frozenset(sub["watchedAttributes"]) if sub.get("watchedAttributes") \
            else None
        self.triggers = frozenset(sub.get("notificationTrigger") or DEFAULT_TRIGGERS)
        self.query = parse_q(sub["q"]) if sub.get("q") else None
        self.geo = _compile_geo(sub["geoQ"]) if sub.get("geoQ") else None
        note = sub["notification"]
        # With the canonical IRI of each Smart Data Models term (a subscription made in
        # another context names LAeq otherwise), which devices' entities are built with.
        self.attrs = {*note["attributes"], *map(sdm.canonical, note["attributes"])} \
            if note.get("attributes") else None
        self.format = FORMATS[note.get("format", "normalized")]
        self.sys_attrs = bool(note.get("sysAttrs"))
        self.accept = note["endpoint"].get("accept", "application/json")
        self.headers = {p["key"]: p["value"] for p in note["endpoint"].get("receiverInfo", [])}
        self.datasets = set(sub["datasetId"]) if sub.get("datasetId") else None
        expires = parse_datetime(sub.get("expiresAt"))
        self.expires_at = expires.timestamp() if expires is not None else None
        self.who = principal_of(self.doc)

    # Recipient (cityops.ngsild.notifier)
    @property
    def id(self) -> str:
        return str(self.doc["id"])

    @property
    def sub(self) -> dict[str, Any]:
        return self.doc["sub"]  # type: ignore[no-any-return]

    @property
    def uri(self) -> str:
        return str(self.sub["notification"]["endpoint"]["uri"])

    @property
    def throttling(self) -> float:
        return float(self.sub.get("throttling") or 0.0)

    @property
    def interval(self) -> float | None:
        value = self.sub.get("timeInterval")
        return float(value) if value else None

    @property
    def types(self) -> set[str]:
        return {t for s in self.selectors for t in s.types}

    def status(self, now: float) -> str:
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active" if self.sub.get("isActive", True) else "paused"

    def selects(self, entity: Entity) -> bool:
        if not self.selectors:
            return True  # watchedAttributes only: any entity
        if self._exact:
            # A set look-up for the selectors naming an id: a subscription may name hundreds.
            entity_id = entity["id"]
            if any((t, entity_id) in self._exact for t in entity["type"]):
                return True
        return any(s.selects(entity) for s in self._other)

    def filters(self, entity: Entity) -> bool:
        """q and geoQ, on the entity as it is (as it was, for a deletion)."""
        if self.query is not None and not self.query.matches(entity, self.terms):
            return False
        return self.geo is None or bool(self.geo.matches(entity))

    def wants(self, events: dict[str, set[str]]) -> bool:
        """Whether a change (trigger -> attribute IRIs it touched; entity triggers map to
        every attribute of the entity) is one this subscription is told of."""
        for trigger, attrs in events.items():
            if trigger not in self.triggers:
                continue
            if self.watched is None or not trigger.startswith("attribute"):
                if self.watched is None or self.watched & attrs:
                    return True
            elif self.watched & attrs:
                return True
        return False

    def render(self, entities: list[Entity], notified_at: float
               ) -> tuple[bytes, dict[str, str]]:
        terms = self.terms
        data = []
        for entity in entities:
            if entity.get("deletedAt") and len(entity) <= 4:
                types = [terms.compact(t) for t in entity["type"]]
                data.append({"id": entity["id"], "type": types[0] if len(types) == 1 else types,
                             "deletedAt": entity["deletedAt"]})
                continue
            if self.datasets is not None:
                entity = _only_datasets(entity, self.datasets)
            shown = plain_compact(entity, terms, self.attrs, self.format)
            if shown is None:
                shown = compact_entity(entity, terms, attrs=self.attrs,
                                       key_values=self.format == "keyValues",
                                       sys_attrs=self.sys_attrs,
                                       concise=self.format == "concise")
            data.append(shown)
        body: dict[str, Any] = {"id": _notification_id(),
                                "type": "Notification", "subscriptionId": self.id,
                                "notifiedAt": now_iso(notified_at), "data": data}
        headers = dict(self.headers)
        if self.accept == "application/ld+json":
            context = terms.context if terms.context is not None else _core_context_url()
            body["@context"] = context
            # Each entity is a JSON-LD document a receiver may keep alone (copied: a built
            # entity may be shared with other subscriptions' notifications).
            body["data"] = [{**shown, "@context": context} for shown in data]
            headers["Content-Type"] = "application/ld+json"
        else:
            headers["Content-Type"] = "application/json"
            headers["Link"] = link_header(terms, self.base_url)
        return msgspec.json.encode(body), headers


# Notification ids need to be unique, not secret: uuid4 reads the OS's randomness per call,
# which cost 0.13 ms a notification on the benchmark machine.
_IDS = random.Random()


def _notification_id() -> str:
    return f"urn:ngsi-ld:Notification:{uuid.UUID(int=_IDS.getrandbits(128), version=4)}"


# Instance members that compaction leaves as they are.
_PLAIN = frozenset({"type", "value", "object", "observedAt", "unitCode"})
_PLAIN_KINDS = frozenset({"Property", "GeoProperty", "Relationship"})


def plain_compact(entity: Entity, terms: TermMap, attrs: set[str] | None, fmt: str
                  ) -> dict[str, Any] | None:
    """What compact_entity makes of an entity whose attributes are single plain instances (a
    Property, GeoProperty or Relationship with no sub-attributes, system times, datasetId or
    scope): the devices' entities notified for readings, tens of thousands a second. None for
    any other entity, which compact_entity takes. System attributes (sysAttrs) change nothing
    here: such an entity has none."""
    types = entity["type"]
    out: dict[str, Any] = {"id": entity["id"], "type": terms.compact(types[0])
                           if len(types) == 1 else [terms.compact(t) for t in types]}
    for iri, instances in entity.items():
        if iri in ENTITY_MEMBERS:
            if iri == "id" or iri == "type":
                continue
            return None  # scope, system times
        if attrs is not None and iri not in attrs:
            continue
        if type(instances) is not list or len(instances) != 1:
            return None
        instance = instances[0]
        if type(instance) is not dict or not instance.keys() <= _PLAIN:
            return None
        kind = instance.get("type", "Property")
        if kind not in _PLAIN_KINDS:
            return None
        if fmt == "keyValues":
            shown: Any = instance.get("object" if kind == "Relationship" else "value")
        elif fmt == "concise":
            shown = {k: v for k, v in instance.items() if k != "type"}
            if len(shown) == 1 and "value" in shown and (
                    kind == "GeoProperty" or not isinstance(shown["value"], dict | list)):
                shown = shown["value"]
        else:
            shown = instance
        out[terms.compact(iri)] = shown
    return out


def _core_context_url() -> str:
    from cityops.ngsild.contexts import CORE_CONTEXT_URL

    return CORE_CONTEXT_URL


def _only_datasets(entity: Entity, datasets: set[str]) -> Entity:
    out: Entity = {}
    for key, value in entity.items():
        if isinstance(value, list) and value and isinstance(value[0], dict) and key not in (
                "type", "scope"):
            kept = [i for i in value if i.get("datasetId", "@none") in datasets]
            if kept:
                out[key] = kept
        else:
            out[key] = value
    return out


def events_of(before: Entity | None, after: Entity | None) -> dict[str, set[str]]:
    """What a change did, as notification triggers with the attributes each touched."""
    from cityops.ngsild.entity import attribute_names

    if after is None:
        names = set(attribute_names(before)) if before is not None else set()
        return {"entityDeleted": names, "attributeDeleted": names}
    after_names = set(attribute_names(after))
    if before is None:
        return {"entityCreated": after_names, "attributeCreated": after_names}
    before_names = set(attribute_names(before))
    created = after_names - before_names
    deleted = before_names - after_names
    updated = {n for n in after_names & before_names if after[n] != before[n]}
    events: dict[str, set[str]] = {}
    if created:
        events["attributeCreated"] = created
    if updated:
        events["attributeUpdated"] = updated
    if deleted:
        events["attributeDeleted"] = deleted
    if events or before.get("type") != after.get("type") or before.get("scope") != \
            after.get("scope"):
        events["entityUpdated"] = created | updated | deleted
    return events


# -- the node's subscriptions -----------------------------------------------------------------


class Subscriptions:
    """Every subscription of the node: kept, matched, notified."""

    def __init__(self, node: Any, entities: Any) -> None:
        self.node = node
        self.entities = entities
        settings = node.settings
        self.clock: Callable[[], float] = node.clock
        self.max_subscriptions = getattr(settings, "ngsild_subscriptions_max", 10_000)
        self.notifier = Notifier(
            node.clock, workers=getattr(settings, "ngsild_notify_workers", 16),
            max_pending=getattr(settings, "ngsild_notify_pending", 10_000),
            max_batch=getattr(settings, "ngsild_notify_batch", 1_000),
            max_body=getattr(settings, "ngsild_notify_body_bytes", 4 << 20),
            timeout=getattr(settings, "ngsild_notify_timeout_s", 10.0),
            retry_base=getattr(settings, "ngsild_retry_base_s", 1.0),
            retry_max=getattr(settings, "ngsild_retry_max_s", 300.0))
        self.reload_s = getattr(settings, "ngsild_reload_s", 5.0)
        self._subs: dict[str, Subscription] = {}
        self._by_type: dict[str, list[Subscription]] = {}
        self._by_type_id: dict[tuple[str, str], list[Subscription]] = {}
        self._any_type: list[Subscription] = []  # watchedAttributes only
        self._periodic: list[Subscription] = []
        self._index_version = 0
        self._matcher: Any = None  # reading_match.Matcher, made at the first batch
        self._batches: deque[Any] = deque()
        self._batch_ready = asyncio.Event()
        self.batches_folded = 0  # times the waiting reading batches were folded (see on_batch)
        self._tasks: list[asyncio.Task[None]] = []
        self._version: str | None = None
        self._health_saved: dict[str, tuple[int, int]] = {}
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.notifier.start()
        await self.reload()
        await self.restore_health()
        listeners = getattr(self.entities, "listeners", None)
        if isinstance(listeners, list):
            listeners.append(self.on_change)
        ingestor = getattr(self.node, "ingestor", None)
        if ingestor is not None and isinstance(getattr(ingestor, "listeners", None), list):
            ingestor.listeners.append(self.on_batch)
        self._tasks = [asyncio.create_task(self._match_batches(), name="ngsild-sub-batches"),
                       asyncio.create_task(self._housekeeping(), name="ngsild-sub-periodic")]
        self._started = True

    async def stop(self) -> None:
        listeners = getattr(self.entities, "listeners", None)
        if isinstance(listeners, list) and self.on_change in listeners:
            listeners.remove(self.on_change)
        ingestor = getattr(self.node, "ingestor", None)
        if ingestor is not None and self.on_batch in getattr(ingestor, "listeners", []):
            ingestor.listeners.remove(self.on_batch)
        await cancel_all(self._tasks)
        with contextlib.suppress(Exception):
            await self.save_health()
        await self.notifier.stop()
        self._started = False

    # -- the store ---------------------------------------------------------------------------

    async def _all_records(self, kind: str, owner: str | None = None) -> list[Record]:
        out: list[Record] = []
        before: tuple[float, str] | None = None
        while True:
            page = await self.node.store.find_records(kind, owner=owner, limit=500,
                                                      before=before)
            out.extend(page)
            if len(page) < 500:
                return out
            before = (page[-1].created, page[-1].id)

    async def reload(self) -> None:
        """Read every subscription from the store (at start, and when another node changed
        one)."""
        self._version = await self.node.store.get_meta(VERSION_META)
        records = await self._all_records(KIND)
        mine = {}
        for rec in records:
            try:
                mine[rec.id] = self._build(msgspec.json.decode(rec.doc), rec.version)
            except Exception as error:
                # A subscription whose context is no longer known (hosted by a client and
                # since deleted) cannot be compacted; it is skipped, not fatal to the node.
                log.error("NGSI-LD subscription %s cannot be loaded: %s", rec.id, error)
        for sub_id in set(self._subs) - set(mine):
            self.notifier.forget(sub_id)
        for sub_id, sub in mine.items():
            old = self._subs.get(sub_id)
            if old is not None:
                sub.health = old.health
                sub.next_periodic = old.next_periodic
                self.notifier.rebind(sub)
        self._subs = mine
        self._reindex()

    def _build(self, doc: dict[str, Any], version: int) -> Subscription:
        terms = resolve(doc.get("context"))
        return Subscription(doc, version, terms, self.node.settings.public_base_url)

    def _reindex(self) -> None:
        by_type: dict[str, list[Subscription]] = {}
        by_type_id: dict[tuple[str, str], list[Subscription]] = {}
        any_type: list[Subscription] = []
        periodic: list[Subscription] = []
        for sub in self._subs.values():
            if sub.interval is not None:
                periodic.append(sub)
                continue
            if not sub.selectors:
                any_type.append(sub)
            for selector in sub.selectors:
                for type_iri in selector.types:
                    if selector.id is not None and selector.pattern is None:
                        by_type_id.setdefault((type_iri, selector.id), []).append(sub)
                    else:
                        by_type.setdefault(type_iri, []).append(sub)
        self._by_type, self._by_type_id = by_type, by_type_id
        self._any_type, self._periodic = any_type, periodic
        self._index_version += 1

    def _index_one(self, sub: Subscription, *, add: bool) -> None:
        """Add `sub` to the index or take it out: a create, update or delete changes only its
        own entries (rebuilding for each was 66 ms with 1,000 subscriptions of 40 ids, all of
        it holding the event loop)."""
        def change(found: list[Subscription]) -> None:
            if add:
                found.append(sub)
            else:
                found[:] = [s for s in found if s is not sub]

        if sub.interval is not None:
            change(self._periodic)
        else:
            if not sub.selectors:
                change(self._any_type)
            for selector in sub.selectors:
                for type_iri in selector.types:
                    index: dict[Any, list[Subscription]]
                    if selector.id is not None and selector.pattern is None:
                        index, key = self._by_type_id, (type_iri, selector.id)
                    else:
                        index, key = self._by_type, type_iri
                    found = index.setdefault(key, [])
                    change(found)
                    if not found:
                        del index[key]
        self._index_version += 1

    async def _bump(self) -> None:
        self._version = uuid.uuid4().hex
        await self.node.store.set_meta(VERSION_META, self._version)

    # -- operations (the API's) --------------------------------------------------------------

    def visible(self, who: Principal, sub: Subscription) -> bool:
        return scope_covers(who.scope, sub.who.scope)

    def get(self, sub_id: str) -> Subscription | None:
        return self._subs.get(sub_id)

    async def load(self, sub_id: str) -> Subscription | None:
        """The subscription as stored (another node may have made it a moment ago)."""
        rec = await self.node.store.get_record(KIND, sub_id)
        if rec is None:
            return None
        mine = self._subs.get(sub_id)
        if mine is not None and mine.version == rec.version:
            return mine
        sub = self._build(msgspec.json.decode(rec.doc), rec.version)
        if mine is not None:
            sub.health = mine.health
        return sub

    def listing(self, who: Principal) -> list[Subscription]:
        subs = [s for s in self._subs.values() if self.visible(who, s)]
        return sorted(subs, key=lambda s: (s.doc.get("createdAt", ""), s.id))

    async def create(self, who: Principal, body: dict[str, Any], terms: TermMap) -> Subscription:
        now = self.clock()
        if body.get("type") != "Subscription":
            raise _bad("type", 'must be "Subscription"')
        sub_id = body.get("id")
        if sub_id is None:
            sub_id = new_id()
        elif not is_uri(sub_id):
            raise _bad("id", f"{str(sub_id)[:80]!r} is not a URI")
        members = {k: v for k, v in parse_members(body, terms, now).items() if v is not None}
        check_whole(members)
        if len(self._subs) >= self.max_subscriptions:
            raise NgsiError("OperationNotSupported", f"this node keeps at most "
                                                     f"{self.max_subscriptions} subscriptions")
        stamp = now_iso(now)
        doc = {"id": sub_id, "sub": members, "context": terms.context,
               "who": {"key_id": who.key_id, "role": who.role.value, "area": who.scope.area,
                       "department": who.scope.department},
               "createdAt": stamp, "modifiedAt": stamp, "created": now}
        sub = self._build(doc, 0)
        try:
            rec = await self.node.store.put_record(Record(
                kind=KIND, id=sub_id, doc=msgspec.json.encode(doc), owner=who.key_id,
                created=now, updated=now))
        except DuplicateKey:
            raise NgsiError("AlreadyExists", f"id: a subscription {sub_id} already "
                                             "exists") from None
        sub.version = rec.version
        self._subs[sub_id] = sub
        self._index_one(sub, add=True)
        await self._bump()
        if sub.interval is not None:
            sub.next_periodic = now  # the first periodic notification goes out at once
        return sub

    async def update(self, sub: Subscription, fragment: dict[str, Any], terms: TermMap
                     ) -> Subscription:
        now = self.clock()
        if "id" in fragment and fragment["id"] != sub.id:
            raise _bad("id", "a subscription's id cannot be changed")
        if "type" in fragment and fragment["type"] != "Subscription":
            raise _bad("type", 'must be "Subscription"')
        changes = parse_members(fragment, terms, now, partial=True)
        if not changes:
            raise _bad("body", "the fragment changes no member of the subscription")
        members = dict(sub.sub)
        for member, value in changes.items():
            if value is None:
                if member == "notification":
                    raise _bad("notification", "is mandatory and cannot be removed")
                members.pop(member, None)
            elif member == "notification":
                merged = dict(members.get("notification") or {})
                merged.update(value)
                members[member] = merged
            else:
                members[member] = value
        check_whole(members)
        doc = dict(sub.doc, sub=members, modifiedAt=now_iso(now))
        new = self._build(doc, sub.version)
        try:
            rec = await self.node.store.put_record(Record(
                kind=KIND, id=sub.id, doc=msgspec.json.encode(doc), owner=sub.who.key_id,
                created=float(doc.get("created", now)), updated=now),
                expect_version=sub.version)
        except StaleVersion:
            raise NgsiError("InternalError", "the subscription changed meanwhile; try again",
                            503) from None
        new.version = rec.version
        new.health = sub.health
        if new.interval is not None:
            new.next_periodic = now
        held = self._subs.get(sub.id)
        if held is not None:
            self._index_one(held, add=False)
        self._subs[sub.id] = new
        self._index_one(new, add=True)
        self.notifier.rebind(new)
        await self._bump()
        return new

    async def delete(self, sub: Subscription) -> None:
        await self.node.store.delete_record(KIND, sub.id)
        for rec in await self._all_records(STATUS_KIND, owner=sub.id):
            await self.node.store.delete_record(STATUS_KIND, rec.id)
        held = self._subs.pop(sub.id, None)
        if held is not None:
            self._index_one(held, add=False)
        self.notifier.forget(sub.id)
        await self._bump()

    async def health_of(self, sub: Subscription) -> Health:
        """The notification figures of every node for `sub` (only this node's when alone)."""
        total = Health(**vars(sub.health))
        if not getattr(self.node, "cluster", False):
            return total
        own = self._status_id(sub.id)
        for rec in await self._all_records(STATUS_KIND, owner=sub.id):
            if rec.id != own:
                total = total.merge(msgspec.json.decode(rec.doc, type=Health))
        return total

    def _status_id(self, sub_id: str) -> str:
        return f"{self.node.name or 'node'}|{sub_id}"

    async def save_health(self) -> None:
        """This node's figures of the subscriptions that sent since the last save (cluster
        reads add them up; a single node's survive a restart)."""
        for sub in list(self._subs.values()):
            mark = (sub.health.times_sent, sub.health.dropped)
            if self._health_saved.get(sub.id) == mark:
                continue
            rid = self._status_id(sub.id)
            doc = msgspec.json.encode(sub.health)
            now = self.clock()
            found = await self.node.store.get_record(STATUS_KIND, rid)
            try:
                await self.node.store.put_record(
                    Record(kind=STATUS_KIND, id=rid, doc=doc, owner=sub.id, created=now,
                           updated=now),
                    expect_version=None if found is None else found.version)
            except (DuplicateKey, StaleVersion):
                continue  # only this node writes its row; a race is a restart's: next time
            self._health_saved[sub.id] = mark

    async def restore_health(self) -> None:
        for sub in self._subs.values():
            rec = await self.node.store.get_record(STATUS_KIND, self._status_id(sub.id))
            if rec is not None:
                sub.health = msgspec.json.decode(rec.doc, type=Health)
                self._health_saved[sub.id] = (sub.health.times_sent, sub.health.dropped)

    # -- matching ----------------------------------------------------------------------------

    def candidates(self, entity: Entity) -> list[Subscription]:
        found: dict[int, Subscription] = {}
        for type_iri in entity.get("type") or ():
            for sub in self._by_type.get(type_iri, ()):
                found[id(sub)] = sub
            for sub in self._by_type_id.get((type_iri, entity.get("id", "")), ()):
                found[id(sub)] = sub
        for sub in self._any_type:
            found[id(sub)] = sub
        return list(found.values())

    def on_change(self, before: Entity | None, after: Entity | None, *,
                  local: bool = True) -> None:
        """A context entity was created, changed or deleted (ContextStore's listener).
        `local` False: another node's write this node read back from the store, which that
        node notifies itself."""
        if not self._subs or not local:
            return
        current = after if after is not None else before
        if current is None:
            return
        try:
            self._match(current, events_of(before, after), deleted=after is None)
        except Exception:
            log.exception("matching subscriptions to %s failed", current.get("id"))

    def _match(self, entity: Entity, events: dict[str, set[str]], *, deleted: bool) -> None:
        if not events:
            return
        now = self.clock()
        offered = None
        for sub in self.candidates(entity):
            if sub.status(now) != "active" or not sub.selects(entity) \
                    or not sub.wants(events) or not sub.filters(entity) \
                    or not self.sees(sub.who, entity):
                continue
            if offered is None:
                offered = entity
                if deleted:
                    offered = {"id": entity["id"], "type": entity["type"],
                               "deletedAt": now_iso(now)}
            self.notifier.offer(sub, [offered])

    def sees(self, who: Principal, entity: Entity) -> bool:
        """Whether a subscription's scope covers an entity: by its location."""
        scope = who.scope
        if scope.area is None and scope.department is None:
            return True
        point = point_of(entity)
        if point is None:
            return False
        areas = self.node.city.resolve(point[0], point[1])
        return can_see_place(who, areas, None, self.node.department_areas)

    # -- reading batches ---------------------------------------------------------------------

    def on_batch(self, batch: Any) -> None:
        """The ingestor stored a batch: note it for matching (never blocks ingest)."""
        if not self._subs:
            return
        if len(self._batches) >= BATCH_QUEUE:
            # Behind the readings: what waits is folded into one batch of each series' newest
            # row. Matching reads entities as they are now, so only intermediate states go
            # (the notifier keeps only the newest state of an entity anyway), and what waits
            # stays within one row per series however long ingest outpaces matching.
            from cityops.ngsild.reading_match import newest_rows

            self.batches_folded += 1
            if self.batches_folded == 1:
                log.warning("NGSI-LD subscriptions are behind the readings: waiting batches "
                            "are folded into each series' newest reading (batches_folded)")
            self._batches = deque([newest_rows(ReadingBatch.concat([*self._batches, batch]))])
        else:
            self._batches.append(batch)
        self._batch_ready.set()

    async def _match_batches(self) -> None:
        while True:
            await self._batch_ready.wait()
            self._batch_ready.clear()
            while self._batches:
                batch = self._batches.popleft()
                try:
                    await self.match_batch(batch)
                except Exception:
                    log.exception("matching subscriptions to a reading batch failed")
                await asyncio.sleep(0)  # let requests in between batches

    async def match_batch(self, batch: Any) -> None:
        """Match a stored reading batch: a device whose latest values it changed is an update
        of the attributes of its entities those readings change (cityops.ngsild.reading_match:
        column-wise, a 40,000-row batch is not 40,000 entities matched one by one)."""
        if not self._subs:
            return
        matcher = self._reading_matcher()
        index = matcher.index(self._subs.values(), self._index_version)
        if not index:
            return
        now = self.clock()
        for first in range(0, len(batch), MATCH_ROWS):
            part = batch if len(batch) <= MATCH_ROWS else ReadingBatch(
                batch.device[first:first + MATCH_ROWS], batch.channel[first:first + MATCH_ROWS],
                batch.ts[first:first + MATCH_ROWS], batch.value[first:first + MATCH_ROWS])
            for sub, entities in matcher.match(index, part, now).items():
                self.notifier.offer(sub, entities)
            if first + MATCH_ROWS < len(batch):
                await asyncio.sleep(0)  # requests in between the parts of a big batch

    def _reading_matcher(self) -> Any:
        if self._matcher is None:
            from cityops.ngsild import views
            from cityops.ngsild.reading_match import Matcher

            self._matcher = Matcher(self.node, views.builder(self.node))
        return self._matcher

    # -- periodic notifications and housekeeping ---------------------------------------------

    async def _housekeeping(self) -> None:
        last_save = last_reload = self.clock()
        while True:
            await asyncio.sleep(self.notifier.tick_s)
            try:
                await self.periodic()
                now = self.clock()
                if now - last_save >= HEALTH_SAVE_S or now < last_save:
                    last_save = now
                    await self.save_health()
                if getattr(self.node, "cluster", False) and (
                        now - last_reload >= self.reload_s or now < last_reload):
                    last_reload = now
                    if await self.node.store.get_meta(VERSION_META) != self._version:
                        await self.reload()
            except Exception:
                log.exception("NGSI-LD subscription housekeeping failed; will retry")

    async def periodic(self) -> None:
        """Send the periodic subscriptions whose interval has come round: every matching
        entity as it is now."""
        now = self.clock()
        for sub in self._periodic:
            interval = sub.interval
            if interval is None or sub.next_periodic > now or sub.status(now) != "active":
                continue
            sub.next_periodic = max(sub.next_periodic + interval, now)
            entities = [e for e in self._current(sub) if sub.filters(e) and self.sees(sub.who, e)]
            if entities:
                self.notifier.offer(sub, entities)

    def _current(self, sub: Subscription) -> Iterable[Entity]:
        """The entities a periodic subscription covers now, from every provider."""
        limit = self.notifier.max_pending
        seen: set[str] = set()
        for provider in self._providers():
            held = set(provider.types())
            for selector in sub.selectors:
                types = selector.types & held
                if not types:
                    continue
                found = provider.find(sub.who, types=set(types),
                                      ids={selector.id} if selector.id else None,
                                      id_pattern=selector.pattern)
                for entity in found:
                    if entity["id"] in seen:
                        continue
                    seen.add(entity["id"])
                    yield entity
                    if len(seen) >= limit:
                        return

    def _providers(self) -> list[Any]:
        from cityops.ngsild.providers import providers_of

        return list(providers_of(self.node))

    # -- rendering for the API ---------------------------------------------------------------

    async def to_json(self, sub: Subscription, terms: TermMap) -> dict[str, Any]:
        """The subscription as the API shows it, names compacted with the reader's terms."""
        return render(sub, terms, await self.health_of(sub), self.clock())


def render(sub: Subscription, terms: TermMap, health: Health, now: float) -> dict[str, Any]:
    members = sub.sub
    out: dict[str, Any] = {"id": sub.id, "type": "Subscription"}
    for key in ("subscriptionName", "description"):
        if members.get(key):
            out[key] = members[key]
    if members.get("entities"):
        selectors = []
        for s in members["entities"]:
            one: dict[str, Any] = {"type": ",".join(terms.compact(t) for t in s["type"])}
            for key in ("id", "idPattern"):
                if s.get(key):
                    one[key] = s[key]
            selectors.append(one)
        out["entities"] = selectors
    if members.get("watchedAttributes"):
        out["watchedAttributes"] = [terms.compact(a) for a in members["watchedAttributes"]]
    for key in ("notificationTrigger", "q", "datasetId", "lang"):
        if members.get(key) is not None:
            out[key] = members[key]
    if members.get("geoQ"):
        geo = dict(members["geoQ"])
        coordinates = geo["coordinates"]
        with contextlib.suppress(msgspec.DecodeError):
            coordinates = msgspec.json.decode(coordinates)
        geo["coordinates"] = coordinates
        if geo["geoproperty"] == LOCATION:
            geo.pop("geoproperty")
        else:
            geo["geoproperty"] = terms.compact(geo["geoproperty"])
        out["geoQ"] = geo
    note = dict(members["notification"])
    if note.get("attributes"):
        note["attributes"] = [terms.compact(a) for a in note["attributes"]]
    note.setdefault("format", "normalized")
    endpoint = dict(note["endpoint"])
    endpoint.setdefault("accept", "application/json")
    note["endpoint"] = endpoint
    note["status"] = health.status
    note["timesSent"] = health.times_sent
    note["timesFailed"] = health.times_failed
    for key, value in (("lastNotification", health.last_notification),
                       ("lastSuccess", health.last_success),
                       ("lastFailure", health.last_failure)):
        if value is not None:
            note[key] = now_iso(value)
    out["notification"] = note
    for key in ("throttling", "timeInterval"):
        if members.get(key) is not None:
            value = members[key]
            out[key] = int(value) if float(value).is_integer() else value
    if members.get("expiresAt"):
        out["expiresAt"] = members["expiresAt"]
    status = sub.status(now)
    out["isActive"] = status == "active"
    out["status"] = status
    context = sub.doc.get("context")
    if isinstance(context, str):
        out["jsonldContext"] = context
    return out


__all__ = ["KIND", "Subscription", "Subscriptions", "events_of", "parse_members", "render",
           "JSONLD_CONTEXT_REL"]
