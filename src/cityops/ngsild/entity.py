"""Entities in and out: a client's document (normalized, concise or keyValues form, short
names) becomes one internal shape, and goes back out in the form the client asks for.

Inside CityOps an entity is a dict in NGSI-LD normalized form with EXPANDED names (see the
package's contract in `cityops.ngsild`): `id`, `type` (a list of type IRIs), optional `scope`,
system `createdAt`/`modifiedAt`, and each attribute under its IRI mapping to a list of
instances (more than one only for several datasetIds). An instance keeps its members under
their NGSI-LD names (`type`, `value`, `object`, `observedAt` ...) and its sub-attributes under
their IRIs, one instance dict each. Compaction happens only at the HTTP edge, with the term
map of the request.

Validation raises NgsiError BadRequestData naming the attribute and member at fault, so a
client of a 40,000-entity batch learns which entity and which field to fix.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from shapely.geometry import shape

from cityops.ngsild.contexts import TermMap
from cityops.ngsild.errors import NgsiError

Entity = dict[str, Any]

ATTRIBUTE_TYPES = {
    "Property": "value",
    "Relationship": "object",
    "GeoProperty": "value",
    "LanguageProperty": "languageMap",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
}
# The member a concise attribute carries tells its type (checked in this order).
_BY_MEMBER = (("object", "Relationship"), ("languageMap", "LanguageProperty"),
              ("valueList", "ListProperty"), ("objectList", "ListRelationship"),
              ("vocab", "VocabProperty"), ("json", "JsonProperty"), ("value", "Property"))
GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                  "MultiPolygon", "GeometryCollection"}
SYSTEM = ("createdAt", "modifiedAt", "deletedAt")
# Members of an instance that are not sub-attributes.
INSTANCE_MEMBERS = {"type", "value", "object", "languageMap", "valueList", "objectList",
                    "vocab", "json", "observedAt", "unitCode", "datasetId", "createdAt",
                    "modifiedAt", "deletedAt", "instanceId", "objectType", "lang"}
ENTITY_MEMBERS = {"id", "type", "scope", "@context", *SYSTEM}

LOCATION = "https://uri.etsi.org/ngsi-ld/location"
MAX_ATTRIBUTES = 1000  # per entity; also ContextStore's bound
MAX_INSTANCES = 100  # datasetIds of one attribute
MAX_NAME = 512  # characters of an attribute or type name
MAX_ID = 1024  # characters of an entity id

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_BAD_NAME = re.compile(r"[\s<>\"'=;()\\]")
# Characters that show as nothing (or as blank) but make a different id: direction overrides,
# zero-width and filler characters, variation selectors, the byte order mark, noncharacters.
# An id an operator cannot tell apart from another on a screen is refused, not stored.
_INVISIBLE = re.compile(
    "[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f"
    "\ufeff\uffa0\ufff0-\ufff8\ufdd0-\ufdef\U000e0000-\U000e0fff]"
    "|[\ufffe\uffff\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff"
    "\U000ffffe\U000fffff\U0010fffe\U0010ffff]")


def is_uri(text: Any) -> bool:
    return isinstance(text, str) and len(text) <= MAX_ID and _URI.match(text) is not None \
        and _INVISIBLE.search(text) is None


def now_iso(clock_seconds: float) -> str:
    """RFC 3339 UTC with milliseconds, as NGSI-LD system attributes are written."""
    moment = datetime.fromtimestamp(clock_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_datetime(text: Any) -> datetime | None:
    """An RFC 3339 date-time (with a zone; `Z` taken), or None."""
    if not isinstance(text, str) or not 10 <= len(text) <= 40 or "T" not in text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _bad(where: str, what: str) -> NgsiError:
    return NgsiError("BadRequestData", f"{where}: {what}" if where else what)


def check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise _bad(where, "an attribute name must be a non-empty string")
    if len(name) > MAX_NAME or _BAD_NAME.search(name) or name.startswith("@"):
        raise _bad(where, f"{name[:80]!r} is not a valid attribute name (no spaces, quotes, "
                          f"<>=;(), no leading @ and at most {MAX_NAME} characters)")
    return name


def check_geometry(value: Any, where: str) -> dict[str, Any]:
    """A GeoJSON geometry shapely can read, with finite lon/lat coordinates."""
    if not isinstance(value, dict) or value.get("type") not in GEOMETRY_TYPES:
        raise _bad(where, "a GeoProperty's value must be a GeoJSON geometry (Point, "
                          "LineString, Polygon, Multi*)")
    try:
        geometry = shape(value)
    except Exception as error:
        raise _bad(where, f"invalid GeoJSON {value.get('type')}: {error}") from None
    if geometry.is_empty:
        raise _bad(where, "the GeoJSON geometry is empty")
    minx, miny, maxx, maxy = geometry.bounds
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)) or \
            minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise _bad(where, "GeoJSON coordinates must be [longitude, latitude] within "
                          "[-180, 180] and [-90, 90]")
    return value


def _looks_like_instance(item: Any) -> bool:
    return isinstance(item, dict) and (
        item.get("type") in ATTRIBUTE_TYPES or any(m in item for m, _ in _BY_MEMBER))


def _instance(raw: Any, name: str, iri: str, terms: TermMap, where: str,
              depth: int) -> dict[str, Any]:
    """One attribute instance in normalized form, from normalized, concise or simplified."""
    if _is_null_instance(raw):
        raise _bad(where, f"{NULL} deletes an attribute in an update; it is not a value")
    if not isinstance(raw, dict):
        if raw is None:
            raise _bad(where, "an attribute's value may not be null")
        return {"type": "Property", "value": raw}
    kind = raw.get("type")
    if kind in GEOMETRY_TYPES and "coordinates" in raw or kind == "GeometryCollection":
        return {"type": "GeoProperty", "value": check_geometry(raw, where)}
    if kind is None:
        kind = next((k for member, k in _BY_MEMBER if member in raw), None)
        if kind is None:  # a simplified (keyValues) structured value
            return {"type": "Property", "value": raw}
        value = raw.get("value")
        if kind == "Property" and isinstance(value, dict) and \
                value.get("type") in GEOMETRY_TYPES and "coordinates" in value:
            kind = "GeoProperty"  # concise: a GeoJSON value says what it is
    if kind not in ATTRIBUTE_TYPES:
        raise _bad(where, f"type {kind!r} is not an NGSI-LD attribute type (one of "
                          f"{', '.join(ATTRIBUTE_TYPES)})")
    member = ATTRIBUTE_TYPES[kind]
    out: dict[str, Any] = {"type": kind}
    if member not in raw or raw[member] is None:
        raise _bad(where, f"a {kind} needs a non-null {member!r}")
    payload = raw[member]
    if kind == "GeoProperty":
        payload = check_geometry(payload, f"{where}.value")
    elif kind == "Relationship":
        objects = payload if isinstance(payload, list) else [payload]
        if not objects or not all(is_uri(o) for o in objects):
            raise _bad(f"{where}.object", "a Relationship's object must be a URI (or a list "
                                          "of URIs)")
    elif kind == "ListRelationship":
        if not isinstance(payload, list) or not all(
                is_uri(o.get("object") if isinstance(o, dict) else o) for o in payload):
            raise _bad(f"{where}.objectList", "must be a list of URIs")
    elif kind == "LanguageProperty":
        if not isinstance(payload, dict) or not payload or not all(
                isinstance(k, str) and isinstance(v, (str, list)) for k, v in payload.items()):
            raise _bad(f"{where}.languageMap", "must map language tags to strings")
    elif kind == "ListProperty":
        if not isinstance(payload, list):
            raise _bad(f"{where}.valueList", "must be a list")
    elif kind == "VocabProperty":
        vocab = payload if isinstance(payload, list) else [payload]
        if not vocab or not all(isinstance(v, str) and v for v in vocab):
            raise _bad(f"{where}.vocab", "must be a term or a list of terms")
        payload = [terms.expand(v) for v in vocab] if isinstance(payload, list) else \
            terms.expand(payload)
    out[member] = payload
    for key, value in raw.items():
        if key in ("type", member) or key in SYSTEM or key == "instanceId":
            continue
        if key == "observedAt":
            if parse_datetime(value) is None:
                raise _bad(f"{where}.observedAt", f"{value!r} is not an RFC 3339 date-time")
            out[key] = value
        elif key == "unitCode":
            if not isinstance(value, str) or not value or len(value) > 32:
                raise _bad(f"{where}.unitCode", "must be a UN/CEFACT code (a short string)")
            out[key] = value
        elif key == "datasetId":
            if not is_uri(value):
                raise _bad(f"{where}.datasetId", f"{value!r} is not a URI")
            out[key] = value
        elif key == "objectType" and kind in ("Relationship", "ListRelationship"):
            out[key] = value
        elif key == "lang" and kind == "LanguageProperty":
            out[key] = value
        elif key in INSTANCE_MEMBERS:
            raise _bad(f"{where}.{key}", f"{key!r} does not belong in a {kind}")
        else:
            if depth >= 8:
                raise _bad(f"{where}.{key}", "sub-attributes nest more than 8 levels")
            check_name(key, f"{where}.{key}")
            sub_iri = terms.expand(key)
            instances = value if isinstance(value, list) and value and all(
                _looks_like_instance(v) for v in value) else [value]
            out[sub_iri] = _instance(instances[0], key, sub_iri, terms, f"{where}.{key}",
                                     depth + 1)
    return out


# -- NGSI-LD Null: an update's way of deleting ----------------------------------------------

NULL = "urn:ngsi-ld:null"
_ABSENT: Any = object()


def _is_null_instance(raw: Any) -> bool:
    """Whether one attribute instance, as a client wrote it, is NGSI-LD Null (its value,
    object, languageMap {"@none": ...}, valueList or objectList [...] is urn:ngsi-ld:null)."""
    if raw == NULL:
        return True
    if not isinstance(raw, dict):
        return False
    for member in ("value", "object", "vocab", "json"):
        if raw.get(member) == NULL:
            return True
    if raw.get("languageMap") == {"@none": NULL}:
        return True
    return any(raw.get(member) in ([NULL], NULL) for member in ("valueList", "objectList"))


def split_nulls(raw: Any) -> tuple[Any, list[str | None]]:
    """An attribute as a client wrote it, split into what it sets (`_ABSENT` when nothing) and
    the datasetIds (None: the default instance) whose instances it deletes with NGSI-LD
    Null."""
    items = raw if isinstance(raw, list) and raw and all(
        _looks_like_instance(v) for v in raw) else None
    if items is None:
        if _is_null_instance(raw):
            dataset = raw.get("datasetId") if isinstance(raw, dict) else None
            return _ABSENT, [dataset if isinstance(dataset, str) else None]
        return raw, []
    kept, gone = [], []
    for item in items:
        if _is_null_instance(item):
            dataset = item.get("datasetId")
            gone.append(dataset if isinstance(dataset, str) else None)
        else:
            kept.append(item)
    return (kept or _ABSENT), gone


def nulls_of(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str | None]]]:
    """A fragment's attributes split into those it sets and, by name, the instances it
    deletes (NGSI-LD Null)."""
    kept: dict[str, Any] = {}
    gone: dict[str, list[str | None]] = {}
    for name, raw in doc.items():
        if name in ENTITY_MEMBERS or name in ("@id", "@type"):
            kept[name] = raw
            continue
        rest, deleted = split_nulls(raw)
        if deleted:
            check_name(name, name)
            gone[name] = deleted
        if rest is not _ABSENT:
            kept[name] = rest
    return kept, gone


def delete_instances(entity: Entity, iri: str, datasets: list[str | None]) -> bool:
    """Remove the instances of `iri` with those datasetIds; False when it had none of them."""
    have = entity.get(iri)
    if not have:
        return False
    kept = [i for i in have if i.get("datasetId") not in datasets]
    if len(kept) == len(have):
        return False
    if kept:
        entity[iri] = kept
    else:
        del entity[iri]
    return True


def expand_attribute(name: str, raw: Any, terms: TermMap, *,
                     where: str = "") -> tuple[str, list[dict[str, Any]]]:
    """One attribute's IRI and its instances in normalized form."""
    at = f"{where}.{name}" if where else name
    check_name(name, at)
    iri = terms.expand(name)
    if iri.startswith("@"):
        raise _bad(at, f"{name!r} is a JSON-LD keyword of the context, not an attribute name")
    if isinstance(raw, list) and raw and all(_looks_like_instance(v) for v in raw):
        if len(raw) > MAX_INSTANCES:
            raise _bad(at, f"at most {MAX_INSTANCES} instances (datasetIds) of one attribute")
        instances = [_instance(v, name, iri, terms, f"{at}[{i}]", 0) for i, v in enumerate(raw)]
        seen: set[str | None] = set()
        for instance in instances:
            dataset = instance.get("datasetId")
            if dataset in seen:
                raise _bad(at, f"two instances share the datasetId {dataset!r}" if dataset
                           else "two instances have no datasetId (only one may be the default)")
            seen.add(dataset)
        return iri, instances
    return iri, [_instance(raw, name, iri, terms, at, 0)]


def expand_types(raw: Any, terms: TermMap, where: str = "") -> list[str]:
    names = raw if isinstance(raw, list) else [raw]
    if not names or not all(isinstance(n, str) and n for n in names):
        raise _bad(f"{where}type" if where else "type",
                   "an entity needs a type: a name or a list of names")
    for n in names:
        check_name(n, f"{where}type")
    expanded = [terms.expand_type(n) for n in names]
    keyword = next((n for n, iri in zip(names, expanded, strict=True) if iri.startswith("@")),
                   None)
    if keyword is not None:
        raise _bad(f"{where}type", f"{keyword!r} is a JSON-LD keyword of the context, not a "
                                   "type name")
    return list(dict.fromkeys(expanded))


def expand_scope(raw: Any, where: str = "") -> list[str]:
    scopes = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(s, str) and s.startswith("/") and len(s) <= MAX_NAME and
               " " not in s for s in scopes):
        raise _bad(f"{where}scope", "a scope is a path such as /Madrid/Gardens (or a list)")
    return scopes


def expand_entity(doc: Any, terms: TermMap, *, where: str = "") -> Entity:
    """A client's entity (any form, short names) in CityOps's internal form. `where` prefixes
    the field names in errors (`entities[3].` in a batch)."""
    if not isinstance(doc, dict):
        raise _bad(where.rstrip("."), "an entity must be a JSON object")
    entity_id = doc.get("id", doc.get("@id"))
    if not is_uri(entity_id):
        raise _bad(f"{where}id", "an entity needs an id that is a URI (such as "
                                 f"urn:ngsi-ld:Type:name), not {str(entity_id)[:80]!r}")
    if "type" not in doc and "@type" not in doc:
        raise _bad(f"{where}type", "an entity needs a type")
    out: Entity = {"id": entity_id, "type": expand_types(doc.get("type", doc.get("@type")),
                                                         terms, where)}
    if "scope" in doc:
        out["scope"] = expand_scope(doc["scope"], where)
    out.update(expand_fragment(doc, terms, where=where))
    return out


def expand_fragment(doc: Any, terms: TermMap, *, where: str = "") -> dict[str, Any]:
    """The attributes of a document (for append, update and merge): IRI -> instances. The
    entity members (id, type, scope, @context, system times) are left out."""
    if not isinstance(doc, dict):
        raise _bad(where.rstrip("."), "the attributes must be a JSON object")
    out: dict[str, Any] = {}
    for name, raw in doc.items():
        if name in ENTITY_MEMBERS or name in ("@id", "@type"):
            continue
        if len(out) >= MAX_ATTRIBUTES:
            raise _bad(where.rstrip("."), f"more than {MAX_ATTRIBUTES} attributes")
        iri, instances = expand_attribute(name, raw, terms, where=where.rstrip("."))
        if iri in out:
            raise _bad(f"{where}{name}", "the attribute is given twice (under two names)")
        out[iri] = instances
    return out


def attribute_names(entity: Entity) -> list[str]:
    """The attribute IRIs of an entity (its members other than id, type, scope, times)."""
    return [k for k in entity if k not in ENTITY_MEMBERS]


# -- out --------------------------------------------------------------------------------------


def _payload(instance: dict[str, Any], terms: TermMap) -> Any:
    kind = instance.get("type", "Property")
    member = ATTRIBUTE_TYPES.get(kind, "value")
    value = instance.get(member)
    if kind == "VocabProperty":
        return [terms.compact(v) for v in value] if isinstance(value, list) else \
            terms.compact(str(value))
    return value


def compact_instance(instance: dict[str, Any], terms: TermMap, *, sys_attrs: bool = False,
                     concise: bool = False, key_values: bool = False) -> Any:
    if key_values:
        return _payload(instance, terms)
    out: dict[str, Any] = {}
    kind = instance.get("type", "Property")
    for key, value in instance.items():
        if key in INSTANCE_MEMBERS:
            if key in SYSTEM and not sys_attrs:
                continue
            if key == "type" and concise and kind != "LanguageProperty":
                continue
            out[key] = _payload(instance, terms) if key == "vocab" else value
        else:
            out[terms.compact(key)] = compact_instance(value, terms, sys_attrs=sys_attrs,
                                                       concise=concise)
    if concise and kind in ("Property", "GeoProperty") and len(out) == 1 and "value" in out \
            and not isinstance(out["value"], dict | list):
        return out["value"]
    if concise and kind == "GeoProperty" and len(out) == 1:
        return out["value"]
    return out


def compact_entity(e: Entity, terms: TermMap, *, attrs: set[str] | None = None,
                   key_values: bool = False, sys_attrs: bool = False,
                   concise: bool = False) -> dict[str, Any]:
    """An internal entity in a client's terms. `attrs` (IRIs) keeps only those attributes;
    `key_values` gives each attribute's value only; `concise` drops what the attribute's shape
    already says; `sys_attrs` adds createdAt/modifiedAt."""
    types = [terms.compact(t) for t in e["type"]]
    out: dict[str, Any] = {"id": e["id"], "type": types[0] if len(types) == 1 else types}
    if "scope" in e:
        scope = e["scope"]
        out["scope"] = scope[0] if isinstance(scope, list) and len(scope) == 1 else scope
    if sys_attrs and not key_values:
        for key in SYSTEM:
            if key in e:
                out[key] = e[key]
    for iri, instances in e.items():
        if iri in ENTITY_MEMBERS or (attrs is not None and iri not in attrs):
            continue
        name = terms.compact(iri)
        if not isinstance(instances, list):
            instances = [instances]
        shown = [compact_instance(i, terms, sys_attrs=sys_attrs, concise=concise,
                                  key_values=key_values) for i in instances]
        if key_values and len(instances) > 1:
            # keyValues has no room for datasetIds: the default instance stands for them.
            default = next((s for s, i in zip(shown, instances, strict=True)
                            if "datasetId" not in i), shown[0])
            out[name] = default
        else:
            out[name] = shown[0] if len(shown) == 1 else shown
    return out


def location_of(e: Entity, geoproperty: str = LOCATION) -> dict[str, Any] | None:
    """The GeoJSON of an entity's `geoproperty` (its default instance), or None."""
    instances = e.get(geoproperty)
    if not instances:
        return None
    for instance in instances:
        if "datasetId" not in instance:
            value = instance.get("value")
            return value if isinstance(value, dict) else None
    value = instances[0].get("value")
    return value if isinstance(value, dict) else None


def point_of(e: Entity) -> tuple[float, float] | None:
    """(lat, lon) of an entity's location: the point, or a shape's representative point."""
    geo = location_of(e)
    if geo is None:
        return None
    if geo.get("type") == "Point":
        coords = geo.get("coordinates")
        if isinstance(coords, list) and len(coords) >= 2:
            return float(coords[1]), float(coords[0])
        return None
    try:
        point = shape(geo).representative_point()
    except Exception:
        return None
    return point.y, point.x
