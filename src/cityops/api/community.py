"""Community analytics: garbage-sorting accuracy and the 15-minute elderly-care circle.

    POST /api/v1/sorting/inspections      bin inspections (one, a list, or CSV), from inspectors
    GET  /api/v1/sorting/ranking          per community: accuracy, rank in town, trend, flags
    GET  /api/v1/care/coverage            per community: residents 60+ within 15 minutes' walk
    GET  /api/v1/care/gaps.geojson        the homes outside it, a map layer
    POST /api/v1/care/what-if             what one more service point would change

A key scoped to an area posts only for communities inside it and sees only them; a department
key, the areas its department serves. Every inspection in a request is checked before any is
stored: a request is taken whole or refused whole, naming the item and field at fault.
"""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from cityops.analytics import care, sorting
from cityops.analytics.walk import WALK_SPEED_MPS
from cityops.api.access import area_in_scope
from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Scope, decode_json, errors_map
from cityops.api.serve_util import covers
from cityops.domain import sorting as core
from cityops.domain.access import READ_DEVICES, Principal, Role
from cityops.domain.care import LIMIT_S
from cityops.domain.city import Level
from cityops.domain.sorting import BEST_MARK, STREAMS, TARGET, InspectionError

errors_map({InspectionError: 400})

INSPECTORS = frozenset({Role.ADMIN, Role.OPERATOR, Role.STATION, Role.FIELD})
PLANNERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.STATION})
MAX_ITEMS = 1000  # inspections in one request
BODY = 512 << 10
DAY = 86400.0
PERIODS = {"day": 1, "week": 7, "month": 30}

AreaCode = Annotated[str, msgspec.Meta(pattern=r"^\d{6}(\d{3}){0,2}$",
                                       description="An area code: 6, 9 or 12 digits")]


class NewInspection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    area: Annotated[str, msgspec.Meta(pattern=r"^\d{12}$",
                                      description="The community's 12-digit code")]
    stream: Annotated[str, msgspec.Meta(description="wet, dry, recyclable or hazardous")]
    checked: Annotated[int, msgspec.Meta(ge=1, le=core.MAX_ITEMS,
                                         description="Items (bags, bins) checked")]
    correct: Annotated[int, msgspec.Meta(ge=0, le=core.MAX_ITEMS,
                                         description="Of them, sorted right")]
    at: Annotated[float, msgspec.Meta(ge=0, description="Epoch seconds; default now")] | None \
        = None
    note: Annotated[str, msgspec.Meta(max_length=500)] = ""


Inspections = NewInspection | Annotated[list[NewInspection],
                                        msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]


class Posted(msgspec.Struct):
    ids: list[str]


class RankingQuery(msgspec.Struct, forbid_unknown_fields=False):
    period: Annotated[str, msgspec.Meta(pattern=r"^(day|week|month|\d{1,3}d)$",
                                        description="day, week, month or Nd (N days)")] = "week"
    end: Annotated[float, msgspec.Meta(ge=0, description="Epoch s; default now")] | None = None
    area: AreaCode | None = None


class Ranking(msgspec.Struct):
    start: float
    end: float
    target: float
    best_mark: float
    communities: list[sorting.CommunityAccuracy]
    towns: list[core.TownAverage]


class AreaQuery(msgspec.Struct, forbid_unknown_fields=False):
    area: AreaCode | None = None


class Coverage(msgspec.Struct):
    limit_s: float
    walk_speed_mps: float
    residents_60: int
    covered_60: int
    share: float | None
    communities: list[care.CareCoverage]


class Proposal(msgspec.Struct, forbid_unknown_fields=True):
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]


# -- scope ------------------------------------------------------------------------------------


def narrowed(node: Any, who: Principal, area: str | None) -> str | None:
    """The area a call reads: what it asked, within the key's area scope (403 when the two
    do not overlap; 400 for a code the city does not have)."""
    if area is not None and area not in node.city:
        raise ApiError(400, f"area: no area {area!r} in this city")
    return area_in_scope(who, area)


def _check_area(node: Any, who: Principal, code: str, where: str) -> None:
    if code not in node.city or node.city.level_of(code) is not Level.VILLAGE:
        raise ApiError(400, f"{where}area: no community {code!r} in this city")
    if not covers(node, who, code):
        raise ApiError(403, f"{where}area: community {code} lies outside this key's scope "
                            f"{who.scope}")


# -- sorting ----------------------------------------------------------------------------------


def _stored(call: Call[Any, Any], items: list[NewInspection]) -> list[sorting.StoredInspection]:
    node, who = call.node, call.principal
    now = node.clock()
    out = []
    for n, i in enumerate(items):
        where = f"item {n}: " if len(items) > 1 else ""
        _check_area(node, who, i.area, where)
        if i.at is not None and i.at > now + 300:
            raise ApiError(400, f"{where}at: in the future")
        s = sorting.StoredInspection(area=i.area, stream=i.stream, checked=i.checked,
                                     correct=i.correct, at=now if i.at is None else i.at,
                                     by=who.name or who.key_id, note=i.note)
        try:
            core.check_inspection(core.Inspection(s.area, s.stream, s.checked, s.correct, s.at))
        except InspectionError as error:
            raise ApiError(400, where + error.reason) from None
        out.append(s)
    return out


async def post_inspections(call: Call[None, Any]) -> Posted:
    raw = await call.raw_body()
    media = call.request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "text/csv":
        items = _csv_items(raw)
    else:
        body = decode_json(raw, Inspections)  # type: ignore[arg-type]  # a union type
        items = body if isinstance(body, list) else [body]
    checked = _stored(call, items)
    return Posted(await sorting.add(call.node.store, checked, call.node.clock()))


def _csv_items(raw: bytes) -> list[NewInspection]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "the CSV is not UTF-8") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0][:4]] != ["area", "stream", "checked", "correct"]:
        raise ApiError(400, "the first line names the columns: area,stream,checked,correct"
                            "[,at][,note]")
    head = [c.strip() for c in rows[0]]
    unknown = [c for c in head if c not in ("area", "stream", "checked", "correct", "at",
                                            "note")]
    if unknown:
        raise ApiError(400, f"unknown column {unknown[0]!r}")
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not body or len(body) > MAX_ITEMS:
        raise ApiError(400, f"1 to {MAX_ITEMS} inspections a request, not {len(body)}")
    items = []
    for line, r in enumerate(body, start=2):
        if len(r) != len(head):
            raise ApiError(400, f"line {line}: {len(r)} fields, the header has {len(head)}")
        doc: dict[str, Any] = {k: v.strip() for k, v in zip(head, r, strict=True)}
        if not doc.get("at"):
            doc.pop("at", None)
        try:
            items.append(msgspec.convert(doc, NewInspection, strict=False))
        except msgspec.ValidationError as error:
            raise ApiError(400, f"line {line}: {error}") from None
    return items


def _days(period: str) -> int:
    days = PERIODS.get(period) or int(period.rstrip("d"))
    if not 1 <= days <= 366:
        raise ApiError(400, "period: 1 to 366 days")
    return days


async def get_ranking(call: Call[None, RankingQuery]) -> Ranking:
    node, who, q = call.node, call.principal, call.query
    area = narrowed(node, who, q.area)
    end = node.clock() if q.end is None else q.end
    start = end - _days(q.period) * DAY
    rows, towns = await sorting.ranking(node, start=start, end=end, area=area)
    return Ranking(start, end, TARGET, BEST_MARK,
                   [r for r in rows if covers(node, who, r.area)],
                   [t for t in towns if covers(node, who, t.town)])


# -- care -------------------------------------------------------------------------------------


async def get_coverage(call: Call[None, AreaQuery]) -> Coverage:
    node, who = call.node, call.principal
    rows = [r for r in await care.care_coverage(node, area=narrowed(node, who, call.query.area))
            if covers(node, who, r.area)]
    total = sum(r.residents_60 for r in rows)
    inside = sum(r.covered_60 for r in rows)
    return Coverage(LIMIT_S, WALK_SPEED_MPS, total, inside, inside / total if total else None,
                    rows)


async def get_gaps(call: Call[None, AreaQuery]) -> Response:
    node, who = call.node, call.principal
    model = await care.model_of(node)
    # a few hundred ms for a city of 700 communities: off the event loop
    layer = await asyncio.to_thread(model.gaps, narrowed(node, who, call.query.area))
    layer["features"] = [f for f in layer["features"]
                         if covers(node, who, f["properties"]["area"])]
    return Response(msgspec.json.encode(layer), media_type="application/geo+json")


async def post_what_if(call: Call[Proposal, Any]) -> care.WhatIf:
    node, who, b = call.node, call.principal, call.body
    place = node.city.resolve(b.lat, b.lon)
    if place is None:
        raise ApiError(400, "lat, lon: the point lies outside the city")
    if not covers(node, who, place.village):
        raise ApiError(403, f"the point lies in {place.village}, outside this key's scope "
                            f"{who.scope}")
    model = await care.model_of(node)
    answer = await asyncio.to_thread(model.what_if, b.lat, b.lon, place.village,
                                     narrowed(node, who, None))
    answer.communities = [r for r in answer.communities if covers(node, who, r.area)]
    answer.newly_covered = sum(r.newly_covered for r in answer.communities)
    return answer


_STREAMS = ", ".join(STREAMS)

ROUTES = [
    Endpoint("POST", "/api/v1/sorting/inspections", post_inspections,
             "Garbage-sorting inspections: one, a list of up to 1,000, or CSV, taken whole or "
             "not at all", INSPECTORS, Scope.CREATE, kind=sorting.KIND, raw_body=True,
             body_limit=BODY, request_content={"application/json": Inspections,
                                               "text/csv": {"type": "string"}},
             response=Posted, status=201,
             description=f"Streams: {_STREAMS}. CSV (Content-Type: text/csv) has a header "
                         "line area,stream,checked,correct[,at][,note]. A scoped key posts "
                         "only for communities inside its scope (403)."),
    Endpoint("GET", "/api/v1/sorting/ranking", get_ranking,
             "Sorting accuracy per community over a period: by stream, rank in its town, "
             "trend against the period before, below the 90 % target, above the 98 % mark",
             READ_DEVICES, Scope.LIST, kind="sorting_community", query=RankingQuery,
             response=Ranking),
    Endpoint("GET", "/api/v1/care/coverage", get_coverage,
             "Per community: residents of 60+ within 15 minutes' walk of an elderly-care "
             "service point", READ_DEVICES, Scope.LIST, kind="care_community",
             query=AreaQuery, response=Coverage),
    Endpoint("GET", "/api/v1/care/gaps.geojson", get_gaps,
             "The homes of residents of 60+ outside the 15-minute circle, as GeoJSON points",
             READ_DEVICES, Scope.LIST, kind="care_community", query=AreaQuery,
             media_type="application/geo+json"),
    Endpoint("POST", "/api/v1/care/what-if", post_what_if,
             "What a new elderly-care service point at lat, lon would change: per community, "
             "coverage before and after and the residents newly covered",
             PLANNERS | {Role.DEPARTMENT}, Scope.LIST, kind="care_community", body=Proposal,
             body_limit=4096, response=care.WhatIf),
]
