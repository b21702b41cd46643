"""Stored reading batches matched to NGSI-LD subscriptions, column-wise.

Every stored reading updates a device's entities (its domain type, its Device), so a node
taking 50,000 readings a second has as many entity updates to match. Matched one entity at a
time (candidates, selectors, watched attributes, each entity built whole), that cost more
than storing and checking the readings. Here the subscriptions that may hear of readings are
indexed once, when they or the registry change, and a batch is matched with array operations:

- what a subscription selects is a set of interests, one per (entity type, idPattern):
  those naming entities by id (`urn:ngsi-ld:<Type>:<device id>`) are kept by device index
  in arrays (compressed rows), so a batch's devices find theirs with a few gathers; those
  naming a whole type, or any entity (watchedAttributes only), are kept by device kind;
- an interest knows, per kind, which channels' readings change an attribute it watches
  (sdm.changed_by), as a bit mask;
- a batch is reduced to the rows that are now the latest of their series (a late reading
  changes no entity, and a row already overtaken by a later batch is that batch's to
  notify), and to one mask of changed channels per device. An interest hears a device when
  the masks meet.

q and geoQ are evaluated only for the subscriptions that have them (on the entity built
whole), scope by the device's stored areas and owner as for queries (api/devices.may_see),
and the entity notified holds only what the subscription asks for (`notification.attributes`),
built once per batch for every subscription asking for the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cityops.api.devices import may_see
from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.readings import ReadingBatch
from cityops.ngsild import sdm

Entity = dict[str, Any]
# The triggers a reading is: an update of the attributes it carries (never a creation: a
# device's entities exist from its registration).
HEARS = frozenset({"attributeUpdated", "entityUpdated"})
_MASK = np.uint16  # one bit per channel
assert MAX_CHANNELS <= 16


@dataclass(eq=False)
class Interest:
    """What one subscription wants of devices' entities of one type."""

    sub: Any  # subscriptions.Subscription
    type_iri: str  # a mapped type, canonical: a domain type or Device
    pattern: Any  # re2 pattern on the entity id, or None
    channels: np.ndarray  # per kind index: the channels whose readings it hears (bits)
    attrs: frozenset[str] | None  # what it notifies (canonical IRIs); None: everything

    @property
    def filters(self) -> bool:
        return self.sub.query is not None or self.sub.geo is not None


def _canonical(names: Iterable[str] | None) -> frozenset[str] | None:
    return None if names is None else frozenset(sdm.canonical(n) for n in names)


class ReadingIndex:
    """The subscriptions' interests in devices, for a registry of a given size."""

    def __init__(self, subs: Iterable[Any], registry: Any) -> None:
        self.registry = registry
        self.size = len(registry)
        kinds = registry.kinds
        self._kind_models = [sdm.MODELS.get(k.name) for k in kinds]
        self._kind_channels = [[c.name for c in k.channels] for k in kinds]
        self.interests: list[Interest] = []
        self.wide: dict[int, list[int]] = {}  # kind index -> interests of every device of it
        # Built for every (type, watched) once: a thousand subscriptions watch alike.
        self._masks: dict[tuple[str, frozenset[str] | None], np.ndarray] = {}
        self._prefixes: dict[str, str] = {}
        exact: list[tuple[int, int]] = []  # (device index, interest)
        for sub in subs:
            if sub.interval is not None or not (sub.triggers & HEARS):
                continue  # periodic, or told only of creations and deletions
            self._add(sub, exact)
        exact.sort()
        devices = np.fromiter((d for d, _ in exact), np.int64, len(exact))
        self.exact_slot = np.fromiter((i for _, i in exact), np.int64, len(exact))
        self.exact_start = np.searchsorted(devices, np.arange(self.size + 1)).astype(np.int64)

    def __bool__(self) -> bool:
        return bool(self.interests)

    def _add(self, sub: Any, exact: list[tuple[int, int]]) -> None:
        watched = _canonical(sub.watched)
        attrs = _canonical(sub.attrs)
        if not sub.selectors:  # watchedAttributes alone: any entity
            for type_iri in sorted(sdm.MAPPED_TYPES):
                slot = self._interest(sub, type_iri, None, watched, attrs)
                if slot is not None:
                    self._wide(slot)
            return
        slots: dict[tuple[bool, str, str | None], int | None] = {}
        for selector in sub.selectors:
            wide = selector.id is None
            text = selector.pattern.pattern if selector.pattern is not None else None
            for raw in selector.types:
                type_iri = sdm.canonical(raw)
                if type_iri not in sdm.MAPPED_TYPES:
                    continue  # a context entity's type: matched as its changes come
                key = (wide, type_iri, text)
                if key not in slots:
                    slots[key] = self._interest(sub, type_iri, selector.pattern, watched, attrs)
                    if wide and slots[key] is not None:
                        self._wide(slots[key])  # type: ignore[arg-type]
                slot = slots[key]
                if wide or slot is None:
                    continue
                prefix = self._prefixes.get(type_iri)
                if prefix is None:
                    prefix = self._prefixes[type_iri] = f"{sdm.URN}{sdm.type_term(type_iri)}:"
                if not selector.id.startswith(prefix):
                    continue
                index = self.registry.index.get(selector.id[len(prefix):])
                if index is not None:  # not (yet) a device: the index is rebuilt when one is
                    exact.append((index, slot))

    def _interest(self, sub: Any, type_iri: str, pattern: Any, watched: frozenset[str] | None,
                  attrs: frozenset[str] | None) -> int | None:
        masks = self._masks.get((type_iri, watched))
        if masks is None:
            masks = self._masks[type_iri, watched] = np.zeros(len(self._kind_models), _MASK)
            for k, (model, channels) in enumerate(zip(self._kind_models,
                                                      self._kind_channels)):
                bits = 0
                for c in range(len(channels)):
                    changed = sdm.changed_by(model, channels, type_iri, c)
                    if changed and (watched is None or watched & changed):
                        bits |= 1 << c
                masks[k] = bits
        if not masks.any():
            return None  # it watches nothing a reading changes
        self.interests.append(Interest(sub, type_iri, pattern, masks, attrs))
        return len(self.interests) - 1

    def _wide(self, slot: int) -> None:
        for k in np.flatnonzero(self.interests[slot].channels).tolist():
            self.wide.setdefault(k, []).append(slot)

    def candidates(self, devices: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(interest, its devices among `devices`) for every interest some of them meet."""
        out: list[tuple[int, np.ndarray]] = []
        inside = devices[devices < self.size]
        start = self.exact_start[inside]
        count = self.exact_start[inside + 1] - start
        hit = count > 0
        if hit.any():
            start, count, owners = start[hit], count[hit], inside[hit]
            total = int(count.sum())
            # Row r of the expansion is pair start[j] + (r - first row of j).
            offsets = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
            slots = self.exact_slot[np.repeat(start, count) + offsets]
            owned = np.repeat(owners, count)
            order = np.argsort(slots, kind="stable")
            slots, owned = slots[order], owned[order]
            firsts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])
            for first, devs in zip(firsts.tolist(), np.split(owned, firsts[1:])):
                out.append((int(slots[first]), devs))
        if self.wide:
            kinds = self.registry.kind_of[inside]
            for k, slots_of_kind in self.wide.items():
                devs = inside[kinds == k]
                if len(devs):
                    out.extend((slot, devs) for slot in slots_of_kind)
        return out


def changed_channels(batch: ReadingBatch, state: Any) -> tuple[np.ndarray, np.ndarray]:
    """The devices whose entities a stored batch changed, and per device the channels (bits)
    whose latest value is now the batch's. Rows already overtaken by a newer reading (a late
    one, or a later batch stored before this one is matched) change nothing here."""
    device = batch.device.astype(np.int64)
    series = device * MAX_CHANNELS + batch.channel
    inside = series < state.capacity
    latest = state.latest_ts[np.where(inside, series, 0)]
    current = inside & (latest == batch.ts)
    if not current.all():
        device, channel = device[current], batch.channel[current]
    else:
        channel = batch.channel
    if not len(device):
        return device, np.empty(0, _MASK)
    bits = np.left_shift(1, channel.astype(_MASK)).astype(_MASK)
    order = np.argsort(device, kind="stable")
    device, bits = device[order], bits[order]
    firsts = np.flatnonzero(np.r_[True, device[1:] != device[:-1]])
    return device[firsts], np.bitwise_or.reduceat(bits, firsts).astype(_MASK)


_UNBUILT: Entity = {}  # a key of `built` not looked up yet (None: no such entity)


def newest_rows(batch: ReadingBatch) -> ReadingBatch:
    """The newest row of each series (device, channel) of a batch."""
    series = batch.device.astype(np.int64) * MAX_CHANNELS + batch.channel
    order = np.lexsort((batch.ts, series))
    ordered = series[order]
    keep = order[np.r_[ordered[1:] != ordered[:-1], True]] if len(order) else order
    return ReadingBatch(batch.device[keep], batch.channel[keep], batch.ts[keep],
                        batch.value[keep], batch.received_ns, batch.source)


class Matcher:
    """Matches stored batches against the node's subscriptions' index."""

    def __init__(self, node: Any, builder: Any) -> None:
        self.node = node
        self.builder = builder
        self._index: ReadingIndex | None = None
        self._key: tuple[int, int] | None = None

    def index(self, subs: Iterable[Any], version: int) -> ReadingIndex:
        key = (version, len(self.node.registry))
        if self._index is None or self._key != key:
            self._index = ReadingIndex(subs, self.node.registry)
            self._key = key
        return self._index

    def match(self, index: ReadingIndex, batch: ReadingBatch, now: float
              ) -> dict[Any, list[Entity]]:
        """Per subscription, the entities a batch changed that it is to be told of, each in
        the form it asks for."""
        devices, changed = changed_channels(batch, self.node.history.state)
        if not len(devices) or not index:
            return {}
        groups = index.candidates(devices)
        if not groups:
            return {}
        kind_of = self.node.registry.kind_of
        wanted = np.unique(np.concatenate([devs for _, devs in groups]))
        latest = dict(zip(wanted.tolist(), self.builder.latest(wanted)))
        built: dict[tuple[int, str, frozenset[str] | None], Entity | None] = {}
        active: dict[int, bool] = {}
        out: dict[Any, list[Entity]] = {}
        devices_list = self.node.registry.devices
        build = self.builder.entity
        for slot, devs in groups:
            interest = index.interests[slot]
            sub = interest.sub
            on = active.get(id(sub))
            if on is None:
                on = active[id(sub)] = sub.status(now) == "active"
            if not on:
                continue
            masks = changed[np.searchsorted(devices, devs)]  # devices: sorted, unique
            hears = devs[(masks & interest.channels[kind_of[devs]]) != 0]
            if not len(hears):
                continue
            who = sub.who
            scoped = who.scope.area is not None or who.scope.department is not None
            type_iri, attrs, pattern = interest.type_iri, interest.attrs, interest.pattern
            filters = interest.filters
            found = out.setdefault(sub, [])
            if pattern is None and not filters and not scoped:
                measured = self._measured(hears, type_iri, attrs)
                if measured is not None:
                    found += measured
                    continue
            for d in hears.tolist():
                if scoped and not may_see(self.node, who, devices_list[d]):
                    continue
                if pattern is not None or filters:
                    whole = self._entity(built, d, type_iri, None, latest[d])
                    if whole is None or (pattern is not None and
                                         pattern.search(whole["id"]) is None) or \
                            (filters and not sub.filters(whole)):
                        continue
                key = (d, type_iri, attrs)
                entity = built.get(key, _UNBUILT)
                if entity is _UNBUILT:
                    entity = built[key] = build(d, type_iri, latest[d], attrs)
                if entity is not None:
                    found.append(entity)
        return {sub: found for sub, found in out.items() if found}

    def _measured(self, devices: np.ndarray, type_iri: str, attrs: frozenset[str] | None
                  ) -> list[Entity] | None:
        """The domain entities of `devices` cut down to measured attributes, their values read
        from the history's arrays a column at a time: what sdm.domain_entity_of gives for each
        (the common notification: one type, one kind, notification.attributes its measures).
        None when the devices or the choice are not that case."""
        if attrs is None or type_iri == sdm.DEVICE:
            return None
        kinds = self.node.registry.kind_of[devices]
        if (kinds != kinds[0]).any():
            return None
        facts = self.builder.facts
        first = facts(int(devices[0]))
        plan = sdm.measures_plan(first, attrs) if first.domain == type_iri else None
        if plan is None:
            return None
        state = self.node.history.state
        base = devices.astype(np.int64) * MAX_CHANNELS
        if int(base.max()) + MAX_CHANNELS > state.capacity:
            return None  # registered after the history last grew: the careful path
        columns = []
        for measure, at in plan:
            ts = state.latest_ts[base + at]
            value = state.latest_value[base + at]
            known = ((ts != sdm.NEVER) & ~np.isnan(value)).tolist()
            values = value.tolist()
            if measure.scale != 1.0:  # as sdm rounds a scaled value, one by one
                values = [round(v * measure.scale, 12) for v in values]
            columns.append((measure.iri, measure.unit, ts.tolist(), values, known))
        out = []
        when = sdm.rfc3339
        for i, d in enumerate(devices.tolist()):
            f = facts(d)
            if f.domain != type_iri:
                return None  # not of the type after all (a tracker without its vehicle)
            entity: Entity = {"id": f.domain_id, "type": [type_iri]}
            for iri, unit, ts_of, values, known in columns:
                if known[i]:
                    entity[iri] = [{"type": "Property", "value": values[i], "unitCode": unit,
                                    "observedAt": when(ts_of[i])}]
            out.append(entity)
        return out

    def _entity(self, built: dict[tuple[int, str, frozenset[str] | None], Entity | None],
                device: int, type_iri: str, attrs: frozenset[str] | None, latest: Any
                ) -> Entity | None:
        key = (device, type_iri, attrs)
        if key in built:
            return built[key]
        entity = built[key] = self.builder.entity(device, type_iri, latest, attrs)
        return entity


__all__ = ["HEARS", "Interest", "Matcher", "ReadingIndex", "changed_channels", "newest_rows"]
