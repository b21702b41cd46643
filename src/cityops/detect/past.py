"""Detection over imported history (`cityops history import --replay`).

The rules the node runs, built afresh and fed the imported readings in time order, with the
rules' clock following the readings' own time: what they find is recorded as historical
alerts (`Alert.historical`, never active), so the past can be studied without anything being
dispatched today. Nothing goes on the bus; no case is opened.

Readings are taken in steps of STEP_US of reading time, each step evaluated then ticked (the
rules that wait — durations, silence — see time pass as it passed then). Only the rules of
packs that select some imported device are run at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

from cityops.detect.engine import _active_rows, _PackRules
from cityops.domain.alerts import Alert
from cityops.domain.calendar import LocalClock
from cityops.domain.geo import CityMap
from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.readings import US, ReadingBatch
from cityops.domain.scenarios.build import build
from cityops.domain.scenarios.context import Context, Places
from cityops.domain.scenarios.episodes import Episodes
from cityops.domain.scenarios.signals import Signal
from cityops.domain.states import device_states

STEP_US = 60 * US  # one minute of reading time per evaluation step
ROWS_PER_READ = 200_000


@dataclass
class PastFindings:
    readings: int = 0
    alerts: int = 0
    by_rule: Counter = field(default_factory=Counter)

    def raised_by_rule_text(self) -> str:
        if not self.by_rule:
            return "none"
        return ", ".join(f"{rule} {n}" for rule, n in self.by_rule.most_common(8))


class PastDetector:
    """The node's rules over readings of the past, in time order."""

    def __init__(self, pack: Any, scenarios: list, registry) -> None:
        self.registry = registry
        clock = LocalClock(pack.info.timezone, pack.calendar)
        self.ctx = Context(registry, Places.build(registry, pack), clock, now_us=0,
                           zones=list(pack.zones))
        self.ctx.state = device_states({}, self.ctx.places)
        self.packs: list[_PackRules] = []
        rules = {}
        for scenario in scenarios:
            evaluators = [build(scenario, rule, self.ctx) for rule in scenario.rules]
            for rule in scenario.rules:
                rules[f"{scenario.name}.{rule.id}"] = (scenario, rule)
            p = _PackRules(scenario, evaluators)
            p.refresh(self.ctx.state)
            p.active &= registry.evaluated(p.active.shape[0])
            self.packs.append(p)
        city = CityMap.from_pack(pack)
        self.episodes = Episodes(rules, registry,
                                 lambda lat, lon: (city.resolve(lat, lon), city.cell_of(lat, lon)))
        self.last_seen = np.full(len(registry), np.iinfo(np.int64).min, np.int64)
        self.alerts: dict[str, Alert] = {}
        self._ticking: list = []
        self._reading: dict[int, list] = {}  # per pack: its rules that read imported devices

    def _concerned(self, devices: np.ndarray) -> None:
        """Rules run are those that read some device the import has: running every rule of
        every pack each simulated minute would cost more than the readings themselves."""
        have = np.zeros(len(self.registry), bool)
        have[np.unique(devices)] = True
        ticking = []
        for p in self.packs:
            reading = []
            for evaluator in p.readings:
                sel = getattr(evaluator, "sel", None)
                mask = getattr(sel, "mask", None)
                if mask is None or (mask[: have.shape[0]] & have[: mask.shape[0]]).any():
                    ticking.append(evaluator)
                    reading.append(evaluator)
            self._reading[id(p)] = reading
        self._ticking = ticking

    def feed(self, batch: ReadingBatch) -> None:
        """Readings in time order (a later call never carries older readings)."""
        if not len(batch):
            return
        if not self._ticking:
            self._concerned(batch.device)
        step = batch.ts // STEP_US
        bounds = np.flatnonzero(np.r_[True, step[1:] != step[:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:]):
            part = batch.take(np.arange(a, b))
            self.ctx.now_us = int(part.ts.max())
            np.maximum.at(self.last_seen, part.device.astype(np.int64), part.ts)
            signals: list[Signal] = []
            for p in self.packs:
                reading = self._reading.get(id(p))
                if not reading:
                    continue
                rows = _active_rows(part, p.active)
                if len(rows):
                    for evaluator in reading:
                        signals += evaluator.on_batch(rows, self.ctx) or []
            self.ctx.last_seen_us = self.last_seen
            for evaluator in self._ticking:
                signals += evaluator.on_tick(self.ctx) or []
            for p in self.packs:
                for evaluator in p.composites:
                    signals += evaluator.on_signals(signals, self.ctx) or []
            self._apply(signals)

    def _apply(self, signals: list[Signal]) -> None:
        state = self.ctx.state

        def state_of(d: int) -> int:
            return int(state[d]) if 0 <= d < state.shape[0] else 0

        events = self.episodes.apply(signals, state_of) if signals else []
        events += self.episodes.expire_unconfirmed(self.ctx.now_us)
        self.episodes.forget_cleared(self.ctx.now_us)
        for event in events:
            self.alerts[event.alert.id] = event.alert

    def findings(self) -> list[Alert]:
        """Every alert found, historical: recorded, not active, acted on by no one."""
        out = []
        for alert in self.alerts.values():
            alert.historical = True
            alert.active = False
            alert.auto_register = False
            out.append(alert)
        return out


async def detect_past(pack, scenarios: list, registry, backfill, store, digests: list[str], *,
                      progress: Callable[[int], None] | None = None) -> PastFindings:
    """Run the rules over the readings the imports `digests` stored, in time order, and
    store what they find as historical alerts. `progress(readings_done)` as it goes."""
    import asyncio

    findings = PastFindings()
    files = [str(p) for d in digests for p in sorted((backfill.dir / d).glob("*.parquet"))]
    if not files:
        return findings
    detector = PastDetector(pack, scenarios, registry)
    names = registry.channel_names()

    def run() -> list[Alert]:
        con = duckdb.connect(config={"threads": 2})
        try:
            reader = con.sql(
                "SELECT device_id::VARCHAR AS d, channel::VARCHAR AS c, epoch_us(ts) AS t, "
                "value AS v FROM read_parquet($files) ORDER BY t, d, c",
                params={"files": files}).to_arrow_reader(ROWS_PER_READ)
            for rb in reader:
                device, channel = _indices(rb.column(0), rb.column(1), registry, names)
                keep = (device >= 0) & (channel >= 0) & (channel < MAX_CHANNELS)
                batch = ReadingBatch(device[keep].astype(np.int32),
                                     channel[keep].astype(np.int8),
                                     np.asarray(rb.column(2).to_numpy(), np.int64)[keep],
                                     np.asarray(rb.column(3).to_numpy(), np.float64)[keep],
                                     source="import")
                detector.feed(batch)
                findings.readings += len(batch)
                if progress is not None:
                    progress(findings.readings)
        finally:
            con.close()
        return detector.findings()

    alerts = await asyncio.to_thread(run)
    for i in range(0, len(alerts), 1000):
        await store.upsert_alerts(alerts[i : i + 1000])
    findings.alerts = len(alerts)
    findings.by_rule = Counter(a.rule for a in alerts)
    return findings


def _indices(devices, channels, registry, names) -> tuple[np.ndarray, np.ndarray]:
    """Registry indices of rows named by device id and channel name (-1: not known), looked
    up once per distinct name."""
    import pyarrow.compute as pc

    d = pc.dictionary_encode(devices)
    lookup = np.array([registry.index.get(x, -1) for x in d.dictionary.to_pylist()] + [-1],
                      np.int64)
    device = lookup[np.asarray(d.indices.fill_null(len(d.dictionary)).to_numpy(), np.int64)]
    c = pc.dictionary_encode(channels)
    channel_names = c.dictionary.to_pylist()
    code = np.asarray(c.indices.fill_null(0).to_numpy(), np.int64)
    kind = registry.kind_of[np.maximum(device, 0)]
    table = np.full((max(len(names), 1), max(len(channel_names), 1)), -1, np.int64)
    for k, kind_names in enumerate(names):
        for j, name in enumerate(channel_names):
            if name in kind_names:
                table[k, j] = kind_names.index(name)
    channel = table[kind, code] if len(channel_names) else np.full(len(device), -1, np.int64)
    return device, channel
