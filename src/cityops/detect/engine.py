"""The detect engine: readings from the bus through every active scenario rule, alerts out.

It runs in the node's event loop: a batch is evaluated by every rule (vectorised), the signals
become alert episodes, and alert events are published on the bus (`alerts`) and stored. A rule
that throws is logged and counted; it never stops detection.

What the engine speaks for is its `share`: on one node, every device (`Whole`); a detect
worker of a cluster gets its share from its view of the bus (`cluster.DetectShare`: its
partitions, the readings it has already evaluated, the alerts it restores, delivery retried
until the bus and the store have it). The engine itself is the same in both.
A node without the detect role keeps a passive engine (`evaluate=False`): operating states
and the scenario list, no rules.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import numpy as np

from cityops.background import Background, idle
from cityops.bus.subjects import ALERTS, READINGS, REJECTIONS
from cityops.domain.alerts import Alert, AlertEvent
from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios.build import build
from cityops.domain.scenarios.context import STATE_CODES, Context, Places
from cityops.domain.scenarios.episodes import Episodes
from cityops.domain.scenarios.signals import Evaluator, Signal
from cityops.domain.scenarios import spec
from cityops.domain.scenarios.spec import ScenarioPack
from cityops.domain.states import device_states
from cityops.history.state import SeriesState

log = logging.getLogger(__name__)

US = 1_000_000
YIELD_S = 0.005
SILENCES_EVERY_S = 2.0


class _PackRules:
    def __init__(self, pack: ScenarioPack, evaluators: list[Evaluator]) -> None:
        self.pack = pack
        self.codes = np.array([STATE_CODES[s] for s in pack.states], np.int8)
        self.readings = [e for e in evaluators if getattr(e, "source", "readings") == "readings"
                         and not hasattr(e, "on_signals")]
        self.rejections = [e for e in evaluators if getattr(e, "source", "") == "rejections"]
        self.composites = [e for e in evaluators if hasattr(e, "on_signals")]
        self.active = np.zeros(0, bool)  # per device: is the pack on where the device is

    def refresh(self, state: np.ndarray) -> None:
        self.active = np.isin(state, self.codes)


class Whole:
    """The share of a single node: every device is its own, nothing to prepare, filter or
    retry (the in-process bus and the embedded store do not go away)."""

    def __init__(self, node) -> None:
        self.node = node

    async def start(self, alerts: list) -> list:
        return alerts

    async def warm_up(self, engine: DetectEngine) -> None:
        return None

    async def fresh(self, batch: ReadingBatch) -> ReadingBatch:
        return batch

    def grow(self, devices: int) -> None:
        return None

    def mine(self, signals: list[Signal]) -> list[Signal]:
        return signals

    def latest(self) -> SeriesState:
        state: SeriesState = self.node.history.state
        return state

    def apply(self, episodes: Episodes, signals: list[Signal], state_of) -> list[AlertEvent]:
        return episodes.apply(signals, state_of)

    async def deliver(self, published: list[AlertEvent], alerts: list) -> None:
        await self.node.bus.publish(ALERTS, published)
        await self.node.store.upsert_alerts(alerts)


class DetectEngine:
    def __init__(self, node, scenarios: list[ScenarioPack], *, tick_s: float = 1.0,
                 clock=time.time, evaluate: bool = True) -> None:
        self.node = node
        self.evaluating = evaluate
        self.bus = node.bus_for("detect") if hasattr(node, "bus_for") else node.bus
        # Taken here, before the node starts: a share may have to tell the node's other parts
        # how readings are partitioned before anything is published.
        share = getattr(self.bus, "detect_share", None)
        self.share = share(node, scenarios) if share is not None else Whole(node)
        self.warming = False  # rebuilding rule memory (see the share): evaluate, emit nothing
        self.scenarios = scenarios
        self.tick_s = tick_s
        self.clock = clock
        self.area_states: dict[str, str] = {}
        self.ctx: Context | None = None
        self.packs: list[_PackRules] = []
        self.episodes: Episodes | None = None
        self._devices_seen = 0
        self._lifecycle_seen = -1  # the registry's lifecycle_version the masks were made at
        self._roster_seen = -1  # the roster's revision the roles were taken at
        self._busy = False
        # Batches and ticks take turns: rules yield the loop between them (see `_yield`),
        # and one must not see the clock or the memory of the other half-way.
        self._turn = asyncio.Lock()
        self._yielded = time.perf_counter()
        self._readings = None
        self._rejections = None
        self._loop = Background("detect", self._run)
        self._ticker = Background("detect-tick", self._tick_loop)
        self.latencies = deque(maxlen=100_000)  # seconds, reading arrival -> alert published
        self.stats = {"batches": 0, "rows": 0, "rejected_rows": 0, "signals": 0, "raised": 0,
                      "cleared": 0, "rule_errors": 0, "silenced": 0, "inhibited": 0,
                      "released": 0}
        # What holds raised alerts back from the act side: silences (the book of them, when
        # the node has one) and outages explaining devices' offline alerts.
        self.silences = getattr(getattr(node, "services", None), "silences", None)
        self._outages: list = []  # evaluators that explain devices' silence
        self._absence_rules: set[str] = set()
        self._held: set[tuple[str, str]] = set()  # open episodes held, by (rule, subject)
        self._held_seen: tuple = ()
        self._held_checked = 0.0
        self._silences_read = 0.0
        self._outage_cleared: dict[str, float] = {}  # outage alert id -> when it cleared
        self._outage_rules: set[str] = set()
        self._open_outages: set[str] = set()  # ids of the outage alerts open now

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        from cityops.domain.calendar import LocalClock

        node = self.node
        self.area_states = await node.store.load_area_states()
        if not self.evaluating:
            return
        clock = LocalClock(node.pack.info.timezone, node.pack.calendar)
        self.ctx = Context(node.registry, self._places(), clock,
                           now_us=int(self.clock() * US), zones=list(node.pack.zones))
        self._devices_seen = len(node.registry)
        self._refresh_state()
        rules = {}
        for pack in self.scenarios:
            evaluators = []
            for rule in pack.rules:
                evaluators.append(build(pack, rule, self.ctx))
                rules[f"{pack.name}.{rule.id}"] = (pack, rule)
            self.packs.append(_PackRules(pack, evaluators))
        self._refresh_state()  # every pack's device mask, lifecycle included
        self._outages = [e for p in self.packs for e in p.readings if hasattr(e, "explains")]
        self._outage_rules = {e.rule for e in self._outages}
        self._absence_rules = {name for name, (_, rule) in rules.items()
                               if isinstance(rule, spec.Absence)}
        self.episodes = Episodes(rules, node.registry, self._locate)
        alerts = await node.store.list_alerts(active=True, limit=100_000)
        alerts = await self.share.start(alerts)
        self.episodes.restore(alerts, now_us=int(self.clock() * US))
        if self.silences is not None:
            await self.silences.load()
        # Alerts restored held stay held: what holds them is looked at on the next tick.
        self._held = {(a.rule, a.subject) for a in alerts
                      if a.active and (a.silenced_by or a.inhibited_by)}
        self._open_outages = {a.id for a in alerts if a.active and a.rule in self._outage_rules}
        await self._learn_history()
        await self.share.warm_up(self)
        bus = self.bus
        self._readings = bus.subscribe(READINGS, maxsize=node.settings.bus_queue)
        self._rejections = bus.subscribe(REJECTIONS, maxsize=node.settings.bus_queue)
        self._loop.start()
        self._ticker.start()

    async def _learn_history(self) -> None:
        """Rules that learn what is usual (baselines) start from the stored history, imported
        or live, rather than from nothing: vital signs are judged from the first hour."""
        reader = getattr(self.node, "reader", None)
        if reader is None or not hasattr(reader, "hourly"):
            return  # a cluster node without the history: its rules learn as readings come
        now_us = int(self.clock() * US)
        for p in self.packs:
            for evaluator in p.readings:
                if not hasattr(evaluator, "learn"):
                    continue
                mask, active = evaluator.sel.mask, p.active
                n = min(mask.shape[0], active.shape[0])
                devices = np.flatnonzero(mask[:n] & active[:n])
                if not devices.size:
                    continue
                try:
                    rows = await asyncio.to_thread(
                        reader.hourly, devices.tolist(), now_us - evaluator.learning_span_us(),
                        now_us)
                except Exception:  # a history that cannot be read must not stop detection
                    log.exception("learning %s from the history failed", evaluator.rule)
                    continue
                if len(rows):
                    self._call(evaluator, "learn", rows, self.ctx)
                    self.stats["learnt_rows"] = self.stats.get("learnt_rows", 0) + len(rows)

    async def stop(self) -> None:
        await self._ticker.stop()
        await self._loop.stop()
        for sub in (self._readings, self._rejections):
            if sub is not None:
                await sub.close()

    def summary(self) -> dict:
        """Counters and the alert latency percentiles of the recent raises."""
        lat = np.array(self.latencies) * 1000
        pct = {f"alert_latency_p{p}_ms": round(float(np.percentile(lat, p)), 2) if len(lat)
               else None for p in (50, 99)}
        return {**self.stats, **pct, "latency_samples": len(lat),
                "rejections_dropped": self.node.ingestor.rejections_dropped,
                "rules": sum(len(p.pack.rules) for p in self.packs),
                "backlog": (self._readings.depth() if self._readings else 0) + int(self._busy),
                "evaluating": self.evaluating,
                "open_alerts": len(self.episodes.open) if self.episodes else 0}

    def vital_signs(self, kind: str | None = None) -> list[dict]:
        """What the baseline rules know of each series they watch (see
        BaselineEvaluator.snapshot); with `kind`, only the rules reading that device kind
        (the screen's vital signs are the `kpi` series, not every noise meter)."""
        out = []
        for p in self.packs:
            for evaluator in p.readings:
                if kind is not None and getattr(getattr(evaluator, "sel", None), "kind",
                                                None) != kind:
                    continue
                if hasattr(evaluator, "snapshot"):
                    out += [{**s, "rule": evaluator.rule} for s in evaluator.snapshot()]
        return out

    # -- operating states -------------------------------------------------------------------

    def set_area_state(self, code: str, state: str) -> None:
        """Takes effect for the next batch."""
        self.area_states[code] = state
        if self.ctx is not None:
            self._refresh_state()

    def _refresh_state(self) -> None:
        ctx = self.ctx
        ctx.state = device_states(self.area_states, ctx.places)
        for p in self.packs:
            p.refresh(ctx.state)
            # Devices in maintenance or decommissioned: their readings are stored, but no
            # rule reads them (cityops.domain.lifecycle).
            p.active &= ctx.registry.evaluated(p.active.shape[0])
        self._lifecycle_seen = ctx.registry.lifecycle_version

    def _places(self) -> Places:
        """Where each device is, and its role; a field person's tracker is "staff" while the
        person is on the roster (administrators add and retire people)."""
        roster = self.node.roster
        self._roster_seen = roster.revision
        active = [m.person for m in roster.members() if m.active]
        return Places.build(self.node.registry, self.node.pack, staff=active)

    def _grow(self) -> None:
        """Devices registered since the context was built get places and states; a roster
        change, the roles."""
        if len(self.node.registry) != self._devices_seen:
            self.ctx.places = self._places()
            self._devices_seen = len(self.node.registry)
            self._refresh_state()
            self.share.grow(self._devices_seen)
            return
        if self.node.roster.revision != self._roster_seen:
            self.ctx.places = self._places()
        if self.node.registry.lifecycle_version != self._lifecycle_seen:
            self._refresh_state()  # a device went into or out of maintenance

    # -- evaluation -------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            batches = await self._readings.get_batch(64)
            self._busy = True
            try:
                rejected = await self._waiting_rejections()
                batch = await self.share.fresh(ReadingBatch.concat(batches))
                await self.evaluate(batch, ReadingBatch.concat(rejected))
            except Exception:
                log.exception("detection failed on a batch")
            finally:
                self._busy = False

    async def _waiting_rejections(self) -> list[ReadingBatch]:
        """The batches of refused rows queued now, hardly waiting for more.

        Not `get_batch(timeout=0)`: before Python 3.12, `asyncio.wait_for` with a zero timeout
        gives up before the queue's getter has run, so it returned nothing even from a full
        queue and the refused rows were never seen. A short timeout lets the getter run; it
        only expires when `depth()` counted messages not yet here (a NATS server's backlog)."""
        sub = self._rejections
        out: list[ReadingBatch] = []
        while sub is not None and sub.depth():
            got = await sub.get_batch(64, timeout=0.001)
            if not got:
                break
            out += got
        return out

    async def caught_up(self, timeout: float = 10.0) -> bool:
        """Wait until every batch published so far has been evaluated (replays, tests)."""
        return await idle(lambda: bool(self._readings is not None and self._readings.depth())
                          or self._busy, timeout)

    async def evaluate(self, batch: ReadingBatch, rejected: ReadingBatch | None = None) -> list:
        """Run every active rule on `batch`; publish and store the alert events."""
        async with self._turn:
            self._grow()
            ctx = self.ctx
            ctx.now_us = int(self.clock() * US)
            signals: list[Signal] = []
            for p in self.packs:
                rows = _active_rows(batch, p.active)
                if len(rows):
                    for evaluator in p.readings:
                        signals += self._call(evaluator, "on_batch", rows, ctx)
                        await self._yield()
                if rejected is not None and len(rejected) and p.rejections:
                    bad = _active_rows(rejected, p.active)
                    for evaluator in p.rejections:
                        signals += self._call(evaluator, "on_batch", bad, ctx)
                        await self._yield()
            signals += self._composites(signals)
        if not self.warming:
            self.stats["batches"] += 1
            self.stats["rows"] += len(batch)
            self.stats["rejected_rows"] += len(rejected) if rejected is not None else 0
        return await self._emit(signals, batch.received_ns)

    async def tick(self) -> list:
        await self._follow_silences()
        bad = await self._waiting_rejections()
        if bad:
            # Batches refused whole never come with readings; take them here.
            await self.evaluate(ReadingBatch.empty(), ReadingBatch.concat(bad))
        async with self._turn:
            self._grow()
            ctx = self.ctx
            ctx.now_us = int(self.clock() * US)
            ctx.last_seen_us = self._last_seen()
            signals: list[Signal] = []
            for p in self.packs:
                for evaluator in p.readings + p.rejections:
                    signals += self._call(evaluator, "on_tick", ctx)
                    await self._yield()
            signals += self._composites(signals)
            events = self.episodes.expire_unconfirmed(ctx.now_us)
            self.episodes.forget_cleared(ctx.now_us)
        return await self._emit(signals, 0, events, release=True)

    async def _yield(self) -> None:
        """Let the loop run other work once rules have held it for YIELD_S: a batch through
        every rule takes tens of milliseconds, and an incident being filed, a request being
        answered or a store's reply must not wait for all of it."""
        now = time.perf_counter()
        if now - self._yielded >= YIELD_S:
            await asyncio.sleep(0)
            self._yielded = time.perf_counter()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.tick()
            except Exception:
                log.exception("detection tick failed")

    def _composites(self, signals: list[Signal]) -> list[Signal]:
        out: list[Signal] = []
        for p in self.packs:
            for evaluator in p.composites:
                out += self._call(evaluator, "on_signals", signals, self.ctx)
        return out

    def _call(self, evaluator, method: str, *args) -> list[Signal]:
        try:
            return getattr(evaluator, method)(*args) or []
        except Exception:
            self.stats["rule_errors"] += 1
            self.node.metrics.rule_errors.labels(evaluator.rule).inc()
            log.exception("rule %s failed in %s", evaluator.rule, method)
            return []

    def _last_seen(self) -> np.ndarray:
        from cityops.domain.kinds import MAX_CHANNELS

        latest = self.share.latest().latest_ts
        n = len(self.node.registry)
        have = min(n, latest.shape[0] // MAX_CHANNELS)
        out = np.full(n, np.iinfo(np.int64).min, np.int64)
        out[:have] = latest[: have * MAX_CHANNELS].reshape(have, MAX_CHANNELS).max(axis=1)
        return out

    def _locate(self, lat: float, lon: float):
        city = self.node.city
        return city.resolve(lat, lon), city.cell_of(lat, lon)

    async def _emit(self, signals: list[Signal], received_ns: int,
                    events: list[AlertEvent] | None = None,
                    release: bool = False) -> list[AlertEvent]:
        if signals:
            signals = self.share.mine(signals)
        state = self.ctx.state

        def state_of(d: int) -> int:
            return int(state[d]) if 0 <= d < state.shape[0] else 0

        if self.warming:
            self.episodes.apply(signals, state_of)
            return []
        self.stats["signals"] += len(signals)
        events = (events or []) + (self.share.apply(self.episodes, signals, state_of)
                                   if signals else [])
        events = self._hold(events)
        if release:
            events += self._release()
        if not events:
            return events
        now_ns = time.monotonic_ns()
        metrics = self.node.metrics
        for event in events:
            self.stats[event.change] = self.stats.get(event.change, 0) + 1
            metrics.alerts.labels(event.change).inc()
            if event.change == "raised" and received_ns:
                latency = (now_ns - received_ns) / 1e9
                metrics.alert_latency.observe(latency)
                self.latencies.append(latency)
        published = [AlertEvent(e.change, e.alert, now_ns) for e in events]
        await self.share.deliver(published, [e.alert for e in events])
        return published


    # -- silences and inhibition ---------------------------------------------------------------

    async def _follow_silences(self) -> None:
        """Silences made elsewhere (the CLI on this store, another node) reach the book within
        a few seconds: one meta read when nothing changed. A node of a cluster also follows
        them with the rest of the store (cluster.compose); twice costs one more read."""
        now = self.clock()
        if self.silences is None or now - self._silences_read < SILENCES_EVERY_S:
            return
        self._silences_read = now
        try:
            await self.silences.refresh_if_changed()
        except Exception as exc:  # the store is away: keep the silences known, try again
            log.warning("reading the silences failed: %s", exc)

    def _holders(self, a: Alert) -> tuple[str | None, str | None]:
        """The silence and the outage alert that hold an alert back, if any. An alert stays
        inhibited while the outage alert that explained it is open (also when restored after
        a restart, before the outage rule has seen the silence again)."""
        silenced = None
        if self.silences is not None:
            silenced = self.silences.match(a, self.clock())
        inhibited = None
        if self._outages and a.rule in self._absence_rules:
            if a.inhibited_by in self._open_outages or self._recovering(a):
                inhibited = a.inhibited_by
            else:
                device = self.node.registry.index.get(a.subject, -1)
                for evaluator in self._outages:
                    subject = evaluator.explains(device)
                    outage = self.episodes.open.get((evaluator.rule, subject)) \
                        if subject else None
                    if outage is not None:
                        inhibited = outage.alert.id
                        break
        return silenced, inhibited

    def _recovering(self, a: Alert) -> bool:
        """Its outage cleared lately, and the device has not yet had the time its own rule
        allows to report again: a bin sensor every ten minutes is not a fault of its own the
        moment its gateway's noise meters are back."""
        cleared = self._outage_cleared.get(a.inhibited_by or "")
        if cleared is None:
            return False
        device = self.node.registry.index.get(a.subject)
        if device is None:
            return False
        rule = self.episodes.rules[a.rule][1]
        registry = self.node.registry
        period_s = registry.kinds[int(registry.kind_of[device])].period_s
        return self.clock() - cleared < float(getattr(rule, "periods", 3.0)) * period_s

    def _hold(self, events: list[AlertEvent]) -> list[AlertEvent]:
        """Mark what is raised now and held back: still recorded and published (the screen
        and the alert list show it, with what held it), but the act side files none of it."""
        for event in events:  # the outages first: one raised now explains devices now
            if event.alert.rule in self._outage_rules:
                if event.change == "cleared":
                    self._open_outages.discard(event.alert.id)
                    self._outage_cleared[event.alert.id] = self.clock()
                else:
                    self._open_outages.add(event.alert.id)
        for event in events:
            a = event.alert
            if event.change == "raised":
                a.silenced_by, a.inhibited_by = self._holders(a)
                if a.silenced_by or a.inhibited_by:
                    self.stats["silenced" if a.silenced_by else "inhibited"] += 1
            if event.change != "cleared" and (a.silenced_by or a.inhibited_by):
                self._held.add((a.rule, a.subject))  # a flapping episode resumed held, too
        return events

    def _release(self) -> list[AlertEvent]:
        """Held alerts whose silence ended or whose outage cleared, still firing, are told
        again as raised: evaluated as new, as if they had fired only now. Looked at again when
        what holds them changed (outages, the silences' book) and every few seconds for
        silences reaching their end."""
        if not self._held:
            return []
        now = self.clock()
        if self.silences is not None:
            self.silences.take_ended(now)  # silences past their end stop holding now
        seen = (tuple(tuple(e.outages) for e in self._outages),
                getattr(self.silences, "changes", None))
        if seen == self._held_seen and now - self._held_checked < 5.0:
            return []
        self._held_seen, self._held_checked = seen, now
        for gone in [i for i, t in self._outage_cleared.items() if now - t > 86400.0]:
            del self._outage_cleared[gone]
        out = []
        for key in list(self._held):
            current = self.episodes.open.get(key)
            if current is None:  # cleared meanwhile: nothing left to release
                self._held.discard(key)
                continue
            a = current.alert
            holders = self._holders(a)
            if holders == (a.silenced_by, a.inhibited_by):
                continue
            a.silenced_by, a.inhibited_by = holders
            if a.silenced_by or a.inhibited_by:
                out.append(AlertEvent("updated", a))
                continue
            self._held.discard(key)
            self.stats["released"] += 1
            out.append(AlertEvent("raised", a))
        return out


def _active_rows(batch: ReadingBatch, active: np.ndarray) -> ReadingBatch:
    if not len(batch) or active.all():
        return batch
    inside = batch.device < active.shape[0]
    keep = np.zeros(len(batch), bool)
    keep[inside] = active[batch.device[inside]]
    return batch.take(np.flatnonzero(keep))
