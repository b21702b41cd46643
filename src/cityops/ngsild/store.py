"""Context entities: the ones no CityOps record stands behind (a parking site, a bus stop,
a building a producer describes), kept for queries and subscriptions, never fed to detection.

Held in memory, indexed by id and type, and saved in the node's record store (kind
`ngsild_entity`, one version-checked record per entity), so a restart and every web node of a
cluster see the same entities. Each write bumps the meta key `ngsild.version`; the other nodes
poll it and read the entities again when it moved, plus a full read every `FULL_RELOAD_S` in
case two writes raced on the key. Bounded: `Settings.ngsild_max_entities` entities, each at
most `ngsild_max_entity_bytes` as stored and `entity.MAX_ATTRIBUTES` attributes.

Every change is told to the listeners as `(before, after)` (None for a creation's before and
a deletion's after): the subscriptions part matches them against its subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from cityops.domain.access import Principal, can_see_place
from cityops.domain.city import AreaCodes
from cityops.ngsild.entity import (
    ENTITY_MEMBERS,
    MAX_ATTRIBUTES,
    Entity,
    attribute_names,
    now_iso,
    parse_datetime,
    point_of,
)
from cityops.ngsild.errors import NgsiError
from cityops.store.record_rows import Record
from cityops.store.update import DELETE, update_record

log = logging.getLogger(__name__)

KIND = "ngsild_entity"
VERSION_KEY = "ngsild.version"
FULL_RELOAD_S = 300.0
PAGE = 500

# (before, after, *, local): `local` is False for another node's write read back from the
# store, which that node has already told its own listeners (its subscriptions) of.
Listener = Callable[..., Any]
Change = Callable[[Entity | None], Entity | None]
"""A write: the entity as stored (None when there is none) -> what to store (None: delete)."""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class Unchanged(Exception):
    """Raised by a change that leaves the entity as it is: nothing is saved or told."""


class ContextStore:
    def __init__(self, node: Any) -> None:
        self.node = node
        self.listeners: list[Listener] = []
        self._entities: dict[str, Entity] = {}
        self._by_type: dict[str, dict[str, None]] = {}
        self._areas: dict[str, AreaCodes | None] = {}
        self._seen_version: str | None = None
        self._task: asyncio.Task[None] | None = None
        # What /types and /attributes list, kept as entities come and go (never a walk):
        # type -> attribute -> how many entities of the type have it, and attribute ->
        # attribute type (Property, Relationship ...) -> how many instances are of it.
        self._attr_count: dict[str, Counter[str]] = {}
        self._kind_count: dict[str, Counter[str]] = {}
        self._attr_total: Counter[str] = Counter()  # attribute -> entities having it

    # -- life -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._seen_version = await self.node.store.get_meta(VERSION_KEY)
        await self.reload(tell=False)
        self._task = asyncio.create_task(self._follow(), name="ngsild-entities-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    @property
    def max_entities(self) -> int:
        return int(getattr(self.node.settings, "ngsild_max_entities", 100_000))

    @property
    def max_bytes(self) -> int:
        return int(getattr(self.node.settings, "ngsild_max_entity_bytes", 256 * 1024))

    def __len__(self) -> int:
        return len(self._entities)

    async def _follow(self) -> None:
        every = max(0.2, float(getattr(self.node.settings, "snapshot_every_s", 2.0)))
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(every)
            try:
                await self.follow_once(full=time.monotonic() - last_full > FULL_RELOAD_S)
                if time.monotonic() - last_full > FULL_RELOAD_S:
                    last_full = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the context entities changed elsewhere failed; "
                              "trying again")

    async def follow_once(self, *, full: bool = False) -> bool:
        """Read the entities again if another node changed them (or `full`); True if read."""
        version = await self.node.store.get_meta(VERSION_KEY)
        if version == self._seen_version and not full:
            return False
        await self.reload()
        self._seen_version = version
        return True

    async def reload(self, *, tell: bool = True) -> None:
        """Every entity as stored; changes against memory are told to the listeners."""
        fresh: dict[str, Entity] = {}
        cursor: tuple[float, str] | None = None
        while True:
            page = await self.node.store.find_records(KIND, limit=PAGE, before=cursor)
            for rec in page:
                try:
                    fresh[rec.id] = _decode(rec.doc)
                except msgspec.DecodeError:
                    log.error("context entity %s is not readable JSON; left out", rec.id)
            if len(page) < PAGE:
                break
            cursor = (page[-1].created, page[-1].id)
        old = self._entities
        for entity_id in list(old):
            if entity_id not in fresh:
                self._forget(entity_id)
                if tell:
                    self._tell(old.get(entity_id), None, local=False)
        for entity_id, entity in fresh.items():
            before = self._entities.get(entity_id)
            if before == entity:
                continue
            self._keep(entity)
            if tell:
                self._tell(before, entity, local=False)

    # -- memory and indexes ---------------------------------------------------------------------

    def _keep(self, entity: Entity) -> None:
        entity_id = entity["id"]
        before = self._entities.get(entity_id)
        if before is not None:
            for t in before["type"]:
                self._by_type.get(t, {}).pop(entity_id, None)
            self._count(before, -1)
        self._entities[entity_id] = entity
        for t in entity["type"]:
            self._by_type.setdefault(t, {})[entity_id] = None
        self._count(entity, 1)
        self._areas[entity_id] = self._locate(entity)

    def _forget(self, entity_id: str) -> None:
        before = self._entities.pop(entity_id, None)
        self._areas.pop(entity_id, None)
        if before is not None:
            for t in before["type"]:
                ids = self._by_type.get(t)
                if ids is not None:
                    ids.pop(entity_id, None)
                    if not ids:
                        del self._by_type[t]
            self._count(before, -1)

    def _count(self, entity: Entity, step: int) -> None:
        names = attribute_names(entity)
        self._attr_total.update({n: step for n in names})
        if step < 0:
            self._attr_total = +self._attr_total
        for t in entity["type"]:
            counts = self._attr_count.setdefault(t, Counter())
            counts.update({n: step for n in names})
            if step < 0:
                self._attr_count[t] = +counts  # drops the names no entity has any more
                if not self._by_type.get(t):
                    del self._attr_count[t]
        for name in names:
            kinds = self._kind_count.setdefault(name, Counter())
            for instance in entity[name]:
                kinds[instance.get("type", "Property")] += step
            if step < 0:
                kinds = self._kind_count[name] = +kinds
                if not kinds:
                    del self._kind_count[name]

    def _locate(self, entity: Entity) -> AreaCodes | None:
        point = point_of(entity)
        if point is None:
            return None
        try:
            found: AreaCodes | None = self.node.city.resolve(point[0], point[1])
        except Exception:
            return None
        return found

    def _tell(self, before: Entity | None, after: Entity | None, *, local: bool = True
              ) -> None:
        for listener in list(self.listeners):
            try:
                listener(before, after, local=local)
            except Exception:
                log.exception("a context entity listener failed on %s",
                              (after or before or {}).get("id"))

    # -- what a key sees ------------------------------------------------------------------------

    def sees(self, who: Principal, entity_id: str) -> bool:
        """Whether the key may see the entity: unscoped keys see every one; a scoped key only
        one located in its area (never one without a location)."""
        scope = who.scope
        if scope.area is None and scope.department is None:
            return True
        return can_see_place(who, self._areas.get(entity_id), None,
                             getattr(self.node, "department_areas", None))

    def would_see(self, who: Principal, entity: Entity) -> bool:
        """Whether the key may see `entity` as it would be stored (a write's destination)."""
        scope = who.scope
        if scope.area is None and scope.department is None:
            return True
        return can_see_place(who, self._locate(entity), None,
                             getattr(self.node, "department_areas", None))

    # -- the Provider protocol ------------------------------------------------------------------

    def types(self) -> list[str]:
        return [t for t, ids in self._by_type.items() if ids]

    def attributes(self) -> dict[str, set[str]]:
        return {t: set(counts) for t, counts in self._attr_count.items()}

    def attribute_kinds(self) -> dict[str, set[str]]:
        """Attribute IRI -> the attribute types its instances are of."""
        return {name: set(kinds) for name, kinds in self._kind_count.items()}

    def count(self, who: Principal, types: set[str] | None, attr: str | None = None
              ) -> int | None:
        """How many entities of any of `types` (None: of any type) having `attr` (None: any)
        the key sees, from the counters for an unscoped key; None for a scoped key, whose
        share the engine counts by walking it (no counter knows where an entity lies)."""
        scope = who.scope
        if scope.area is not None or scope.department is not None:
            return None
        if types is None:
            return self._attr_total[attr] if attr is not None else len(self._entities)
        if len(types) != 1:
            return None  # an entity of two of the types would count twice
        t = next(iter(types))
        if attr is None:
            return len(self._by_type.get(t, ()))
        return self._attr_count.get(t, Counter())[attr]

    def find(self, who: Principal, *, types: set[str] | None, ids: set[str] | None,
             id_pattern: Any = None, envelope: Any = None) -> Iterator[Entity]:
        if ids is not None:
            candidates: Any = (i for i in ids if i in self._entities)
        elif types is not None:
            if len(types) == 1:
                candidates = iter(list(self._by_type.get(next(iter(types)), {})))
            else:
                seen: dict[str, None] = {}
                for t in types:
                    seen.update(self._by_type.get(t, {}))
                candidates = iter(list(seen))
        else:
            candidates = iter(list(self._entities))
        for entity_id in candidates:
            entity = self._entities.get(entity_id)
            if entity is None:
                continue
            if types is not None and ids is not None and not types.intersection(entity["type"]):
                continue
            if id_pattern is not None and id_pattern.search(entity_id) is None:
                continue
            if not self.sees(who, entity_id):
                continue
            yield entity

    def get(self, who: Principal, entity_id: str) -> Entity | None:
        entity = self._entities.get(entity_id)
        if entity is None or not self.sees(who, entity_id):
            return None
        return entity

    def owns(self, entity_id: str, types: list[str]) -> bool:
        return entity_id in self._entities

    def peek(self, entity_id: str) -> Entity | None:
        """The entity whatever the key (for the write paths, which check the scope)."""
        return self._entities.get(entity_id)

    # -- writes ---------------------------------------------------------------------------------

    def _now(self) -> float:
        clock = getattr(self.node, "clock", None)
        return float(clock()) if callable(clock) else time.time()

    def _check(self, entity: Entity) -> bytes:
        count = len(entity) - sum(1 for k in entity if k in ENTITY_MEMBERS)
        if count > MAX_ATTRIBUTES:
            raise NgsiError("BadRequestData", f"{entity['id']}: more than {MAX_ATTRIBUTES} "
                                              "attributes")
        raw = _encode(entity)
        if len(raw) > self.max_bytes:
            raise NgsiError("BadRequestData", f"{entity['id']}: {len(raw)} bytes as stored, "
                                              f"over the limit of {self.max_bytes}", 413)
        return raw

    async def modify(self, entity_id: str, change: Change) -> tuple[Entity | None, Entity | None]:
        """Apply `change` to the entity as stored, save the result version-checked (a clash
        with another node's save reads and decides again), then keep it and tell the
        listeners. Returns (before, after)."""
        now = self._now()
        stamp = now_iso(now)

        def decide(rec: Record | None) -> tuple[Any, tuple[Entity | None, Entity | None]]:
            before = _decode(rec.doc) if rec is not None else None
            try:
                # A copy of its own: a change may edit what it is given.
                after = change(_decode(rec.doc) if rec is not None else None)
            except Unchanged:
                return None, (before, before)
            if after is None:
                return (DELETE if rec is not None else None), (before, None)
            if before is None and len(self._entities) >= self.max_entities:
                raise NgsiError("OperationNotSupported",
                                f"the broker keeps at most {self.max_entities} context "
                                "entities; delete some first")
            _stamp(before, after, stamp)
            raw = self._check(after)
            created = rec.created if rec is not None else _epoch(after.get("createdAt"), now)
            saved = Record(kind=KIND, id=entity_id, doc=raw, status=after["type"][0][-200:],
                           created=created, updated=now,
                           version=rec.version if rec is not None else 0)
            return saved, (before, after)

        before, after = await update_record(self.node.store, KIND, entity_id, decide)
        if before is after or (after is not None and before == after and
                               self._entities.get(entity_id) == after):
            return before, after
        if after is None:
            self._forget(entity_id)
        else:
            self._keep(after)
        await self._bump()
        self._tell(before, after)
        return before, after

    async def create(self, entity: Entity) -> Entity:
        """A new entity; AlreadyExists if its id is taken."""

        def change(before: Entity | None) -> Entity:
            if before is not None:
                raise NgsiError("AlreadyExists", f"entity {entity['id']} already exists")
            return entity

        _, after = await self.modify(entity["id"], change)
        assert after is not None
        return after

    async def delete(self, entity_id: str) -> bool:
        def change(before: Entity | None) -> Entity | None:
            if before is None:
                raise NgsiError("ResourceNotFound", f"no entity {entity_id}")
            return None

        before, _ = await self.modify(entity_id, change)
        return before is not None

    async def _bump(self) -> None:
        store = self.node.store
        current = await store.get_meta(VERSION_KEY)
        token = f"{time.time_ns():x}-{secrets.token_hex(4)}"
        await store.set_meta(VERSION_KEY, token)
        if current == self._seen_version:
            # Nobody else wrote since this node last read: no need to read its own write back.
            self._seen_version = token


def _epoch(text: Any, default: float) -> float:
    moment = parse_datetime(text)
    return moment.timestamp() if moment is not None else default


def _stamp(before: Entity | None, after: Entity, now: str) -> None:
    """System times: the entity's createdAt kept from before, modifiedAt now; each attribute
    instance keeps its createdAt, and gets modifiedAt now when it changed."""
    after["createdAt"] = before.get("createdAt", now) if before is not None else now
    after["modifiedAt"] = now
    for iri in attribute_names(after):
        old = {i.get("datasetId"): i for i in (before or {}).get(iri, ())}
        for instance in after[iri]:
            previous = old.get(instance.get("datasetId"))
            if previous is not None:
                same = {k: v for k, v in previous.items() if k not in ("createdAt", "modifiedAt")}
                mine = {k: v for k, v in instance.items() if k not in ("createdAt", "modifiedAt")}
                instance["createdAt"] = previous.get("createdAt", now)
                instance["modifiedAt"] = previous.get("modifiedAt", now) if same == mine else now
            else:
                instance["createdAt"] = now
                instance["modifiedAt"] = now
