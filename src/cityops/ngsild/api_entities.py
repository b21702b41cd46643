"""NGSI-LD context information routes (GS CIM 009 clause 6.4-6.6, 6.14, 6.25-6.31): entities,
their attributes, batch operations, types, attributes and the JSON-LD contexts CityOps serves.

Entities of a mapped Smart Data Models type (a CityOps device kind: `sdm.is_mapped`) are not
kept here: writes hand the documents as received to `feed.write_mapped`, which turns them into
readings (validation, the WAL, detection, like any reading), and reads come from the views'
providers. Every other entity is a context entity in `node.ngsild.entities`. The batch path is
lean on purpose (the benchmark pushes 40,000 NoiseLevelObserved entities per round): one
msgspec decode, the type of each document expanded once per distinct name, mapped documents
handed to the feed in one call, unexpanded.

Every answer and refusal under the prefix is NGSI-LD's: entities compacted with the request's
@context (a Link header for application/json, `@context` in the body for
application/ld+json), errors as ProblemDetails (`errors.render_problem`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import msgspec
import re2  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.errors import ApiError
from cityops.api.limits import INGEST_BODY, check_depth
from cityops.api.route import PUBLIC, Call, Endpoint, Guard, Reply, Scope
from cityops.domain.access import READ_DEVICES, WRITE_READINGS, Principal, Role
from cityops.ngsild import PREFIX
from cityops.ngsild import contexts as ctx
from cityops.ngsild.contexts import NO_CONTEXT, TermMap
from cityops.ngsild.entity import (
    ENTITY_MEMBERS,
    LOCATION,
    NULL,
    Entity,
    attribute_names,
    check_name,
    compact_entity,
    compact_instance,
    delete_instances,
    expand_attribute,
    expand_entity,
    expand_fragment,
    expand_scope,
    expand_types,
    is_uri,
    now_iso,
    nulls_of,
    split_nulls,
)
from cityops.ngsild.errors import NgsiError, render_problem
from cityops.ngsild.http import (
    GEOJSON,
    JSON,
    JSONLD,
    MERGE_PATCH,
    answer_media,
    body_media,
    refused_early,
)
from cityops.ngsild.providers import (
    DEFAULT_LIMIT,
    MAX_IDS,
    Catalogue,
    EntityQuery,
    Selector,
    catalogue,
    count_of,
    find_entity,
    parse_types,
    run_query,
)
from cityops.ngsild.query import check_scope_q, parse_geoquery, parse_q

TAGS = ("NGSI-LD",)
ENTITY_BODY = 1 << 20  # one entity or a fragment of one
CONTEXT_BODY = 256 << 10  # a context a client hosts here
WRITE_CONTEXT = frozenset({Role.ADMIN, Role.OPERATOR})  # context entities
WRITERS = WRITE_CONTEXT | WRITE_READINGS  # mapped entities too (device keys)
COUNT_HEADER = "NGSILD-Results-Count"
KIND = "ngsild_entity"


# -- documented shapes ------------------------------------------------------------------------


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    detail: str
    status: int | None = None


class BatchError(msgspec.Struct):
    entityId: str  # noqa: N815 - the spec's member names
    error: ProblemDetails


class BatchResult(msgspec.Struct):
    success: list[str]
    errors: list[BatchError]


class NotUpdated(msgspec.Struct):
    attributeName: str  # noqa: N815
    reason: str


class UpdateResult(msgspec.Struct):
    updated: list[str]
    notUpdated: list[NotUpdated]  # noqa: N815


class EntityTypeList(msgspec.Struct):
    id: str
    type: str
    typeList: list[str]  # noqa: N815


class EntityTypeDetail(msgspec.Struct):
    id: str
    type: str
    typeName: str  # noqa: N815
    attributeNames: list[str]  # noqa: N815


class AttributeDetail(msgspec.Struct):
    id: str
    type: str
    attributeName: str  # noqa: N815
    attributeTypes: list[str]  # noqa: N815


class EntityTypeInfo(msgspec.Struct):
    id: str
    type: str
    typeName: str  # noqa: N815
    entityCount: int  # noqa: N815
    attributeDetails: list[AttributeDetail]  # noqa: N815


class AttributeList(msgspec.Struct):
    id: str
    type: str
    attributeList: list[str]  # noqa: N815


class AttributeInfo(msgspec.Struct):
    id: str
    type: str
    attributeName: str  # noqa: N815
    attributeCount: int  # noqa: N815
    attributeTypes: list[str]  # noqa: N815
    typeNames: list[str]  # noqa: N815


class ContextInfo(msgspec.Struct):
    URL: str  # noqa: N815 - the spec's member names
    localId: str  # noqa: N815
    kind: str
    createdAt: str  # noqa: N815


Doc = dict[str, Any]
BODY_MEDIA = {JSON: Doc, JSONLD: Doc}
BATCH_MEDIA = {JSON: list[Any], JSONLD: list[Any]}


# -- query models -----------------------------------------------------------------------------

Text = str | None


class EntityOptions(msgspec.Struct, forbid_unknown_fields=True):
    attrs: Text = None
    pick: Text = None
    omit: Text = None
    options: Text = None
    format: Text = None
    lang: Text = None
    geometryProperty: Text = None  # noqa: N815
    local: Text = None
    datasetId: Text = None  # noqa: N815
    join: Text = None
    joinLevel: int | None = None  # noqa: N815
    containedBy: Text = None  # noqa: N815

    def __post_init__(self) -> None:
        # Checked as the query is decoded, before the entity is looked up: a malformed
        # request is refused as such (400), whether or not the entity exists.
        try:
            picked = _projection(self.pick, "pick")
            omitted = _projection(self.omit, "omit")
        except NgsiError as error:
            raise ValueError(error.detail) from None
        if self.attrs is not None and (picked is not None or omitted is not None):
            raise ValueError("attrs: goes with neither pick nor omit (pick the attributes "
                             "instead)")
        both = sorted(set(picked or ()) & set(omitted or ()))
        if both:
            raise ValueError(f"pick, omit: {both[0]!r} is in both")


class EntityListing(EntityOptions, forbid_unknown_fields=True):
    type: Text = None
    id: Text = None
    idPattern: Text = None  # noqa: N815
    q: Text = None
    scopeQ: Text = None  # noqa: N815
    georel: Text = None
    geometry: Text = None
    coordinates: Text = None
    geoproperty: Text = None
    limit: int | None = None
    offset: int | None = None
    count: bool | None = None
    csf: Text = None  # a context source filter: this node asks no context sources


class WriteOptions(msgspec.Struct, forbid_unknown_fields=True):
    options: Text = None


class AttrDelete(msgspec.Struct, forbid_unknown_fields=True):
    datasetId: Text = None  # noqa: N815
    deleteAll: bool | None = None  # noqa: N815


class Details(msgspec.Struct, forbid_unknown_fields=True):
    details: bool | None = None
    type: Text = None


class ContextListing(msgspec.Struct, forbid_unknown_fields=True):
    details: bool | None = None
    kind: Text = None


# -- the edge: media types, bodies, answers ---------------------------------------------------


async def read_json(call: Call[Any, Any], *, allowed: tuple[str, ...] = (JSON, JSONLD)
                    ) -> Any:
    media = body_media(call.request, allowed)
    raw = await call.raw_body()
    if not raw.strip():
        raise NgsiError("InvalidRequest", "the request needs a JSON body")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        raise NgsiError("InvalidRequest", f"the body is not JSON: {error}") from None
    except RecursionError:
        raise NgsiError("InvalidRequest", "the body nests too deeply") from None
    try:
        check_depth(body)
    except ApiError as error:
        raise NgsiError("BadRequestData", error.error) from None
    del media
    return body


def _headers_for_context(request: Request) -> dict[str, str]:
    headers = request.headers
    # merge-patch bodies carry their context like application/json ones.
    if ctx.media_type(headers) == MERGE_PATCH:
        return {"link": headers.get("link", ""), "content-type": JSON}
    return {"link": headers.get("link", ""), "content-type": headers.get("content-type", "")}


def terms_of(request: Request, body: Any = NO_CONTEXT) -> TermMap:
    body_context = body.get("@context", NO_CONTEXT) if isinstance(body, dict) else NO_CONTEXT
    if body is NO_CONTEXT or body is None:
        body_context = NO_CONTEXT
    headers = _headers_for_context(request)
    if not headers["link"]:
        headers.pop("link")
    return ctx.context_of_request(headers, body_context)


def query_terms(request: Request) -> TermMap:
    """A GET's term map: its Link header (a GET has no body to carry one)."""
    link = request.headers.get("link")
    return ctx.resolve(ctx.link_context(link) if link else None)


def _base(request: Request) -> str:
    settings = getattr(getattr(request.app.state, "node", None), "settings", None)
    configured = getattr(settings, "public_base_url", "") or ""
    return configured or f"{request.url.scheme}://{request.url.netloc}"


def answer(request: Request, payload: Any, terms: TermMap, *, status: int = 200,
           headers: dict[str, str] | None = None, geometry: str | None = None) -> Response:
    """Entities (or documents with short names) in the media asked for: @context in the body
    for application/ld+json, a Link header for application/json. Entities asked for as
    application/geo+json (`geometry` names the attribute that is their geometry) become a
    Feature or a FeatureCollection with the @context in the body."""
    media = answer_media(request)
    out_headers = dict(headers or {})
    if media == GEOJSON and geometry is None:
        media = JSON  # not entities: plain JSON
    if media == GEOJSON:
        context = terms.context
        if isinstance(context, str) and context.startswith("/"):
            context = ctx.served_url(context, _base(request))
        name = terms.compact(geometry or LOCATION)
        if isinstance(payload, list):
            payload = {"type": "FeatureCollection",
                       "features": [feature(p, name) for p in payload], "@context": context}
        else:
            payload = {**feature(payload, name), "@context": context}
    elif media == JSONLD:
        context = terms.context
        if isinstance(context, str) and context.startswith("/"):
            context = ctx.served_url(context, _base(request))
        if isinstance(payload, list):
            payload = [{**p, "@context": context} if isinstance(p, dict) else p
                       for p in payload]
        elif isinstance(payload, dict):
            payload = {**payload, "@context": context}
    else:
        out_headers["Link"] = ctx.link_header(terms, _base(request))
    return Response(msgspec.json.encode(payload), status, out_headers, media_type=media)


_SHAPES = {"keyValues", "simplified", "concise", "normalized"}


def _options(raw: str | None, fmt: str | None = None) -> set[str]:
    """The options asked for; `format` (clause 6.3.20) names the representation and wins
    over one named in `options`."""
    found = {o.strip() for o in (raw or "").split(",") if o.strip()}
    known = {*_SHAPES, "sysAttrs", "noOverwrite", "update", "replace"}
    unknown = found - known
    if unknown:
        raise NgsiError("InvalidRequest", f"options: {sorted(unknown)[0]!r} is not one of "
                                          f"{', '.join(sorted(known))}")
    if fmt is not None:
        fmt = fmt.strip()
        if fmt not in _SHAPES:
            raise NgsiError("InvalidRequest", f"format: {fmt[:40]!r} is not one of "
                                              f"{', '.join(sorted(_SHAPES))}")
        found = (found - _SHAPES) | {fmt}
    shapes = found & _SHAPES
    if "simplified" in shapes:
        shapes = (shapes - {"simplified"}) | {"keyValues"}
    if len(shapes) > 1:
        raise NgsiError("BadRequestData", "options: keyValues, concise and normalized "
                                          "exclude each other")
    return found


_PROJECTION_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_:/#.\-]*")
Tree = dict[str, Any]  # name -> the selection within the entity it links to (None: all)


def _tree(text: str, at: int, param: str, depth: int) -> tuple[Tree, int]:
    tree: Tree = {}
    while True:
        match = _PROJECTION_NAME.match(text, at)
        if match is None:
            raise NgsiError("BadRequestData", f"{param}: expected an attribute name at "
                                              f"character {at + 1} of {text[:200]!r}")
        name, at = match.group(), match.end()
        inner: Tree | None = None
        if at < len(text) and text[at] == "{":
            if depth >= MAX_JOIN_LEVEL:
                raise NgsiError("BadRequestData", f"{param}: nests deeper than "
                                                  f"{MAX_JOIN_LEVEL} linked entities")
            inner, at = _tree(text, at + 1, param, depth + 1)
            if at >= len(text) or text[at] != "}":
                raise NgsiError("BadRequestData", f"{param}: a {{ at character {at} of "
                                                  f"{text[:200]!r} is not closed")
            at += 1
        tree[name] = inner
        if at == len(text) or text[at] == "}":
            if at < len(text) and depth == 0:
                raise NgsiError("BadRequestData", f"{param}: an unopened }} at character "
                                                  f"{at + 1} of {text[:200]!r}")
            return tree, at
        if text[at] not in ",|":
            raise NgsiError("BadRequestData", f"{param}: {text[at]!r} at character {at + 1} "
                                              f"of {text[:200]!r} is not a separator (, or |)")
        at += 1


def projection_tree(text: str | None, param: str) -> Tree | None:
    """A pick or omit expression (clause 4.21): names separated by `,` or `|`, a name
    followed by `{...}` selecting within the entity a Relationship links to (with join)."""
    if text is None:
        return None
    tree, _ = _tree(text, 0, param, 0)
    return tree


def _projection(text: str | None, param: str) -> list[str] | None:
    """The top-level names of a pick or omit expression."""
    tree = projection_tree(text, param)
    return None if tree is None else list(tree)


def _names(raw: str | None, param: str, terms: TermMap) -> set[str] | None:
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        raise NgsiError("BadRequestData", f"{param}: give one or more attribute names")
    if len(names) > 1000:
        raise NgsiError("TooComplexQuery", f"{param}: more than 1000 names")
    for n in names:
        check_name(n, param)
        if n in ENTITY_MEMBERS:
            raise NgsiError("BadRequestData", f"{param}: {n!r} is a member of every entity, "
                                              "not an attribute")
    return {terms.expand(n) for n in names}


class Shape(msgspec.Struct):
    attrs: set[str] | None
    omit: set[str]
    key_values: bool
    concise: bool
    sys_attrs: bool
    keep_id: bool = True
    keep_type: bool = True
    lang: list[tuple[str, float]] | None = None  # language ranges, best first
    datasets: set[str | None] | None = None  # instances kept (None: the default one)
    geometry: str = LOCATION  # the GeoJSON representation's geometry (an attribute IRI)
    pick: Tree | None = None  # as given, with the selections within linked entities
    omitted: Tree | None = None


def _language_ranges(text: str | None) -> list[tuple[str, float]] | None:
    """`lang` (clause 4.15): language ranges with optional `;q=` weights, best first."""
    if text is None:
        return None
    ranges: list[tuple[str, float]] = []
    for part in text.split(","):
        tag, _, weight = part.strip().partition(";")
        tag = tag.strip()
        q = 1.0
        if weight:
            name, _, value = weight.strip().partition("=")
            try:
                q = float(value) if name.strip() == "q" else -1.0
            except ValueError:
                q = -1.0
            if not 0.0 <= q <= 1.0:
                raise NgsiError("BadRequestData", f"lang: {part.strip()[:40]!r} has no valid "
                                                  "q=0..1 weight")
        if not tag or not re.fullmatch(r"\*|[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", tag):
            raise NgsiError("BadRequestData", f"lang: {tag[:40]!r} is not a language range")
        ranges.append((tag.lower(), q))
    return sorted(ranges, key=lambda r: -r[1])


def projected(base: Shape, pick: Tree | None, omit: Tree | None, terms: TermMap,
              attrs: set[str] | None = None) -> Shape:
    """`base` narrowed by a pick and an omit selection (and `attrs`)."""
    keep_id = keep_type = True
    if pick is not None:
        keep_id, keep_type = "id" in pick, "type" in pick
        named = {terms.expand(n) for n in pick if n not in ("id", "type")}
        attrs = named if attrs is None else attrs & named
    omitted: set[str] = set()
    if omit is not None:
        keep_id, keep_type = keep_id and "id" not in omit, keep_type and "type" not in omit
        # `a{b}` omits b of the entity a links to, not a itself.
        omitted = {terms.expand(n) for n, inner in omit.items()
                   if n not in ("id", "type") and inner is None}
    return msgspec.structs.replace(base, attrs=attrs, omit=omitted, keep_id=keep_id,
                                   keep_type=keep_type, pick=pick, omitted=omit)


def _nests(tree: Tree | None) -> bool:
    return tree is not None and any(v is not None for v in tree.values())


def shape_of(q: EntityOptions, terms: TermMap) -> Shape:
    options = _options(q.options, q.format)
    attrs = _names(q.attrs, "attrs", terms)
    pick = projection_tree(q.pick, "pick")
    omit_tree = projection_tree(q.omit, "omit")
    if (_nests(pick) or _nests(omit_tree)) and q.join in (None, "@none"):
        raise NgsiError("BadRequestData", "pick, omit: a {...} selection applies to linked "
                                          "entities, so it goes with join=inline or flat")
    datasets: set[str | None] | None = None
    if q.datasetId is not None:
        given = [d.strip() for d in q.datasetId.split(",") if d.strip()]
        bad = next((d for d in given if d != "@none" and not is_uri(d)), None)
        if not given or bad is not None:
            raise NgsiError("BadRequestData", f"datasetId: {str(bad)[:100]!r} is not a URI "
                                              "(or @none, the default instance)")
        datasets = {None if d == "@none" else d for d in given}
    geometry = terms.expand(q.geometryProperty) if q.geometryProperty else LOCATION
    base = Shape(None, set(), bool(options & {"keyValues", "simplified"}),
                 "concise" in options, "sysAttrs" in options, lang=_language_ranges(q.lang),
                 datasets=datasets, geometry=geometry)
    return projected(base, pick, omit_tree, terms, attrs)


def _pick_language(language_map: dict[str, Any], ranges: list[tuple[str, float]]
                   ) -> tuple[str, Any] | None:
    """The entry of a languageMap the ranges prefer (RFC 4647 lookup: a range matches its
    tag or a longer one); failing all, any entry, as the spec asks for."""
    tags = [t for t in language_map if t != "@none"]
    for wanted, q in ranges:
        if q <= 0:
            continue
        if wanted == "*":
            break
        for tag in tags:
            low = tag.lower()
            if low == wanted or low.startswith(wanted + "-"):
                return tag, language_map[tag]
        for tag in tags:  # a longer range falls back to its primary language
            if wanted.startswith(tag.lower() + "-"):
                return tag, language_map[tag]
    if not language_map:
        return None
    tag = tags[0] if tags else "@none"
    return tag, language_map[tag]


def _in_language(entity: Entity, ranges: list[tuple[str, float]]) -> Entity:
    """LanguageProperties as Properties holding the preferred language's string (and its
    `lang`)."""
    out = dict(entity)
    for iri, instances in entity.items():
        if iri in ENTITY_MEMBERS or not isinstance(instances, list):
            continue
        if not any(i.get("type") == "LanguageProperty" for i in instances):
            continue
        shown = []
        for instance in instances:
            if instance.get("type") == "LanguageProperty":
                found = _pick_language(instance.get("languageMap") or {}, ranges)
                instance = {k: v for k, v in instance.items() if k != "languageMap"}
                instance["type"] = "Property"
                if found is not None:
                    instance["value"] = found[1]
                    if found[0] != "@none":
                        instance["lang"] = found[0]
            shown.append(instance)
        out[iri] = shown
    return out


def _of_datasets(entity: Entity, datasets: set[str | None]) -> Entity:
    out = {}
    for iri, instances in entity.items():
        if iri in ENTITY_MEMBERS or not isinstance(instances, list):
            out[iri] = instances
            continue
        kept = [i for i in instances if i.get("datasetId") in datasets]
        if kept:
            out[iri] = kept
    return out


def show(entity: Entity, terms: TermMap, s: Shape) -> dict[str, Any]:
    if s.datasets is not None:
        entity = _of_datasets(entity, s.datasets)
    if s.lang is not None:
        entity = _in_language(entity, s.lang)
    attrs = s.attrs
    if s.omit:
        attrs = (set(attribute_names(entity)) if attrs is None else attrs) - s.omit
    out = compact_entity(entity, terms, attrs=attrs, key_values=s.key_values,
                         sys_attrs=s.sys_attrs, concise=s.concise)
    if not s.keep_id:
        out.pop("id", None)
    if not s.keep_type:
        out.pop("type", None)
    return out


# -- linked entities (clause 4.5.23: join) ------------------------------------------------------

MAX_JOIN_LEVEL = 8


def join_of(q: EntityOptions) -> tuple[str | None, int]:
    """`join` (inline, flat or @none) and `joinLevel` (how many Relationships deep)."""
    if q.join in (None, "@none"):
        if q.joinLevel is not None:
            raise NgsiError("BadRequestData", "joinLevel: goes with join=inline or join=flat")
        return None, 0
    if q.join not in ("inline", "flat"):
        raise NgsiError("BadRequestData", f"join: {q.join[:20]!r} is not inline, flat or @none")
    level = 1 if q.joinLevel is None else q.joinLevel
    if not 1 <= level <= MAX_JOIN_LEVEL:
        raise NgsiError("BadRequestData", f"joinLevel: 1 to {MAX_JOIN_LEVEL}")
    return q.join, level


class Joiner:
    """The entities an answer's Relationships name, looked up as the key may see them (once
    each per answer), shown inside the Relationship (inline) or beside the entities (flat)."""

    def __init__(self, call: Call[Any, Any], terms: TermMap, shape: Shape, how: str,
                 level: int) -> None:
        self.call = call
        self.terms = terms
        self.how = how
        self.level = level
        # Linked entities in the answer's representation, whole unless a {...} selection of
        # pick or omit names what to show of them.
        self.base = Shape(None, set(), shape.key_values, shape.concise, shape.sys_attrs,
                          lang=shape.lang)
        self.found: dict[str, Entity | None] = {}

    def shape_for(self, parent: Shape, name: str) -> Shape:
        pick = parent.pick.get(name) if parent.pick is not None else None
        omit = parent.omitted.get(name) if parent.omitted is not None else None
        return projected(self.base, pick, omit, self.terms)

    def target(self, entity_id: str) -> Entity | None:
        if entity_id not in self.found:
            if len(self.found) >= MAX_IDS:
                raise NgsiError("TooManyResults", f"join: more than {MAX_IDS} linked entities")
            self.found[entity_id] = find_entity(self.call.node, self.call.principal, entity_id)
        return self.found[entity_id]

    def links(self, entity: Entity, shape: Shape | None = None) -> list[tuple[str, int, str]]:
        """(attribute IRI, instance index, object) of each Relationship of `entity` (that
        `shape` shows)."""
        out = []
        for iri, instances in entity.items():
            if iri in ENTITY_MEMBERS or not isinstance(instances, list):
                continue
            if shape is not None and (shape.attrs is not None and iri not in shape.attrs or
                                      iri in shape.omit):
                continue
            for n, instance in enumerate(instances):
                target = instance.get("object")
                if instance.get("type") == "Relationship" and isinstance(target, str):
                    out.append((iri, n, target))
        return out

    def inline(self, entity: Entity, shown: dict[str, Any], shape: Shape, level: int,
               path: frozenset[str]) -> dict[str, Any]:
        for iri, n, target_id in self.links(entity):
            name = self.terms.compact(iri)
            target = self.target(target_id) if target_id not in path else None
            if name not in shown or target is None:
                continue
            sub = self.shape_for(shape, name)
            linked = show(target, self.terms, sub)
            if level > 1:
                linked = self.inline(target, linked, sub, level - 1, path | {target_id})
            held = shown[name]
            if self.base.key_values:
                if n == 0:
                    shown[name] = linked
            elif isinstance(held, list) and n < len(held) and isinstance(held[n], dict):
                held[n] = {**held[n], "entity": linked}
            elif isinstance(held, dict) and n == 0:
                shown[name] = {**held, "entity": linked}
        return shown

    def flat(self, entities: list[Entity], shape: Shape) -> list[dict[str, Any]]:
        """The linked entities to list after `entities`, each once."""
        out: list[dict[str, Any]] = []
        listed = {e["id"] for e in entities}
        frontier = [(e, shape) for e in entities]
        for _ in range(self.level):
            following: list[tuple[Entity, Shape]] = []
            for entity, parent in frontier:
                for iri, _, target_id in self.links(entity, parent):
                    if target_id in listed:
                        continue
                    target = self.target(target_id)
                    if target is None:
                        continue
                    listed.add(target_id)
                    sub = self.shape_for(parent, self.terms.compact(iri))
                    out.append(show(target, self.terms, sub))
                    following.append((target, sub))
            frontier = following
        return out


def shown_with_links(call: Call[Any, Any], entities: list[Entity], terms: TermMap,
                     shape: Shape, q: EntityOptions) -> list[dict[str, Any]]:
    """The entities as shown, with their linked entities as `join` asks."""
    shown = [show(e, terms, shape) for e in entities]
    how, level = join_of(q)
    if how is None:
        return shown
    joiner = Joiner(call, terms, shape, how, level)
    if how == "inline":
        return [joiner.inline(e, d, shape, level, frozenset({e["id"]}))
                for e, d in zip(entities, shown, strict=True)]
    return shown + joiner.flat(entities, shape)


def _geometry_of(shown: Any) -> Any:
    """The GeoJSON geometry of an attribute as shown (normalized, concise or keyValues)."""
    if isinstance(shown, list):
        shown = next((i for i in shown if isinstance(i, dict) and "datasetId" not in i),
                     shown[0] if shown else None)
    if not isinstance(shown, dict):
        return None
    if shown.get("type") == "GeoProperty" or "value" in shown:
        shown = shown.get("value")
    if isinstance(shown, dict) and "coordinates" in shown and "type" in shown:
        return shown
    return None


def feature(doc: dict[str, Any], geometry_name: str) -> dict[str, Any]:
    """An entity as shown, as a GeoJSON Feature (clause 4.5.16)."""
    properties = {k: v for k, v in doc.items() if k not in ("id", "@context")}
    out: dict[str, Any] = {"id": doc.get("id"), "type": "Feature",
                           "geometry": _geometry_of(doc.get(geometry_name)),
                           "properties": properties}
    return out


# -- mapped types and the feed ----------------------------------------------------------------


def _sdm() -> Any:
    try:
        from cityops.ngsild import sdm

        return sdm
    except ImportError:
        return None


def is_mapped(type_iri: str) -> bool:
    sdm = _sdm()
    return bool(sdm is not None and sdm.is_mapped(type_iri))


def is_view(type_iri: str) -> bool:
    sdm = _sdm()
    return bool(sdm is not None and getattr(sdm, "is_view", None) is not None
                and sdm.is_view(type_iri))


async def write_mapped(node: Any, who: Principal, docs: list[Any], terms: TermMap, *,
                       mode: str) -> list[tuple[str, NgsiError | None]]:
    try:
        from cityops.ngsild import feed
    except ImportError:
        refusal = NgsiError("OperationNotSupported", "entities of Smart Data Models device "
                                                     "types cannot be written on this node")
        return [(str(d.get("id", "")), refusal) for d in docs]
    outcomes: list[tuple[str, NgsiError | None]] = await feed.write_mapped(
        node, who, docs, terms, mode=mode)
    return outcomes


def _view_refusal(type_iri: str, terms: TermMap) -> NgsiError:
    return NgsiError("OperationNotSupported",
                     f"type: {terms.compact(type_iri)} entities are CityOps records seen "
                     "through NGSI-LD (read only); change them through the CityOps API")


def _route(types: list[str]) -> str:
    """Where an entity of these types is written: "view", "mapped" or "context"."""
    if any(is_view(t) for t in types):
        return "view"
    if any(is_mapped(t) for t in types):
        return "mapped"
    return "context"


def _need_context_writer(who: Principal) -> None:
    if who.role not in WRITE_CONTEXT:
        raise ApiError(403, f"a {who.role.value} key may write only entities of Smart Data "
                            "Models device types (readings), not context entities")


def _one_outcome(outcomes: list[tuple[str, NgsiError | None]]) -> None:
    if not outcomes:
        raise NgsiError("InternalError", "the feed gave no outcome")
    error = outcomes[0][1]
    if error is not None:
        raise error


# -- guards -----------------------------------------------------------------------------------


def _entity_id(call: Call[Any, Any]) -> str:
    entity_id = call.path["entityId"]
    if not is_uri(entity_id):
        raise ApiError(400, f"entityId: {entity_id[:100]!r} is not a URI")
    return entity_id


async def load_entity(call: Call[Any, Any]) -> Entity | None:
    # A malformed request (its media, its options) is refused as such before the entity is
    # looked up: raised as the route layer's error, the NgsiError riding along as its cause,
    # which is what the answer's ProblemDetails show.
    query = call.query
    method = call.request.method
    with refused_early():
        if method in ("GET", "HEAD"):
            answer_media(call.request)
        elif method in ("POST", "PUT", "PATCH"):
            body_media(call.request, (JSON, JSONLD, MERGE_PATCH) if method == "PATCH"
                       else (JSON, JSONLD))
        if isinstance(query, (EntityOptions, WriteOptions)):
            _options(query.options, getattr(query, "format", None))
    return find_entity(call.node, call.principal, _entity_id(call))


def _seen(call: Call[Any, Any], entity: Entity) -> bool:
    return True  # providers answer only what the key may see


ENTITY_GUARD: Guard[Entity] = Guard(KIND, "entityId", load_entity, _seen)


def _is_context(call: Call[Any, Any]) -> bool:
    return call.node.ngsild.entities.peek(call.record["id"]) is not None


# -- entities ---------------------------------------------------------------------------------


def _location(entity_id: str) -> dict[str, str]:
    return {"Location": f"{PREFIX}/entities/{quote(entity_id, safe=':')}"}


def _context_scope(call: Call[Any, Any], entity: Entity) -> None:
    """A scoped key writes only entities located in its area, and never over one outside."""
    store = call.node.ngsild.entities
    who = call.principal
    if not store.would_see(who, entity):
        raise ApiError(403, f"a key scoped to {who.scope} may write only entities located "
                            "in its area")
    existing = store.peek(entity["id"])
    if existing is not None and not store.sees(who, entity["id"]):
        raise ApiError(403, f"a key scoped to {who.scope} may not write {entity['id']}")


async def create_entity(call: Call[Any, WriteOptions]) -> Response:
    body = await read_json(call)
    if body in ({}, []):
        raise NgsiError("InvalidRequest", "the body is empty JSON: no entity")
    terms = terms_of(call.request, body)
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", "the body must be one entity (a JSON object)")
    entity = expand_entity(body, terms)
    where = _route(entity["type"])
    if where == "view":
        raise _view_refusal(entity["type"][0], terms)
    if where == "mapped":
        doc = {k: v for k, v in body.items() if k != "@context"}
        _one_outcome(await write_mapped(call.node, call.principal, [doc], terms, mode="create"))
        return Response(status_code=201, headers=_location(entity["id"]))
    _need_context_writer(call.principal)
    _context_scope(call, entity)
    if find_entity(call.node, call.principal, entity["id"]) is not None and \
            call.node.ngsild.entities.peek(entity["id"]) is None:
        raise NgsiError("AlreadyExists", f"id: {entity['id']} is a CityOps record's entity")
    await call.node.ngsild.entities.create(entity)
    return Response(status_code=201, headers=_location(entity["id"]))


def _selector(type_text: str | None, id_text: str | None, id_pattern: str | None,
              terms: TermMap, where: str = "") -> Selector:
    """One entity selector: `where` prefixes the parameters' names in errors
    (`entities[1].` in a POST query)."""
    found = Selector()
    if type_text is not None:
        found.types = parse_types(type_text, terms, param=f"{where}type")
    if id_text is not None:
        ids = {i.strip() for i in id_text.split(",") if i.strip()}
        if not ids or len(ids) > MAX_IDS:
            raise NgsiError("BadRequestData", f"{where}id: give 1 to {MAX_IDS} entity ids")
        bad = next((i for i in ids if not is_uri(i)), None)
        if bad is not None:
            raise NgsiError("BadRequestData", f"{where}id: {bad[:100]!r} is not a URI")
        found.ids = ids
    if id_pattern is not None:
        if len(id_pattern) > 512:
            raise NgsiError("BadRequestData", f"{where}idPattern: longer than 512 characters")
        try:
            found.id_pattern = re2.compile(id_pattern)
        except Exception as error:
            raise NgsiError("BadRequestData", f"{where}idPattern: {id_pattern[:100]!r} is not "
                                              f"a regular expression ({error})") from None
    return found


def _query_of(q: EntityListing, terms: TermMap, selectors: list[Selector] | None = None
              ) -> EntityQuery:
    """The query of GET /entities's parameters, or of a POST query's document turned into
    them (its entity selectors given apart, as `selectors`)."""
    query = EntityQuery()
    if selectors is None:
        selectors = [_selector(q.type, q.id, q.idPattern, terms)]
    if len(selectors) == 1:
        only = selectors[0]
        query.types, query.ids, query.id_pattern = only.types, only.ids, only.id_pattern
    else:
        query.selectors = selectors
    if q.q is not None:
        query.q = parse_q(q.q)
    if q.scopeQ is not None:
        query.scope_q = check_scope_q(q.scopeQ)
    if q.georel is not None or q.geometry is not None or q.coordinates is not None:
        query.geo = parse_geoquery(q.georel, q.geometry, q.coordinates, q.geoproperty,
                                   terms=terms)
    elif q.geoproperty is not None:
        raise NgsiError("BadRequestData", "geoproperty: goes with georel, geometry and "
                                          "coordinates")
    query.attrs = _names(q.attrs, "attrs", terms)
    picked = _projection(q.pick, "pick") or []
    if query.attrs is None and picked and not {"id", "type"} & set(picked):
        # Picked attributes alone select, as attrs do: an entity with none of them would
        # show as nothing.
        query.attrs = {terms.expand(n) for n in picked}
    query.limit = DEFAULT_LIMIT if q.limit is None else q.limit
    query.offset = q.offset or 0
    query.count = bool(q.count)
    typed = any(s.types is not None for s in selectors)
    local = (q.local or "").strip().lower()
    if local not in ("", "true", "false"):
        raise NgsiError("BadRequestData", f"local: {local[:20]!r} is not true or false")
    if not typed and query.q is None and query.attrs is None and query.geo is None and \
            query.scope_q is None and local != "true":
        # Clause 5.7.2: ids alone do not make a query (every broker of a federation would
        # be asked to look up every id); local=true asks this node for all it holds.
        raise NgsiError("BadRequestData", "type, attrs, q, scopeQ or a geo-query is required "
                                          "(with id or idPattern if you like), or "
                                          "local=true")
    return query


async def _run_and_answer(call: Call[Any, Any], listing: EntityListing, terms: TermMap,
                          selectors: list[Selector] | None = None) -> Response:
    """One page of a query (GET /entities and POST /entityOperations/query alike)."""
    answer_media(call.request)
    query = _query_of(listing, terms, selectors)
    shape = shape_of(listing, terms)
    join_of(listing)
    page, total = run_query(call.node, call.principal, query, terms)
    headers = {COUNT_HEADER: str(total)} if total is not None else None
    return answer(call.request, shown_with_links(call, page, terms, shape, listing), terms,
                  headers=headers, geometry=shape.geometry)


async def query_entities(call: Call[Any, EntityListing]) -> Response:
    return await _run_and_answer(call, call.query, query_terms(call.request))


# A Query document's members (GS CIM 009 clause 5.2.23) CityOps reads, and those it takes and
# ignores as GET /entities ignores the same parameters (a distributed query's `local`, joins
# of linked entities, a temporal query's temporalQ, which has no meaning here).
_QUERY_MEMBERS = frozenset({"type", "entities", "attrs", "q", "geoQ", "scopeQ", "lang",
                            "pick", "omit", "datasetId", "geometryProperty", "join",
                            "joinLevel", "@context"})
_QUERY_IGNORED = frozenset({"temporalQ", "local", "containedBy", "csf"})
MAX_SELECTORS = 100


def _member_text(doc: dict[str, Any], name: str, where: str = "") -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise NgsiError("BadRequestData", f"{where}{name}: must be a non-empty string")
    return value


def _name_list(doc: dict[str, Any], name: str) -> str | None:
    """An array of names (or one string of them joined by commas), as a parameter's text."""
    value = doc.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value or \
            not all(isinstance(n, str) and n and "," not in n for n in value):
        raise NgsiError("BadRequestData", f"{name}: must be a non-empty array of names")
    return ",".join(value)


def _selectors_of(raw: Any, terms: TermMap) -> list[Selector] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise NgsiError("BadRequestData", "entities: must be a non-empty array of entity "
                                          "selectors ({type, id, idPattern})")
    if len(raw) > MAX_SELECTORS:
        raise NgsiError("TooComplexQuery", f"entities: more than {MAX_SELECTORS} selectors")
    out = []
    for index, item in enumerate(raw):
        where = f"entities[{index}]."
        if not isinstance(item, dict):
            raise NgsiError("BadRequestData", f"entities[{index}]: must be an object")
        unknown = sorted(set(item) - {"type", "id", "idPattern"})
        if unknown:
            raise NgsiError("BadRequestData", f"{where}{unknown[0]}: an entity selector has "
                                              "only type, id and idPattern")
        type_text, id_text, pattern = (_member_text(item, n, where)
                                       for n in ("type", "id", "idPattern"))
        if type_text is None and id_text is None and pattern is None:
            raise NgsiError("BadRequestData", f"entities[{index}]: give type, id or idPattern")
        out.append(_selector(type_text, id_text, pattern, terms, where))
    return out


def _geo_params(raw: Any) -> dict[str, str | None]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise NgsiError("BadRequestData", "geoQ: must be an object {georel, geometry, "
                                          "coordinates, geoproperty}")
    unknown = sorted(set(raw) - {"georel", "geometry", "coordinates", "geoproperty"})
    if unknown:
        raise NgsiError("BadRequestData", f"geoQ.{unknown[0]}: a geo-query has only georel, "
                                          "geometry, coordinates and geoproperty")
    coordinates = raw.get("coordinates")
    if isinstance(coordinates, list):
        coordinates = msgspec.json.encode(coordinates).decode()
    elif coordinates is not None and not isinstance(coordinates, str):
        raise NgsiError("BadRequestData", "geoQ.coordinates: must be an array (or its JSON "
                                          "text)")
    out = {"coordinates": coordinates}
    for name in ("georel", "geometry", "geoproperty"):
        out[name] = _member_text(raw, name, "geoQ.")
    return out


def _join_level(raw: Any) -> int | None:
    if raw is None or isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise NgsiError("BadRequestData", "joinLevel: a whole number of Relationships")


def _listing(**params: Any) -> EntityListing:
    try:
        return EntityListing(**params)
    except ValueError as error:  # EntityOptions' own checks
        raise NgsiError("BadRequestData", str(error)) from None


class QueryPaging(msgspec.Struct, forbid_unknown_fields=True):
    """The URL parameters of a POST query: the rest is in its body."""

    limit: int | None = None
    offset: int | None = None
    count: bool | None = None
    options: Text = None
    format: Text = None
    local: Text = None


async def query_post(call: Call[Any, QueryPaging]) -> Response:
    """Query entities via POST (clause 6.23): the Query document stands for GET /entities's
    parameters (several entity selectors besides), and is answered the same way."""
    body = await read_json(call)
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", "the body must be a Query (a JSON object)")
    terms = terms_of(call.request, body)
    if body.get("type") != "Query":
        raise NgsiError("BadRequestData", "type: a query document's type is \"Query\"")
    unknown = sorted(set(body) - _QUERY_MEMBERS - _QUERY_IGNORED)
    if unknown:
        raise NgsiError("BadRequestData", f"{unknown[0]}: not a member of a Query")
    selectors = _selectors_of(body.get("entities"), terms)
    paging = call.query
    try:
        listing = _listing(
            attrs=_name_list(body, "attrs"), pick=_name_list(body, "pick"),
            omit=_name_list(body, "omit"), options=paging.options, format=paging.format,
            lang=_member_text(body, "lang"), q=_member_text(body, "q"),
            datasetId=_name_list(body, "datasetId"), local=paging.local,
            join=_member_text(body, "join"), joinLevel=_join_level(body.get("joinLevel")),
            geometryProperty=_member_text(body, "geometryProperty"),
            scopeQ=_member_text(body, "scopeQ"), limit=paging.limit, offset=paging.offset,
            count=paging.count, **_geo_params(body.get("geoQ")))
        return await _run_and_answer(call, listing, terms, selectors)
    except NgsiError as error:
        if error.detail.startswith(("georel", "geometry", "coordinates", "geoproperty")):
            raise NgsiError(error.kind, "geoQ." + error.detail, error.status) from None
        raise


async def get_entity(call: Call[Any, EntityOptions]) -> Response:
    terms = query_terms(call.request)
    shape = shape_of(call.query, terms)
    answer_media(call.request)
    shown = shown_with_links(call, [call.record], terms, shape, call.query)
    if shape.attrs and not shape.attrs & set(call.record):
        raise NgsiError("ResourceNotFound", f"attrs: {call.record['id']} has none of the "
                                            "attributes asked for")
    if not shown[0]:
        raise NgsiError("ResourceNotFound", f"pick, omit: nothing of {call.record['id']} is "
                                            "left to show")
    # Flat lists the linked entities after the entity; with none, the entity is the answer.
    return answer(call.request, shown if len(shown) > 1 else shown[0], terms,
                  geometry=shape.geometry)


async def delete_entity(call: Call[Any, Any]) -> Response:
    if not _is_context(call):
        raise NgsiError("OperationNotSupported", f"entityId: {call.record['id']} is a CityOps "
                                                 "record's entity; retire it through the "
                                                 "CityOps API")
    _need_context_writer(call.principal)
    await call.node.ngsild.entities.delete(call.record["id"])
    return Response(status_code=204)


def _doc_for_feed(call: Call[Any, Any], body: dict[str, Any], terms: TermMap) -> dict[str, Any]:
    doc = {k: v for k, v in body.items() if k != "@context"}
    doc["id"] = call.record["id"]
    doc.setdefault("type", [terms.compact(t) for t in call.record["type"]])
    return doc


async def replace_entity(call: Call[Any, Any]) -> Response:
    body = await read_json(call)
    terms = terms_of(call.request, body)
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", "the body must be one entity (a JSON object)")
    entity_id = call.record["id"]
    if "id" in body and body["id"] != entity_id:
        raise NgsiError("BadRequestData", f"id: {str(body['id'])[:100]!r} differs from the "
                                          f"entityId in the path")
    new = expand_entity({**body, "id": entity_id,
                         "type": body.get("type", [terms.compact(t) for t in
                                                   call.record["type"]])}, terms)
    if not _is_context(call):
        _one_outcome(await write_mapped(call.node, call.principal,
                                        [_doc_for_feed(call, body, terms)], terms,
                                        mode="replace"))
        return Response(status_code=204)
    _need_context_writer(call.principal)
    _context_scope(call, new)
    await _modify(call, lambda before: new)
    return Response(status_code=204)


async def _modify(call: Call[Any, Any], change: Callable[[Entity], Entity]) -> None:
    entity_id = call.record["id"]

    def checked(before: Entity | None) -> Entity | None:
        if before is None:
            raise NgsiError("ResourceNotFound", f"entityId: no entity {entity_id}")
        after = change(before)
        if not call.node.ngsild.entities.would_see(call.principal, after):
            raise ApiError(403, f"a key scoped to {call.principal.scope} may not move an "
                                "entity out of its area")
        return after

    await call.node.ngsild.entities.modify(entity_id, checked)


def _same_instance(instances: list[dict[str, Any]], dataset: str | None) -> int | None:
    for i, instance in enumerate(instances):
        if instance.get("datasetId") == dataset:
            return i
    return None


def _put_instances(entity: Entity, iri: str, new: list[dict[str, Any]]) -> None:
    current = entity.setdefault(iri, [])
    for instance in new:
        at = _same_instance(current, instance.get("datasetId"))
        if at is None:
            current.append(instance)
        else:
            current[at] = instance


def _update_result(updated: list[str], not_updated: list[tuple[str, str]]) -> Reply | Response:
    if not not_updated:
        return Response(status_code=204)
    return Reply({"updated": updated,
                  "notUpdated": [{"attributeName": n, "reason": r} for n, r in not_updated]},
                 207)


@dataclass
class Fragment:
    """An update's body: the attributes it sets, the instances it deletes (NGSI-LD Null),
    the types it adds and the scope it sets (an empty list: deletes)."""

    body: dict[str, Any]
    terms: TermMap
    attrs: dict[str, list[dict[str, Any]]]
    gone: dict[str, list[str | None]]
    types: list[str]
    scope: list[str] | None
    names: dict[str, str]  # IRI -> the name the client wrote (what answers report)

    def name(self, iri: str) -> str:
        return self.names.get(iri) or self.terms.compact(iri)

    @property
    def empty(self) -> bool:
        return not (self.attrs or self.gone or self.types or self.scope is not None)


def fragment_of(body: Any, terms: TermMap, *, entity_id: str | None = None,
                where: str = "") -> Fragment:
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", f"{where}the body must be a JSON object of "
                                          "attributes".strip())
    if entity_id is not None and "id" in body and body["id"] != entity_id:
        raise NgsiError("BadRequestData", f"{where}id: {str(body['id'])[:100]!r} differs from "
                                          "the entityId in the path")
    kept, gone = nulls_of(body)
    types = expand_types(body["type"], terms, where) if "type" in body else []
    scope = None
    if "scope" in body:
        scope = [] if body["scope"] == NULL else expand_scope(body["scope"], where)
    names = {terms.expand(n): n for n in body if n not in ENTITY_MEMBERS}
    return Fragment(body, terms, expand_fragment(kept, terms, where=where),
                    {terms.expand(n): d for n, d in gone.items()}, types, scope, names)


async def _fragment_call(call: Call[Any, Any], *, allowed: tuple[str, ...] = (JSON, JSONLD)
                         ) -> Fragment:
    body = await read_json(call, allowed=allowed)
    frag = fragment_of(body, terms_of(call.request, body), entity_id=call.record["id"])
    if frag.empty:
        raise NgsiError("BadRequestData", "the body names no attribute")
    return frag


def _types_and_scope(entity: Entity, frag: Fragment, scope: str,
                     skipped: list[tuple[str, str]] | None = None) -> list[str]:
    """Add the fragment's types and apply its scope: "set" (replace), "add" (append with
    noOverwrite: the new scopes beside the old) or "update" (only an entity that has one).
    Returns the names of what it changed."""
    changed: list[str] = []
    if frag.types:
        before = list(entity["type"])
        entity["type"] = list(dict.fromkeys([*before, *frag.types]))
        if entity["type"] != before:
            changed.append("type")
    if frag.scope is None:
        return changed
    if scope == "update" and "scope" not in entity:
        if skipped is not None:
            skipped.append(("scope", "the entity has no scope to update"))
        return changed
    if not frag.scope:
        entity.pop("scope", None)
    elif scope == "add" and "scope" in entity:
        entity["scope"] = list(dict.fromkeys([*frag.scope, *entity["scope"]]))
    else:
        entity["scope"] = frag.scope
    changed.append("scope")
    return changed


def _deletions(entity: Entity, frag: Fragment, updated: list[str],
               skipped: list[tuple[str, str]]) -> None:
    for iri, datasets in frag.gone.items():
        name = frag.name(iri)
        if delete_instances(entity, iri, datasets):
            updated.append(name)
        else:
            skipped.append((name, "NGSI-LD Null names no instance the entity has"))


def _append(entity: Entity, frag: Fragment, no_overwrite: bool, updated: list[str],
            skipped: list[tuple[str, str]]) -> Entity:
    for iri, instances in frag.attrs.items():
        name = frag.name(iri)
        if no_overwrite and iri in entity:
            datasets = {i.get("datasetId") for i in entity[iri]}
            fresh = [i for i in instances if i.get("datasetId") not in datasets]
            if not fresh:
                skipped.append((name, "the attribute exists and noOverwrite was asked"))
                continue
            instances = fresh
        _put_instances(entity, iri, instances)
        updated.append(name)
    _deletions(entity, frag, updated, skipped)
    updated += _types_and_scope(entity, frag, "add" if no_overwrite else "set")
    return entity


def _update(entity: Entity, frag: Fragment, updated: list[str],
            skipped: list[tuple[str, str]]) -> Entity:
    for iri, instances in frag.attrs.items():
        name = frag.name(iri)
        have = entity.get(iri)
        if not have:
            skipped.append((name, "the entity has no such attribute"))
            continue
        missing = [i for i in instances if _same_instance(have, i.get("datasetId")) is None]
        if missing:
            skipped.append((name, f"no instance with datasetId "
                                  f"{missing[0].get('datasetId')!r}"))
            continue
        _put_instances(entity, iri, instances)
        updated.append(name)
    _deletions(entity, frag, updated, skipped)
    updated += _types_and_scope(entity, frag, "update", skipped)
    return entity


def _merge(entity: Entity, frag: Fragment) -> Entity:
    """Merge-patch: each instance's members merged into the one of its datasetId (or added),
    NGSI-LD Null deleting instances."""
    for iri, instances in frag.attrs.items():
        have = entity.get(iri)
        if not have:
            entity[iri] = instances
            continue
        for new in instances:
            at = _same_instance(have, new.get("datasetId"))
            if at is None:
                have.append(new)
            else:
                have[at] = _merge_instance(have[at], new)
    for iri, datasets in frag.gone.items():
        delete_instances(entity, iri, datasets)
    _types_and_scope(entity, frag, "set")
    return entity


async def _feed_update(call: Call[Any, Any], body: dict[str, Any], terms: TermMap) -> Response:
    """An attribute write to a CityOps record's entity: its values go in as readings."""
    _one_outcome(await write_mapped(call.node, call.principal,
                                    [_doc_for_feed(call, body, terms)], terms, mode="update"))
    return Response(status_code=204)


# (entity, what was updated, what was not and why) -> the entity changed
_AttrsChange = Callable[[Entity, list[str], list[tuple[str, str]]], Entity]


async def _write_attrs(call: Call[Any, Any], frag: Fragment, apply: _AttrsChange) -> Any:
    """Append or update: a record's entity takes the values as readings; a context entity is
    changed by `apply`, which tells what it updated and what it skipped for the 207."""
    if not _is_context(call):
        return await _feed_update(call, frag.body, frag.terms)
    _need_context_writer(call.principal)
    updated: list[str] = []
    skipped: list[tuple[str, str]] = []

    def change(entity: Entity) -> Entity:
        # _modify may call this again when the entity changed under it: count only the last run.
        updated.clear()
        skipped.clear()
        return apply(entity, updated, skipped)

    await _modify(call, change)
    return _update_result(updated, skipped)


async def append_attrs(call: Call[Any, WriteOptions]) -> Any:
    frag = await _fragment_call(call)
    no_overwrite = "noOverwrite" in _options(call.query.options)
    return await _write_attrs(call, frag, lambda entity, updated, skipped: _append(
        entity, frag, no_overwrite, updated, skipped))


async def update_attrs(call: Call[Any, Any]) -> Any:
    frag = await _fragment_call(call, allowed=(JSON, JSONLD, MERGE_PATCH))
    return await _write_attrs(call, frag, lambda entity, updated, skipped: _update(
        entity, frag, updated, skipped))


def _merge_instance(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for key, value in new.items():
        if key == "type" and value != old.get("type"):
            merged = {k: v for k, v in merged.items()
                      if k not in ("value", "object", "languageMap", "valueList",
                                   "objectList", "vocab", "json")}
        merged[key] = value
    return merged


_NOT_ATTRIBUTES = ("id", "type", "scope", "@context", "createdAt", "modifiedAt", "deletedAt")


def _attr_path(call: Call[Any, Any], terms: TermMap) -> tuple[str, str]:
    """The attribute the path names, and its IRI; `scope` and the entity's own members are not
    attributes to partially update or replace."""
    name = call.path["attrId"]
    check_name(name, "attrId")
    if name in _NOT_ATTRIBUTES:
        raise NgsiError("BadRequestData", f"attrId: {name!r} is not an attribute; change it "
                                          "with an update of the entity's attributes")
    return name, terms.expand(name)


async def _attribute_body(call: Call[Any, Any], *, allowed: tuple[str, ...] = (JSON, JSONLD)
                          ) -> tuple[dict[str, Any], TermMap]:
    """The body of a one-attribute write, without its @context, and the terms it is in."""
    body = await read_json(call, allowed=allowed)
    terms = terms_of(call.request, body)
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", "the body must be an attribute (a JSON object)")
    return {k: v for k, v in body.items() if k != "@context"}, terms


def _need_attribute(call: Call[Any, Any], iri: str, name: str) -> None:
    if iri not in call.record:
        raise NgsiError("ResourceNotFound", f"attrId: {call.record['id']} has no attribute "
                                            f"{name!r}")


async def partial_update(call: Call[Any, Any]) -> Response:
    """Partial attribute update (clause 6.7.3.1): the body's members (value, observedAt,
    sub-attributes ...) are merged into the instance of its datasetId; the result must still be
    the attribute's type. NGSI-LD Null deletes the instance."""
    raw, terms = await _attribute_body(call, allowed=(JSON, JSONLD, MERGE_PATCH))
    if not raw:
        raise NgsiError("BadRequestData", "the body names nothing to update")
    attr_name, iri = _attr_path(call, terms)
    if not _is_context(call):
        return await _feed_update(call, {attr_name: raw}, terms)
    _need_context_writer(call.principal)
    _need_attribute(call, iri, attr_name)
    rest, gone = split_nulls(raw)
    dataset = raw.get("datasetId")

    def change(entity: Entity) -> Entity:
        have = entity.get(iri)
        at = _same_instance(have or [], dataset)
        if not have or at is None:
            raise NgsiError("ResourceNotFound", f"datasetId: {attr_name!r} has no instance "
                                                f"{dataset!r}" if dataset else
                            f"attrId: {attr_name!r} has no default instance")
        if gone:
            delete_instances(entity, iri, gone)
            return entity
        old = have[at]
        kind = rest.get("type", old.get("type", "Property"))
        if kind != old.get("type", "Property"):
            raise NgsiError("BadRequestData", f"type: {attr_name!r} is a "
                                              f"{old.get('type', 'Property')}, not a {kind}")
        shown = compact_instance(old, terms)
        merged = {**shown, **rest} if isinstance(shown, dict) else rest
        _, (new,) = expand_attribute(attr_name, {**merged, "type": kind}, terms)
        have[at] = new
        return entity

    await _modify(call, change)
    return Response(status_code=204)


async def replace_attr(call: Call[Any, Any]) -> Response:
    """Replace an attribute (clause 6.7.3.3): the instance of the body's datasetId is replaced
    whole."""
    raw, terms = await _attribute_body(call)
    attr_name, iri = _attr_path(call, terms)
    _, instances = expand_attribute(attr_name, raw, terms)
    if not _is_context(call):
        return await _feed_update(call, {attr_name: raw}, terms)
    _need_context_writer(call.principal)
    _need_attribute(call, iri, attr_name)

    def change(entity: Entity) -> Entity:
        have = entity.get(iri) or []
        for new in instances:
            at = _same_instance(have, new.get("datasetId"))
            if at is None:
                raise NgsiError("ResourceNotFound", f"datasetId: {attr_name!r} has no "
                                                    f"instance {new.get('datasetId')!r}")
            have[at] = new
        return entity

    await _modify(call, change)
    return Response(status_code=204)


async def delete_attr(call: Call[Any, AttrDelete]) -> Response:
    if not _is_context(call):
        raise NgsiError("OperationNotSupported", f"entityId: {call.record['id']} is a CityOps "
                                                 "record's entity; its attributes are its "
                                                 "readings")
    _need_context_writer(call.principal)
    terms = query_terms(call.request)
    attr_name = call.path["attrId"]
    check_name(attr_name, "attrId")
    if attr_name == "scope":
        if "scope" not in call.record:
            raise NgsiError("ResourceNotFound", f"attrId: {call.record['id']} has no scope")

        def unscope(entity: Entity) -> Entity:
            entity.pop("scope", None)
            return entity

        await _modify(call, unscope)
        return Response(status_code=204)
    iri = terms.expand(attr_name)
    dataset = call.query.datasetId
    delete_all = bool(call.query.deleteAll)
    _need_attribute(call, iri, attr_name)

    def change(entity: Entity) -> Entity:
        have = entity.get(iri) or []
        if delete_all:
            kept: list[dict[str, Any]] = []
        else:
            at = _same_instance(have, dataset)
            if at is None:
                raise NgsiError("ResourceNotFound", f"datasetId: {attr_name!r} has no "
                                                    f"instance {dataset!r}")
            kept = have[:at] + have[at + 1:]
        if kept:
            entity[iri] = kept
        else:
            entity.pop(iri, None)
        return entity

    await _modify(call, change)
    return Response(status_code=204)


async def merge_entity(call: Call[Any, Any]) -> Response:
    frag = await _fragment_call(call, allowed=(JSON, JSONLD, MERGE_PATCH))
    if not _is_context(call):
        return await _feed_update(call, frag.body, frag.terms)
    _need_context_writer(call.principal)
    await _modify(call, lambda entity: _merge(entity, frag))
    return Response(status_code=204)


# -- batch operations -------------------------------------------------------------------------


def _problem(error: NgsiError | ApiError) -> dict[str, Any]:
    if isinstance(error, NgsiError):
        return error.problem()
    from cityops.ngsild.errors import problem_of

    return problem_of(error)


class _Batch:
    """A batch's documents sorted by where they go, with each one's outcome in order."""

    def __init__(self, call: Call[Any, Any], body: Any, media: str) -> None:
        self.call = call
        if not isinstance(body, list):
            raise NgsiError("BadRequestData", "the body must be a JSON array of entities")
        if not body:
            raise NgsiError("BadRequestData", "the batch is empty")
        self.docs = body
        self.media = media
        self.outcomes: list[tuple[str, NgsiError | ApiError | None] | None] = [None] * len(body)
        self.link_terms: TermMap | None = None
        if media != JSONLD:
            self.link_terms = terms_of(call.request)
        elif call.request.headers.get("link"):
            raise NgsiError("BadRequestData", "an application/ld+json batch carries each "
                                              "entity's @context in its body, not in a Link "
                                              "header")

    def terms(self, doc: dict[str, Any]) -> TermMap:
        if self.link_terms is not None:
            if "@context" in doc:
                raise NgsiError("BadRequestData", "@context: an application/json batch "
                                                  "carries its context in a Link header")
            return self.link_terms
        if "@context" not in doc:
            raise NgsiError("BadRequestData", "@context: each entity of an "
                                              "application/ld+json batch carries its @context")
        return ctx.resolve(doc["@context"])

    typeless = False  # update and merge name entities that exist: their type may be left out

    def _type_of_held(self, doc: dict[str, Any], index: int, terms: TermMap) -> None:
        """An update's document without a type takes the type of the entity it names."""
        entity_id = doc.get("id")
        held = find_entity(self.call.node, self.call.principal, str(entity_id)) \
            if is_uri(entity_id) else None
        if held is None:
            raise NgsiError("ResourceNotFound", f"entities[{index}]: no entity "
                                                f"{str(entity_id)[:100]!r}")
        doc["type"] = [terms.compact(t) for t in held["type"]]

    def sort(self) -> tuple[dict[int, tuple[TermMap, list[Any]]], list[int]]:
        """(mapped docs grouped by term map, as (terms, [(index, doc)])), context indices."""
        mapped: dict[int, tuple[TermMap, list[Any]]] = {}
        context: list[int] = []
        where_of: dict[tuple[int, str], str] = {}
        for index, doc in enumerate(self.docs):
            try:
                if not isinstance(doc, dict):
                    raise NgsiError("BadRequestData", f"entities[{index}]: not a JSON object")
                terms = self.terms(doc)
                if "type" not in doc and self.typeless:
                    self._type_of_held(doc, index, terms)
                raw_type: Any = doc.get("type")
                names: list[str] = raw_type if isinstance(raw_type, list) else [raw_type]
                if not names or not all(isinstance(n, str) and n for n in names):
                    raise NgsiError("BadRequestData", f"entities[{index}].type: an entity "
                                                      "needs a type")
                where = None
                for n in names:
                    key = (id(terms), n)
                    found = where_of.get(key)
                    if found is None:
                        found = where_of[key] = _route([terms.expand_type(n)])
                    where = found if where in (None, "context") else where
                if where == "view":
                    raise _view_refusal(terms.expand_type(names[0]), terms)
                if where == "mapped":
                    group = mapped.setdefault(id(terms), (terms, []))
                    group[1].append((index, doc))
                else:
                    context.append(index)
            except NgsiError as error:
                self.outcomes[index] = (_doc_id(doc), error)
        return mapped, context

    async def feed(self, mapped: dict[int, tuple[TermMap, list[Any]]], mode: str) -> None:
        for terms, items in mapped.values():
            docs = []
            for _, doc in items:
                doc.pop("@context", None)
                docs.append(doc)
            outcomes = await write_mapped(self.call.node, self.call.principal, docs, terms,
                                          mode=mode)
            for (index, _), outcome in zip(items, outcomes, strict=True):
                self.outcomes[index] = outcome

    def answer(self, all_ok: Response | Reply) -> Any:
        success = [o[0] for o in self.outcomes if o is not None and o[1] is None]
        errors = [{"entityId": o[0], "error": _problem(o[1])} for o in self.outcomes
                  if o is not None and o[1] is not None]
        if not errors:
            return all_ok
        return Reply({"success": success, "errors": errors}, 207)


def _doc_id(doc: Any) -> str:
    found = doc.get("id") if isinstance(doc, dict) else None
    return found[:1024] if isinstance(found, str) else ""


def _expanded(batch: _Batch, indices: list[int], op: str
              ) -> list[tuple[int, Entity, Fragment | None]]:
    """Each context document expanded: whole for create and upsert, as a fragment (NGSI-LD
    Null deleting, types added) for update and merge. One id given twice is created once (the
    second is AlreadyExists) and otherwise written twice, in order."""
    out: list[tuple[int, Entity, Fragment | None]] = []
    for index in indices:
        doc = batch.docs[index]
        where = f"entities[{index}]."
        try:
            terms = batch.terms(doc)
            if op in ("update", "merge"):
                if not is_uri(doc.get("id")):
                    raise NgsiError("BadRequestData", f"{where}id: an entity needs an id that "
                                                      "is a URI")
                frag = fragment_of(doc, terms, where=where)
                out.append((index, {"id": doc["id"], "type": frag.types}, frag))
            else:
                out.append((index, expand_entity(doc, terms, where=where), None))
        except NgsiError as error:
            batch.outcomes[index] = (_doc_id(doc), error)
    return out


def _batch_scope(call: Call[Any, Any], entities: list[tuple[int, Entity, Fragment | None]]
                 ) -> None:
    """A scoped key's batch naming a context entity outside its area is refused whole,
    before anything is written."""
    if not entities:
        return
    _need_context_writer(call.principal)
    store = call.node.ngsild.entities
    for _, entity, frag in entities:
        if frag is None:
            _context_scope(call, entity)
        elif store.peek(entity["id"]) is not None and not store.sees(call.principal,
                                                                     entity["id"]):
            raise ApiError(403, f"a key scoped to {call.principal.scope} may not write "
                                f"{entity['id']}")


def _upsert(entity: Entity, merge: bool, created: list[str]) -> Callable[[Entity | None],
                                                                        Entity]:
    def change(before: Entity | None) -> Entity:
        if before is None:
            created.append(entity["id"])
            return copy.deepcopy(entity)
        if not merge:
            return copy.deepcopy(entity)
        for iri, instances in entity.items():
            if iri not in ENTITY_MEMBERS:
                _put_instances(before, iri, copy.deepcopy(instances))
        before["type"] = list(dict.fromkeys([*before["type"], *entity["type"]]))
        return before

    return change


def _patch(entity_id: str, frag: Fragment, op: str, no_overwrite: bool,
           call: Call[Any, Any], skipped: list[tuple[str, str]]
           ) -> Callable[[Entity | None], Entity]:
    """A batch update (append, noOverwrite kept) or merge of one entity; what was not updated
    lands in `skipped` (the entity is then reported, what could be written is)."""

    def change(before: Entity | None) -> Entity:
        if before is None:
            raise NgsiError("ResourceNotFound", f"no entity {entity_id}")
        skipped.clear()
        if op == "merge":
            after = _merge(before, frag)
        else:
            updated: list[str] = []
            after = _append(before, frag, no_overwrite, updated, skipped)
            if not updated and not skipped:
                skipped.append(("(none)", "the entity names no attribute"))
        if not call.node.ngsild.entities.would_see(call.principal, after):
            raise ApiError(403, f"a key scoped to {call.principal.scope} may not move an "
                                "entity out of its area")
        return after

    return change


async def _batch_write(call: Call[Any, WriteOptions], op: str) -> Any:
    body = await read_json(call)
    batch = _Batch(call, body, ctx.media_type(call.request.headers))
    batch.typeless = op in ("update", "merge")
    options = _options(call.query.options)
    mapped, context = batch.sort()
    entities = _expanded(batch, context, op)
    _batch_scope(call, entities)
    await batch.feed(mapped, {"create": "create", "update": "update", "merge": "update"}.get(
        op, "replace" if "replace" in options and "update" not in options else "upsert"))
    store = call.node.ngsild.entities
    created: list[str] = []
    for index, entity, frag in entities:
        entity_id = entity["id"]
        try:
            if op == "create":
                if find_entity(call.node, call.principal, entity_id) is not None:
                    raise NgsiError("AlreadyExists", f"entity {entity_id} already exists")
                await store.create(entity)
                created.append(entity_id)
            elif op == "upsert":
                await store.modify(entity_id, _upsert(entity, "update" in options, created))
            else:
                assert frag is not None
                skipped: list[tuple[str, str]] = []
                await store.modify(entity_id, _patch(entity_id, frag, op,
                                                     "noOverwrite" in options, call, skipped))
                if skipped:
                    raise NgsiError("BadRequestData", "not updated: " + "; ".join(
                        f"{n} ({r})" for n, r in skipped))
            batch.outcomes[index] = (entity_id, None)
        except (NgsiError, ApiError) as error:
            batch.outcomes[index] = (entity_id, error)
    if op == "create":
        return batch.answer(Reply([o[0] for o in batch.outcomes if o is not None], 201))
    if op == "upsert":
        fresh = list(dict.fromkeys(o[0] for o in batch.outcomes if o is not None and
                                   o[1] is None and o[0] in created))
        return batch.answer(Reply(fresh, 201) if fresh else Response(status_code=204))
    return batch.answer(Response(status_code=204))


async def batch_create(call: Call[Any, WriteOptions]) -> Any:
    return await _batch_write(call, "create")


async def batch_upsert(call: Call[Any, WriteOptions]) -> Any:
    return await _batch_write(call, "upsert")


async def batch_update(call: Call[Any, WriteOptions]) -> Any:
    return await _batch_write(call, "update")


async def batch_merge(call: Call[Any, WriteOptions]) -> Any:
    return await _batch_write(call, "merge")


async def batch_delete(call: Call[Any, Any]) -> Any:
    body = await read_json(call)
    if not isinstance(body, list) or not body:
        raise NgsiError("BadRequestData", "the body must be a non-empty JSON array of "
                                          "entity ids")
    if len(body) > 100_000:
        raise NgsiError("TooComplexQuery", "more than 100,000 ids in one batch")
    store = call.node.ngsild.entities
    who = call.principal
    outcomes: list[tuple[str, NgsiError | ApiError | None]] = []
    ids: list[str] = []
    for index, entity_id in enumerate(body):
        if not is_uri(entity_id):
            outcomes.append((str(entity_id)[:1024], NgsiError(
                "BadRequestData", f"[{index}]: {str(entity_id)[:100]!r} is not a URI")))
        else:
            ids.append(entity_id)
    held = [i for i in ids if store.peek(i) is not None]
    if held:
        _need_context_writer(who)
        outside = next((i for i in held if not store.sees(who, i)), None)
        if outside is not None:
            raise ApiError(403, f"a key scoped to {who.scope} may not delete {outside}")
    for entity_id in ids:
        try:
            if store.peek(entity_id) is None:
                if find_entity(call.node, who, entity_id) is not None:
                    raise NgsiError("OperationNotSupported", f"{entity_id} is a CityOps "
                                                             "record's entity")
                raise NgsiError("ResourceNotFound", f"no entity {entity_id}")
            await store.delete(entity_id)
            outcomes.append((entity_id, None))
        except (NgsiError, ApiError) as error:
            outcomes.append((entity_id, error))
    errors = [{"entityId": i, "error": _problem(e)} for i, e in outcomes if e is not None]
    if not errors:
        return Response(status_code=204)
    return Reply({"success": [i for i, e in outcomes if e is None], "errors": errors}, 207)


# -- types and attributes ---------------------------------------------------------------------


def _catalogue_list(kind: str, member: str, iris: Iterable[str], terms: TermMap
                    ) -> dict[str, Any]:
    """An EntityTypeList or AttributeList: the short names, under an id that is the same for
    the same set of names."""
    import hashlib

    digest = hashlib.sha256("\n".join(sorted(iris)).encode()).hexdigest()[:16]
    return {"id": f"urn:ngsi-ld:{kind}:{digest}", "type": kind,
            member: sorted(terms.compact(i) for i in iris)}


def _attribute(iri: str, cat: Catalogue, terms: TermMap) -> dict[str, Any]:
    return {"id": iri, "type": "Attribute", "attributeName": terms.compact(iri),
            "attributeTypes": sorted(cat.kinds.get(iri, ()))}


def _path_name(call: Call[Any, Details], param: str) -> str | None:
    """The type or attribute the path names, checked; None for the listing's trailing slash."""
    name: str = call.path[param]
    if name:
        check_name(name, param)
    return name or None


# What these four answer comes from the providers' catalogues (providers.catalogue), not from a
# walk over every entity; a scoped key's answer is built from what it may see.


async def list_types(call: Call[Any, Details]) -> Response:
    terms = query_terms(call.request)
    types = catalogue(call.node, call.principal).attrs
    if call.query.details:
        payload: Any = [{"id": t, "type": "EntityType", "typeName": terms.compact(t),
                         "attributeNames": sorted(terms.compact(a) for a in attrs)}
                        for t, attrs in sorted(types.items())]
    else:
        payload = _catalogue_list("EntityTypeList", "typeList", types, terms)
    return answer(call.request, payload, terms)


async def get_type(call: Call[Any, Details]) -> Response:
    name = _path_name(call, "type")
    if name is None:
        return await list_types(call)  # /types/ is /types
    terms = query_terms(call.request)
    type_iri = terms.expand_type(name)
    cat = catalogue(call.node, call.principal)
    if type_iri not in cat.attrs:
        raise NgsiError("ResourceNotFound", f"type: no entity of type {name!r}")
    payload = {"id": type_iri, "type": "EntityTypeInfo", "typeName": terms.compact(type_iri),
               "entityCount": count_of(call.node, call.principal, cat, type_iri=type_iri),
               "attributeDetails": [_attribute(a, cat, terms)
                                    for a in sorted(cat.attrs[type_iri])]}
    return answer(call.request, payload, terms)


def _all_attributes(cat: Catalogue) -> set[str]:
    return set().union(*cat.attrs.values()) if cat.attrs else set()


async def list_attributes(call: Call[Any, Details]) -> Response:
    terms = query_terms(call.request)
    cat = catalogue(call.node, call.principal)
    names = _all_attributes(cat)
    if call.query.details:
        payload: Any = [_attribute(a, cat, terms) for a in sorted(names)]
    else:
        payload = _catalogue_list("AttributeList", "attributeList", names, terms)
    return answer(call.request, payload, terms)


async def get_attribute(call: Call[Any, Details]) -> Response:
    name = _path_name(call, "attrId")
    if name is None:
        return await list_attributes(call)  # /attributes/ is /attributes
    terms = query_terms(call.request)
    iri = terms.expand(name)
    cat = catalogue(call.node, call.principal)
    type_names = {t for t, names in cat.attrs.items() if iri in names}
    count = count_of(call.node, call.principal, cat, attr=iri) if type_names else 0
    if not count:
        raise NgsiError("ResourceNotFound", f"attrId: no entity has an attribute {name!r}")
    payload = {**_attribute(iri, cat, terms), "attributeCount": count,
               "typeNames": sorted(terms.compact(t) for t in type_names)}
    return answer(call.request, payload, terms)


# -- JSON-LD contexts -------------------------------------------------------------------------


def _library(call: Call[Any, Any]) -> ctx.Library:
    library: ctx.Library = call.node.ngsild.contexts
    return library


def _info(held: ctx.Held, base: str) -> dict[str, Any]:
    """A context's ContextInfo: a Cached copy by the remote URL it stands for, the others by
    this node's address for them."""
    return {"URL": held.url or f"{base}{ctx.CONTEXTS_PATH}/{held.id}", "localId": held.id,
            "kind": held.kind, "createdAt": now_iso(held.created)}


async def list_contexts(call: Call[Any, ContextListing]) -> Any:
    wanted = call.query.kind
    if wanted is not None and wanted not in ("Cached", "Hosted", "ImplicitlyCreated"):
        raise NgsiError("BadRequestData", "kind: one of Cached, Hosted, ImplicitlyCreated")
    base = _base(call.request)
    rows = [_info(h, base) for h in _library(call).listing()
            if wanted is None or h.kind == wanted]
    if call.query.details:
        return rows
    return [r["URL"] for r in rows]


def _context_id(call: Call[Any, Any]) -> str:
    cid = call.path["contextId"]
    own = ctx.own_id(cid) if "://" in cid else None
    return own or cid  # this node's own address for a context is its id


async def get_context(call: Call[Any, ContextListing]) -> Response:
    found = _library(call).document(_context_id(call))
    if found is None:
        raise NgsiError("ResourceNotFound", f"contextId: CityOps serves no context "
                                            f"{call.path['contextId'][:100]!r}")
    if call.query.details:
        payload: Any = _info(found, _base(call.request))
    else:
        payload = {"@context": found.body}
    return Response(msgspec.json.encode(payload), 200,
                    media_type=JSONLD if "ld+json" in call.request.headers.get("accept", "")
                    and not call.query.details else JSON)


async def add_context(call: Call[Any, Any]) -> Response:
    body = await read_json(call)
    if not isinstance(body, dict) or "@context" not in body:
        raise NgsiError("InvalidRequest", "@context: the body is a JSON-LD context document, "
                                          "{\"@context\": ...}")
    context = body["@context"]
    if not isinstance(context, (dict, list)):
        raise NgsiError("BadRequestData", "@context: give the context itself (an object or a "
                                          "list of objects and URLs)")
    library = _library(call)
    library.check(context)  # refused now if it names a context the node does not hold
    cid = await library.add(context)
    return Response(status_code=201, headers={"Location": f"{ctx.CONTEXTS_PATH}/{cid}"})


class ContextDelete(msgspec.Struct, forbid_unknown_fields=True):
    reload: bool | None = None


async def delete_context(call: Call[Any, ContextDelete]) -> Response:
    await _library(call).remove(_context_id(call), reload=bool(call.query.reload))
    return Response(status_code=204)


# -- the table --------------------------------------------------------------------------------

_ERRORS = (400, 406, 503)
_WRITE_ERRORS = (*_ERRORS, 409, 413, 415, 422)


def _ep(method: str, path: str, handler: Any, summary: str, roles: frozenset[Role],
        scope: Scope, **more: Any) -> Endpoint:
    errors = (*_WRITE_ERRORS, *more.pop("errors", ())) if method != "GET" else \
        (*_ERRORS, *more.pop("errors", ()))
    return Endpoint(method, PREFIX + path, handler, summary, roles, scope, tags=TAGS,
                    error_type=ProblemDetails, render_error=render_problem,
                    errors=tuple(sorted(set(errors))), **more)


def _raw(media: dict[str, Any], limit: int = ENTITY_BODY) -> dict[str, Any]:
    return {"raw_body": True, "request_content": media, "body_limit": limit}


_ENTITY = "/entities/{entityId}"

ROUTES: list[Endpoint] = [
    _ep("POST", "/entityOperations/create", batch_create,
        "NGSI-LD: create a batch of entities", WRITERS, Scope.CREATE, kind="ngsild_batch",
        query=WriteOptions, status=201, also_ok=(207,), response=list[str] | BatchResult,
        **_raw(BATCH_MEDIA, INGEST_BODY)),
    _ep("POST", "/entityOperations/upsert", batch_upsert,
        "NGSI-LD: create or replace (options=update: merge) a batch of entities", WRITERS,
        Scope.CREATE, kind="ngsild_batch", query=WriteOptions, status=201,
        also_ok=(204, 207), response=list[str] | BatchResult, **_raw(BATCH_MEDIA, INGEST_BODY)),
    _ep("POST", "/entityOperations/update", batch_update,
        "NGSI-LD: update the attributes of a batch of entities", WRITERS, Scope.CREATE,
        kind="ngsild_batch", query=WriteOptions, status=204, also_ok=(207,),
        response=BatchResult, **_raw(BATCH_MEDIA, INGEST_BODY)),
    _ep("POST", "/entityOperations/merge", batch_merge,
        "NGSI-LD: merge a batch of entities (merge-patch each)", WRITERS, Scope.CREATE,
        kind="ngsild_batch", query=WriteOptions, status=204, also_ok=(207,),
        response=BatchResult, **_raw(BATCH_MEDIA, INGEST_BODY)),
    _ep("POST", "/entityOperations/delete", batch_delete,
        "NGSI-LD: delete a batch of context entities", WRITE_CONTEXT, Scope.CREATE,
        kind="ngsild_ids", status=204, also_ok=(207,), response=BatchResult,
        **_raw(BATCH_MEDIA, INGEST_BODY)),
    _ep("POST", "/entities", create_entity, "NGSI-LD: create an entity", WRITERS,
        Scope.CREATE, kind=KIND, query=WriteOptions, status=201, **_raw(BODY_MEDIA)),
    _ep("GET", "/entities", query_entities,
        "NGSI-LD: query entities by type, id, idPattern, q, attrs and geo-query",
        READ_DEVICES, Scope.LIST, kind=KIND, query=EntityListing, response=list[Doc],
        errors=(403,)),
    _ep("POST", "/entityOperations/query", query_post,
        "NGSI-LD: query entities via POST (a Query document: entities, attrs, q, geoQ, "
        "scopeQ)", READ_DEVICES, Scope.LIST, kind=KIND, query=QueryPaging, status=200,
        response=list[Doc], errors=(403,), **_raw({JSON: Doc, JSONLD: Doc})),
    _ep("GET", _ENTITY, get_entity, "NGSI-LD: retrieve an entity", READ_DEVICES,
        Scope.RECORD, guard=ENTITY_GUARD, query=EntityOptions, response=Doc),
    _ep("PUT", _ENTITY, replace_entity, "NGSI-LD: replace an entity", WRITERS,
        Scope.RECORD, guard=ENTITY_GUARD, status=204, **_raw(BODY_MEDIA)),
    _ep("PATCH", _ENTITY, merge_entity, "NGSI-LD: merge an entity (merge-patch)", WRITERS,
        Scope.RECORD, guard=ENTITY_GUARD, status=204,
        **_raw({**BODY_MEDIA, MERGE_PATCH: Doc})),
    _ep("DELETE", _ENTITY, delete_entity, "NGSI-LD: delete a context entity", WRITE_CONTEXT,
        Scope.RECORD, guard=ENTITY_GUARD, status=204),
    _ep("POST", _ENTITY + "/attrs", append_attrs,
        "NGSI-LD: append attributes (options=noOverwrite)", WRITERS, Scope.RECORD,
        guard=ENTITY_GUARD, query=WriteOptions, status=204, also_ok=(207,),
        response=UpdateResult, **_raw(BODY_MEDIA)),
    _ep("PATCH", _ENTITY + "/attrs", update_attrs,
        "NGSI-LD: update existing attributes", WRITERS, Scope.RECORD, guard=ENTITY_GUARD,
        status=204, also_ok=(207,), response=UpdateResult, **_raw({**BODY_MEDIA, MERGE_PATCH: Doc})),
    _ep("PATCH", _ENTITY + "/attrs/{attrId}", partial_update,
        "NGSI-LD: partially update one attribute", WRITERS, Scope.RECORD, guard=ENTITY_GUARD,
        status=204, examples={"attrId": "name"}, **_raw({**BODY_MEDIA, MERGE_PATCH: Doc})),
    _ep("PUT", _ENTITY + "/attrs/{attrId}", replace_attr,
        "NGSI-LD: replace one attribute", WRITERS, Scope.RECORD, guard=ENTITY_GUARD,
        status=204, examples={"attrId": "name"}, **_raw(BODY_MEDIA)),
    _ep("DELETE", _ENTITY + "/attrs/{attrId}", delete_attr,
        "NGSI-LD: delete an attribute (datasetId, deleteAll)", WRITE_CONTEXT, Scope.RECORD,
        guard=ENTITY_GUARD, query=AttrDelete, status=204, examples={"attrId": "name"}),
    _ep("GET", "/types", list_types, "NGSI-LD: the entity types (details=true: each one's "
        "attributes)", READ_DEVICES, Scope.LIST, kind=KIND, query=Details,
        response=EntityTypeList | list[EntityTypeDetail]),
    _ep("GET", "/types/{type:path}", get_type, "NGSI-LD: one entity type's details",
        READ_DEVICES, Scope.LIST, kind=KIND, query=Details, response=EntityTypeInfo,
        errors=(404,),
        examples={"type": "Building"}),
    _ep("GET", "/attributes", list_attributes, "NGSI-LD: the attributes (details=true: "
        "each one's types)", READ_DEVICES, Scope.LIST, kind=KIND, query=Details,
        response=AttributeList | list[AttributeDetail]),
    _ep("GET", "/attributes/{attrId:path}", get_attribute, "NGSI-LD: one attribute's details",
        READ_DEVICES, Scope.LIST, kind=KIND, query=Details, response=AttributeInfo,
        errors=(404,),
        examples={"attrId": "name"}),
    _ep("GET", "/jsonldContexts", list_contexts,
        "NGSI-LD: the JSON-LD contexts CityOps serves (details=true, kind)", PUBLIC,
        Scope.NONE, query=ContextListing, response=list[str | ContextInfo]),
    _ep("POST", "/jsonldContexts", add_context, "NGSI-LD: host a JSON-LD context",
        WRITE_CONTEXT, Scope.CITY, status=201, **_raw(BODY_MEDIA, CONTEXT_BODY)),
    _ep("GET", "/jsonldContexts/{contextId:path}", get_context,
        "NGSI-LD: one JSON-LD context CityOps serves, by its id or the URL it stands for "
        "(details=true: its ContextInfo)", PUBLIC, Scope.NONE, query=ContextListing,
        response=Doc, errors=(404,), examples={"contextId": ctx.CORE_FILE}),
    _ep("DELETE", "/jsonldContexts/{contextId:path}", delete_context,
        "NGSI-LD: delete a hosted or implicitly created JSON-LD context, or drop a cached "
        "copy (reload=true: take it again now)", WRITE_CONTEXT, Scope.CITY, query=ContextDelete,
        status=204, errors=(404,), examples={"contextId": "nothing"}),
]

