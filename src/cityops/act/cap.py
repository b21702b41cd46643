"""Public warnings as OASIS CAP 1.2 alerts (SPEC section 6), XML in the namespace
urn:oasis:names:tc:emergency:cap:1.2.

A `PublicWarning` is checked when it is made (or decoded) and again when it is rendered, so a
value the standard does not allow is refused with a ValueError before any XML exists: the
enumerations, identifiers and senders without spaces, commas, '<' or '&' (CAP 1.2 section
3.2.1: references are comma- and space-separated, so those would break them), polygons of at
least four pairs whose first and last are equal, characters XML cannot carry at all.

Times are epoch seconds plus one IANA time-zone name for the whole warning, and are written the
way CAP wants them: whole seconds, a numeric offset, never 'Z'. CAP writes UTC as '-00:00'; a
local zone whose offset happens to be zero (London in winter) is written '+00:00', because
'-00:00' would say the local offset is unknown.

`to_cap_xml` builds the document with the standard library's ElementTree (text is escaped by
the serializer, never pasted into markup), so lxml is needed only by the tests that check the
output against the official schema.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"

Status = Literal["Actual", "Exercise", "System", "Test", "Draft"]
MsgType = Literal["Alert", "Update", "Cancel"]
Scope = Literal["Public"]
Category = Literal["Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
                   "Transport", "Infra", "CBRNE", "Other"]
ResponseType = Literal["Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess",
                       "AllClear", "None"]
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]

# Receivers (cell broadcast, sirens' controllers, aggregators) cap the vertices of a polygon;
# about a hundred is accepted everywhere we know of.
MAX_POLYGON_POINTS = 100

# Zones that are UTC itself rather than a place's civil time: written '-00:00'.
_UTC_ZONES = frozenset({
    "UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu",
    "GMT", "Etc/GMT", "GMT0", "Etc/GMT0", "GMT+0", "Etc/GMT+0", "GMT-0", "Etc/GMT-0",
    "Greenwich", "Etc/Greenwich",
})

# Characters outside XML 1.0's Char production: no escape can carry them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_PAIR = re.compile(rf"^({_NUMBER}),({_NUMBER})$")
_CIRCLE = re.compile(rf"^({_NUMBER}),({_NUMBER})\s+({_NUMBER})$")


class NamedValue(msgspec.Struct, frozen=True):
    """A CAP valueName/value pair: a parameter, or a geocode such as ("areaCode", "310115")."""

    value_name: str
    value: str

    def __post_init__(self) -> None:
        _check_pair(self)


class Area(msgspec.Struct, frozen=True, kw_only=True):
    """An area of a warning. Polygons and circles are CAP text: a polygon is space-separated
    'lat,lon' pairs with the first equal to the last (see `cap_polygons` for GeoJSON), a
    circle is 'lat,lon radius_km' (see `cap_circle`)."""

    area_desc: str
    polygons: list[str] = []
    circles: list[str] = []
    geocodes: list[NamedValue] = []

    def __post_init__(self) -> None:
        _check_area(self)


class Info(msgspec.Struct, frozen=True, kw_only=True):
    """The info block of a warning; times are epoch seconds, written in the warning's zone."""

    language: str = "en-US"
    categories: list[Category]
    event: str
    response_types: list[ResponseType] = []
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    effective: float | None = None
    onset: float | None = None
    expires: float | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: list[NamedValue] = []
    areas: list[Area] = []

    def __post_init__(self) -> None:
        _check_info(self)


class Reference(msgspec.Struct, frozen=True):
    """An earlier message this one updates or cancels. `sent` and `timezone` should be those of
    that message, so the reference reads exactly as that message's own <sent> did."""

    sender: str
    identifier: str
    sent: float
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        _check_reference(self)


class PublicWarning(msgspec.Struct, frozen=True, kw_only=True):
    """One CAP 1.2 alert message with one info block (none only for a Cancel)."""

    identifier: str
    sender: str
    sent: float  # epoch seconds
    timezone: str = "UTC"  # IANA name: the zone every time of the message is written in
    status: Status = "Actual"
    msg_type: MsgType = "Alert"
    scope: Scope = "Public"
    note: str | None = None
    references: list[Reference] = []
    info: Info | None = None

    def __post_init__(self) -> None:
        _check_warning(self)

    def reference(self) -> Reference:
        """The reference an Update or Cancel of this warning carries."""
        return Reference(self.sender, self.identifier, self.sent, self.timezone)


# --- checks --------------------------------------------------------------------------------


def _one_of(what: str, value: Any, allowed: Any) -> None:
    choices = get_args(allowed)
    if value not in choices:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(choices)}")


def _text(what: str, value: str | None, *, required: bool = False) -> None:
    if value is None:
        if required:
            raise ValueError(f"{what} is required")
        return
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, not {type(value).__name__}")
    if required and not value.strip():
        raise ValueError(f"{what} is empty")
    bad = _NOT_XML.search(value)
    if bad:
        raise ValueError(f"{what} holds {bad.group()!r}, which XML cannot carry")


def _token(what: str, value: str) -> None:
    """Identifiers and senders: CAP 1.2 forbids spaces, commas, '<' and '&' in them."""
    _text(what, value, required=True)
    if re.search(r"[\s,<&]", value):
        raise ValueError(f"{what} {value!r} may not hold spaces, commas, '<' or '&'")


def _time(what: str, value: float | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
        raise ValueError(f"{what} {value!r} is not a time in epoch seconds")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"time zone {name!r} is not an IANA zone name") from None


def _lat_lon(what: str, lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"{what}: {lat},{lon} is not a WGS 84 latitude,longitude")


def _check_pair(pair: NamedValue) -> None:
    _text("valueName", pair.value_name, required=True)
    _text(f"value of {pair.value_name}", pair.value)


def parse_polygon(text: str) -> list[tuple[float, float]]:
    """The (lat, lon) pairs of a CAP polygon, refusing one that CAP does not allow."""
    _text("polygon", text, required=True)
    points = []
    for token in text.split():
        match = _PAIR.match(token)
        if not match:
            raise ValueError(f"polygon: {token!r} is not a 'lat,lon' pair")
        lat, lon = float(match.group(1)), float(match.group(2))
        _lat_lon("polygon", lat, lon)
        points.append((lat, lon))
    if len(points) < 4:
        raise ValueError(f"polygon has {len(points)} pairs; CAP needs at least 4")
    if points[0] != points[-1]:
        raise ValueError("polygon is not closed: its first and last pairs differ")
    return points


def _check_circle(text: str) -> None:
    _text("circle", text, required=True)
    match = _CIRCLE.match(text.strip())
    if not match:
        raise ValueError(f"circle {text!r} is not 'lat,lon radius_km'")
    _lat_lon("circle", float(match.group(1)), float(match.group(2)))
    if float(match.group(3)) < 0:
        raise ValueError(f"circle {text!r} has a negative radius")


def _check_area(area: Area) -> None:
    _text("areaDesc", area.area_desc, required=True)
    for polygon in area.polygons:
        parse_polygon(polygon)
    for circle in area.circles:
        _check_circle(circle)
    for code in area.geocodes:
        _check_pair(code)


def _check_info(info: Info) -> None:
    _text("language", info.language, required=True)
    if not _LANGUAGE.match(info.language):
        raise ValueError(f"language {info.language!r} is not a language tag like zh-CN")
    if not info.categories:
        raise ValueError("info needs at least one category")
    for category in info.categories:
        _one_of("category", category, Category)
    _text("event", info.event, required=True)
    for response in info.response_types:
        _one_of("responseType", response, ResponseType)
    _one_of("urgency", info.urgency, Urgency)
    _one_of("severity", info.severity, Severity)
    _one_of("certainty", info.certainty, Certainty)
    for name in ("effective", "onset", "expires"):
        _time(name, getattr(info, name))
    for name in ("sender_name", "headline", "description", "instruction", "contact"):
        _text(name, getattr(info, name))
    if info.web is not None:
        _text("web", info.web, required=True)
        parts = urlsplit(info.web)
        if not parts.scheme or not (parts.netloc or parts.path) or re.search(r"\s", info.web):
            raise ValueError(f"web {info.web!r} is not a full absolute URI")
    for parameter in info.parameters:
        _check_pair(parameter)
    for area in info.areas:
        _check_area(area)


def _check_reference(ref: Reference) -> None:
    _token("reference sender", ref.sender)
    _token("reference identifier", ref.identifier)
    _time("reference sent", ref.sent)
    _zone(ref.timezone)


def _check_warning(w: PublicWarning) -> None:
    _token("identifier", w.identifier)
    _token("sender", w.sender)
    _time("sent", w.sent)
    _zone(w.timezone)
    _one_of("status", w.status, Status)
    _one_of("msgType", w.msg_type, MsgType)
    _one_of("scope", w.scope, Scope)
    _text("note", w.note)
    for ref in w.references:
        if not isinstance(ref, Reference):
            raise ValueError(f"reference {ref!r} is not a Reference")
        _check_reference(ref)
    if w.msg_type in ("Update", "Cancel") and not w.references:
        raise ValueError(f"an {w.msg_type} must reference the message(s) it replaces")
    if w.info is None:
        if w.msg_type != "Cancel":
            raise ValueError(f"an {w.msg_type} needs its info block")
    else:
        _check_info(w.info)


def check(w: PublicWarning) -> None:
    """Check the whole warning again (its lists may have been changed since it was made)."""
    _check_warning(w)


# --- rendering -----------------------------------------------------------------------------


def cap_time(epoch: float, timezone: str = "UTC") -> str:
    """A CAP dateTime: '2026-11-23T10:15:00+08:00'. Fractions of a second are dropped (the
    schema's pattern has none), rounding towards the past so a message never claims a later
    time than it had."""
    _time("time", epoch)
    local = dt.datetime.fromtimestamp(math.floor(epoch), _zone(timezone))
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S")
    if len(stamp) != 19:  # years before 1000 or after 9999 do not fit the pattern
        raise ValueError(f"time {epoch} is outside the years CAP can write")
    if timezone in _UTC_ZONES:
        return stamp + "-00:00"
    offset = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]
    if offset % 60:
        raise ValueError(f"{timezone} at {epoch} is {offset} s from UTC, not whole minutes")
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{stamp}{sign}{hours:02d}:{minutes:02d}"


def _add(parent: ET.Element, name: str, text: str | None) -> None:
    if text is not None:
        ET.SubElement(parent, f"{{{CAP_NS}}}{name}").text = text


def _add_pair(parent: ET.Element, name: str, pair: NamedValue) -> None:
    element = ET.SubElement(parent, f"{{{CAP_NS}}}{name}")
    _add(element, "valueName", pair.value_name)
    _add(element, "value", pair.value)


def to_cap_xml(w: PublicWarning) -> bytes:
    """The warning as a CAP 1.2 document, UTF-8, elements in the schema's order."""
    check(w)
    zone = w.timezone
    alert = ET.Element(f"{{{CAP_NS}}}alert")
    _add(alert, "identifier", w.identifier)
    _add(alert, "sender", w.sender)
    _add(alert, "sent", cap_time(w.sent, zone))
    _add(alert, "status", w.status)
    _add(alert, "msgType", w.msg_type)
    _add(alert, "scope", w.scope)
    _add(alert, "note", w.note)
    if w.references:
        _add(alert, "references", " ".join(
            f"{r.sender},{r.identifier},{cap_time(r.sent, r.timezone)}" for r in w.references))
    info = w.info
    if info is not None:
        block = ET.SubElement(alert, f"{{{CAP_NS}}}info")
        _add(block, "language", info.language)
        for category in info.categories:
            _add(block, "category", category)
        _add(block, "event", info.event)
        for response in info.response_types:
            _add(block, "responseType", response)
        _add(block, "urgency", info.urgency)
        _add(block, "severity", info.severity)
        _add(block, "certainty", info.certainty)
        for name in ("effective", "onset", "expires"):
            value = getattr(info, name)
            if value is not None:
                _add(block, name, cap_time(value, zone))
        _add(block, "senderName", info.sender_name)
        _add(block, "headline", info.headline)
        _add(block, "description", info.description)
        _add(block, "instruction", info.instruction)
        _add(block, "web", info.web)
        _add(block, "contact", info.contact)
        for parameter in info.parameters:
            _add_pair(block, "parameter", parameter)
        for area in info.areas:
            element = ET.SubElement(block, f"{{{CAP_NS}}}area")
            _add(element, "areaDesc", area.area_desc)
            for polygon in area.polygons:
                _add(element, "polygon", " ".join(polygon.split()))
            for circle in area.circles:
                _add(element, "circle", " ".join(circle.split()))
            for code in area.geocodes:
                _add_pair(element, "geocode", code)
    return ET.tostring(alert, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS)


# --- geometry ------------------------------------------------------------------------------


def _number(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def cap_circle(lat: float, lon: float, radius_km: float, *, digits: int = 6) -> str:
    """A CAP circle: 'lat,lon radius_km'."""
    _lat_lon("circle", lat, lon)
    if not (math.isfinite(radius_km) and radius_km >= 0):
        raise ValueError(f"circle radius {radius_km!r} km is not a distance")
    return f"{_number(lat, digits)},{_number(lon, digits)} {_number(radius_km, 3)}"


def _ring(coordinates: Any) -> list[tuple[float, float]]:
    try:
        ring = [(float(p[0]), float(p[1])) for p in coordinates]
    except (TypeError, ValueError, IndexError):
        raise ValueError("GeoJSON ring is not a list of [lon, lat] positions") from None
    if len(ring) < 4 or ring[0] != ring[-1]:
        raise ValueError("GeoJSON ring must be closed and have at least 4 positions")
    for lon, lat in ring:
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ValueError("GeoJSON ring has a position that is not a number")
        _lat_lon("GeoJSON ring", lat, lon)
    return ring


def _fewer_points(ring: list[tuple[float, float]], max_points: int) -> list[tuple[float, float]]:
    """The ring with at most `max_points` positions (the closing one included), by
    Douglas-Peucker with the smallest tolerance that gets there, so the outline moves as
    little as the limit allows (no original point ends up farther than that tolerance from
    the new outline)."""
    if len(ring) <= max_points:
        return ring
    from shapely.geometry import Polygon  # here so rendering alone never loads GEOS

    polygon = Polygon(ring)
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    low, high = 0.0, max(max(xs) - min(xs), max(ys) - min(ys))
    best = None
    # Point count falls as the tolerance grows; bisect on it (40 halvings reach far below
    # the 1e-6 degree the coordinates are written with).
    for _ in range(40):
        tolerance = (low + high) / 2
        simpler = polygon.simplify(tolerance, preserve_topology=True)
        if isinstance(simpler, Polygon) and not simpler.is_empty \
                and len(simpler.exterior.coords) <= max_points:
            best, high = simpler, tolerance
        else:
            low = tolerance
    if best is None:
        best = polygon.simplify(high, preserve_topology=True)
        if not isinstance(best, Polygon) or best.is_empty \
                or len(best.exterior.coords) > max_points:
            raise ValueError(f"cannot bring a ring of {len(ring)} positions to {max_points}")
    return [(x, y) for x, y in best.exterior.coords]


def cap_polygons(geojson: Mapping[str, Any], *, max_points: int = MAX_POLYGON_POINTS,
                 digits: int = 6) -> list[str]:
    """CAP polygons for a GeoJSON Polygon or MultiPolygon (or a Feature holding one): one
    polygon per part, GeoJSON's lon,lat turned into CAP's 'lat,lon', at most `max_points`
    pairs each (a larger outline is simplified), coordinates to `digits` decimals.

    Holes are dropped: CAP polygons have none, and warning the people inside a hole too errs
    on the safe side."""
    if max_points < 4:
        raise ValueError("a CAP polygon needs at least 4 points")
    if not isinstance(geojson, Mapping):
        raise ValueError("GeoJSON must be an object")
    if geojson.get("type") == "Feature":
        geometry = geojson.get("geometry")
        if not isinstance(geometry, Mapping):
            raise ValueError("GeoJSON Feature has no geometry")
        geojson = geometry
    kind, coordinates = geojson.get("type"), geojson.get("coordinates")
    if kind == "Polygon":
        parts = [coordinates]
    elif kind == "MultiPolygon":
        parts = coordinates
    else:
        raise ValueError(f"GeoJSON {kind!r} is not a Polygon or MultiPolygon")
    if not isinstance(parts, list) or not parts or not all(
            isinstance(p, list) and p for p in parts):
        raise ValueError(f"GeoJSON {kind} has no rings")
    polygons = []
    for part in parts:
        ring = _fewer_points(_ring(part[0]), max_points)
        pairs: list[str] = []
        for lon, lat in ring:
            pair = f"{_number(lat, digits)},{_number(lon, digits)}"
            if not pairs or pairs[-1] != pair:  # rounding can merge neighbours
                pairs.append(pair)
        if len(pairs) < 4 or pairs[0] != pairs[-1]:
            raise ValueError(f"GeoJSON {kind} part collapses at {digits} decimals")
        polygons.append(" ".join(pairs))
    return polygons
