"""Which partition each device's readings go to, and which of them a worker owns."""

from __future__ import annotations

import logging
import zlib
from typing import Any

import numpy as np

from cityops.bus.subjects import PARTITIONED
from cityops.domain.readings import ReadingBatch

log = logging.getLogger(__name__)


# -- partitioning ---------------------------------------------------------------------------
#
# A rule that forms groups of devices (windows per cell or area, composites of several rules'
# episodes within a time and a distance) is only right if one worker sees every reading of
# every device the group may hold, in the order ingest published them. The readings of the
# device kinds such rules read are therefore routed, kind by kind, to one partition per
# "spanning unit" (the rules that share a kind, joined); every other device keeps the
# partition its index hashes to. The key is a function of the device's kind alone, so a
# device registered later never moves a device already routed (which would split its
# history between two workers mid-stream). See docs/deploy.md, "Rules across devices".


class SpanPlan:
    """Which kinds (and which rules) the spanning units pin to which partition.

    `everything`: a spanning rule reads any kind (no `kind:`), so every device is pinned to
    that one partition: still right, but one worker does all the work."""

    def __init__(self, kinds: dict[str, int], rules: dict[str, int],
                 everything: int | None) -> None:
        self.kinds = kinds
        self.rules = rules
        self.everything = everything

    @classmethod
    def of(cls, scenarios, partitions: int) -> SpanPlan:
        from cityops.domain.scenarios import spec

        by_name = {f"{pack.name}.{rule.id}": (pack, rule) for pack in scenarios
                   for rule in pack.rules}
        any_kind = "*"

        def kinds_read(name: str, trail: frozenset[str]) -> set[str]:
            if name not in by_name or name in trail:
                return set()
            pack, rule = by_name[name]
            if isinstance(rule, spec.Composite):
                out: set[str] = set()
                for member in rule.all_of:
                    full = member if "." in member else f"{pack.name}.{member}"
                    out |= kinds_read(full, trail | {name})
                return out
            return {rule.kind or any_kind}

        units: list[tuple[set[str], set[str]]] = []  # (kinds, rules), joined when they meet
        for name, (_, rule) in by_name.items():
            spans = (isinstance(rule, spec.Window) and rule.per != "device") \
                or isinstance(rule, spec.Composite)
            if not spans:
                continue
            kinds, rules = kinds_read(name, frozenset()), {name}
            for unit in [u for u in units if u[0] & kinds or any_kind in u[0] | kinds]:
                units.remove(unit)
                kinds |= unit[0]
                rules |= unit[1]
            units.append((kinds, rules))
        kind_parts: dict[str, int] = {}
        rule_parts: dict[str, int] = {}
        everything = None
        for kinds, rules in units:
            partition = zlib.crc32(min(rules).encode()) % max(1, partitions)
            rule_parts.update(dict.fromkeys(rules, partition))
            if any_kind in kinds:
                everything = partition
                log.warning("rules %s read every kind of device across devices: every "
                            "device is routed to one partition (one detect worker)",
                            ", ".join(sorted(rules)))
            kind_parts.update(dict.fromkeys(kinds - {any_kind}, partition))
        return cls(kind_parts, rule_parts, everything)


class Router:
    """The partition of each device (by registry index) under a `SpanPlan`; what ingest
    publishes to, and what detect and history workers take their share by."""

    def __init__(self, registry, plan: SpanPlan, partitions: int) -> None:
        self.registry = registry
        self.plan = plan
        self.partitions = partitions
        self._pinned = np.array([plan.kinds.get(k.name, -1) for k in registry.kinds], np.int64)

    def of(self, devices: np.ndarray) -> np.ndarray:
        from cityops.bus.nats import partition_of

        devices = np.asarray(devices, np.int64)
        out = np.asarray(partition_of(devices, self.partitions), np.int64)
        if self.plan.everything is not None:
            return np.full(devices.shape, self.plan.everything, np.int64)
        if not self.plan.kinds or not devices.size:
            return out
        kind_of = self.registry.kind_of
        known = devices < kind_of.shape[0]  # not yet registered here: by hash until it is
        pinned = np.full(devices.shape, -1, np.int64)
        pinned[known] = self._pinned[kind_of[devices[known]]]
        return np.where(pinned >= 0, pinned, out)

    def rule(self, rule: str) -> int | None:
        """The partition whose worker speaks for a spanning rule's alerts (None: per device)."""
        return self.plan.rules.get(rule)


def router_for(registry, scenarios, settings) -> Router:
    return Router(registry, SpanPlan.of(scenarios, settings.partitions), settings.partitions)


_ROUTED: type | None = None


def routed_bus_class() -> type:
    """NatsBus publishing partitioned subjects by a `Router` once one is given (`route_with`),
    by device hash until then (a node that never evaluates rules publishes nothing partitioned
    but its own readings, and those of its devices only a spanning rule could pin)."""
    global _ROUTED
    if _ROUTED is not None:
        return _ROUTED
    from cityops.bus.nats import NatsBus, _fit, split_by_key

    class RoutedBus(NatsBus):
        router: Router | None = None
        _unrouted_told = False

        def route_with(self, router: Router) -> None:
            self.router = router

        def _encode(self, subject: str, message: Any) -> list[tuple[str, bytes]]:
            partitions = self.partitions_of(subject)
            if self.router is None and subject in PARTITIONED and not self._unrouted_told:
                # Every cluster node builds a detection engine, which gives the router; a
                # node without one would split groups that rules across devices need whole.
                self._unrouted_told = True
                log.warning("%s published by device hash alone: this node has no router "
                            "(rules across devices may miss alerts with several detect "
                            "workers)", subject)
            if (self.router is None or subject not in PARTITIONED or partitions <= 1
                    or not isinstance(message, ReadingBatch) or not len(message)):
                return super()._encode(subject, message)
            from cityops.bus.subjects import codec_for

            codec = codec_for(subject)
            pieces = split_by_key(message, self.router.of(message.device), partitions)
            limit = (self._nc.max_payload if self._nc is not None else 1024 * 1024) - 1024
            return [(self.nats_subject(subject, p), data) for p, piece in pieces
                    for data in _fit(codec, piece, limit)]

    _ROUTED = RoutedBus
    return RoutedBus


def owned_partitions(settings) -> list[int]:
    from cityops.bus.nats import share

    return share(settings.worker, settings.workers, settings.partitions)


def owned_devices(n: int, settings, router: Router | None = None) -> np.ndarray:
    """Per device index below `n`: is it in this worker's partitions."""
    from cityops.bus.nats import partition_of

    if settings.workers <= 1:
        return np.ones(n, bool)
    mine = np.zeros(settings.partitions, bool)
    mine[owned_partitions(settings)] = True
    devices = np.arange(n)
    if router is not None:
        return mine[router.of(devices)]
    return mine[partition_of(devices, settings.partitions)]


def owns_subject(subject: str, settings) -> bool:
    """Whether an alert on a non-device subject (a cell, an area) belongs to this worker: one
    worker by a fixed hash, so that exactly one restores it after a restart."""
    return zlib.crc32(subject.encode()) % max(1, settings.workers) == settings.worker


def owns_alert(alert, registry, owned: np.ndarray, router: Router | None, settings) -> bool:
    """Whether this worker restores an open alert: a spanning rule's by the partition its
    unit is pinned to (the only worker that sees its devices), any other by its device."""
    if router is not None and settings.workers > 1:
        pinned = router.rule(alert.rule)
        if pinned is not None:
            return pinned in owned_partitions(settings)
    d = registry.index.get(alert.subject)
    if d is None:
        return owns_subject(alert.subject, settings)
    return d < owned.shape[0] and bool(owned[d])
