"""Where entities come from, and the one query engine over all of them.

A `Provider` holds entities of some types: the context store (entities no CityOps record
stands behind) and the Smart Data Models views (devices, alerts, service requests, built by
`views.providers(node)`). The engine asks each for the candidates of a query's types and ids
(each answers only what the key may see) and applies `q`, the geo-query, `scopeQ` and the
attribute selection itself, then pages. Providers are asked in a fixed order, so `offset`
pages through one stable sequence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from cityops.domain.access import Principal
from cityops.ngsild.contexts import TermMap
from cityops.ngsild.entity import ENTITY_MEMBERS, Entity
from cityops.ngsild.errors import NgsiError
from cityops.ngsild.query import GeoQuery, Q, scope_matches

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000  # the spec lets a broker set its maximum; beyond it TooManyResults
MAX_IDS = 1000  # ids in one `id` parameter


class Provider(Protocol):
    """What the engine asks of a provider. Two methods are optional, for /types and
    /attributes without walking entities: `attribute_kinds() -> dict[str, set[str]]`
    (attribute IRI -> the attribute types its instances are of) and `count(who, types, attr)
    -> int | None` (how many entities of `types` (a set of one type, or None for any)
    having `attr` (None: any) the key sees; None when it cannot say without a walk)."""

    def types(self) -> list[str]:
        """The expanded type IRIs it holds entities of."""

    def attributes(self) -> dict[str, set[str]]:
        """Type IRI -> the attribute IRIs its entities of that type carry."""

    def find(self, who: Principal, *, types: set[str] | None, ids: set[str] | None,
             id_pattern: re.Pattern[str] | None,
             envelope: tuple[float, float, float, float] | None = None) -> Iterable[Entity]:
        """Entities of any of `types` (None: any), with one of `ids` (None: any) and an id
        matching `id_pattern`, that the key may see. `envelope` (lon/lat bounds, from a
        geo-query) is a hint: a provider may leave out entities whose point location lies
        outside it, before building them; what it yields is still checked by the query."""

    def get(self, who: Principal, entity_id: str) -> Entity | None:
        """One entity the key may see, or None."""

    def owns(self, entity_id: str, types: list[str]) -> bool:
        """Whether an entity of that id (and types) is this provider's to hold."""


def providers_of(node: Any) -> list[Provider]:
    """The context store first, then the Smart Data Models views (absent until that part is
    installed)."""
    found: list[Provider] = [node.ngsild.entities]
    try:
        from cityops.ngsild import views  # type: ignore[attr-defined,unused-ignore]

        found.extend(views.providers(node))
    except (ImportError, AttributeError):
        pass
    return found


@dataclass
class TypeSelection:
    """The `type` parameter: alternatives joined by `,` or `|`, each one type or several
    joined by `;` that an entity must all have (`(A;B)`), as expanded IRIs."""

    alternatives: list[frozenset[str]] = field(default_factory=list)

    @property
    def all_types(self) -> set[str]:
        return set().union(*self.alternatives) if self.alternatives else set()

    def matches(self, types: list[str]) -> bool:
        have = set(types)
        return any(alt <= have for alt in self.alternatives)

    @property
    def simple(self) -> bool:
        return all(len(alt) == 1 for alt in self.alternatives)


def parse_types(text: str, terms: TermMap, *, param: str = "type") -> TypeSelection:
    if not text or len(text) > 4096:
        raise NgsiError("BadRequestData", f"{param}: give one or more type names")
    out = TypeSelection()
    for alt in re.split(r"[,|]", text):
        names = [n.strip() for n in alt.strip().strip("()").split(";")]
        if not all(names) or any(re.search(r"[\s<>\"'=()]", n) for n in names):
            raise NgsiError("BadRequestData", f"{param}: {alt!r} is not a type name")
        out.alternatives.append(frozenset(terms.expand_type(n) for n in names))
    if len(out.alternatives) > 100:
        raise NgsiError("TooComplexQuery", f"{param}: more than 100 types")
    return out


@dataclass
class Selector:
    """Which entities by type, id and id pattern (all that are given must hold)."""

    types: TypeSelection | None = None
    ids: set[str] | None = None
    id_pattern: re.Pattern[str] | None = None


@dataclass
class EntityQuery:
    types: TypeSelection | None = None
    ids: set[str] | None = None
    id_pattern: re.Pattern[str] | None = None
    # Several selectors, any of which an entity may match (a POST query's `entities`); when
    # None the query has the one selector of `types`, `ids` and `id_pattern` above.
    selectors: list[Selector] | None = None
    q: Q | None = None
    geo: GeoQuery | None = None
    scope_q: str | None = None
    attrs: set[str] | None = None  # IRIs: entities having at least one of them
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    count: bool = False

    def check(self) -> None:
        if self.limit < 0 or self.offset < 0:
            raise NgsiError("BadRequestData", "limit and offset may not be negative")
        if self.limit > MAX_LIMIT:
            raise NgsiError("TooManyResults", f"limit: at most {MAX_LIMIT} entities in one "
                                              f"page, not {self.limit}; page with offset")
        if self.limit == 0 and not self.count:
            raise NgsiError("BadRequestData", "limit: 0 only goes with count=true")


    def all_selectors(self) -> list[Selector]:
        if self.selectors:
            return self.selectors
        return [Selector(self.types, self.ids, self.id_pattern)]


def _matching(query: EntityQuery, selector: Selector, terms: TermMap,
              candidates: Iterable[Entity]) -> Iterator[Entity]:
    q, geo, attrs, scope_q = query.q, query.geo, query.attrs, query.scope_q
    types = selector.types
    for entity in candidates:
        if types is not None and not types.simple and not types.matches(entity["type"]):
            continue
        if attrs is not None and not any(a in entity for a in attrs):
            continue
        if scope_q is not None and not scope_matches(entity.get("scope"), scope_q):
            continue
        if q is not None and not q.matches(entity, terms):
            continue
        if geo is not None and not geo.matches(entity):
            continue
        yield entity


def run_query(node: Any, who: Principal, query: EntityQuery, terms: TermMap
              ) -> tuple[list[Entity], int | None]:
    """One page of the entities matching `query` that the key may see, and (with
    `count`) how many match in all."""
    query.check()
    page: list[Entity] = []
    seen = 0
    selectors = query.all_selectors()
    envelope = query.geo.envelope() if query.geo is not None else None
    for provider in providers_of(node):
        # An entity two selectors match is one result: the ids already taken from this
        # provider are remembered (only when there are several selectors; providers hold
        # distinct ids).
        taken: set[str] | None = set() if len(selectors) > 1 else None
        for selector in selectors:
            types = selector.types.all_types if selector.types is not None else None
            candidates = provider.find(who, types=types, ids=selector.ids,
                                       id_pattern=selector.id_pattern, envelope=envelope)
            for entity in _matching(query, selector, terms, candidates):
                if taken is not None:
                    if entity["id"] in taken:
                        continue
                    taken.add(entity["id"])
                if seen >= query.offset and len(page) < query.limit:
                    page.append(entity)
                seen += 1
                if not query.count and len(page) >= query.limit and seen > query.offset:
                    return page, None
    return page, (seen if query.count else None)


def find_entity(node: Any, who: Principal, entity_id: str) -> Entity | None:
    """The entity of that id the key may see, from whichever provider holds it."""
    for provider in providers_of(node):
        found = provider.get(who, entity_id)
        if found is not None:
            return found
    return None


def _scoped(who: Principal) -> bool:
    return who.scope.area is not None or who.scope.department is not None


@dataclass
class Catalogue:
    """What /types and /attributes list: type IRI -> its attribute IRIs, attribute IRI -> its
    attribute types (Property, Relationship ...); with the counts, when they were had on the
    way (a scoped key's walk)."""

    attrs: dict[str, set[str]] = field(default_factory=dict)
    kinds: dict[str, set[str]] = field(default_factory=dict)
    type_counts: dict[str, int] | None = None
    attr_counts: dict[str, int] | None = None


def catalogue(node: Any, who: Principal) -> Catalogue:
    """The types and attributes a key may learn of.

    An unscoped key sees every entity, so each provider's own catalogue answers (`types()`,
    `attributes()`, and `attribute_kinds()` where a provider keeps it; for one that does not,
    the kinds are read off the first entity of each of its types: an attribute no such entity
    carries is listed with no attribute type rather than a guessed one). No entity is
    walked.

    A scoped key learns only of the types and attributes of entities it may see: a name that
    exists only elsewhere is information about elsewhere. So its catalogue is built from those
    entities, walked (its share of the city, not the whole), with the counts on the way."""
    if _scoped(who):
        return _walked(node, who)
    out = Catalogue()
    for provider in providers_of(node):
        for type_iri in provider.types():
            out.attrs.setdefault(type_iri, set())
        for type_iri, names in provider.attributes().items():
            out.attrs.setdefault(type_iri, set()).update(names)
        own = getattr(provider, "attribute_kinds", None)
        if own is not None:
            for name, kinds in own().items():
                out.kinds.setdefault(name, set()).update(kinds)
            continue
        for type_iri in provider.attributes():
            sample = next(iter(provider.find(who, types={type_iri}, ids=None,
                                             id_pattern=None)), None)
            for name, kinds in attribute_kinds([sample]).items():
                out.kinds.setdefault(name, set()).update(kinds)
    return out


def _walked(node: Any, who: Principal) -> Catalogue:
    out = Catalogue(type_counts={}, attr_counts={})
    assert out.type_counts is not None and out.attr_counts is not None
    for provider in providers_of(node):
        for entity in provider.find(who, types=None, ids=None, id_pattern=None):
            names = [k for k in entity if k not in ENTITY_MEMBERS]
            for t in entity["type"]:
                out.attrs.setdefault(t, set()).update(names)
                out.type_counts[t] = out.type_counts.get(t, 0) + 1
            for name in names:
                out.attr_counts[name] = out.attr_counts.get(name, 0) + 1
                out.kinds.setdefault(name, set()).update(
                    i.get("type", "Property") for i in entity[name])
    return out


def count_of(node: Any, who: Principal, cat: Catalogue, *, type_iri: str | None = None,
             attr: str | None = None) -> int:
    """How many entities the key sees of `type_iri`, or having `attr`: from the walk for a
    scoped key, from the providers' counters where they keep them, else by walking only the
    entities of that type (of the types whose catalogue names `attr`)."""
    if type_iri is not None and cat.type_counts is not None:
        return cat.type_counts.get(type_iri, 0)
    if attr is not None and cat.attr_counts is not None:
        return cat.attr_counts.get(attr, 0)
    total = 0
    for provider in providers_of(node):
        counter = getattr(provider, "count", None)
        types = {type_iri} if type_iri is not None else None
        found = counter(who, types, attr) if counter is not None else None
        if found is None:
            if types is None:
                types = {t for t, names in provider.attributes().items() if attr in names}
                if not types:
                    continue
            found = sum(1 for e in provider.find(who, types=types, ids=None, id_pattern=None)
                        if attr is None or attr in e)
        total += found
    return total


def attribute_kinds(entities: Iterable[Entity | None]) -> dict[str, set[str]]:
    """Attribute IRI -> the attribute types (Property, Relationship ...) seen."""
    out: dict[str, set[str]] = {}
    for entity in entities:
        if entity is None:
            continue
        for iri, instances in entity.items():
            if iri in ENTITY_MEMBERS:
                continue
            for instance in instances:
                out.setdefault(iri, set()).add(instance.get("type", "Property"))
    return out
