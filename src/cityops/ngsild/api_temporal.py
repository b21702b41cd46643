"""The NGSI-LD temporal API (GS CIM 009 clauses 5.7.3, 5.7.4, 6.18-6.22):

    GET  /ngsi-ld/v1/temporal/entities               the temporal evolution of matching entities
    GET  /ngsi-ld/v1/temporal/entities/{entityId}    of one entity
    POST /ngsi-ld/v1/temporal/entities ...           OperationNotSupported (see below)

Entities are selected as for `GET /entities` (type, id, idPattern, attrs, q, georel, scopeQ,
limit/offset/count) by the one query engine (`providers.run_query`), so a key sees here what
it sees there. `q` is evaluated on the entity's current state, as there, not on each instance
in the window. A device-backed entity answers its measured attributes from the readings
history (`temporal.py`); its other attributes (location, refDevice ...) and every attribute of
a context entity have no history here, so their one current instance stands for them when it
falls in the window.

Writes: a reading is written once, by its device or through `entityOperations/upsert` on a
mapped entity, and CityOps keeps no history of context entities; the temporal write
operations therefore answer OperationNotSupported (422), naming where to write instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec
import numpy as np
from starlette.responses import Response

from cityops.api.route import Call, Endpoint, Guard, Scope
from cityops.domain.access import READ_DEVICES, WRITE_READINGS
from cityops.domain.readings import ReadingBatch
from cityops.ngsild import PREFIX, sdm
from cityops.ngsild import temporal as tp
from cityops.ngsild.api_entities import ENTITY_GUARD, KIND, ProblemDetails, answer
from cityops.ngsild.contexts import TermMap, context_of_request
from cityops.ngsild.entity import ENTITY_MEMBERS, compact_entity, is_uri
from cityops.ngsild.errors import NgsiError, render_problem
from cityops.ngsild.http import (
    ANSWERS,
    JSON,
    JSONLD,
    MERGE_PATCH,
    NoParams,
    answer_media,
    body_media,
    refused_early,
)
from cityops.ngsild.providers import (
    MAX_IDS,
    MAX_LIMIT,
    EntityQuery,
    parse_types,
    run_query,
)
from cityops.ngsild.query import check_scope_q, parse_geoquery, parse_q

TEMPORAL = PREFIX + "/temporal/entities"
DEFAULT_LIMIT = 20

Text = Annotated[str, msgspec.Meta(max_length=4096)]
Short = Annotated[str, msgspec.Meta(max_length=64)]


class TemporalParams(msgspec.Struct, forbid_unknown_fields=True):
    id: Text | None = None
    type: Text | None = None
    idPattern: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    attrs: Text | None = None
    q: Text | None = None
    scopeQ: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    georel: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    geometry: Short | None = None
    coordinates: Annotated[str, msgspec.Meta(max_length=100_000)] | None = None
    geoproperty: Annotated[str, msgspec.Meta(max_length=512)] | None = None
    timerel: Short | None = None
    timeAt: Short | None = None
    endTimeAt: Short | None = None
    timeproperty: Short | None = None
    lastN: Short | None = None
    options: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    format: Short | None = None
    aggrMethods: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    aggrPeriodDuration: Short | None = None
    limit: Annotated[int, msgspec.Meta(ge=0, le=MAX_LIMIT)] = DEFAULT_LIMIT
    offset: Annotated[int, msgspec.Meta(ge=0, le=10**9)] = 0
    count: Annotated[str, msgspec.Meta(max_length=8)] | None = None
    local: Annotated[str, msgspec.Meta(max_length=8)] | None = None
    csf: Text | None = None  # a context source filter: this node asks no context sources
    # The spec's parameters this temporal API does not implement: refused by name
    # (OperationNotSupported) rather than ignored, which would answer something else than
    # what was asked; any other name is InvalidRequest (clause 6.3.20).
    pick: Text | None = None
    omit: Text | None = None
    lang: Short | None = None
    datasetId: Text | None = None


UNSUPPORTED = ("pick", "omit", "lang", "datasetId")


def _supported(p: TemporalParams) -> None:
    for name in UNSUPPORTED:
        if getattr(p, name) is not None:
            raise NgsiError("OperationNotSupported", f"{name}: the temporal API here does "
                                                     f"not take {name}")


# -- parameters ------------------------------------------------------------------------------


def _options(p: TemporalParams) -> list[str]:
    out = [o.strip() for o in (p.options or "").split(",") if o.strip()]
    known = {"temporalValues", "aggregatedValues", "sysAttrs", "keyValues", "simplified",
             "normalized", "concise"}
    for o in out:
        if o not in known:
            raise tp.bad("options", f"{o[:40]!r} is not an option of the temporal API")
    if p.format is not None:
        if p.format not in ("temporalValues", "aggregatedValues", "normalized", "simplified"):
            raise tp.bad("format", f"{p.format[:40]!r} is not a temporal representation")
        out.append(p.format)
    return ["temporalValues" if o == "simplified" else o for o in out]


def _flag(raw: str | None, name: str) -> bool:
    if raw is None or raw == "":
        return False
    if raw in ("true", "false"):
        return raw == "true"
    raise tp.bad(name, f"{raw!r} is neither true nor false")


def _attrs(raw: str | None, terms: TermMap) -> set[str] | None:
    if raw is None:
        return None
    names = [a.strip() for a in raw.split(",")]
    if not all(names):
        raise tp.bad("attrs", "an attribute name is empty")
    return {sdm.canonical(terms.expand(a)) for a in names}


def _temporal(p: TemporalParams) -> tp.TemporalQuery:
    _supported(p)
    return tp.temporal_query(timerel=p.timerel, time_at=p.timeAt, end_time_at=p.endTimeAt,
                             last_n=p.lastN, timeproperty=p.timeproperty,
                             options=_options(p), aggr_methods=p.aggrMethods,
                             aggr_period=p.aggrPeriodDuration)


def _entity_query(p: TemporalParams, terms: TermMap) -> EntityQuery:
    query = EntityQuery(limit=p.limit, offset=p.offset, count=_flag(p.count, "count"))
    if p.type is not None:
        query.types = parse_types(p.type, terms)
    if p.id is not None:
        ids = {i.strip() for i in p.id.split(",")}
        if len(ids) > MAX_IDS or not all(is_uri(i) for i in ids):
            raise tp.bad("id", f"give at most {MAX_IDS} entity ids, each a URI")
        query.ids = ids
    if p.idPattern is not None:
        try:
            query.id_pattern = re.compile(p.idPattern)
        except re.error as error:
            raise tp.bad("idPattern", f"not a regular expression: {error}") from None
    query.attrs = _attrs(p.attrs, terms)
    if p.q is not None:
        query.q = parse_q(p.q)
    if p.georel is not None or p.geometry is not None or p.coordinates is not None:
        geoproperty = sdm.canonical(terms.expand(p.geoproperty)) if p.geoproperty else None
        query.geo = parse_geoquery(p.georel, p.geometry, p.coordinates, geoproperty,
                                   terms=terms)
    if p.scopeQ is not None:
        query.scope_q = check_scope_q(p.scopeQ)
    if (query.types is None and query.attrs is None and query.q is None and query.geo is None
            and not _flag(p.local, "local")):
        raise NgsiError("BadRequestData", "type, attrs, q or georel: a temporal query needs "
                                          "at least one of them (or local=true)")
    query.check()
    return query


# -- one entity's temporal form ----------------------------------------------------------------


class _Series(msgspec.Struct):
    entity: int  # index into the answer's entities
    attr: str  # IRI
    device: int
    channel: int
    device_id: str
    channel_name: str
    unit: str | None
    scale: float
    lon: int = -1  # a track: `channel` is latitude, this longitude (a GeoProperty's Points)


def _history_series(node: Any, entity: Mapping[str, Any], entity_index: int,
                    attrs: set[str] | None) -> list[_Series]:
    """The attributes of a device-backed entity that the readings history holds."""
    registry = node.registry
    for type_iri in entity["type"]:
        if not sdm.is_mapped(type_iri):
            continue
        device_id = sdm.device_of_id(entity["id"], type_iri)
        device = registry.get(device_id) if device_id is not None else None
        model = sdm.MODELS.get(device.kind) if device is not None else None
        if device is None or model is None or device_id is None:
            continue
        channels = [c.name for c in registry.kind(device.kind).channels]
        index = registry.index[device_id]
        if sdm.canonical(type_iri) == sdm.DEVICE:
            # A Device's `value` is its one channel's reading, unscaled; of a device with
            # several channels it is a text composed of them, which has no history here.
            if len(channels) != 1:
                return []
            value = sdm.iri("value")
            return [_Series(entity_index, value, index, 0, device_id, channels[0], m.unit, 1.0)
                    for m in model.measures[:1] if attrs is None or value in attrs]
        out = [_Series(entity_index, m.iri, index, channels.index(m.channel), device_id,
                       m.channel, m.unit, m.scale)
               for m in model.measures
               if m.channel in channels and (attrs is None or m.iri in attrs)]
        location = sdm.iri("location")
        if model.moves and "lat" in channels and "lon" in channels \
                and (attrs is None or location in attrs):
            # A mover's location is its track: each lat/lon pair it reported is a Point.
            out.append(_Series(entity_index, location, index, channels.index("lat"), device_id,
                               "lat", None, 1.0, channels.index("lon")))
        return out
    return []


def _timestamps(rows: ReadingBatch) -> list[int]:
    return rows.ts.tolist() if len(rows) else []


def _rows_of(rows: ReadingBatch, series: list[_Series], *, lon: bool = False
             ) -> list[np.ndarray]:
    """Per series, the indices of its rows (rows are ordered by device, channel, time); with
    `lon`, of a track's longitudes (empty for other series)."""
    key = rows.device.astype(np.int64) * 256 + rows.channel.astype(np.int64)
    out = []
    for s in series:
        channel = s.lon if lon else s.channel
        if channel < 0:
            out.append(np.empty(0, np.int64))
            continue
        wanted = s.device * 256 + channel
        lo = int(np.searchsorted(key, wanted, side="left"))
        hi = int(np.searchsorted(key, wanted, side="right"))
        out.append(np.arange(lo, hi))
    return out


def _static(entity: Mapping[str, Any], skip: set[str], attrs: set[str] | None,
            query: tp.TemporalQuery) -> dict[str, list[Mapping[str, Any]]]:
    """Attributes without a history here: their current instance, where it is in the window."""
    out = {}
    for iri, instances in entity.items():
        if iri in ENTITY_MEMBERS or iri in skip or (attrs is not None and iri not in attrs):
            continue
        kept = tp.current_instances(instances if isinstance(instances, list) else [instances],
                                    query)
        if kept:
            out[iri] = kept
    return out


def _static_simplified(instances: list[Mapping[str, Any]]) -> dict[str, Any]:
    kind = instances[0].get("type", "Property")
    member = {"Relationship": "object", "LanguageProperty": "languageMap"}.get(kind, "value")
    return {"type": kind, "values": [[i.get(member), i.get("observedAt")] for i in instances]}


def _render(entities: Sequence[Mapping[str, Any]], series: list[_Series],
            histories: tp.Histories, query: tp.TemporalQuery, attrs: set[str] | None,
            terms: TermMap, now_us: int) -> list[dict[str, Any]]:
    rows = histories.rows
    picks = _rows_of(rows, series)
    lons = _rows_of(rows, series, lon=True)
    by_entity: dict[int, list[tuple[_Series, np.ndarray, np.ndarray]]] = {}
    for s, pick, lon in zip(series, picks, lons):
        by_entity.setdefault(s.entity, []).append((s, pick, lon))
    aggregated = query.representation == tp.AGGREGATED
    aggregates = _aggregate(entities, series, picks, rows, query, now_us) if aggregated else {}
    out = []
    for i, entity in enumerate(entities):
        mine = by_entity.get(i, [])
        skip = {s.attr for s, _, _ in mine}
        static = _static(entity, skip, attrs, query)
        shown = compact_entity({"id": entity["id"], "type": entity["type"],
                                **({"scope": entity["scope"]} if "scope" in entity else {}),
                                **static}, terms)
        for iri, instances in static.items():
            name = terms.compact(iri)
            if aggregated:
                summary = _aggregate_static(instances, query, now_us)
                if summary is None:
                    shown.pop(name, None)  # no numbers over time to aggregate
                else:
                    shown[name] = summary
            elif query.representation == tp.SIMPLIFIED:
                shown[name] = _static_simplified(instances)
            elif not isinstance(shown.get(name), list):
                shown[name] = [shown[name]]
        for s, pick, lon in mine:
            name = terms.compact(s.attr)
            if s.lon >= 0:
                track = _track(rows, pick, lon, s, query)
                if track is not None:
                    shown[name] = track
                else:
                    shown.pop(name, None)
                continue
            if aggregated:
                shown[name] = aggregates.get((i, s.attr), {"type": "Property"})
                continue
            values = rows.value[pick] * s.scale if s.scale != 1.0 else rows.value[pick]
            shown[name] = tp.series_instances(
                tp.Channel(s.attr, s.channel, s.unit), rows.ts[pick], values, s.device_id,
                s.channel_name, query.representation)
        out.append(shown)
    return out


def _track(rows: ReadingBatch, lat: np.ndarray, lon: np.ndarray, s: _Series,
           query: tp.TemporalQuery) -> list[Any] | dict[str, Any] | None:
    """A mover's Points: its latitude and longitude readings of the same instants."""
    if query.representation == tp.AGGREGATED:
        return None  # positions have no sum or mean the spec's methods would mean
    both, at_lat, at_lon = np.intersect1d(rows.ts[lat], rows.ts[lon], assume_unique=True,
                                          return_indices=True)
    if not len(both):
        return None
    points = [{"type": "Point", "coordinates": [x, y]}
              for x, y in zip(rows.value[lon][at_lon].tolist(),
                              rows.value[lat][at_lat].tolist())]
    times = [tp.iso(t) for t in both.tolist()]
    if query.representation == tp.SIMPLIFIED:
        return {"type": "GeoProperty", "values": [[p, t] for p, t in zip(points, times)]}
    return [{"type": "GeoProperty", "value": p, "observedAt": t,
             "instanceId": tp.instance_id(s.device_id, "location", ts)}
            for p, t, ts in zip(points, times, both.tolist())]


def _aggregate(entities: Sequence[Mapping[str, Any]], series: list[_Series],
               picks: list[np.ndarray], rows: ReadingBatch, query: tp.TemporalQuery,
               now_us: int) -> dict[tuple[int, str], dict[str, Any]]:
    """Each series' aggregated values: periods from timeAt (after, between), else from the
    entity's first instance in the answer; a whole-window period ends at endTimeAt (between),
    timeAt (before) or now."""
    # A track is not aggregated: its rows stay out.
    picks = [np.empty(0, np.int64) if s.lon >= 0 else p for s, p in zip(series, picks)]
    if not series:
        return {}
    order = np.concatenate(picks) if picks else np.empty(0, np.int64)
    series_of_row = np.repeat(np.arange(len(series)), [len(p) for p in picks])
    taken = rows.take(order)
    scale = np.repeat([s.scale for s in series], [len(p) for p in picks])
    ordered = ReadingBatch(taken.device, taken.channel, taken.ts, taken.value * scale)
    first_of_entity: dict[int, int] = {}
    for s, pick in zip(series, picks):
        if len(pick):
            t = int(rows.ts[pick[0]])
            first_of_entity[s.entity] = min(first_of_entity.get(s.entity, t), t)
    start, end = query.window
    origin = np.array([start if query.timerel in ("after", "between")
                       else first_of_entity.get(s.entity, 0) for s in series], np.int64)
    whole_end = end if end < tp.NEVER else now_us
    ends = np.full(len(series), whole_end, np.int64)
    result = tp.aggregate(ordered, series_of_row, origin, query.period, query.methods, ends)
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for k, s in enumerate(series):
        groups = np.flatnonzero(result.series == k)
        if query.last_n is not None:
            groups = groups[-query.last_n:]
        attr: dict[str, Any] = {"type": "Property"}
        for method in query.methods:
            values = result.values[method]
            attr[method] = [[tp.aggregate_json(float(values[g]), method),
                             tp.iso(int(result.start[g])), tp.iso(int(result.end[g]))]
                            for g in groups]
        out[(s.entity, s.attr)] = attr
    return out


def _aggregate_static(instances: list[Mapping[str, Any]], query: tp.TemporalQuery,
                      now_us: int) -> dict[str, Any] | None:
    """The aggregates of an attribute without a history: its current numeric instances that
    carry the query's time property, aggregated as readings would be."""
    stamped = []
    for instance in instances:
        value, stamp = instance.get("value"), instance.get(query.timeproperty)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and isinstance(stamp, str):
            stamped.append((tp.parse_time(stamp, query.timeproperty), float(value)))
    if not stamped:
        return None
    stamped.sort()
    n = len(stamped)
    rows = ReadingBatch(np.zeros(n, np.int32), np.zeros(n, np.int8),
                        np.array([t for t, _ in stamped], np.int64),
                        np.array([v for _, v in stamped], np.float64))
    start, end = query.window
    origin = start if query.timerel in ("after", "between") else stamped[0][0]
    result = tp.aggregate(rows, np.zeros(n, np.int64), np.array([origin], np.int64),
                          query.period, query.methods,
                          np.array([end if end < tp.NEVER else now_us], np.int64))
    kind = instances[0].get("type", "Property")
    groups = range(len(result.series))
    if query.last_n is not None:
        groups = groups[-query.last_n:]
    return {"type": kind, **{m: [[tp.aggregate_json(float(result.values[m][g]), m),
                                  tp.iso(int(result.start[g])), tp.iso(int(result.end[g]))]
                                 for g in groups] for m in query.methods}}


async def _temporal_form(call: Call[Any, Any], entities: Sequence[Mapping[str, Any]],
                         query: tp.TemporalQuery, attrs: set[str] | None, terms: TermMap
                         ) -> tuple[list[dict[str, Any]], str | None]:
    node = call.node
    series = [s for i, e in enumerate(entities) for s in _history_series(node, e, i, attrs)]
    devices = sorted({s.device for s in series})
    aggregated = query.representation == tp.AGGREGATED
    if devices:
        histories = await asyncio.to_thread(tp.read_histories, node.reader, devices, query,
                                            series=len(series), aggregate=aggregated)
        # Only the answer's series count: a device's other channels were read alongside.
        wanted = {(s.device, s.channel) for s in series} | {(s.device, s.lon) for s in series
                                                             if s.lon >= 0}
        rows = histories.rows
        if len(rows):
            keep = np.fromiter(((d, c) in wanted for d, c in zip(rows.device.tolist(),
                                                                  rows.channel.tolist())),
                               bool, len(rows))
            histories = tp.Histories(rows.take(np.flatnonzero(keep)), histories.cut_at)
    else:
        histories = tp.Histories(ReadingBatch.empty())
    now_us = int(node.clock() * tp.US)
    shown = _render(entities, series, histories, query, attrs, terms, now_us)
    return shown, tp.content_range(query, histories, _timestamps(histories.rows))


def _answer(call: Call[Any, Any], body: Any, terms: TermMap, status: int,
            headers: dict[str, str]) -> Response:
    # As the entity routes answer (a Link header, or @context in a JSON-LD body); no
    # geometry is named, so an Accept that also takes GeoJSON gets JSON: a temporal
    # representation is no GeoJSON Feature.
    return answer(call.request, body, terms, status=status, headers=headers)


async def _load(call: Call[Any, Any]) -> Any:
    # Before the entity is looked up, so that they are refused whether or not it exists:
    # an Accept this API cannot answer (GeoJSON too, which the entity guard takes for
    # entity retrieval) and a parameter it does not implement.
    with refused_early():
        answer_media(call.request, ANSWERS)
        _supported(call.query)
    return await ENTITY_GUARD.load(call)


TEMPORAL_GUARD: Guard[Any] = Guard(KIND, "entityId", _load, ENTITY_GUARD.sees)


async def query_temporal(call: Call[None, TemporalParams]) -> Response:
    p = call.query
    answer_media(call.request, ANSWERS)  # 406 before any work
    terms = context_of_request(call.request.headers)
    query = _temporal(p)
    selection = _entity_query(p, terms)
    page, total = run_query(call.node, call.principal, selection, terms)
    shown, cut = await _temporal_form(call, page, query, selection.attrs, terms)
    extra = {}
    if total is not None:
        extra["NGSILD-Results-Count"] = str(total)
    if cut is not None:
        extra["Content-Range"] = cut
    return _answer(call, shown, terms, 206 if cut else 200, extra)


async def retrieve_temporal(call: Call[None, TemporalParams]) -> Response:
    p = call.query
    terms = context_of_request(call.request.headers)
    query = _temporal(p)
    attrs = _attrs(p.attrs, terms)
    entity = call.record
    if attrs is not None and not any(a in entity for a in attrs):
        raise NgsiError("ResourceNotFound", f"attrs: entity {entity['id']!r} has none of "
                                            "the attributes asked for")
    shown, cut = await _temporal_form(call, [entity], query, attrs, terms)
    extra = {"Content-Range": cut} if cut is not None else {}
    return _answer(call, shown[0], terms, 206 if cut else 200, extra)


async def not_supported(call: Call[None, Any]) -> Response:
    # A body in a media type no NGSI-LD write takes is the client's mistake whatever the
    # operation: 415 first, as the other write routes answer it.
    method = call.request.method
    if method in ("POST", "PATCH"):
        body_media(call.request, (JSON, JSONLD, MERGE_PATCH) if method == "PATCH"
                   else (JSON, JSONLD))
    raise NgsiError("OperationNotSupported",
                    "the temporal API is read-only here: readings of a device-backed entity "
                    f"are written through POST {PREFIX}/entityOperations/upsert (or the "
                    "device's own intake), and context entities keep no history")


_COMMON: dict[str, Any] = dict(render_error=render_problem, error_type=ProblemDetails,
                               tags=("NGSI-LD",))
# The write operations take no query parameters: one sent is InvalidRequest before the 422.
_WRITE: dict[str, Any] = dict(raw_body=True, query=NoParams, errors=(400, 415), **_COMMON)

ROUTES: list[Endpoint] = [
    Endpoint("GET", TEMPORAL, query_temporal,
             "The temporal evolution of the entities matching a query (NGSI-LD)",
             READ_DEVICES, Scope.LIST, kind=KIND, query=TemporalParams, response=list,
             also_ok=(206,), errors=(400, 403, 406, 422, 503), **_COMMON,
             description="Device-backed entities answer from the readings history; each "
                         "attribute holds at most 1,000 instances and an answer 100,000: "
                         "past that the answer is 206 with a Content-Range (date-time)."),
    Endpoint("POST", TEMPORAL, not_supported,
             "Create a temporal representation: not supported (OperationNotSupported)",
             WRITE_READINGS, Scope.NONE, status=422, **_WRITE),
    Endpoint("GET", TEMPORAL + "/{entityId}", retrieve_temporal,
             "The temporal evolution of one entity (NGSI-LD)",
             READ_DEVICES, Scope.RECORD, guard=TEMPORAL_GUARD, query=TemporalParams,
             response=dict, also_ok=(206,), errors=(400, 406, 422, 503), **_COMMON),
    Endpoint("PATCH", TEMPORAL + "/{entityId}", not_supported,
             "Update a temporal representation: not supported (OperationNotSupported)",
             WRITE_READINGS, Scope.NONE, status=422, **_WRITE),
    Endpoint("DELETE", TEMPORAL + "/{entityId}", not_supported,
             "Delete a temporal representation: not supported (OperationNotSupported)",
             WRITE_READINGS, Scope.NONE, status=422, query=NoParams, errors=(400,), **_COMMON),
    Endpoint("POST", TEMPORAL + "/{entityId}/attrs", not_supported,
             "Add temporal attribute instances: not supported (OperationNotSupported)",
             WRITE_READINGS, Scope.NONE, status=422, **_WRITE),
]
