"""The NGSI-LD query language (`q`, `scopeQ`) and geo-queries, over internal entities.

`q` (GS CIM 009 clause 4.9): terms joined by `;` (and) and `|` (or), `;` binding tighter,
parentheses for grouping; a term is an attribute path alone (it exists), `!path` (it does
not), or `path OP value` with OP one of `== != > >= < <= ~= !~=`. A path is an attribute name,
then `.name` for a sub-attribute or an instance member (`observedAt`, `unitCode` ...), then
`[key]` for members of a structured value. A value is a quoted string, a number, `true` or
`false`, a date-time, a list `a,b,c` (any of them) or a range `a..b` (inclusive). An attribute
holding a list matches when any element does. Regular expressions run on RE2 (linear time), so
no pattern a client sends can hold a worker.

A query is parsed once into a small tree and evaluated per entity; names are expanded with
the request's term map at evaluation (TermMap caches them). Bounded: `MAX_Q` characters,
`MAX_TERMS` terms and `MAX_DEPTH` levels of parentheses (TooComplexQuery beyond).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
import re2  # type: ignore[import-untyped]
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from cityops.ngsild.contexts import TermMap, core
from cityops.ngsild.entity import (
    ATTRIBUTE_TYPES,
    GEOMETRY_TYPES,
    Entity,
    check_geometry,
    location_of,
    parse_datetime,
)
from cityops.ngsild.errors import NgsiError

MAX_Q = 4096
MAX_TERMS = 100
MAX_DEPTH = 8
MAX_LIST = 100
MAX_PATTERN = 512

_MEMBERS = {"observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "type"}
_OPS = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")
_STOP = set(";|()")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:/#@-")


def _bad(param: str, what: str) -> NgsiError:
    return NgsiError("BadRequestData", f"{param}: {what}")


# -- the tree ---------------------------------------------------------------------------------

Literal = str | float | int | bool | datetime


@dataclass(frozen=True)
class Path:
    attr: str  # the attribute's name as given
    subs: tuple[str, ...]  # `.name` steps: sub-attributes or instance members
    keys: tuple[str, ...]  # `[key]` steps into a structured value

    def values(self, entity: Entity, terms: TermMap) -> Iterator[Any]:
        """Every value the path reaches in `entity` (lists flattened)."""
        instances = entity.get(terms.expand(self.attr))
        if instances is None:
            if self.attr in ("id", "type") and not self.subs and not self.keys:
                yield from _flat(entity.get(self.attr))
            return
        for instance in instances if isinstance(instances, list) else [instances]:
            yield from self._walk(instance, terms)

    def _walk(self, instance: Any, terms: TermMap) -> Iterator[Any]:
        node: Any = instance
        value: Any = None
        in_value = False
        for step in self.subs:
            if in_value:
                value = value.get(step) if isinstance(value, dict) else None
                continue
            sub = node.get(terms.expand(step)) if isinstance(node, dict) else None
            if isinstance(sub, dict):
                node = sub
            elif step in _MEMBERS and isinstance(node, dict) and step in node:
                value, in_value = node[step], True
            else:  # no such sub-attribute: a member of the structured value, as brokers take it
                value, in_value = _payload(node).get(step) if isinstance(_payload(node), dict) \
                    else None, True
        if not in_value:
            value = _payload(node)
        for key in self.keys:
            value = _member(value, key)
        if value is not None:
            yield from _flat(value)

    def exists(self, entity: Entity, terms: TermMap) -> bool:
        return next(self.values(entity, terms), None) is not None


def _payload(instance: Any) -> Any:
    if not isinstance(instance, dict):
        return None
    kind = instance.get("type", "Property")
    if kind == "LanguageProperty":
        return list((instance.get("languageMap") or {}).values())
    return instance.get(ATTRIBUTE_TYPES.get(kind, "value"))


def _member(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, list):
        found = [_member(v, key) for v in value]
        found = [f for f in found if f is not None]
        return found or None
    return None


def _flat(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, list):
                yield from item
            else:
                yield item
    elif value is not None:
        yield value


class Q:
    """A parsed query; `matches(entity, terms)` evaluates it."""

    def matches(self, entity: Entity, terms: TermMap) -> bool:
        raise NotImplementedError

    def attributes(self) -> set[str]:
        """The attribute names the query reads (as given, not expanded)."""
        raise NotImplementedError


@dataclass(frozen=True)
class _All(Q):
    parts: tuple[Q, ...]

    def matches(self, entity: Entity, terms: TermMap) -> bool:
        return all(p.matches(entity, terms) for p in self.parts)

    def attributes(self) -> set[str]:
        return set().union(*(p.attributes() for p in self.parts))


@dataclass(frozen=True)
class _Any(Q):
    parts: tuple[Q, ...]

    def matches(self, entity: Entity, terms: TermMap) -> bool:
        return any(p.matches(entity, terms) for p in self.parts)

    def attributes(self) -> set[str]:
        return set().union(*(p.attributes() for p in self.parts))


@dataclass(frozen=True)
class _Exists(Q):
    path: Path
    negate: bool

    def matches(self, entity: Entity, terms: TermMap) -> bool:
        return self.path.exists(entity, terms) != self.negate

    def attributes(self) -> set[str]:
        return {self.path.attr}


@dataclass(frozen=True)
class _Compare(Q):
    path: Path
    op: str
    single: Literal | None = None
    options: tuple[Literal, ...] = ()  # a list a,b,c
    low: Literal | None = None  # a range low..high
    high: Literal | None = None
    pattern: Any = None  # a compiled RE2 pattern

    def matches(self, entity: Entity, terms: TermMap) -> bool:
        values = list(self.path.values(entity, terms))
        if not values:
            return False
        op = self.op
        if op in ("~=", "!~="):
            hit = any(isinstance(v, str) and self.pattern.search(v) is not None for v in values)
            return hit if op == "~=" else not hit
        if op in ("==", "!="):
            hit = any(self._equal(v) for v in values)
            return hit if op == "==" else not hit
        assert self.single is not None
        return any(_order(v, self.single, op) for v in values)

    def _equal(self, value: Any) -> bool:
        if self.low is not None and self.high is not None:
            return _order(value, self.low, ">=") and _order(value, self.high, "<=")
        if self.options:
            return any(_same(value, o) for o in self.options)
        return _same(value, self.single)

    def attributes(self) -> set[str]:
        return {self.path.attr}


def _coerce(value: Any, literal: Literal) -> Any:
    """`value` in the literal's kind, or None when they are not comparable."""
    if isinstance(literal, bool):
        return value if isinstance(value, bool) else None
    if isinstance(literal, (int, float)):
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else None
    if isinstance(literal, datetime):
        return parse_datetime(value)
    return value if isinstance(value, str) else None


def _same(value: Any, literal: Any) -> bool:
    found = _coerce(value, literal)
    return found is not None and found == literal


def _order(value: Any, literal: Any, op: str) -> bool:
    found = _coerce(value, literal)
    if found is None or isinstance(literal, bool):
        return False
    try:
        if op == ">":
            return bool(found > literal)
        if op == ">=":
            return bool(found >= literal)
        if op == "<":
            return bool(found < literal)
        return bool(found <= literal)
    except TypeError:
        return False


# -- the parser -------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, param: str) -> None:
        self.text = text
        self.at = 0
        self.param = param
        self.terms = 0

    def fail(self, what: str) -> NgsiError:
        return _bad(self.param, f"{what} at character {self.at + 1} of {self.text[:200]!r}")

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def parse(self) -> Q:
        tree = self.any_of(0)
        if self.at != len(self.text):
            raise self.fail(f"unexpected {self.peek()!r}")
        return tree

    def any_of(self, depth: int) -> Q:
        parts = [self.all_of(depth)]
        while self.peek() == "|":
            self.at += 1
            parts.append(self.all_of(depth))
        return parts[0] if len(parts) == 1 else _Any(tuple(parts))

    def all_of(self, depth: int) -> Q:
        parts = [self.unit(depth)]
        while self.peek() == ";":
            self.at += 1
            parts.append(self.unit(depth))
        return parts[0] if len(parts) == 1 else _All(tuple(parts))

    def unit(self, depth: int) -> Q:
        if self.peek() == "(":
            if depth >= MAX_DEPTH:
                raise NgsiError("TooComplexQuery", f"{self.param}: more than {MAX_DEPTH} "
                                                   "levels of parentheses")
            self.at += 1
            inner = self.any_of(depth + 1)
            if self.peek() != ")":
                raise self.fail("a parenthesis is not closed")
            self.at += 1
            return inner
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise NgsiError("TooComplexQuery", f"{self.param}: more than {MAX_TERMS} terms")
        negate = False
        if self.peek() == "!" and not self.text.startswith("!~=", self.at):
            negate = True
            self.at += 1
        path = self.path()
        op = next((o for o in _OPS if self.text.startswith(o, self.at)), None)
        if op is None:
            return _Exists(path, negate)
        if negate:
            raise self.fail("'!' stands only before an attribute with no comparison")
        self.at += len(op)
        raw = self.raw_value()
        if not raw:
            raise self.fail(f"a value is missing after {op!r}")
        return self.compare(path, op, raw)

    def path(self) -> Path:
        start = self.at
        names: list[str] = []
        keys: list[str] = []
        current = start
        while True:
            c = self.peek()
            if c in _NAME_CHARS:
                self.at += 1
            elif c == "." and not keys:
                names.append(self.text[current:self.at])
                self.at += 1
                current = self.at
            elif c == "[":
                if not keys:
                    names.append(self.text[current:self.at])
                end = self.text.find("]", self.at)
                if end < 0:
                    raise self.fail("a '[' is not closed")
                keys.append(self.text[self.at + 1:end])
                self.at = end + 1
                current = self.at
            else:
                break
        if not keys:
            names.append(self.text[current:self.at])
        if not names or not all(names) or not all(keys):
            raise self.fail("an attribute name is expected")
        return Path(names[0], tuple(names[1:]), tuple(keys))

    def raw_value(self) -> str:
        start = self.at
        quoted = False
        while self.at < len(self.text):
            c = self.text[self.at]
            if c == '"':
                quoted = not quoted
            elif c == "\\" and quoted:
                self.at += 1
            elif not quoted and c in _STOP:
                break
            self.at += 1
        if quoted:
            raise self.fail("a quoted string is not closed")
        return self.text[start:self.at]

    def compare(self, path: Path, op: str, raw: str) -> Q:
        if op in ("~=", "!~="):
            text = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
            if len(text) > MAX_PATTERN:
                raise self.fail(f"a pattern is longer than {MAX_PATTERN} characters")
            try:
                pattern = re2.compile(text)
            except Exception as error:
                raise self.fail(f"{text!r} is not a regular expression ({error})") from None
            return _Compare(path, op, pattern=pattern)
        pieces = _split_outside_quotes(raw, "..")
        if len(pieces) == 2:
            if op not in ("==", "!="):
                raise self.fail(f"a range stands only after == or !=, not {op}")
            low, high = (self.literal(p) for p in pieces)
            return _Compare(path, op, low=low, high=high)
        items = _split_outside_quotes(raw, ",")
        if len(items) > 1:
            if op not in ("==", "!="):
                raise self.fail(f"a list stands only after == or !=, not {op}")
            if len(items) > MAX_LIST:
                raise NgsiError("TooComplexQuery", f"{self.param}: a list of more than "
                                                   f"{MAX_LIST} values")
            return _Compare(path, op, options=tuple(self.literal(i) for i in items))
        return _Compare(path, op, single=self.literal(raw))

    def literal(self, raw: str) -> Literal:
        raw = raw.strip()
        if not raw:
            raise self.fail("an empty value")
        if raw[0] == '"':
            if len(raw) < 2 or raw[-1] != '"':
                raise self.fail(f"{raw!r} is not a quoted string")
            try:
                found = msgspec.json.decode(raw.encode())
            except msgspec.DecodeError:
                found = raw[1:-1]
            return found if isinstance(found, str) else raw[1:-1]
        if raw in ("true", "false"):
            return raw == "true"
        try:
            number = float(raw)
        except ValueError:
            moment = parse_datetime(raw)
            if moment is not None:
                return moment
            return raw  # a bare word: a URI, an enumeration's term
        if not math.isfinite(number):
            raise self.fail(f"{raw!r} is not a finite number")
        return int(number) if number.is_integer() and "." not in raw and "e" not in \
            raw.lower() else number


def _split_outside_quotes(raw: str, sep: str) -> list[str]:
    out: list[str] = []
    quoted = False
    start = i = 0
    while i < len(raw):
        if raw[i] == '"':
            quoted = not quoted
        elif not quoted and raw.startswith(sep, i):
            out.append(raw[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    out.append(raw[start:])
    return out


def parse_q(text: str, *, param: str = "q") -> Q:
    """A `q` string as a query tree; NgsiError BadRequestData naming `param` when it is not
    one, TooComplexQuery past the bounds."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(param, "an empty query")
    if len(text) > MAX_Q:
        raise NgsiError("TooComplexQuery", f"{param}: longer than {MAX_Q} characters")
    return _Parser(text.strip(), param).parse()


def _scope_is(scope: str, wanted: str) -> bool:
    if wanted == "/#" or wanted == scope:
        return True
    if wanted.endswith("/#") and (scope == wanted[:-2] or scope.startswith(wanted[:-1])):
        return True
    if "+" in wanted:
        w, s = wanted.split("/"), scope.split("/")
        return len(w) == len(s) and all(a in ("+", b) for a, b in zip(w, s, strict=True))
    return False


def scope_matches(scopes: list[str] | None, query: str) -> bool:
    """`scopeQ` (clause 4.19): `/a/b` that scope exactly, `/a/b/#` it and below, `/#` any
    scope, `/a/+` one level below; `;` joins terms that must all hold (each met by one of the
    entity's scopes), `,` alternatives."""
    if not scopes:
        return False
    for alternative in query.split(","):
        if all(any(_scope_is(scope, term.strip()) for scope in scopes)
               for term in alternative.split(";")):
            return True
    return False


def check_scope_q(text: str) -> str:
    if not text or len(text) > MAX_Q or not all(p.strip().startswith("/") for p in
                                                text.replace(";", ",").split(",")):
        raise _bad("scopeQ", "a scope query is /path, /path/# or /path/+ (joined by , for any "
                             "and ; for all)")
    return text


# -- geo-queries ------------------------------------------------------------------------------

GEORELS = ("near", "within", "contains", "intersects", "disjoint", "equals", "overlaps")
EARTH_RADIUS_M = 6_371_008.8


def _local(lat0: float) -> Any:
    """lon/lat degrees -> metres east/north (equirectangular at latitude `lat0`: within a
    city the error is far below a GPS fix's), for shapely.transform."""
    scale = np.array([math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat0)),
                      math.radians(1) * EARTH_RADIUS_M])

    def to_metres(xy: Any) -> Any:
        return xy * scale

    return to_metres


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass
class GeoQuery:
    georel: str
    geometry: BaseGeometry
    geojson: dict[str, Any]
    geoproperty: str  # the IRI of the attribute compared
    max_distance: float | None = None
    min_distance: float | None = None

    def __post_init__(self) -> None:
        self._to_metres = _local(self.geometry.centroid.y)
        self._metric = shapely.transform(self.geometry, self._to_metres)
        self._point = (self.geometry.y, self.geometry.x) if self.geojson["type"] == "Point" \
            else None

    def matches(self, entity: Entity) -> bool:
        geo = location_of(entity, self.geoproperty)
        if geo is None:
            return False
        if self.georel == "near":
            return self._near(geo)
        try:
            other = shape(geo)
        except Exception:
            return False
        if not other.is_valid:
            other = shapely.make_valid(other)
        rel = self.georel
        if rel == "within":
            return bool(other.within(self.geometry))
        if rel == "contains":
            return bool(other.contains(self.geometry))
        if rel == "intersects":
            return bool(other.intersects(self.geometry))
        if rel == "disjoint":
            return bool(other.disjoint(self.geometry))
        if rel == "equals":
            return bool(other.equals(self.geometry))
        return bool(other.overlaps(self.geometry))

    def envelope(self) -> tuple[float, float, float, float] | None:
        """(min lon, min lat, max lon, max lat) outside which no POINT location can match, or
        None where there is no such bound (disjoint, a near with only minDistance). A
        provider of point-located entities (thousands of devices) filters on it before
        building any entity; `matches` still decides each one."""
        if self.georel == "disjoint" or (self.georel == "near" and self.max_distance is None):
            return None
        west, south, east, north = self.geometry.bounds
        if self.georel == "near" and self.max_distance is not None:
            # Degrees of latitude are never shorter than 110.5 km, and a degree of longitude
            # is longest at the latitude nearest the equator: the box can only be too big.
            dlat = self.max_distance / 110_500.0
            south, north = max(-90.0, south - dlat), min(90.0, north + dlat)
            widest = max(abs(south), abs(north))
            cos = math.cos(math.radians(min(widest, 89.9)))
            dlon = self.max_distance / (111_320.0 * cos) * 1.01
            west, east = west - dlon, east + dlon
        return west, south, east, north

    def _near(self, geo: dict[str, Any]) -> bool:
        coords = geo.get("coordinates")
        if self._point is not None and geo.get("type") == "Point" and \
                isinstance(coords, list) and len(coords) >= 2:
            distance = haversine_m(self._point[0], self._point[1], float(coords[1]),
                                   float(coords[0]))
        else:
            try:
                distance = shapely.transform(shape(geo), self._to_metres).distance(self._metric)
            except Exception:
                return False
        if self.max_distance is not None and distance > self.max_distance:
            return False
        return not (self.min_distance is not None and distance < self.min_distance)


def _distance(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad("georel", f"{name} must be a number of metres, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise _bad("georel", f"{name} must be a non-negative number of metres")
    return value


def parse_geoquery(georel: str | None, geometry: str | None, coordinates: Any,
                   geoproperty: str | None = None, *, terms: TermMap | None = None) -> GeoQuery:
    """A geo-query from its four parameters (`coordinates` a JSON string or an already
    decoded array); NgsiError BadRequestData naming the parameter at fault."""
    if not georel:
        raise _bad("georel", "is required with geometry and coordinates")
    if not geometry:
        raise _bad("geometry", "is required with georel (Point, LineString, Polygon ...)")
    if coordinates is None or coordinates == "":
        raise _bad("coordinates", "are required with georel")
    parts = [p.strip() for p in georel.split(";")]
    rel = parts[0]
    if rel not in GEORELS:
        raise _bad("georel", f"{rel!r} is not one of {', '.join(GEORELS)}")
    max_distance = min_distance = None
    for part in parts[1:]:
        name, _, value = part.partition("==")
        if name == "maxDistance" and value:
            max_distance = _distance(value, name)
        elif name == "minDistance" and value:
            min_distance = _distance(value, name)
        else:
            raise _bad("georel", f"{part!r}: only maxDistance==<m> or minDistance==<m> "
                                 "follow near")
    if rel == "near" and max_distance is None and min_distance is None:
        raise _bad("georel", "near needs maxDistance==<metres> or minDistance==<metres>")
    if rel != "near" and len(parts) > 1:
        raise _bad("georel", "distances go with near only")
    if geometry not in GEOMETRY_TYPES - {"GeometryCollection"}:
        raise _bad("geometry", f"{geometry!r} is not a GeoJSON geometry type")
    if isinstance(coordinates, str):
        if len(coordinates) > 100_000:
            raise _bad("coordinates", "too long")
        try:
            coordinates = msgspec.json.decode(coordinates.encode())
        except msgspec.DecodeError:
            raise _bad("coordinates", "must be a JSON array such as [121.5,31.2]") from None
    if not isinstance(coordinates, list):
        raise _bad("coordinates", "must be a JSON array such as [121.5,31.2]")
    geojson = {"type": geometry, "coordinates": coordinates}
    try:
        check_geometry(geojson, "coordinates")
        shaped = shape(geojson)
        if not shaped.is_valid:
            # A ring that crosses itself is still an area a client means: compared as the
            # valid shape it outlines (GEOS cannot relate an invalid one).
            shaped = shapely.make_valid(shaped)
    except NgsiError as error:
        if error.detail.startswith("coordinates"):
            raise
        raise _bad("coordinates", error.detail) from None
    except Exception as error:
        raise _bad("coordinates", f"not a {geometry}: {error}") from None
    prop = (terms or core()).expand(geoproperty or "location")
    return GeoQuery(rel, shaped, geojson, prop, max_distance, min_distance)
