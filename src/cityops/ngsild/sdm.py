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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def rfc3339(ts_us: int | float) -> str:
    """UTC with `Z`, milliseconds only when there are some."""
    t = dt.datetime.fromtimestamp(ts_us / US, dt.UTC)
    text = t.isoformat(timespec="milliseconds" if t.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def date_value(ts_us: int | float) -> dict[str, str]:
    return {"@type": "DateTime", "@value": rfc3339(ts_us)}


def _prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def _point(lat: float, lon: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def _rel(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


@dataclass(frozen=True, slots=True)
class Latest:
    """A device's newest stored value per channel: epoch microseconds (NEVER: none) and value,
    indexed like the kind's channels."""

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
            lat = latest.of(channels.index("lat"))
            lon = latest.of(channels.index("lon"))
            if lat is not None and lon is not None:
                return lat[1], lon[1]
        return device.lat, device.lon


def _measured(measure: Measure, sample: tuple[int, float]) -> dict[str, Any]:
    ts, v = sample
    value = v * measure.scale
    return _prop(round(value, 12) if measure.scale != 1.0 else value, unitCode=measure.unit,
                 observedAt=rfc3339(ts))


def device_entity(device: Device, channels: Sequence[str], latest: Latest) -> Entity:
    """A CityOps device as an SDM Device."""
    model = MODELS.get(device.kind)
    lat, lon = Place.of(device, channels, latest)
    out: Entity = {"id": f"{URN}Device:{device.id}", "type": [DEVICE]}
    if device.name:
        out[TERMS["name"]] = [_prop(device.name)]
    controlled = model.controlled if model else ()
    if controlled:
        out[TERMS["controlledProperty"]] = [_prop(list(controlled))]
    out[TERMS["deviceCategory"]] = [_prop([model.category if model else "sensor"])]
    out[TERMS["deviceState"]] = [_prop(device.lifecycle.value)]
    newest = latest.newest()
    if newest is not None:
        out[TERMS["dateLastValueReported"]] = [_prop(date_value(newest))]
    out[TERMS["location"]] = [_point(lat, lon)]
    value = _device_value(model, channels, latest)
    if value is not None:
        out[TERMS["value"]] = [value]
    return out


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
    type_iri = domain_type(device, vehicle)
    if type_iri is None:
        return None
    model = MODELS[device.kind]
    lat, lon = Place.of(device, channels, latest)
    out: Entity = {"id": entity_id(type_iri, device.id), "type": [type_iri]}
    if device.name:
        out[TERMS["name"]] = [_prop(device.name)]
    out[TERMS["location"]] = [_point(lat, lon)]
    out[TERMS["refDevice"]] = [_rel(f"{URN}Device:{device.id}")]
    newest: int | None = None
    for measure in model.measures:
        if measure.channel not in channels:
            continue
        sample = latest.of(channels.index(measure.channel))
        if sample is None:
            continue
        out[measure.iri] = [_measured(measure, sample)]
        newest = sample[0] if newest is None else max(newest, sample[0])
    _extras(out, model, newest, period_s, vehicle)
    return out


def _extras(out: Entity, model: Model, newest: int | None, period_s: float,
            vehicle: Vehicle | None) -> None:
    """What each type's schema asks for beyond the measured values."""
    t = model.type
    if newest is not None:
        if t == "NoiseLevelObserved":
            out[TERMS["dateObservedFrom"]] = [_prop(date_value(newest - period_s * US))]
            out[TERMS["dateObservedTo"]] = [_prop(date_value(newest))]
        if t in ("FloodMonitoring", "Streetlight", "Vehicle"):
            out[TERMS["observationDateTime"]] = [_prop(date_value(newest))]
        if t in ("WeatherObserved", "AirQualityObserved", "NoiseLevelObserved"):
            out[TERMS["dateObserved"]] = [_prop(date_value(newest))]
    if t == "Streetlight":
        power = out.get(TERMS["powerConsumption"])
        if power:
            state = "on" if power[0]["value"] > 0 else "off"
            out[TERMS["powerState"]] = [_prop(state, observedAt=power[0]["observedAt"])]
    elif t == "Vehicle" and vehicle is not None:
        out[TERMS["vehicleType"]] = [_prop(VEHICLE_TYPES.get(vehicle.role, "anyVehicle"))]
        out[TERMS["category"]] = [_prop(["tracked"])]
        if vehicle.plate:
            out[TERMS["vehiclePlateIdentifier"]] = [_prop(vehicle.plate)]
        speed, heading = out.get(TERMS["speed"]), out.get(TERMS["heading"])
        if speed and heading and speed[0]["value"] == 0:
            heading[0]["value"] = -1  # the schema's "standing": no direction of travel
    elif t == "KeyPerformanceIndicator":
        out[TERMS["calculationFrequency"]] = [_prop("hourly")]
        out[TERMS["category"]] = [_prop(["quantitative"])]


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
