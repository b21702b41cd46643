"""Devices, alerts and Open311 service requests seen as NGSI-LD entities (Smart Data Models).

`providers(node)` gives the query engine (providers.py) three providers. Each answers only what
the key may see, by the rule of the CityOps API for the same record: a device by its stored
areas and owner (api/devices.may_see), an alert by where it was raised or its departments
(api/alerts.may_see), a request by its village.

Devices are built lazily, from the registry and the history's latest values: a query by type
over 48,000 devices walks the registry's arrays and builds entities only as the engine takes
them, so a page of 20 builds about 20 (more when q or a geo-query drops some).

Alerts and requests live in the store, which is read asynchronously, while the engine asks
synchronously; each has a mirror in memory, started at first use and stopped with the node:
alerts as the bus reports them (after loading the open ones and the newest `MAX_ALERTS`),
requests re-read every `REQUEST_REFRESH_S` (Open311's own 90-day window, newest
`MAX_REQUESTS`). Both are bounded; an alert or request older than what they hold is not an
entity here (the CityOps API still has it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from typing import Any

import msgspec
import numpy as np

from cityops.api import alerts as alerts_api
from cityops.api.devices import may_see
from cityops.bus.subjects import ALERTS
from cityops.domain.access import Principal, can_see_place
from cityops.domain.alerts import Alert
from cityops.domain.city import AreaCodes, Device, Vehicle
from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.readings import ReadingBatch
from cityops.ngsild import sdm
from cityops.ngsild.sdm import TERMS, Entity, Latest

log = logging.getLogger(__name__)

MAX_ALERTS = 20_000
MAX_REQUESTS = 1000
REQUEST_REFRESH_S = 30.0
_URN = sdm.URN

# What each type's entities may carry (for /types and /attributes).
_COMMON = {TERMS["location"], TERMS["name"]}
_DEVICE_ATTRS = _COMMON | {TERMS[t] for t in ("controlledProperty", "deviceCategory",
                                              "deviceState", "dateLastValueReported", "value")}
_EXTRAS = {"NoiseLevelObserved": ("dateObservedFrom", "dateObservedTo", "dateObserved"),
           "FloodMonitoring": ("observationDateTime",),
           "WeatherObserved": ("dateObserved",), "AirQualityObserved": ("dateObserved",),
           "Streetlight": ("observationDateTime", "powerState"),
           "Vehicle": ("observationDateTime", "vehicleType", "category",
                       "vehiclePlateIdentifier"),
           "KeyPerformanceIndicator": ("calculationFrequency", "category")}
_ALERT_ATTRS = {TERMS[t] for t in ("category", "subCategory", "severity", "dateIssued",
                                   "validFrom", "validTo", "alertSource", "name",
                                   "description", "data", "location")}
_REQUEST_ATTRS = {TERMS[t] for t in ("service_request_id", "service_code", "service_name",
                                     "status_notes", "agency_responsible", "address_string",
                                     "media_url", "service_notice", "requested_datetime",
                                     "updated_datetime", "expected_datetime", "status",
                                     "description", "location")}


def _domain_attributes() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for model in sdm.MODELS.values():
        if model.type == "Device":
            continue
        attrs = out.setdefault(model.type_iri, set(_COMMON) | {TERMS["refDevice"]})
        attrs.update(m.iri for m in model.measures)
        attrs.update(TERMS[t] for t in _EXTRAS.get(model.type, ()))
    return out


_DOMAIN_ATTRS = _domain_attributes()


def _wanted(types: set[str] | None, have: Iterable[str]) -> set[str] | None:
    """The asked types this provider holds (canonical IRIs); None for any."""
    if types is None:
        return None
    asked = {sdm.canonical(t) for t in types}
    return asked & set(have)


def _matches(entity_id: str, ids: set[str] | None, pattern: re.Pattern[str] | None) -> bool:
    return (ids is None or entity_id in ids) and (pattern is None or
                                                  pattern.fullmatch(entity_id) is not None)


# -- devices ------------------------------------------------------------------------------------


class DeviceView:
    """Every registered device as a Device, and as its domain type when it has one."""

    def __init__(self, node: Any, vehicles: dict[str, Vehicle],
                 builder: Builder | None = None) -> None:
        self.node = node
        self.vehicles = vehicles
        self.builder = builder or Builder(node, vehicles)

    def types(self) -> list[str]:
        """The types of the devices registered (a Vehicle only with a vehicle's tracker)."""
        registry = self.node.registry
        if not len(registry):
            return []
        kinds = {registry.kinds[k].name for k in np.unique(registry.kind_of).tolist()}
        found = {sdm.DEVICE} | {m.type_iri for m in sdm.MODELS.values()
                                if m.kind in kinds and m.type not in ("Device", "Vehicle")}
        if self.vehicles:
            found.add(sdm.TERMS["Vehicle"])
        return sorted(found)

    def attributes(self) -> dict[str, set[str]]:
        types = set(self.types())
        out = {t: set(a) for t, a in _DOMAIN_ATTRS.items() if t in types}
        out[sdm.DEVICE] = set(_DEVICE_ATTRS)
        return out

    def find(self, who: Principal, *, types: set[str] | None, ids: set[str] | None,
             id_pattern: re.Pattern[str] | None,
             envelope: tuple[float, float, float, float] | None = None) -> Iterator[Entity]:
        wanted = _wanted(types, self.types())
        if wanted is not None and not wanted:
            return iter(())
        if ids is not None:
            return self._by_ids(who, wanted, ids, id_pattern)
        return self._scan(who, wanted, id_pattern, envelope)

    def _by_ids(self, who: Principal, wanted: set[str] | None, ids: set[str],
                pattern: re.Pattern[str] | None) -> Iterator[Entity]:
        for entity_id in sorted(ids):
            if pattern is not None and pattern.fullmatch(entity_id) is None:
                continue
            found = self.get(who, entity_id)
            if found is not None and (wanted is None or found["type"][0] in wanted):
                yield found

    def _scan(self, who: Principal, wanted: set[str] | None,
              pattern: re.Pattern[str] | None,
              envelope: tuple[float, float, float, float] | None = None) -> Iterator[Entity]:
        registry = self.node.registry
        kinds = None
        if wanted is not None and sdm.DEVICE not in wanted:
            names = {k for t in wanted for k in sdm.KINDS_OF_TYPE.get(t, ())}
            kinds = [registry.kind_index[k] for k in names if k in registry.kind_index]
        # The kind and place arrays pick the candidates without touching a Device struct.
        keep = None if kinds is None else np.isin(registry.kind_of, kinds)
        if envelope is not None:
            keep = _around(registry, envelope, keep)
        rows: Iterable[int] = range(len(registry)) if keep is None \
            else np.flatnonzero(keep).tolist()
        devices = registry.devices
        for i in rows:
            device = devices[i]
            if not may_see(self.node, who, device):
                continue
            yield from self._of(i, device, wanted, pattern)

    def _of(self, index: int, device: Device, wanted: set[str] | None,
            pattern: re.Pattern[str] | None) -> Iterator[Entity]:
        vehicle = self.vehicles.get(device.id)
        domain = sdm.domain_type(device, vehicle)
        if domain is not None and (wanted is None or domain in wanted) and \
                _matches(sdm.entity_id(domain, device.id), None, pattern):
            found = self._build(index, device, domain)
            if found is not None:
                yield found
        if (wanted is None or sdm.DEVICE in wanted) and \
                _matches(f"{_URN}Device:{device.id}", None, pattern):
            found = self._build(index, device, sdm.DEVICE)
            if found is not None:
                yield found

    def _build(self, index: int, device: Device, type_iri: str) -> Entity | None:
        return self.builder.entity(index, type_iri, self.builder.latest_of(index))

    def get(self, who: Principal, entity_id: str) -> Entity | None:
        if not entity_id.startswith(_URN):
            return None
        type_term, _, device_id = entity_id[len(_URN):].partition(":")
        type_iri = TERMS.get(type_term)
        if type_iri is None or type_iri not in sdm.MAPPED_TYPES:
            return None
        index = self.node.registry.index.get(device_id)
        if index is None:
            return None
        device = self.node.registry.devices[index]
        if not may_see(self.node, who, device):
            return None
        if type_iri != sdm.DEVICE and \
                sdm.domain_type(device, self.vehicles.get(device_id)) != type_iri:
            return None
        return self._build(index, device, type_iri)

    def owns(self, entity_id: str, types: list[str]) -> bool:
        return any(sdm.canonical(t) in sdm.MAPPED_TYPES for t in types)

    def coordinates(self, who: Principal) -> Iterator[tuple[int, float, float]]:
        """(registry index, lat, lon) of each device the key may see, as registered: a cheap
        pre-filter for geo-queries before entities are built (movers' fixes excepted)."""
        for i, device in enumerate(self.node.registry.devices):
            if may_see(self.node, who, device):
                yield i, device.lat, device.lon


def _around(registry: Any, envelope: tuple[float, float, float, float],
            keep: np.ndarray | None) -> np.ndarray:
    """Devices registered inside the envelope, and every mover (its location is its latest
    fix, which may be anywhere): the others cannot match a geo-query bounded by it."""
    west, south, east, north = envelope
    lat, lon = registry.lat, registry.lon
    inside = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    movers = [i for i, k in enumerate(registry.kinds) if k.mobile]
    if movers:
        inside |= np.isin(registry.kind_of, movers)
    return inside if keep is None else keep & inside


def entities_of_batch(node: Any, batch: ReadingBatch, types: set[str] | None = None
                      ) -> list[Entity]:
    """The current entities (domain type, then Device) of the devices a stored batch names,
    each once; only of `types` (expanded IRIs, any spelling) when given. No key filter: the
    caller applies its own."""
    state = _state(node)
    view = DeviceView(node, state.vehicles, state.builder)
    wanted = _wanted(types, view.types())
    if wanted is not None and not wanted:
        return []
    registry = node.registry
    out: list[Entity] = []
    for index in np.unique(batch.device).tolist():
        if index >= len(registry):
            continue
        out.extend(view._of(index, registry.devices[index], wanted, None))
    return out


class Builder:
    """Devices' entities built from the history's latest values, for queries and, many at a
    time, for the notifications of stored readings (cityops.ngsild.reading_match).

    What an entity takes from the device's record and kind (ids, type, channels, measures) is
    worked out once per device and kept (`sdm.Facts`) until the registry holds another record
    for it (the registry replaces a record, never changes one in place); what it takes from
    readings is read from the history's latest-value arrays, for a batch's devices at once."""

    def __init__(self, node: Any, vehicles: dict[str, Vehicle]) -> None:
        self.node = node
        self.vehicles = vehicles
        self._facts: list[sdm.Facts | None] = []

    def facts(self, index: int) -> sdm.Facts:
        registry = self.node.registry
        device = registry.devices[index]
        held = self._facts[index] if index < len(self._facts) else None
        if held is not None and held.device is device:
            return held
        if index >= len(self._facts):
            self._facts.extend([None] * (len(registry) - len(self._facts)))
        kind = registry.kind(device.kind)
        found = sdm.facts(device, [c.name for c in kind.channels], period_s=kind.period_s,
                          vehicle=self.vehicles.get(device.id))
        self._facts[index] = found
        return found

    def latest_of(self, index: int) -> Latest:
        ts, value = self.node.history.state.latest(index)
        return Latest(ts, value)

    def latest(self, indices: np.ndarray) -> list[Latest]:
        """The latest values of many devices (in the order given), read from the history's
        arrays a few gathers at a time: one per number of channels their kinds have."""
        state = self.node.history.state
        registry = self.node.registry
        if not len(indices):
            return []
        widths = np.array([len(k.channels) for k in registry.kinds])[registry.kind_of[indices]]
        out: list[Latest | None] = [None] * len(indices)
        for width in np.unique(widths).tolist():
            rows = np.flatnonzero(widths == width)
            series = indices[rows].astype(np.int64)[:, None] * MAX_CHANNELS + np.arange(width)
            inside = series < state.capacity  # registered after the last reserve: none yet
            safe = np.where(inside, series, 0)
            ts = np.where(inside, state.latest_ts[safe], sdm.NEVER).tolist()
            value = np.where(inside, state.latest_value[safe], np.nan).tolist()
            for row, t, v in zip(rows.tolist(), ts, value):
                out[row] = Latest(t, v)
        return out  # type: ignore[return-value]

    def entity(self, index: int, type_iri: str, latest: Latest,
               attrs: AbstractSet[str] | None = None) -> Entity | None:
        """The device's entity of `type_iri` (its domain type or Device), only `attrs` of it
        when given; None when the device has no entity of that type."""
        f = self.facts(index)
        if type_iri == sdm.DEVICE:
            return sdm.device_entity_of(f, latest, attrs)
        if type_iri != f.domain:
            return None
        return sdm.domain_entity_of(f, latest, attrs)


# -- alerts ---------------------------------------------------------------------------------------


class _Mirror:
    """CityOps records kept in memory by a task of the node's, started by the first query
    (from the node's event loop); `loaded` is set once the first read is in."""

    TASK: str

    def __init__(self, node: Any) -> None:
        self.node = node
        self.started = False
        self.loaded = asyncio.Event()

    def ensure_started(self) -> None:
        if self.started or not _in_loop():
            return
        self.started = True
        self.node.keep_task(self._run(), self.TASK)

    async def _run(self) -> None:
        raise NotImplementedError


class AlertMirror(_Mirror):
    """The alerts NGSI-LD shows, kept in memory: loaded from the store, then followed on the
    bus. Started by the first query; its task ends with the node."""

    TASK = "ngsild-alerts"

    def __init__(self, node: Any) -> None:
        super().__init__(node)
        self.alerts: OrderedDict[str, Alert] = OrderedDict()

    async def _run(self) -> None:
        bus = self.node.bus_for("ngsild") if hasattr(self.node, "bus_for") else self.node.bus
        sub = bus.subscribe(ALERTS, maxsize=1024)  # before loading: nothing slips between
        try:
            store = self.node.store
            stored = await store.list_alerts(limit=MAX_ALERTS)
            stored += await store.list_alerts(active=True, limit=MAX_ALERTS)
            for alert in sorted(stored, key=lambda a: a.first_seen):
                self._keep(alert)
            self.loaded.set()
            while True:
                for events in await sub.get_batch(256):
                    for event in events if isinstance(events, list) else [events]:
                        self._keep(event.alert)
        finally:
            with contextlib.suppress(Exception):
                await sub.close()

    def _keep(self, alert: Alert) -> None:
        self.alerts[alert.id] = alert
        self.alerts.move_to_end(alert.id)
        while len(self.alerts) > MAX_ALERTS:
            self.alerts.popitem(last=False)


class _MirrorView:
    """A provider of one read-only type over a mirror of CityOps records."""

    TYPE: str
    ATTRS: tuple[str, ...]

    def __init__(self, node: Any, mirror: Any) -> None:
        self.node = node
        self.mirror = mirror
        mirror.ensure_started()

    def types(self) -> list[str]:
        return [self.TYPE]

    def attributes(self) -> dict[str, set[str]]:
        return {self.TYPE: set(self.ATTRS)}


class AlertView(_MirrorView):
    TYPE = sdm.ALERT
    ATTRS = tuple(_ALERT_ATTRS)
    mirror: AlertMirror

    def find(self, who: Principal, *, types: set[str] | None, ids: set[str] | None,
             id_pattern: re.Pattern[str] | None,
             envelope: tuple[float, float, float, float] | None = None) -> Iterator[Entity]:
        wanted = _wanted(types, [sdm.ALERT])
        if wanted is not None and not wanted:
            return
        devices = self.node.registry.index
        for alert in reversed(list(self.mirror.alerts.values())):  # newest first
            entity_id = f"{_URN}Alert:{alert.id}"
            if _matches(entity_id, ids, id_pattern) and \
                    alerts_api.may_see(self.node, who, alert):
                yield sdm.alert_entity(alert, devices)

    def get(self, who: Principal, entity_id: str) -> Entity | None:
        prefix = f"{_URN}Alert:"
        if not entity_id.startswith(prefix):
            return None
        alert = self.mirror.alerts.get(entity_id[len(prefix):])
        if alert is None or not alerts_api.may_see(self.node, who, alert):
            return None
        return sdm.alert_entity(alert, self.node.registry.index)

    def owns(self, entity_id: str, types: list[str]) -> bool:
        return any(sdm.canonical(t) == sdm.ALERT for t in types)


# -- Open311 service requests ---------------------------------------------------------------


class RequestMirror(_Mirror):
    """Open311's public views of the newest requests, with each one's village (for scopes),
    re-read every REQUEST_REFRESH_S."""

    TASK = "ngsild-requests"

    def __init__(self, node: Any) -> None:
        super().__init__(node)
        self.requests: dict[str, tuple[dict[str, Any], str]] = {}

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # the store busy or down: keep what is held, try again
                log.exception("reading Open311 requests for NGSI-LD failed; will retry")
            self.loaded.set()
            await asyncio.sleep(REQUEST_REFRESH_S)

    async def refresh(self) -> None:
        from cityops.open311.routes import catalogue_of
        from cityops.open311.service_requests import KIND, RequestDoc, Requests

        records = await self.node.store.find_records(KIND, limit=MAX_REQUESTS)
        requests = Requests(self.node, catalogue_of(self.node))
        views = await requests.views(records)
        held = {}
        for rec, view in zip(records, views, strict=True):
            doc = msgspec.json.decode(rec.doc, type=RequestDoc)
            held[str(view["service_request_id"])] = (view, doc.village)
        self.requests = held


class RequestView(_MirrorView):
    TYPE = sdm.SERVICE_REQUEST
    ATTRS = tuple(_REQUEST_ATTRS)
    mirror: RequestMirror

    def _sees(self, who: Principal, village: str) -> bool:
        # A village code holds its town's and district's (6, 9, 12 digits).
        areas = AreaCodes(village[:6], village[:9], village) if len(village) == 12 else None
        return can_see_place(who, areas, None, self.node.department_areas)

    def find(self, who: Principal, *, types: set[str] | None, ids: set[str] | None,
             id_pattern: re.Pattern[str] | None,
             envelope: tuple[float, float, float, float] | None = None) -> Iterator[Entity]:
        wanted = _wanted(types, [sdm.SERVICE_REQUEST])
        if wanted is not None and not wanted:
            return
        for rid, (view, village) in list(self.mirror.requests.items()):
            if _matches(f"{_URN}ServiceRequest:{rid}", ids, id_pattern) and \
                    self._sees(who, village):
                yield sdm.service_request_entity(view)

    def get(self, who: Principal, entity_id: str) -> Entity | None:
        prefix = f"{_URN}ServiceRequest:"
        if not entity_id.startswith(prefix):
            return None
        held = self.mirror.requests.get(entity_id[len(prefix):])
        if held is None or not self._sees(who, held[1]):
            return None
        return sdm.service_request_entity(held[0])

    def owns(self, entity_id: str, types: list[str]) -> bool:
        return any(sdm.canonical(t) == sdm.SERVICE_REQUEST for t in types)


def _in_loop() -> bool:
    """A mirror's task starts on the node's loop; asked from elsewhere (a worker thread), it
    waits for the next ask from the loop, and holds nothing meanwhile."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# -- per node -------------------------------------------------------------------------------------


class _State:
    def __init__(self, node: Any) -> None:
        self.vehicles = {v.device_id: v for v in getattr(node.pack, "vehicles", [])}
        self.builder = Builder(node, self.vehicles)
        self.alerts = AlertMirror(node)
        self.requests = RequestMirror(node)


_STATES: weakref.WeakKeyDictionary[Any, _State] = weakref.WeakKeyDictionary()


def _state(node: Any) -> _State:
    found = _STATES.get(node)
    if found is None:
        found = _STATES[node] = _State(node)
    return found


def builder(node: Any) -> Builder:
    """The node's entity builder (its per-device facts kept between calls)."""
    return _state(node).builder


def providers(node: Any) -> list[Any]:
    """Devices, alerts, service requests: the Smart Data Models views of this node."""
    state = _state(node)
    return [DeviceView(node, state.vehicles, state.builder), AlertView(node, state.alerts),
            RequestView(node, state.requests)]
