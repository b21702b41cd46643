"""Cluster mode: the pieces a node needs when its parts run in other processes.

A cluster node talks to the others only through NATS JetStream (the bus) and PostgreSQL (the
store). Which parts it builds follows from its roles (see `Node`); this module holds what
the single process never needed:

- `open_bus`: the NATS bus from the `--bus` URL (options in its query string);
- `BusView`: one component's view of the bus (its own consumer group, its worker's share of
  the partitions);
- `prepare_group`: a consumer group's durable consumers made before it subscribes: from the
  start of the retained stream for the groups that must see everything, and rewound to the
  last acknowledged message when a previous incarnation died holding unacknowledged ones;
- `StreamHistory`: the history of a node that keeps none (the stream is the durable log):
  only the latest values, in memory;
- `HistoryFeeder`, `LatestFollower`: readings from the stream into the history log (the
  `history` role) or into the latest values of a web or act node;
- `StreamLag` and `IngestBus`: ingest refuses (503) while detection is too far behind;
- `NoReader`, `NoIngest`: the answer of a node asked for what it does not run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import urllib.parse
import zlib
from typing import Any

import numpy as np

from cityops.background import Background
from cityops.bus.subjects import PARTITIONED, READINGS, REJECTIONS
from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.readings import ReadingBatch
from cityops.history.log import Appended
from cityops.history.state import SeriesState
from cityops.ingest.pipeline import Overloaded

log = logging.getLogger(__name__)

ROLES = ("ingest", "detect", "act", "web", "history")
# Consumer groups of the components that must each see every message once, deployment-wide.
DETECT_GROUP = "detect"
HISTORY_GROUP = "history"
ACT_GROUP = "act"
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def parse_roles(values: list[str]) -> list[str]:
    """`--role ingest --role detect` or `--role ingest,detect`; `all` stands for every role."""
    roles: list[str] = []
    for value in values:
        for role in value.split(","):
            role = role.strip().lower()
            if not role:
                continue
            if role != "all" and role not in ROLES:
                raise ValueError(f"unknown role {role!r}: use {', '.join(ROLES)} or all")
            if role not in roles:
                roles.append(role)
    if not roles:
        return ["all"]
    return ["all"] if "all" in roles else roles


# -- the bus ------------------------------------------------------------------------------------

_BUS_OPTIONS = {
    "stream": str, "prefix": str, "storage": str, "max_in_flight": int, "max_age": float,
    "max_bytes": int, "replicas": int, "duplicate_window": float, "ack_wait": float,
    "max_deliver": int, "max_ack_pending": int, "ack_timeout": float,
    "publish_timeout": float, "fetch_batch": int, "fetch_wait": float, "buffer_bytes": int,
}


def bus_options(url: str) -> tuple[str, dict[str, Any]]:
    """`nats://host:port?stream=CITYOPS&ack_wait=30` -> (server URL, NatsBus options)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("nats", "tls"):
        raise ValueError(f"--bus {url!r} must look like nats://host:port")
    options: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(parts.query):
        kind = _BUS_OPTIONS.get(key)
        if kind is None:
            raise ValueError(f"--bus: unknown option {key!r} (known: {', '.join(_BUS_OPTIONS)})")
        try:
            options[key] = kind(value)
        except ValueError:
            raise ValueError(f"--bus: {key}={value!r} is not a {kind.__name__}") from None
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", "")), options


def open_bus(settings):
    server, options = bus_options(settings.bus_url)
    return routed_bus_class()(server, partitions=settings.partitions,
                              name=f"cityops-{settings.node_name or 'node'}", **options)


def is_nats(bus) -> bool:
    return type(bus).__name__ in ("NatsBus", "RoutedBus")


class BusView:
    """What one component sees of the bus: subscriptions in its own consumer group and, on the
    partitioned subjects, only its worker's partitions. Publishing goes straight through.

    On the in-process bus every subscriber gets every message, so the view changes nothing
    there; on NATS two subscriptions of one group would split a subject between them."""

    def __init__(self, bus, group: str | None = None, partitions: list[int] | None = None):
        self.bus = bus
        self.group = group
        self.partitions = partitions

    def subscribe(self, subject: str, *, maxsize: int = 1024):
        if not is_nats(self.bus):
            return self.bus.subscribe(subject, maxsize=maxsize)
        owned = self.partitions if subject in PARTITIONED else None
        return self.bus.subscribe(subject, maxsize=maxsize, group=self.group, partitions=owned)

    async def publish(self, subject: str, message: Any) -> None:
        await self.bus.publish(subject, message)

    def has_room(self, subject: str) -> bool:
        return self.bus.has_room(subject)

    def depths(self) -> dict[str, int]:
        return self.bus.depths()

    def detect_share(self, node, scenarios) -> DetectShare:
        """What the detect engine reading through this view speaks for (see DetectShare)."""
        return DetectShare(node, scenarios, self)


async def prepare_group(bus, group: str, subject: str, partitions: list[int], *,
                        from_start: bool, rewind: bool) -> dict[int, int]:
    """Make the group's consumers ready before it subscribes; returns, per partition whose
    consumer existed, the stream sequence of its acknowledged floor (what the group has
    finished with; reading goes on after it).

    `from_start`: a consumer made now starts at the oldest message the stream still holds, not
    at this moment (NatsBus's default), so that readings published before the first worker
    of a group ever ran are not skipped.

    `rewind`: a consumer with messages delivered but never acknowledged belongs to a worker
    that died (or was stopped) in the middle of them. JetStream would hand them out again only
    after `ack_wait`, and after newer ones; detection would then see a device's readings out of
    order and could open an episode the dead worker had already opened under another first
    reading time. So the consumer is made again from just after its acknowledged floor: the
    new worker re-reads, in order, everything the old one may not have finished (which it
    treats as new: its memory starts empty), and nothing before that. Only the worker that
    owns these partitions may do this, and only one runs per `--worker` number."""
    import nats.js.errors
    from nats.js import api

    jsm = bus._jsm  # noqa: SLF001 — the bus has no public consumer management
    floors: dict[int, int] = {}
    for p in partitions:
        durable = bus.durable_name(group, subject, p)
        try:
            info = await jsm.consumer_info(bus.stream, durable)
        except nats.js.errors.NotFoundError:
            if from_start:
                await bus._ensure_consumer(durable, bus.nats_subject(subject, p), _EPOCH)  # noqa: SLF001
            continue
        floor = int(info.ack_floor.stream_seq if info.ack_floor else 0)
        floors[p] = floor
        if not rewind or not info.num_ack_pending:
            continue
        config = info.config
        config.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = floor + 1
        config.opt_start_time = None
        await jsm.delete_consumer(bus.stream, durable)
        await jsm.add_consumer(bus.stream, config)
        log.warning("%s: %d messages were left unacknowledged by a previous worker; "
                    "reading again from stream sequence %d", durable, info.num_ack_pending,
                    floor + 1)
    return floors


async def replay_window(bus, subject: str, partition: int, floor: int, window_s: float,
                        fetch: int = 256):
    """The messages of one partition published within `window_s` before the one at stream
    sequence `floor`, up to and including it, decoded, in order (an async iterator).

    A worker that takes over partitions starts with empty rule memory: a device that was loud
    when the last worker stopped is not loud to the new one, so the quiet reading that
    follows would not clear its open alert, and the alert would swallow the device's next
    loud spell. Evaluating this window first (without publishing anything) rebuilds that
    memory. Rules that remember more than the window (hourly windows, weekly baselines) are
    rebuilt only in part; their open alerts are still restored from the store."""
    import nats.errors
    from nats.js import api

    from cityops.bus.subjects import codec_for

    if floor <= 0 or window_s <= 0:
        return
    try:
        at = (await bus._jsm.get_msg(bus.stream, floor)).time  # noqa: SLF001
    except Exception:  # gone from the stream (retention): nothing left to replay
        return
    if not isinstance(at, dt.datetime):
        at = dt.datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    codec = codec_for(subject)
    config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_TIME,
                                opt_start_time=at - dt.timedelta(seconds=window_s),
                                ack_policy=api.AckPolicy.NONE, inactive_threshold=60.0,
                                mem_storage=True)
    sub = await bus._js.pull_subscribe(bus.nats_subject(subject, partition), durable=None,  # noqa: SLF001
                                       stream=bus.stream, config=config)
    try:
        while True:
            try:
                msgs = await sub.fetch(fetch, timeout=2.0)
            except (TimeoutError, nats.errors.TimeoutError):
                return
            for msg in msgs:
                if msg.metadata.sequence.stream > floor:
                    return
                yield codec.decode(msg.data)
    finally:
        try:
            await sub.unsubscribe()
        except Exception:
            pass


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


def split_by_key(batch: ReadingBatch, key: np.ndarray,
                 partitions: int) -> list[tuple[int, ReadingBatch]]:
    """Rows of `batch` per partition `key`, in their original order within each."""
    counts = np.bincount(key, minlength=partitions)
    if counts.max() == len(batch):
        return [(int(np.argmax(counts)), batch)]
    order = np.argsort(key.astype(np.uint8) if partitions <= 256 else key, kind="stable")
    out = []
    end = 0
    for p in range(partitions):
        start, end = end, end + int(counts[p])
        if end > start:
            out.append((p, batch.take(order[start:end])))
    return out


_ROUTED: type | None = None


def routed_bus_class() -> type:
    """NatsBus publishing partitioned subjects by a `Router` once one is given (`route_with`),
    by device hash until then (a node that never evaluates rules publishes nothing partitioned
    but its own readings, and those of its devices only a spanning rule could pin)."""
    global _ROUTED
    if _ROUTED is not None:
        return _ROUTED
    from cityops.bus.nats import NatsBus, _fit

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


# -- detection ----------------------------------------------------------------------------------


class DetectShare:
    """What one detect worker of a cluster speaks for, handed to the same detection engine a
    single node runs (`detect.engine.Whole` is the single node's).

    - Its partitions (under the `Router`, built here before the node starts, and given to the
      node's bus and history reader so that what they publish and serve by partition agrees):
      signals about devices of other partitions (time-driven rules see every device of the
      registry) are dropped, and of the open alerts in the store it restores only its own.
    - The series it has evaluated, so that a batch a client sent twice is evaluated once; that
      memory starts empty, so what the stream hands a new worker again is evaluated again.
    - Its consumers made ready before it subscribes (`prepare_group`) and its rule memory
      rebuilt from the window before where it goes on (`replay_window`).
    - Alert events delivered until the bus and the store have them."""

    def __init__(self, node, scenarios, view: BusView) -> None:
        self.node = node
        self.view = view
        self.settings = node.settings
        self.router = router_for(node.registry, scenarios, node.settings)
        for part in (node.bus, getattr(node, "reader", None)):
            if hasattr(part, "route_with"):
                part.route_with(self.router)
        self.seen = SeriesState(0)
        self.owned = np.zeros(0, bool)
        self.floors: dict[int, int] = {}

    async def start(self, alerts: list) -> list:
        node, settings = self.node, self.settings
        self.seen = SeriesState(len(node.registry))
        self.grow(len(node.registry))
        alerts = [a for a in alerts
                  if owns_alert(a, node.registry, self.owned, self.router, settings)]
        self.floors = await prepare_group(node.bus, DETECT_GROUP, READINGS, self.view.partitions,
                                          from_start=True, rewind=True)
        await prepare_group(node.bus, DETECT_GROUP, REJECTIONS, self.view.partitions,
                            from_start=True, rewind=True)
        return alerts

    def grow(self, devices: int) -> None:
        self.owned = owned_devices(devices, self.settings, self.router)

    async def warm_up(self, engine) -> None:
        """Rules' memory from the readings just before where this worker goes on (see
        `replay_window`); episodes move in memory, nothing is published."""
        window = self.settings.detect_warmup_s
        started, rows = time.monotonic(), 0
        engine.warming = True
        try:
            for partition, floor in sorted(self.floors.items()):
                async for batch in replay_window(self.node.bus, READINGS, partition, floor,
                                                 window):
                    batch = await self.fresh(batch)
                    rows += len(batch)
                    await engine.evaluate(batch)
        finally:
            engine.warming = False
        engine.stats["warmup_rows"] = rows
        if rows:
            log.info("rule memory rebuilt from %d readings of the last %.0f s in %.1f s",
                     rows, window, time.monotonic() - started)

    async def fresh(self, batch: ReadingBatch) -> ReadingBatch:
        """The rows of `batch` this worker has not evaluated yet (a client's retry of a batch
        already taken is published again, whole)."""
        if not len(batch):
            return batch
        await self.node.ensure_devices(batch)
        seen = self.seen
        seen.reserve(max(len(self.node.registry), int(batch.device.max()) + 1))
        fresh, _ = seen.new_rows(batch)
        if not fresh.all():
            batch = batch.take(np.flatnonzero(fresh))
        seen.commit(batch)
        return batch

    def mine(self, signals: list) -> list:
        owned = self.owned
        return [s for s in signals
                if s.device < 0 or (s.device < owned.shape[0] and owned[s.device])]

    def latest(self) -> SeriesState:
        return self.seen

    def apply(self, episodes, signals: list, state_of) -> list:
        was_open = {o.alert.id for o in episodes.open.values()}
        return _raised_too(episodes.apply(signals, state_of), was_open)

    async def deliver(self, published: list, alerts: list) -> None:
        # The episodes have moved on in memory, so these events cannot be made again by
        # evaluating the batch again; they are retried until the bus and the store have them
        # (the stream keeps the readings waiting meanwhile).
        from cityops.bus.subjects import ALERTS

        await _until_done(lambda: self.node.bus.publish(ALERTS, published), "publish alerts")
        await _until_done(lambda: self.node.store.upsert_alerts(alerts), "store alerts")


def _raised_too(events: list, was_open: set[str]) -> list:
    """An episode that opened and closed within one evaluation comes out of the episodes as
    "cleared" alone, and the act side files only what was raised. A worker catching up on a
    backlog evaluates many messages at once, so short episodes would go unfiled: they are
    told as raised, then cleared."""
    from cityops.domain.alerts import AlertEvent

    out = []
    for event in events:
        if event.change == "cleared" and event.alert.id not in was_open:
            out.append(AlertEvent("raised", event.alert))
        out.append(event)
    return out


async def _until_done(call, what: str) -> None:
    from cityops.bus.nats import BusUnavailable
    from cityops.store.base import StoreBusy

    delay = 0.1
    while True:
        try:
            await call()
            return
        except (BusUnavailable, StoreBusy, ConnectionError, TimeoutError) as exc:
            log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


# -- histories ----------------------------------------------------------------------------------


class StreamHistory:
    """The history of a node that writes none: ingest publishes to the stream, which is the
    durable log, and the `history` role writes the WAL and Parquet files from it. What remains
    here are the latest values (`state`), for the parts that read them (positions on the live
    screen, field staff for proposals, a device's latest values), fed by a `LatestFollower`
    or by detection."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self.state = SeriesState(len(registry))
        self.stats = {"rows": 0, "duplicates": 0, "groups": 0, "fsync_s": 0.0, "compacted": 0}

    def open(self, snapshot=None) -> None:
        self.state.reserve(len(self.registry))
        if snapshot is not None and len(snapshot):
            series = _series_of(self.registry, snapshot)
            known = series >= 0
            self.state.restore_latest(series[known],
                                      np.asarray(snapshot.ts_us, np.int64)[known],
                                      np.asarray(snapshot.value, np.float64)[known])

    def close(self) -> None:
        pass

    async def append(self, batch: ReadingBatch) -> Appended:
        # Durable only once the ingestor's publish is acknowledged by JetStream, which it
        # awaits before answering; nothing is deduplicated here (detection and the history
        # role drop repeats of a retried batch).
        return Appended(stored=batch, duplicates=0, fresh=np.ones(len(batch), bool))

    def note(self, batch: ReadingBatch) -> None:
        if len(batch):
            self.state.reserve(max(len(self.registry), int(batch.device.max()) + 1))
            self.state.commit(batch)

    def queue_depth(self) -> int:
        return 0

    def take_dirty_latest(self):
        from cityops.store.base import LatestRows

        return LatestRows([], [], [], []), -1

    def recent_frames(self) -> list[ReadingBatch]:
        return []


def _series_of(registry, rows) -> np.ndarray:
    names = registry.channel_names()
    kind_of = registry.kind_of
    out = np.full(len(rows), -1, np.int64)
    for i, (device_id, channel) in enumerate(zip(rows.device_id, rows.channel)):
        d = registry.index.get(device_id)
        if d is None:
            continue
        try:
            out[i] = d * MAX_CHANNELS + names[kind_of[d]].index(channel)
        except ValueError:
            continue
    return out


class _Consumer:
    """A loop taking reading batches from a subscription; a batch is acknowledged when the
    loop comes back for the next one, i.e. after `take` returned."""

    def __init__(self, name: str, view: BusView, maxsize: int) -> None:
        self.view = view
        self.maxsize = maxsize
        self.sub = None
        self._loop = Background(name, self._run)
        self.stats = {"batches": 0, "rows": 0, "failures": 0}

    async def start(self) -> None:
        self.sub = self.view.subscribe(READINGS, maxsize=self.maxsize)
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self.sub is not None:
            await self.sub.close()

    def depth(self) -> int:
        return self.sub.depth() if self.sub is not None else 0

    async def take(self, batch: ReadingBatch) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            batches = await self.sub.get_batch(64)
            if not batches:
                continue
            batch = ReadingBatch.concat(batches)
            # Not acknowledged until taken (the next get_batch acknowledges): a store that is
            # away is waited for; a batch that fails again and again is logged and passed
            # over rather than stopping the history (or the latest values) for good.
            for attempt in range(1, 6):
                try:
                    await self.take(batch)
                    break
                except Exception:
                    self.stats["failures"] += 1
                    log.exception("%s: a batch of %d readings failed (attempt %d of 5)",
                                  self._loop.name, len(batch), attempt)
                    await asyncio.sleep(min(2.0 ** attempt, 10.0))
            self.stats["batches"] += 1
            self.stats["rows"] += len(batch)


class HistoryFeeder(_Consumer):
    """The `history` role: readings from the stream into the history log (WAL, fsync,
    Parquet), the only place the raw history is written in cluster mode. A batch is taken
    from the stream only once durable here; a redelivered one is dropped as a repeat."""

    def __init__(self, node, view: BusView) -> None:
        super().__init__("history-feeder", view, node.settings.bus_queue)
        self.node = node

    async def take(self, batch: ReadingBatch) -> None:
        delay = 0.05
        while True:
            await self.node.ensure_devices(batch)
            try:
                appended = await self.node.history.append(batch)
            except Overloaded:
                # The writer is full: wait; the stream holds the rest meanwhile.
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self.node.metrics.accepted.labels("stream").inc(len(appended.stored))
            self.node.metrics.rate.add(len(appended.stored))
            return


class LatestFollower(_Consumer):
    """A web or act node's latest values (vehicles on the screen, staff for proposals, a
    device's latest reading), from every partition of the stream in a group of the node's
    own: every such node sees every reading."""

    def __init__(self, node, view: BusView) -> None:
        super().__init__("latest-follower", view, node.settings.bus_queue)
        self.node = node

    async def take(self, batch: ReadingBatch) -> None:
        self.node.history.note(batch)


# -- ingest -------------------------------------------------------------------------------------


class StreamLag:
    """How far detection is behind: messages of `readings` its consumer group has not yet been
    handed, summed over the partitions, looked up every `every_s` (an ingest node has no
    subscription whose depth would say it)."""

    def __init__(self, bus, group: str = DETECT_GROUP, every_s: float = 1.0) -> None:
        self.bus = bus
        self.group = group
        self.every_s = every_s
        self.messages = 0
        self.known = False  # False until the group's consumers exist
        self.checked_at = 0.0
        self._loop = Background("stream-lag", self._run)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def check(self) -> int:
        import nats.js.errors

        bus = self.bus
        total, known = 0, False
        for p in range(bus.partitions_of(READINGS)):
            try:
                info = await bus._jsm.consumer_info(  # noqa: SLF001
                    bus.stream, bus.durable_name(self.group, READINGS, p), timeout=2.0)
            except nats.js.errors.NotFoundError:
                continue
            known = True
            total += int(info.num_pending or 0)
        self.messages, self.known, self.checked_at = total, known, time.time()
        return total

    async def _run(self) -> None:
        while True:
            try:
                if self.bus.connected:
                    await self.check()
            except Exception as exc:  # the bus reports its own health; keep the last figure
                log.debug("stream lag look-up failed: %s", exc)
            await asyncio.sleep(self.every_s)


class IngestBus(BusView):
    """The bus as ingest sees it: also full while detection is `max_lag` messages behind, so
    that the client is told 503 (and comes back) rather than the stream's retention limits
    dropping readings detection has not seen."""

    def __init__(self, bus, lag: StreamLag, max_lag: int) -> None:
        super().__init__(bus)
        self.lag = lag
        self.max_lag = max_lag

    def has_room(self, subject: str) -> bool:
        if subject == READINGS and self.lag.messages > self.max_lag:
            return False
        return self.bus.has_room(subject)


def bus_unavailable_as_overload(ingest):
    """For the MQTT intake: JetStream not answering is a reason to wait and retry the batch
    (the broker keeps it unacknowledged), not to dead-letter it."""
    from cityops.bus.nats import BusUnavailable

    async def call(*args, **kwargs):
        try:
            return await ingest(*args, **kwargs)
        except BusUnavailable as exc:
            raise Overloaded(f"the bus is unavailable: {exc}", retry_after=2.0) from exc

    return call


# -- what a node without a part answers ---------------------------------------------------------


def _not_here(what: str, where: str):
    from cityops.api.errors import ApiError

    return ApiError(503, f"this node does not {what}; {where}",
                    headers={"Retry-After": "30"})


class NoReader:
    """History reads on a node without the `history` role."""

    def device_readings(self, *args, **kwargs):
        raise _not_here("hold the reading history",
                        "ask a node with the history role (cityops serve --role history)")

    def count(self, *args, **kwargs):
        return self.device_readings()


class ShardReader:
    """History reads on one of several history workers: a device whose partition another
    worker holds is answered with that worker's number, not with an empty history."""

    def __init__(self, reader, settings) -> None:
        self._reader = reader
        self._settings = settings
        self._router: Router | None = None

    def route_with(self, router: Router) -> None:
        self._router = router

    def __getattr__(self, name: str):
        return getattr(self._reader, name)

    def device_readings(self, index: int, *args, **kwargs):
        from cityops.bus.nats import partition_of

        s = self._settings
        if self._router is not None:
            partition = int(self._router.of(np.array([int(index)]))[0])
        else:
            partition = int(partition_of(int(index), s.partitions))
        # The same rule as `nats.share`: partition p is worker p % workers's.
        worker = partition % s.workers
        if worker != s.worker:
            raise _not_here("hold this device's history",
                            f"history worker {worker} of {s.workers} does (--worker {worker})")
        return self._reader.device_readings(index, *args, **kwargs)


class NoIngest:
    """Readings posted to a node that takes none (a detect, act or history worker)."""

    in_flight = 0
    rejections_dropped = 0

    def admit(self) -> None:
        raise _not_here("take readings", "send them to an ingest or web node")

    def reserve(self, size: int = 0):
        self.admit()

    async def ingest(self, *args, **kwargs):
        self.admit()


__all__ = ["ROLES", "REJECTIONS", "BusView", "DetectShare", "HistoryFeeder", "IngestBus", "LatestFollower",
           "NoIngest", "NoReader", "ShardReader", "StreamHistory", "StreamLag", "bus_options",
           "bus_unavailable_as_overload", "open_bus", "owned_devices", "owned_partitions",
           "owns_alert", "owns_subject", "parse_roles", "prepare_group", "Router", "SpanPlan",
           "router_for", "routed_bus_class"]
