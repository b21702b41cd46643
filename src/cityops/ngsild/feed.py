"""Entities of mapped Smart Data Models types, written by producers, become readings.

A NoiseLevelObserved upserted through NGSI-LD is a noise meter's reading: its measured
attributes (sdm.MODELS) go through the ingestor like any reading (validation, the WAL,
detection and everything after). Nothing else of such an entity is kept: CityOps derives the
rest (refDevice, dates, Device state) from the device and its readings, so attributes other
than the measured ones and `location` are ignored.

Which device: the id `urn:ngsi-ld:<Type>:<device id>`, or, for any other URI, the device its
`refDevice` names (`urn:ngsi-ld:Device:<device id>`), which must then be registered. A
Device entity names its device by its own id; its `value` feeds the kind's channels
(sdm.device_value_readings).

When: a measured attribute's `observedAt`; one without it was observed when CityOps received
it (the node's clock), as the spec's default for a Property without observedAt is "now".

An entity fails whole: its values are checked (numbers, the kind's range, the ingestor's
timestamp window) before anything is ingested, and an entity with one bad value feeds
nothing; the others of the call are ingested together, in one ingestor call.

A producer's batch is mostly one shape: a registered device's entity with one measured
attribute, observed at a time the readings window takes. That shape takes a short path
(`_Call.fast`: a few cached look-ups to its reading); anything else, or anything the short
path doubts, goes the careful way, which names what is wrong.

Modes: create refuses an id whose device exists (AlreadyExists); update refuses one whose
device does not (ResourceNotFound); upsert and replace take either. A device not yet
registered is registered where its `location` says, with the kind its type (and, for a type
several kinds share, its attributes) names, by the same rules as POST /api/v1/devices
(api/devices.device_to_register): only for REGISTER_DEVICES keys, and only inside the key's
scope. A scoped key writes only devices it may see.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from cityops.api.devices import Refused, device_to_register, may_see
from cityops.domain.access import REGISTER_DEVICES, WRITE_READINGS, Principal
from cityops.domain.city import Device, DeviceKind
from cityops.ingest.decode import Reading
from cityops.ngsild import sdm
from cityops.ngsild.errors import NgsiError

MODES = ("create", "upsert", "update", "replace")
# Docs checked between turns of the event loop: a 40,000-entity batch must not hold the loop
# (and every other request) for the whole of its checking; a turn every ~20 ms.
YIELD_EVERY = 1024
_SKIP = frozenset({"id", "type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"})
Outcome = tuple[str, NgsiError | None]
_UNSEEN = "\0"  # a key not looked up yet (None: looked up, not a term CityOps reads)


def _bad(detail: str) -> NgsiError:
    return NgsiError("BadRequestData", detail)


def parse_time(text: Any, where: str) -> float:
    """An RFC 3339 date-time with a zone, as epoch seconds."""
    if not isinstance(text, str):
        raise _bad(f"{where}: observedAt must be a date-time string")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _bad(f"{where}: observedAt {text[:40]!r} is not an RFC 3339 date-time") from None
    if when.tzinfo is None:
        raise _bad(f"{where}: observedAt {text[:40]!r} has no time zone (write Z for UTC)")
    return when.timestamp()


def _number(raw: Any, where: str) -> tuple[Any, Any]:
    """(value, observedAt) of a measured attribute in normalized, concise or simplified form."""
    if isinstance(raw, list):
        if len(raw) != 1:
            raise _bad(f"{where}: one instance expected (datasetIds are not readings)")
        raw = raw[0]
    if isinstance(raw, dict):
        kind = raw.get("type", "Property")
        if kind != "Property":
            raise _bad(f"{where}: must be a Property, not {str(kind)[:40]}")
        if "value" not in raw:
            raise _bad(f"{where}: a measured attribute needs a `value`")
        return raw["value"], raw.get("observedAt")
    return raw, None


def _point(raw: Any, where: str) -> tuple[float, float]:
    """(lat, lon) of a GeoProperty Point, normalized or simplified."""
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    geo = raw.get("value") if isinstance(raw, dict) and "value" in raw else raw
    coords = geo.get("coordinates") if isinstance(geo, dict) else None
    if not isinstance(geo, dict) or geo.get("type") != "Point" or not isinstance(coords, list) \
            or len(coords) < 2 or not all(_is_number(c) for c in coords[:2]):
        raise _bad(f"{where}: location must be a GeoJSON Point [lon, lat]")
    lon, lat = float(coords[0]), float(coords[1])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise _bad(f"{where}: location [{lon:g}, {lat:g}] is not a longitude, latitude pair")
    return lat, lon


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class _Route(NamedTuple):
    """Where a measured attribute goes for a device kind: its channel (None for a kind of
    one channel), the SDM scale, and the channel's valid range."""

    channel: str | None
    scale: float
    low: float
    high: float


# A (type, attribute) not looked up yet; None once looked up: not the common case.
_NO_ROUTES: tuple[str, dict[str, _Route]] = ("", {})


class _Call:
    """One write_mapped call: term expansions and type lookups cached across its docs."""

    def __init__(self, node: Any, who: Principal, expand: Callable[[str], str], mode: str):
        self.node = node
        self.who = who
        self.mode = mode
        self.expand = expand
        self.names: dict[str, str] = {}
        self.now = node.clock()
        limits = node.ingestor.limits
        self.earliest = self.now - limits.max_age_s
        self.latest = self.now + limits.max_future_s
        self.registry = node.registry
        self.scoped = who.scope.area is not None or who.scope.department is not None
        self.register: list[tuple[int, Device]] = []
        self.registering: set[str] = set()
        self.types: dict[Any, str | NgsiError] = {}
        self.times: dict[Any, float] = {}
        self.prefixes: dict[str, str] = {}
        self.terms: dict[str, str | None] = {}
        self.routes: dict[tuple[str, str], tuple[str, dict[str, _Route]] | None] = {}
        self.fast_ok = mode != "create"  # a create of a known device is AlreadyExists

    def fast(self, doc: Any) -> tuple[str, Reading] | None:
        """The common entity as its reading, with a handful of look-ups: a registered
        device's domain entity (`urn:ngsi-ld:<Type>:<device id>`) carrying one measured
        attribute, a number observed at a time the readings window takes, within the
        channel's range. None for anything else, which the careful path (`_entity`) takes,
        and explains when it fails."""
        if type(doc) is not dict or len(doc) != 3 or not self.fast_ok:
            return None
        eid, raw_type = doc.get("id"), doc.get("type")
        if type(eid) is not str or type(raw_type) is not str or len(eid) > 1024:
            return None
        for key in doc:  # the one that is neither (three keys, two of them these)
            if key != "id" and key != "type":
                break
        else:
            return None
        found = self.routes.get((raw_type, key), _NO_ROUTES)
        if found is _NO_ROUTES:
            found = self.routes[raw_type, key] = self._routes(raw_type, key)
        if found is None:
            return None
        prefix, routes = found
        if not eid.startswith(prefix) or len(eid) == len(prefix) or " " in eid:
            return None
        device_id = eid[len(prefix):]
        index = self.registry.index.get(device_id)
        if index is None:
            return None
        device = self.registry.devices[index]
        route = routes.get(device.kind)
        raw = doc[key]
        if route is None or type(raw) is not dict or raw.get("type", "Property") != "Property":
            return None
        value, observed = raw.get("value"), raw.get("observedAt")
        if (type(value) is not float and type(value) is not int) or type(observed) is not str:
            return None
        at = self.times.get(observed)
        if at is None:
            try:
                at = self.time(observed, key)
            except NgsiError:
                return None
        if not self.earliest <= at <= self.latest:
            return None
        v = value / route.scale if route.scale != 1.0 else float(value)
        if not route.low <= v <= route.high:  # NaN and infinities fail too
            return None
        if self.scoped and not may_see(self.node, self.who, device):
            return None
        if route.channel is None:
            return eid, Reading(device_id, at, value=v)
        return eid, Reading(device_id, at, values={route.channel: v})

    def _routes(self, raw_type: str, key: str) -> tuple[str, dict[str, _Route]] | None:
        """The id prefix of entities of type `raw_type`, and per device kind where their
        attribute `key` goes; None when such entities are not the common case."""
        if key in _SKIP:
            return None
        try:
            type_iri = self.type_of({"type": raw_type})
        except NgsiError:
            return None
        if type_iri == sdm.DEVICE or sdm.type_term(type_iri) == "Vehicle":
            return None  # a Device's `value` text; a standing vehicle's heading of -1
        term = sdm.term_of(self.name(key))
        out: dict[str, _Route] = {}
        for kind_name in sdm.KINDS_OF_TYPE.get(type_iri, ()):
            model = sdm.MODELS[kind_name]
            measure = next((m for m in model.measures if m.attr == term), None)
            kind = self.registry.kinds[self.registry.kind_index[kind_name]] \
                if kind_name in self.registry.kind_index else None
            if measure is None or kind is None:
                continue
            names = [c.name for c in kind.channels]
            if measure.channel not in names:
                continue
            spec = kind.channels[names.index(measure.channel)]
            out[kind_name] = _Route(None if len(names) == 1 else measure.channel,
                                    measure.scale, spec.min, spec.max)
        return (self.device_id_prefix(type_iri), out) if out else None

    def device_id_prefix(self, type_iri: str) -> str:
        prefix = self.prefixes.get(type_iri)
        if prefix is None:
            prefix = self.prefixes[type_iri] = f"{sdm.URN}{sdm.type_term(type_iri)}:"
        return prefix

    def name(self, key: str) -> str:
        found = self.names.get(key)
        if found is None:
            found = self.names[key] = sdm.canonical(self.expand(key))
        return found

    def type_of(self, doc: dict[str, Any]) -> str:
        raw = doc.get("type")
        key = tuple(raw) if isinstance(raw, list) else raw
        try:
            found = self.types.get(key)
        except TypeError:  # an unhashable member: not a type name
            found = None
        if found is None:
            found = self._type_of(raw)
            self.types[key] = found
        if isinstance(found, NgsiError):
            raise found
        return found

    def _type_of(self, raw: Any) -> str | NgsiError:
        types: list[str] = raw if isinstance(raw, list) else [raw]
        if not types or not all(isinstance(t, str) and t for t in types):
            return _bad("`type` must be a type name or a list of them")
        names = [self.name(t) for t in types]
        for t in names:
            if t in sdm.VIEW_TYPES:
                return NgsiError("OperationNotSupported",
                                 f"{sdm.type_term(t)} entities are read-only views: "
                                 f"{sdm.VIEW_TYPES[t]}")
        mapped = [t for t in names if t in sdm.MAPPED_TYPES]
        if len(mapped) != 1:
            return _bad(f"exactly one Smart Data Models type CityOps maps is needed, got "
                        f"{', '.join(types)[:200]}")
        return mapped[0]

    def time(self, text: Any, what: str) -> float:
        found = self.times.get(text) if isinstance(text, str) else None
        if found is None:
            found = parse_time(text, what)
            self.times[text] = found
        return found

    def device_id(self, doc: dict[str, Any], eid: str, type_iri: str) -> str:
        prefix = self.device_id_prefix(type_iri)
        if eid.startswith(prefix) and len(eid) > len(prefix):
            return eid[len(prefix):]
        if type_iri != sdm.DEVICE:
            for key, raw in doc.items():
                if key not in _SKIP and self.name(key) == sdm.TERMS["refDevice"]:
                    target = raw[0] if isinstance(raw, list) and raw else raw
                    obj = target.get("object") if isinstance(target, dict) else target
                    found = sdm.device_of_id(obj, sdm.DEVICE) if isinstance(obj, str) else None
                    if found is not None and found in self.registry.index:
                        return found
                    raise _bad("refDevice must name a registered device as "
                               "urn:ngsi-ld:Device:<device id>")
        raise _bad(f"id must be {prefix}<device id>, or name its registered device by "
                   f"refDevice")


def _kind_for(type_iri: str, attrs: dict[str, Any], controlled: list[Any] | None,
              held: Device | None) -> sdm.Model:
    kinds = sdm.KINDS_OF_TYPE.get(type_iri, ())
    if held is not None:
        if type_iri == sdm.DEVICE or held.kind in kinds:
            return sdm.MODELS[held.kind]
        raise _bad(f"device {held.id!r} is a {held.kind}, which is no "
                   f"{sdm.type_term(type_iri)}")
    if type_iri == sdm.DEVICE:
        wanted = set(controlled or ())
        fits = [m for m in sdm.MODELS.values() if wanted and wanted == set(m.controlled)]
        if len(fits) != 1:
            raise _bad("an unregistered Device needs a controlledProperty that names one "
                       "kind: " + "; ".join(f"{m.kind}: {','.join(m.controlled)}"
                                           for m in sdm.MODELS.values() if m.controlled))
        return fits[0]
    fits = [sdm.MODELS[k] for k in kinds
            if any(m.attr in attrs for m in sdm.MODELS[k].measures)] or \
        [sdm.MODELS[k] for k in kinds]
    if len(fits) != 1:
        names = " or ".join(", ".join(m.attr for m in sdm.MODELS[k].measures) for k in kinds)
        raise _bad(f"a {sdm.type_term(type_iri)} reports {names}")
    return fits[0]


def _entity(call: _Call, index: int, doc: Any) -> tuple[str, list[Reading]]:
    """The entity's id and its readings; NgsiError naming the entity when it cannot be taken
    (then nothing of it is)."""
    if not isinstance(doc, dict):
        raise _bad(f"entity {index}: an entity must be a JSON object")
    eid = doc.get("id")
    if not isinstance(eid, str) or ":" not in eid or len(eid) > 1024 or " " in eid:
        raise _bad(f"entity {index}: `id` must be a URI")
    try:
        return eid, _one(call, index, doc, eid)
    except NgsiError as error:
        # Messages are written without the entity; named once here, only when one fails.
        raise NgsiError(error.kind, f"entity {eid[:200]!r}: {error.detail}",
                        error.status) from None


def _one(call: _Call, index: int, doc: dict[str, Any], eid: str) -> list[Reading]:
    type_iri = call.type_of(doc)
    device_id = call.device_id(doc, eid, type_iri)
    held = call.registry.get(device_id)
    mode = call.mode
    if held is not None and mode == "create":
        raise NgsiError("AlreadyExists", f"already exists (device {device_id!r})")
    if held is None and mode == "update":
        raise NgsiError("ResourceNotFound", f"no device {device_id!r}")
    attrs: dict[str, Any] = {}
    place: tuple[float, float] | None = None
    controlled: list[Any] | None = None
    for key, raw in doc.items():
        if key in _SKIP:
            continue
        term = call.terms.get(key, _UNSEEN)
        if term is _UNSEEN:
            term = call.terms[key] = sdm.term_of(call.name(key))
        if term is None:
            continue  # derived by CityOps, or not CityOps's: see the module's docstring
        if term == "location":
            place = _point(raw, "location")
        elif term == "controlledProperty":
            value, _ = _number(raw, "controlledProperty")
            controlled = value if isinstance(value, list) else [value]
        else:
            attrs[term] = raw
    model = _kind_for(type_iri, attrs, controlled, held)
    kind: DeviceKind = call.registry.kind(model.kind)
    readings = _readings(call, model, kind, attrs, device_id,
                         as_device=type_iri == sdm.DEVICE)
    if held is None:
        if device_id not in call.registering:
            call.registering.add(device_id)
            call.register.append((index, _new_device(call, device_id, model.kind, place)))
    elif call.scoped and not may_see(call.node, call.who, held):
        raise NgsiError("BadRequestData", f"device {device_id!r} is outside this key's "
                                          f"scope {call.who.scope}", 403)
    return readings


def _readings(call: _Call, model: sdm.Model, kind: DeviceKind, attrs: dict[str, Any],
              device_id: str, *, as_device: bool) -> list[Reading]:
    """The entity's measured attributes as readings, one per observation time. A Device
    entity reports by its `value`, a domain entity by its type's measured attributes."""
    channels = [c.name for c in kind.channels]
    by_time: dict[float, dict[str, float]] = {}
    if as_device or model.type == "Device":
        if "value" in attrs:
            value, observed = _number(attrs["value"], "value")
            found = sdm.device_value_readings(value, channels)
            if isinstance(found, str):
                raise _bad(found)
            at = call.now if observed is None else call.time(observed, "value")
            by_time[at] = found
    else:
        for measure in model.measures:
            if measure.attr not in attrs:
                continue
            value, observed = _number(attrs[measure.attr], measure.attr)
            if not _is_number(value):
                raise _bad(f"{measure.attr}: value must be a number")
            at = call.now if observed is None else call.time(observed, measure.attr)
            v = float(value)
            if model.type == "Vehicle" and measure.attr == "heading" and v == -1:
                continue  # SDM's "standing": no direction, no reading
            channel = measure.channel
            if channel in channels:
                by_time.setdefault(at, {})[channel] = v / measure.scale \
                    if measure.scale != 1.0 else v
    if not by_time:
        names = "value" if as_device else ", ".join(m.attr for m in model.measures)
        raise _bad(f"no measured attribute ({names})")
    out = []
    for at, values in by_time.items():
        if not call.earliest <= at <= call.latest:
            limits = call.node.ingestor.limits
            raise _bad(f"observedAt {sdm.rfc3339(at * 1e6)} lies outside what a reading may "
                       f"carry (up to {limits.max_future_s:g} s ahead, "
                       f"{limits.max_age_s / 86400:g} days back)")
        for name, v in values.items():
            spec = kind.channels[channels.index(name)]
            if not spec.min <= v <= spec.max:
                raise _bad(f"{name} {v:g} is outside the valid range "
                           f"{spec.min:g}..{spec.max:g} {spec.unit} of a {kind.name}")
        if len(channels) == 1:
            out.append(Reading(device_id, at, value=next(iter(values.values()))))
        else:
            out.append(Reading(device_id, at, values=values))
    return out


def _new_device(call: _Call, device_id: str, kind: str, place: tuple[float, float] | None
                ) -> Device:
    if call.who.role not in REGISTER_DEVICES:
        raise NgsiError("BadRequestData", f"no device {device_id!r}, and a "
                                          f"{call.who.role.value} key may not register one",
                        403)
    if place is None:
        raise _bad(f"device {device_id!r} is not registered; give its `location` to register "
                   f"it")
    try:
        return device_to_register(call.node, call.who, Device(device_id, kind, *place))
    except Refused as exc:
        raise NgsiError("BadRequestData", exc.reason,
                        exc.status if exc.status == 403 else None) from None


async def write_mapped(node: Any, who: Principal, docs: list[Any],
                       terms: Any = None, *, mode: str) -> list[Outcome]:
    """Feed entities of mapped types as readings; one outcome per doc, in order (see the
    module's docstring). `docs` are as the request gave them, with `terms` (a TermMap) to
    expand their names, or already expanded (terms None)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if who.role not in WRITE_READINGS:
        refusal = NgsiError("BadRequestData", f"a {who.role.value} key may not write readings",
                            403)
        return [(_id_of(doc), refusal) for doc in docs]
    # Admitted before any work, as an HTTP batch is before its body is read: a node that
    # cannot take it says so at once (Overloaded: 429/503 with Retry-After).
    with node.ingestor.reserve(holder=who.key_id) as slot:
        return await _write(node, who, docs, terms, mode, slot)


async def _write(node: Any, who: Principal, docs: list[Any], terms: Any, mode: str,
                 slot: Any) -> list[Outcome]:
    call = _Call(node, who, terms.expand if terms is not None else _same, mode)
    outcomes: list[Outcome] = []
    readings: list[Reading] = []
    owner: list[int] = []  # per reading, the outcome it belongs to
    seen: dict[str, int] = {}
    fast = call.fast
    for index, doc in enumerate(docs):
        if index and not index % YIELD_EVERY:
            await asyncio.sleep(0)
        found = fast(doc)
        if found is not None:  # the common case: never a create, so never seen before
            eid, reading = found
            seen[eid] = index
            outcomes.append((eid, None))
            readings.append(reading)
            owner.append(index)
            continue
        try:
            eid, mine = _entity(call, index, doc)
        except NgsiError as error:
            outcomes.append((_id_of(doc), error))
            continue
        if eid in seen and mode == "create":
            outcomes.append((eid, NgsiError("AlreadyExists", f"entity {eid!r} is created "
                                                             f"earlier in this batch")))
            continue
        seen[eid] = index
        outcomes.append((eid, None))
        readings += mine
        owner += [index] * len(mine)
    if call.register:
        await node.register_devices([device for _, device in call.register])
    if readings:
        result = await node.ingestor.ingest(list(enumerate(readings)), source="ngsild",
                                            slot=slot)
        for rejection in result.rejected:
            index = owner[rejection.index]
            eid = outcomes[index][0]
            if outcomes[index][1] is None:
                outcomes[index] = (eid, _bad(f"entity {eid!r}: {rejection.error}"))
    return outcomes


def _same(name: str) -> str:
    return name


def _id_of(doc: Any) -> str:
    eid = doc.get("id") if isinstance(doc, dict) else None
    return eid[:1024] if isinstance(eid, str) else ""
