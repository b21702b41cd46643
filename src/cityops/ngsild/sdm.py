"""Smart Data Models: which FIWARE type each CityOps device kind is, with which attributes and
units, and the entities a device, an alert and an Open311 request are seen as.

Checked against the schemas of smart-data-models/dataModel.{Environment, Weather, Device,
WasteManagement, Streetlighting, Transportation, KeyPerformanceIndicator, Alert, IssueTracking}:

- noise -> NoiseLevelObserved `LAeq` (dB(A)); the schema requires the observation window, so
  `dateObservedFrom`/`dateObservedTo` span the kind's reporting period up to the reading.
- water_depth -> FloodMonitoring `currentLevel` (cm), not WaterObserved: a CityOps gauge stands
  at an underpass or low point and reports how deep the water stands there, which is what
  FloodMonitoring's `currentLevel` is (the level at a flood sensing station, next to its alert
  and danger levels); WaterObserved describes a water body (flow, swell, waves, discharge).
- rainfall, wind -> WeatherObserved `precipitation`, `windSpeed`, `windDirection`. SDM's
  `precipitation` defaults to an amount (L/m2); a rain gauge here reports an intensity, so the
  attribute carries unitCode H67 (mm/h), which says which one it is.
- air_quality -> AirQualityObserved `pm25`, `pm10`, `no2`, `o3` (ug/m3).
- bin_fill -> WasteContainer `fillingLevel`, a 0..1 ratio in SDM (CityOps keeps percent).
- street_lamp -> Streetlight `powerConsumption` (W), and `powerState` on/off derived from it.
- gps of a vehicle in the city pack -> Vehicle `location`, `speed` (km/h), `heading` (degrees;
  -1 while standing, as the schema asks). A person's tracker is a Device only.
- kpi -> KeyPerformanceIndicator `kpiValue`: a vital-sign series is an indicator, not a sensor.
- camera, smoke, manhole_tilt, water_meter -> Device only: SDM's Camera describes streams, not
  analytics events; WaterConsumptionObserved holds cumulative volumes and weekly flow extremes,
  not a meter's instantaneous flow; nothing fits smoke obscuration or cover tilt.

Every device is also a `Device` (`controlledProperty`, `deviceState` from its lifecycle,
`dateLastValueReported`, `location`, `value`), and its domain entity points to it by
`refDevice`. Ids are `urn:ngsi-ld:<Type>:<device id>`.

IRIs: each SDM subject's context names its terms under its own namespace, and the same term
(`refDevice`, `category`, `windSpeed` ...) differs between subjects; the unified SDM context
and a client sending no context at all (the core context's @vocab) name them in other ways
again. CityOps stores one IRI per term (`TERMS`, the terms of `contexts/cityops-sdm.jsonld`)
and `canonical` maps the other spellings of a term it knows to it, so that a producer using
any of those contexts is understood.

Pure: no I/O; views.py and feed.py bring the node.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, NamedTuple

from cityops.domain.alerts import Alert
from cityops.domain.city import Device, Vehicle

NGSI = "https://uri.etsi.org/ngsi-ld/"
SDM = "https://smartdatamodels.org/"
VOCAB = NGSI + "default-context/"  # what the core context's @vocab makes of unknown terms
URN = "urn:ngsi-ld:"
# The subjects whose contexts CityOps ships (contexts/sdm-<subject>.jsonld).
SUBJECTS = ("Environment", "Weather", "Device", "WasteManagement", "Streetlighting",
            "Transportation", "KeyPerformanceIndicator", "Alert", "IssueTracking")
# The unified SDM context (smartdatamodels.org/context.jsonld) writes terms in these two ways.
_UNIFIED = ("https://smart-data-models.github.io/data-models/terms.jsonld#/definitions/",
            "https://uri.fiware.org/ns/data-models#")


def _in(subject: str, *terms: str) -> dict[str, str]:
    return {t: f"{SDM}dataModel.{subject}/{t}" for t in terms}


# One IRI per term: the subject's own where only one subject has the term; for a term several
# subjects define, that of the subject where CityOps uses it most.
TERMS: dict[str, str] = {
    **_in("Environment", "NoiseLevelObserved", "LAeq", "dateObservedFrom", "dateObservedTo",
          "FloodMonitoring", "currentLevel", "observationDateTime", "AirQualityObserved",
          "pm25", "pm10", "no2", "o3", "refDevice"),
    **_in("Weather", "WeatherObserved", "precipitation", "windSpeed", "windDirection"),
    **_in("WasteManagement", "WasteContainer", "fillingLevel"),
    **_in("Streetlighting", "Streetlight", "powerConsumption", "powerState"),
    **_in("Transportation", "Vehicle", "speed", "heading", "vehicleType",
          "vehiclePlateIdentifier", "vehicleTrackerDevice"),
    **_in("KeyPerformanceIndicator", "KeyPerformanceIndicator", "kpiValue",
          "calculationFrequency"),
    **_in("Device", "Device", "controlledProperty", "deviceCategory", "deviceState",
          "dateLastValueReported"),
    **_in("Alert", "Alert", "category", "subCategory", "severity", "alertSource", "dateIssued",
          "validTo"),
    **_in("IssueTracking", "service_request_id", "service_code", "service_name",
          "status_notes", "agency_responsible", "requested_datetime", "updated_datetime",
          "expected_datetime", "address_string", "media_url", "service_notice"),
    # Open311's request type: SDM calls the type `service_requests`; CityOps names it by what
    # its README says it is, and both terms expand to the one IRI.
    "ServiceRequest": f"{SDM}dataModel.IssueTracking/service_requests",
    "service_requests": f"{SDM}dataModel.IssueTracking/service_requests",
    "dateObserved": f"{SDM}dateObserved",
    "validFrom": f"{SDM}validFrom",
    "name": f"{SDM}name",
    "description": "http://purl.org/dc/terms/description",
    # Terms every SDM context maps into the core's namespace.
    "value": NGSI + "hasValue",
    "status": NGSI + "status",
    "data": NGSI + "data",
    "location": NGSI + "location",
}
_TERM_OF_IRI = {iri: term for term, iri in TERMS.items()}
_SPELLINGS = (*(f"{SDM}dataModel.{s}/" for s in SUBJECTS), *_UNIFIED, VOCAB, SDM)


def iri(term: str) -> str:
    return TERMS[term]


def term_of(name: str) -> str | None:
    """The CityOps term of a canonical IRI (`canonical` first for other spellings)."""
    return _TERM_OF_IRI.get(name)


def canonical(name: str) -> str:
    """The IRI CityOps stores for `name`, an expanded attribute or type name in any spelling of
    a term it knows (another subject's namespace, the unified context, the default @vocab);
    anything else unchanged."""
    if name in _TERM_OF_IRI:
        return name
    for prefix in _SPELLINGS:
        if name.startswith(prefix):
            found = TERMS.get(name[len(prefix):])
            return found if found is not None else name
    return name


# -- the mapping of device kinds ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measure:
    """One measured attribute: SDM `attr` holds CityOps `channel` times `scale`, in `unit`
    (a UN/CEFACT common code)."""

    attr: str
    channel: str
    unit: str
    scale: float = 1.0

    @property
    def iri(self) -> str:
        return TERMS[self.attr]


@dataclass(frozen=True, slots=True)
class Model:
    kind: str
    type: str  # the domain type's term; "Device" when the device is its own model
    measures: tuple[Measure, ...]
    controlled: tuple[str, ...]  # Device.controlledProperty (SDM's enumeration)
    category: str = "sensor"  # Device.deviceCategory
    moves: bool = False  # location comes from the lat/lon channels

    @property
    def type_iri(self) -> str:
        return TERMS[self.type]


M = Measure
MODELS: dict[str, Model] = {m.kind: m for m in [
    Model("noise", "NoiseLevelObserved", (M("LAeq", "laeq", "2N"),), ("noiseLevel",)),
    Model("water_depth", "FloodMonitoring", (M("currentLevel", "depth", "CMT"),),
          ("depth",)),
    Model("rainfall", "WeatherObserved", (M("precipitation", "intensity", "H67"),),
          ("precipitation",)),
    Model("wind", "WeatherObserved", (M("windSpeed", "speed", "MTS"),
                                      M("windDirection", "direction", "DD")),
          ("windSpeed", "windDirection")),
    Model("air_quality", "AirQualityObserved",
          (M("pm25", "pm25", "GQ"), M("pm10", "pm10", "GQ"), M("no2", "no2", "GQ"),
           M("o3", "o3", "GQ")), ("airPollution",)),
    Model("bin_fill", "WasteContainer", (M("fillingLevel", "fill", "C62", 0.01),),
          ("fillingLevel",)),
    Model("street_lamp", "Streetlight", (M("powerConsumption", "power", "WTT"),),
          ("power",), category="actuator"),
    Model("gps", "Vehicle", (M("speed", "speed", "KMH"), M("heading", "heading", "DD")),
          ("location", "speed", "heading"), moves=True),
    Model("kpi", "KeyPerformanceIndicator", (M("kpiValue", "value", "C62"),), ()),
    # Device only: their readings are the Device's `value`.
    Model("smoke", "Device", (M("value", "obscuration", "H99"),), ("smoke",)),
    # SDM has no "tilt": a tilt sensor tells that the cover moved.
    Model("manhole_tilt", "Device", (M("value", "tilt", "DD"),), ("motion",)),
    Model("water_meter", "Device", (M("value", "flow", "L2"),), ("waterFlow",),
          category="meter"),
    Model("camera", "Device", (M("value", "event", "C62"), M("value", "dwell", "SEC")),
          ("motion",), category="multimedia"),
]}
del M

DEVICE = TERMS["Device"]
ALERT = TERMS["Alert"]
SERVICE_REQUEST = TERMS["ServiceRequest"]
# Domain types fed by devices: writing one feeds readings (feed.py).
MAPPED_TYPES: frozenset[str] = frozenset(m.type_iri for m in MODELS.values()) | {DEVICE}
# Seen as entities, written only through their own CityOps API.
VIEW_TYPES: dict[str, str] = {
    ALERT: "alerts are raised by detection (scenario rules); see /api/v1/alerts",
    SERVICE_REQUEST: "service requests are filed through Open311: POST /open311/v2/requests.json",
}
KINDS_OF_TYPE: dict[str, tuple[str, ...]] = {}
for _m in MODELS.values():
    KINDS_OF_TYPE[_m.type_iri] = (*KINDS_OF_TYPE.get(_m.type_iri, ()), _m.kind)


def is_mapped(type_iri: str) -> bool:
    """A type whose entities stand for devices and their readings (writable as readings)."""
    return canonical(type_iri) in MAPPED_TYPES


def is_view(type_iri: str) -> bool:
    """A read-only view of a CityOps record (alerts, service requests)."""
    return canonical(type_iri) in VIEW_TYPES


def type_term(type_iri: str) -> str:
    return _TERM_OF_IRI.get(canonical(type_iri), type_iri)


def domain_type(device: Device, vehicle: Vehicle | None = None) -> str | None:
    """The domain type IRI a device is seen as besides Device, if any."""
    model = MODELS.get(device.kind)
    if model is None or model.type == "Device":
        return None
    if model.moves and vehicle is None:
        return None  # a person's tracker: no Vehicle
    return model.type_iri


def entity_id(type_iri: str, device_id: str) -> str:
    return f"{URN}{type_term(type_iri)}:{device_id}"


def device_of_id(entity_id: str, type_iri: str) -> str | None:
    """The device id in `urn:ngsi-ld:<Type>:<device id>`, when the id has that form."""
    prefix = f"{URN}{type_term(type_iri)}:"
    if entity_id.startswith(prefix) and len(entity_id) > len(prefix):
        return entity_id[len(prefix):]
    return None


# -- building entities -------------------------------------------------------------------------

Entity = dict[str, Any]
NEVER = -(2**63)
US = 1_000_000
_TIMES: dict[int | float, str] = {}  # rfc3339's recent answers: a batch has few distinct times
_TIMES_MAX = 4096


def rfc3339(ts_us: int | float) -> str:
    """UTC with `Z`, milliseconds only when there are some. The readings of a batch share a
    handful of times, so recent answers are kept (formatting is most of an entity's cost)."""
    found = _TIMES.get(ts_us)
    if found is None:
        t = dt.datetime.fromtimestamp(ts_us / US, dt.UTC)
        text = t.isoformat(timespec="milliseconds" if t.microsecond else "seconds")
        found = text.replace("+00:00", "Z")
        if len(_TIMES) >= _TIMES_MAX:
            _TIMES.clear()
        _TIMES[ts_us] = found
    return found


def date_value(ts_us: int | float) -> dict[str, str]:
    return {"@type": "DateTime", "@value": rfc3339(ts_us)}


def _prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def _point(lat: float, lon: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def _rel(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


class Latest(NamedTuple):
    """A device's newest stored value per channel: epoch microseconds (NEVER: none) and value,
    indexed like the kind's channels. (A tuple: tens of thousands are made a second.)"""

    ts: Sequence[int]
    value: Sequence[float]

    def of(self, index: int) -> tuple[int, float] | None:
        if index >= len(self.ts):
            return None
        ts, v = int(self.ts[index]), float(self.value[index])
        if ts == NEVER or math.isnan(v):
            return None
        return ts, v

    def newest(self) -> int | None:
        known = [int(t) for t in self.ts if int(t) != NEVER]
        return max(known) if known else None


class Place:
    """Where a device is: the registered point, or for a mover its newest lat/lon."""

    @staticmethod
    def of(device: Device, channels: Sequence[str], latest: Latest) -> tuple[float, float]:
        if "lat" in channels and "lon" in channels:
            return Place.at(device, channels.index("lat"), channels.index("lon"), latest)
        return device.lat, device.lon

    @staticmethod
    def at(device: Device, lat_at: int | None, lon_at: int | None, latest: Latest
           ) -> tuple[float, float]:
        if lat_at is not None and lon_at is not None:
            lat, lon = latest.of(lat_at), latest.of(lon_at)
            if lat is not None and lon is not None:
                return lat[1], lon[1]
        return device.lat, device.lon


LOCATION = TERMS["location"]
NAME = TERMS["name"]
REF_DEVICE = TERMS["refDevice"]
VALUE = TERMS["value"]


@dataclass(frozen=True, slots=True)
class Facts:
    """What a device's entities take from its record and kind rather than its readings: the
    same for every reading while the record is unchanged, so worked out once per device."""

    device: Device
    model: Model | None
    channels: tuple[str, ...]
    period_s: float
    vehicle: Vehicle | None
    domain: str | None  # the domain type IRI, if the device has one
    domain_id: str | None
    device_urn: str
    measured: tuple[tuple[Measure, int], ...]  # with the channel's position
    lat_at: int | None  # positions of a mover's lat/lon channels
    lon_at: int | None

    @property
    def moves(self) -> bool:
        return self.lat_at is not None and self.lon_at is not None

    def place(self, latest: Latest) -> tuple[float, float]:
        return Place.at(self.device, self.lat_at, self.lon_at, latest)


def facts(device: Device, channels: Sequence[str], *, period_s: float,
          vehicle: Vehicle | None = None) -> Facts:
    names = tuple(channels)
    key = (device.kind, names, vehicle is not None)
    shared = _KIND_FACTS.get(key)
    if shared is None:
        shared = _KIND_FACTS[key] = _kind_facts(device.kind, names, vehicle is not None)
    model, domain, prefix, measured, lat_at, lon_at = shared
    return Facts(device, model, names, period_s, vehicle, domain,
                 None if prefix is None else prefix + device.id,
                 f"{URN}Device:{device.id}", measured, lat_at, lon_at)


def _kind_facts(kind: str, names: tuple[str, ...], tracked: bool) -> tuple[Any, ...]:
    """What the devices of a kind (with a vehicle's tracker or not) share."""
    model = MODELS.get(kind)
    domain = None
    if model is not None and model.type != "Device" and (tracked or not model.moves):
        domain = model.type_iri
    measured = tuple((m, names.index(m.channel)) for m in (model.measures if model else ())
                     if m.channel in names)
    movable = "lat" in names and "lon" in names
    return (model, domain, None if domain is None else f"{URN}{type_term(domain)}:",
            measured, names.index("lat") if movable else None,
            names.index("lon") if movable else None)


_KIND_FACTS: dict[tuple[str, tuple[str, ...], bool], tuple[Any, ...]] = {}


def _measured(measure: Measure, sample: tuple[int, float]) -> dict[str, Any]:
    ts, v = sample
    if measure.scale != 1.0:
        v = round(v * measure.scale, 12)
    return {"type": "Property", "value": v, "unitCode": measure.unit,
            "observedAt": rfc3339(ts)}


# Per kind's measures (Facts.measured, one tuple per kind) and attribute choice: the measures
# to build when the choice holds nothing else the kind's domain entity has; None otherwise.
_MEASURES_ONLY: dict[tuple[int, frozenset[str]], tuple[tuple[Measure, int], ...] | None] = {}
_UNPLANNED: tuple[tuple[Measure, int], ...] = ()


def measures_plan(f: Facts, attrs: frozenset[str]) -> tuple[tuple[Measure, int], ...] | None:
    """The measures (with their channel positions) that make up the domain entity of a device
    like `f` cut down to `attrs`, when `attrs` names nothing else it has; else None."""
    plan = _MEASURES_ONLY.get((id(f.measured), attrs), _UNPLANNED)
    if plan is _UNPLANNED:
        plan = _MEASURES_ONLY[id(f.measured), attrs] = _measures_only(f, attrs)
    return plan


def _measures_only(f: Facts, attrs: frozenset[str]) -> tuple[tuple[Measure, int], ...] | None:
    model = f.model
    if model is None or model.type == "Vehicle":  # a standing vehicle's heading reads speed
        return None
    others = {NAME, LOCATION, REF_DEVICE, *_EXTRA_IRIS[model.type]}
    if not attrs.isdisjoint(others):
        return None
    return tuple((m, at) for m, at in f.measured if m.iri in attrs)


def device_entity(device: Device, channels: Sequence[str], latest: Latest) -> Entity:
    """A CityOps device as an SDM Device."""
    return device_entity_of(facts(device, channels, period_s=0.0), latest)


def device_entity_of(f: Facts, latest: Latest, attrs: Set[str] | None = None) -> Entity:
    """The Device entity of a device (`facts`), with only `attrs` (IRIs) when given."""
    device, model = f.device, f.model
    out: Entity = {"id": f.device_urn, "type": [DEVICE]}
    if device.name and (attrs is None or NAME in attrs):
        out[NAME] = [_prop(device.name)]
    controlled = model.controlled if model else ()
    if controlled and (attrs is None or _CONTROLLED in attrs):
        out[_CONTROLLED] = [_prop(list(controlled))]
    if attrs is None or _CATEGORY in attrs:
        out[_CATEGORY] = [_prop([model.category if model else "sensor"])]
    if attrs is None or _STATE in attrs:
        out[_STATE] = [_prop(device.lifecycle.value)]
    if attrs is None or _REPORTED in attrs:
        newest = latest.newest()
        if newest is not None:
            out[_REPORTED] = [_prop(date_value(newest))]
    if attrs is None or LOCATION in attrs:
        out[LOCATION] = [_point(*f.place(latest))]
    if attrs is None or VALUE in attrs:
        value = _device_value(model, f.channels, latest)
        if value is not None:
            out[VALUE] = [value]
    return out


_CONTROLLED = TERMS["controlledProperty"]
_CATEGORY = TERMS["deviceCategory"]
_STATE = TERMS["deviceState"]
_REPORTED = TERMS["dateLastValueReported"]


def _device_value(model: Model | None, channels: Sequence[str], latest: Latest
                  ) -> dict[str, Any] | None:
    """One channel: the number with its unit. Several: SDM's text form `name=value;...`,
    observed at the newest of them."""
    if len(channels) == 1:
        sample = latest.of(0)
        if sample is None:
            return None
        unit = model.measures[0].unit if model and model.measures else None
        prop = _prop(sample[1], observedAt=rfc3339(sample[0]))
        if unit:
            prop["unitCode"] = unit
        return prop
    parts, newest = [], None
    for i, name in enumerate(channels):
        sample = latest.of(i)
        if sample is not None:
            parts.append(f"{name}={sample[1]:g}")
            newest = sample[0] if newest is None else max(newest, sample[0])
    if newest is None:
        return None
    return _prop(";".join(parts), observedAt=rfc3339(newest))


def domain_entity(device: Device, channels: Sequence[str], latest: Latest, *,
                  period_s: float, vehicle: Vehicle | None = None) -> Entity | None:
    """A device as its domain type (NoiseLevelObserved ...), or None when it has none."""
    return domain_entity_of(facts(device, channels, period_s=period_s, vehicle=vehicle), latest)


def domain_entity_of(f: Facts, latest: Latest, attrs: Set[str] | None = None
                     ) -> Entity | None:
    """The domain entity of a device (`facts`), with only `attrs` (IRIs) when given; None
    when the device has no domain type."""
    if f.domain is None:
        return None
    if type(attrs) is frozenset:
        plan = measures_plan(f, attrs)
        if plan is not None:  # the common notification: measured attributes alone
            out: Entity = {"id": f.domain_id, "type": [f.domain]}
            for measure, at in plan:
                sample = latest.of(at)
                if sample is not None:
                    out[measure.iri] = [_measured(measure, sample)]
            return out
    model = f.model
    assert model is not None
    out = {"id": f.domain_id, "type": [f.domain]}
    if f.device.name and (attrs is None or NAME in attrs):
        out[NAME] = [_prop(f.device.name)]
    if attrs is None or LOCATION in attrs:
        out[LOCATION] = [_point(*f.place(latest))]
    if attrs is None or REF_DEVICE in attrs:
        out[REF_DEVICE] = [_rel(f.device_urn)]
    newest: int | None = None
    for measure, at in f.measured:
        sample = latest.of(at)
        if sample is None:
            continue
        # Every measure is built (a type has at most four): Streetlight's powerState and
        # a Vehicle's heading are read off them; those not asked for go at the end.
        out[measure.iri] = [_measured(measure, sample)]
        newest = sample[0] if newest is None else max(newest, sample[0])
    if attrs is None or not attrs.isdisjoint(_EXTRA_IRIS[model.type]):
        _extras(out, model, newest, f.period_s, f.vehicle, attrs)
    if attrs is not None:
        for measure, _ in f.measured:
            if measure.iri not in attrs:
                out.pop(measure.iri, None)
    return out


# The dates each type's schema asks for, set from its newest reading.
DATES: dict[str, tuple[str, ...]] = {
    "NoiseLevelObserved": ("dateObservedFrom", "dateObservedTo", "dateObserved"),
    "FloodMonitoring": ("observationDateTime",), "Streetlight": ("observationDateTime",),
    "Vehicle": ("observationDateTime",), "WeatherObserved": ("dateObserved",),
    "AirQualityObserved": ("dateObserved",)}


# Per type, the attributes `_extras` may set.
_EXTRA_IRIS: dict[str, frozenset[str]] = {
    t: frozenset(TERMS[term] for term in (
        *DATES.get(t, ()),
        *{"Streetlight": ("powerState",),
          "Vehicle": ("vehicleType", "category", "vehiclePlateIdentifier", "heading"),
          "KeyPerformanceIndicator": ("calculationFrequency", "category")}.get(t, ())))
    for t in {m.type for m in MODELS.values()}}


def changed_by(model: Model | None, channels: Sequence[str], type_iri: str, channel: int
               ) -> frozenset[str]:
    """The attributes (IRIs) of an entity of `type_iri` (a device's domain type or Device)
    that a new reading of the channel at position `channel` of a device of `model` (whose kind
    has `channels`) changes: what a subscription's watchedAttributes are held against."""
    name = channels[channel] if channel < len(channels) else None
    moves = "lat" in channels and "lon" in channels
    moved = {LOCATION} if moves and name in ("lat", "lon") else set()
    if type_iri == DEVICE:
        return frozenset({VALUE, _REPORTED, *moved})
    if model is None or model.type == "Device" or type_iri != model.type_iri:
        return frozenset()
    measures = {m.attr for m in model.measures if m.channel == name}
    if not measures:
        return frozenset(moved)
    t = model.type
    terms = {*measures, *DATES.get(t, ())}
    if t == "Streetlight":
        terms.add("powerState")
    if t == "Vehicle" and "speed" in measures:
        terms.add("heading")  # standing still reads as heading -1
    return frozenset({*(TERMS[term] for term in terms), *moved})


def _extras(out: Entity, model: Model, newest: int | None, period_s: float,
            vehicle: Vehicle | None, attrs: Set[str] | None = None) -> None:
    """What each type's schema asks for beyond the measured values."""
    t = model.type

    def put(term: str, instance: dict[str, Any]) -> None:
        iri = TERMS[term]
        if attrs is None or iri in attrs:
            out[iri] = [instance]

    if newest is not None:
        for term in DATES.get(t, ()):
            if attrs is not None and TERMS[term] not in attrs:
                continue  # most notifications ask for the measure alone
            # The observation window opens one reporting period before the reading.
            at = newest - period_s * US if term == "dateObservedFrom" else newest
            put(term, _prop(date_value(at)))
    if t == "Streetlight":
        power = out.get(TERMS["powerConsumption"])
        if power:
            state = "on" if power[0]["value"] > 0 else "off"
            put("powerState", _prop(state, observedAt=power[0]["observedAt"]))
    elif t == "Vehicle" and vehicle is not None:
        put("vehicleType", _prop(VEHICLE_TYPES.get(vehicle.role, "anyVehicle")))
        put("category", _prop(["tracked"]))
        if vehicle.plate:
            put("vehiclePlateIdentifier", _prop(vehicle.plate))
        speed, heading = out.get(TERMS["speed"]), out.get(TERMS["heading"])
        if speed and heading and speed[0]["value"] == 0:
            heading[0]["value"] = -1  # the schema's "standing": no direction of travel
    elif t == "KeyPerformanceIndicator":
        put("calculationFrequency", _prop("hourly"))
        put("category", _prop(["quantitative"]))


# Vehicle roles of city packs -> SDM vehicleType.
VEHICLE_TYPES = {"muck_truck": "lorry", "bus": "bus", "patrol_car": "car",
                 "garbage_truck": "lorry", "sweeper": "sweepingMachine", "ambulance": "van",
                 "fire_engine": "lorry"}


# -- alerts ---------------------------------------------------------------------------------

# CityOps category (code, or its major part) -> SDM Alert (category, subCategory). SDM's
# category list is closed: environment, health, security, traffic, weather, naturalDisaster,
# agriculture; municipal-order matters (facilities, devices, building) are filed as
# `security` (public safety), and the exact CityOps code stays in the alert's `data`.
ALERT_CATEGORIES: dict[str, tuple[str, str | None]] = {
    "event.emergency.waterlogging": ("weather", "flood"),
    "event.emergency.typhoon": ("weather", "tropicalCyclone"),
    "event.emergency.fire": ("security", "buildingFire"),
    "event.emergency.fire_alarm_cluster": ("security", "buildingFire"),
    "event.emergency.vehicle_fire": ("traffic", "hazardOnRoad"),
    "event.emergency.traffic_accident": ("traffic", "carAccident"),
    "event.street_order.illegal_parking": ("traffic", "carStopped"),
    "event.street_order.fire_lane_blocked": ("traffic", "carStopped"),
    "event.transport.street_condition": ("traffic", "hazardOnRoad"),
    "environment": ("environment", None),
    "sanitation": ("environment", None),
    "drainage": ("environment", "floodRisk"),
    "greening": ("environment", None),
    "street_order": ("traffic", None),
    "transport": ("traffic", None),
    "social_services": ("health", None),
}
SEVERITIES = {"info": "informational", "minor": "low", "major": "high", "critical": "critical"}


def alert_category(code: str) -> tuple[str, str | None]:
    if code in ALERT_CATEGORIES:
        return ALERT_CATEGORIES[code]
    parts = code.split(".")
    major = parts[1] if len(parts) > 2 else code
    return ALERT_CATEGORIES.get(major, ("security", None))


def alert_entity(alert: Alert, devices: Mapping[str, Any] | None = None) -> Entity:
    """A CityOps alert as an SDM Alert. Its source is the device it is about when there is one
    (`devices` says which ids are devices), else the scenario rule that raised it."""
    category, sub = alert_category(alert.category)
    is_device = devices is not None and alert.subject in devices
    source = f"{URN}Device:{alert.subject}" if is_device else f"{URN}ScenarioRule:{alert.rule}"
    issued = date_value(alert.first_seen * US)
    out: Entity = {"id": f"{URN}Alert:{alert.id}", "type": [ALERT],
                   TERMS["category"]: [_prop(category)],
                   TERMS["severity"]: [_prop(SEVERITIES.get(alert.severity, "medium"))],
                   TERMS["dateIssued"]: [_prop(issued)],
                   TERMS["validFrom"]: [_prop(issued)],
                   TERMS["alertSource"]: [_rel(source)],
                   TERMS["name"]: [_prop(alert.title)],
                   TERMS["description"]: [_prop(alert.detail or alert.title)]}
    if sub is not None:
        out[TERMS["subCategory"]] = [_prop(sub)]
    if alert.cleared_at is not None:
        out[TERMS["validTo"]] = [_prop(date_value(alert.cleared_at * US))]
    if alert.lat is not None and alert.lon is not None:
        out[TERMS["location"]] = [_point(alert.lat, alert.lon)]
    data: dict[str, Any] = {"category": alert.category, "rule": alert.rule,
                            "scenario": alert.scenario, "urgency": alert.urgency,
                            "departments": list(alert.departments), "subject": alert.subject,
                            "active": alert.active, "state": alert.state}
    if alert.value is not None:
        data["value"] = alert.value
    if alert.areas is not None:
        data["area"] = alert.areas.village
    out[TERMS["data"]] = [_prop(data)]
    return out


# -- Open311 service requests ------------------------------------------------------------------

# SDM term -> Open311's name for it in a request's view.
_REQUEST_TEXT = {"service_code": "service_code", "service_name": "service_name",
                 "status_notes": "status_notes", "agency_responsible": "agency_responsible",
                 "address_string": "address", "media_url": "media_url",
                 "service_notice": "service_notice"}
_REQUEST_TIMES = ("requested_datetime", "updated_datetime", "expected_datetime")


def service_request_entity(view: Mapping[str, Any]) -> Entity:
    """An Open311 request, as GET /requests answers it (Open311's names; masked where it
    masks), as an SDM service request."""
    rid = str(view["service_request_id"])
    out: Entity = {"id": f"{URN}ServiceRequest:{rid}", "type": [SERVICE_REQUEST],
                   TERMS["service_request_id"]: [_prop(rid)]}
    for term, name in _REQUEST_TEXT.items():
        if view.get(name):
            out[TERMS[term]] = [_prop(str(view[name]))]
    for name in _REQUEST_TIMES:
        if view.get(name):
            out[TERMS[name]] = [_prop({"@type": "DateTime", "@value": str(view[name])})]
    if view.get("status"):
        out[TERMS["status"]] = [_prop(str(view["status"]))]
    if view.get("description"):
        out[TERMS["description"]] = [_prop(str(view["description"]))]
    lat, lon = view.get("lat"), view.get("long")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        out[TERMS["location"]] = [_point(float(lat), float(lon))]
    return out


def device_value_readings(value: Any, channels: Sequence[str]) -> dict[str, float] | str:
    """Channel values from a Device's `value`: a number for a one-channel kind, or the text
    `name=value;...` for any kind; the reason when it is neither."""
    if isinstance(value, bool):
        return "`value` must be a number or `channel=number;...` text, not a boolean"
    if isinstance(value, int | float):
        if len(channels) != 1:
            return (f"`value` of a device with channels {', '.join(channels)} must be text "
                    f"`channel=number;...`")
        return {channels[0]: float(value)}
    if not isinstance(value, str):
        return "`value` must be a number or `channel=number;...` text"
    out: dict[str, float] = {}
    for part in value.split(";"):
        name, sep, number = part.partition("=")
        name = name.strip()
        if not sep or name not in channels:
            return (f"`value` part {part[:40]!r} is not `channel=number` with a channel of "
                    f"{', '.join(channels)}")
        try:
            out[name] = float(number)
        except ValueError:
            return f"`value` part {part[:40]!r}: {number[:20]!r} is not a number"
    return out
