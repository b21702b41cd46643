"""The anomaly plan: when to start which anomaly, and what it does to the readings.

Anomalies start at `rate_per_min` (stream time), taking the city's rules in turn (a seeded
order, each rule at the back of the queue once it has had one) so that every rule the city can
exercise gets its anomalies, whatever the rate. A rule that cannot start now (night rules by
day, every device busy) lets the next one have the slot.

`inject(rows, now_ts)` is called with each batch of simulated rows before they are sent. It
starts anomalies that are due, changes the rows of devices in an anomaly (or drops them, for a
silent device), adds rows where a device in an anomaly has not reported for its track's cadence
(a simulator at a low rate reaches each device rarely), and returns the labels of anomalies that
ended by `now_ts`: one per rule the anomaly sets off, its own rule first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec
import numpy as np

from cityops.domain.city import CityPack, DeviceKind
from cityops.domain.scenarios import spec
from cityops.sim.anomalies.city import CityView
from cityops.sim.anomalies.makers import Anomaly, Env, Maker, maker_for
from cityops.sim.anomalies.overlap import Overlap
from cityops.sim.anomalies.shapes import Track
from cityops.sim.models import CIRCULAR, DECIMALS
from cityops.sim.randomness import stream_key, uniform

TS_DECIMALS = 6


class Label(msgspec.Struct, frozen=True):
    """An injected anomaly as detection should find it: `rule` ("pack.rule") about `subject`
    (a device id, "cell:<h3>", "area:<code>", "<device>@<zone>", or member subjects joined
    with "+" for a composite) between `start` and `end` (Unix seconds). Labels of one anomaly
    share `anomaly`; the first of them names the rule it was made for."""

    rule: str
    subject: str
    start: float
    end: float
    anomaly: int


@dataclass
class KindRows:
    """Readings of one device kind in a batch: ids (object array), ts (Unix seconds) and values
    (one column per channel of the kind). The plan may replace any of the arrays."""

    kind: str
    ids: np.ndarray
    ts: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class AnomalyPlan:
    def __init__(
        self,
        pack: CityPack,
        scenarios: list[spec.ScenarioPack],
        seed: int,
        start_ts: float,
        rate_per_min: float,
        *,
        state: str = "daily",
        end_ts: float | None = None,
        rules: set[str] | None = None,
        kinds: dict[str, DeviceKind] | None = None,
    ) -> None:
        """`scenarios` as loaded; only packs active in `state` count, with their parameters
        in that state. `end_ts`: the stream ends then, so anomalies that cannot finish by
        then are not started. `rules` limits the plan to these "pack.rule" names."""
        if state not in spec.STATES:
            raise ValueError(f"state {state!r} is not one of {', '.join(spec.STATES)}")
        self.seed = seed
        self.start_ts = float(start_ts)
        self.rate_per_min = float(rate_per_min)
        self.view = CityView(pack, kinds)
        active = {f"{p.name}.{r.id}": (p, r) for p in scenarios if state in p.states
                  for r in p.rules}
        overlap = Overlap(self.view, list(active.values()), state)
        self.env = Env(self.view, state, seed, overlap, active, end_ts=end_ts)
        self.makers: dict[str, Maker] = {}
        self.skipped: dict[str, str] = {}  # rule -> why it is never injected here
        for ref, (p, r) in active.items():
            if rules is not None and ref not in rules:
                continue
            maker = maker_for(self.env, p, r)
            why = maker.why_not()
            if why:
                self.skipped[ref] = why
            else:
                self.makers[ref] = maker
        for p in scenarios:
            if state not in p.states:
                for r in p.rules:
                    if rules is None or f"{p.name}.{r.id}" in rules:
                        self.skipped[f"{p.name}.{r.id}"] = f"pack not active in state {state}"
        order = uniform(stream_key(seed, "anomalies.order"), np.arange(len(self.makers)))
        self.queue: list[str] = [list(self.makers)[i] for i in np.argsort(order).tolist()]
        self.running: list[Anomaly] = self.env.running
        self.labels: list[Label] = []  # every label returned so far
        self.started = 0
        self.cancelled = 0  # called off when the devices' own levels made them ambiguous
        self.withheld = 0  # readings of silent devices taken out of the stream
        self.added = 0  # readings added where a device in an anomaly was due one
        self._next_due = self.start_ts + (60.0 / self.rate_per_min if self.rate_per_min > 0
                                          else math.inf)
        self._number = 0
        self._kinds = self.view.kinds

    @property
    def injectable(self) -> list[str]:
        return list(self.makers)

    # -- starting anomalies ---------------------------------------------------------------

    def _start_due(self, now: float) -> None:
        interval = 60.0 / self.rate_per_min if self.rate_per_min > 0 else math.inf
        # A stream that jumps ahead does not start a burst of anomalies at once.
        if now - self._next_due > 10 * interval:
            self._next_due = now
        while self._next_due <= now:
            self._next_due += interval
            self._start_one(now)

    def _start_one(self, now: float) -> Anomaly | None:
        for position, ref in enumerate(self.queue):
            rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 0x616E6F6D, self._number])
            anomaly = self.makers[ref].make(now, self._number, rng)
            if anomaly is None:
                continue
            self._number += 1
            self.queue.append(self.queue.pop(position))
            self.running.append(anomaly)
            self.env.busy.take(t.device for t in anomaly.tracks)
            self.started += 1
            return anomaly
        return None

    def start(self, rule: str, now_ts: float) -> Anomaly | None:
        """Start an anomaly of `rule` now (for tests and benchmarks that want one of each)."""
        self.env.busy.now = now_ts
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 0x616E6F6D, self._number])
        anomaly = self.makers[rule].make(now_ts, self._number, rng)
        if anomaly is not None:
            self._number += 1
            self.running.append(anomaly)
            self.env.busy.take(t.device for t in anomaly.tracks)
            self.started += 1
        return anomaly

    # -- changing rows --------------------------------------------------------------------

    def inject(self, rows: list[KindRows], now_ts: float) -> list[Label]:
        """Apply the running anomalies to `rows` (changed in place, groups added at the end)
        and return the labels of anomalies that ended by `now_ts`."""
        self.env.busy.now = now_ts
        if self.rate_per_min > 0:
            self._start_due(now_ts)
        if not self.running:
            return []
        ts_made = round(max([now_ts] + [float(g.ts.max()) for g in rows if len(g)]),
                        TS_DECIMALS)
        self._arm(rows, now_ts, ts_made)
        by_kind: dict[str, dict[str, Track]] = {}
        for anomaly in self.running:
            for track in anomaly.tracks:
                if track.start is not None:
                    by_kind.setdefault(track.kind, {})[track.device] = track
        for group in rows:
            mine = by_kind.get(group.kind)
            if mine:
                self._apply(group, mine)
        for kind, mine in by_kind.items():
            self._top_up(rows, kind, mine, ts_made)
        return self._finished(now_ts)

    def _arm(self, rows: list[KindRows], now: float, ts_made: float) -> None:
        """Start the tracks that are due: just after the device's next reading, whose values
        are its own level (that reading stays as it was, so the rules see the level before the
        anomaly too), or from the bottom of its range when it has not reported in time. Each
        track is checked again with its real level; an anomaly that might now set off a rule
        nobody would label is called off before it has changed anything."""
        waiting = [(a, t) for a in self.running for t in a.tracks
                   if t.start is None and t.due(now)]
        if not waiting:
            return
        groups = {g.kind: g for g in rows if len(g)}
        cancel = []
        for anomaly, track in waiting:
            group = groups.get(track.kind)
            hit = np.flatnonzero(group.ids == track.device) if group is not None else []
            if len(hit):
                track.base = group.values[hit[0]].copy()
                track.start = float(group.ts[hit[0]]) + 1e-3
                track.seen_base = True
            elif now >= track.armed_at + track.offset + track.arm_s:
                track.base = track.fallback
                track.start = ts_made
            else:
                continue
            own = {ref for ref, _ in anomaly.labels}
            verdict = self.env.overlap.check(track, track.start, own)
            new = [c for c in verdict.certain if c not in anomaly.labels]
            # Companions found only now, with the device's real level, may complete a
            # composite with another anomaly nearby: call it off before it changes anything.
            if verdict.maybe or (new and self.env.joins(
                    {ref for ref, _ in anomaly.labels + new},
                    [t.device for t in anomaly.tracks], own={anomaly.number})):
                cancel.append(anomaly)
            else:
                anomaly.labels += new
        for anomaly in cancel:
            if anomaly in self.running:
                self.running.remove(anomaly)
                self.env.busy.release((t.device for t in anomaly.tracks), now)
                self.cancelled += 1

    def _apply(self, group: KindRows, mine: dict[str, Track]) -> None:
        index = np.flatnonzero(np.isin(group.ids, list(mine)))
        if index.size == 0:
            return
        keep = np.ones(len(group), bool)
        values = group.values
        for device, rows in _by_device(group.ids[index], index):
            track = mine[device]
            rows = rows[group.ts[rows] >= track.start]
            rows = rows[group.ts[rows] <= track.end]
            if rows.size == 0:
                continue
            shape = track.shape
            if shape.silent:
                keep[rows] = False
                track.changed += rows.size
                self.withheld += rows.size
                continue
            if shape.keeps_natural:
                track.natural = max(track.natural, float(group.ts[rows].max()))
                continue
            dt = group.ts[rows] - track.start
            for channel, column in shape.values(dt, track.base).items():
                values[rows, channel] = column
            track.changed += rows.size
            track.last = max(track.last, float(group.ts[rows].max()))
        _round(group, self._kinds[group.kind])
        if not keep.all():
            group.ids, group.ts, group.values = group.ids[keep], group.ts[keep], values[keep]

    def _top_up(self, rows: list[KindRows], kind: str, mine: dict[str, Track],
                ts: float) -> None:
        """A reading for each device whose track has gone its cadence without one."""
        ids, values = [], []
        for device, track in mine.items():
            if track.shape.silent or ts > track.end or ts < track.start:
                continue
            if ts - track.last < track.cadence or ts == track.natural:
                continue  # (a made reading never shares its time with a natural one)
            row = track.base.copy()
            for channel, column in track.shape.values(np.array([ts - track.start]),
                                                      track.base).items():
                row[channel] = column[0]
            ids.append(device)
            values.append(row)
            track.last = ts
            track.made += 1
        if not ids:
            return
        self.added += len(ids)
        group = KindRows(kind, np.array(ids, dtype=object), np.full(len(ids), ts),
                         np.array(values, dtype=np.float64))
        _round(group, self._kinds[kind])
        rows.append(group)

    def _finished(self, now: float) -> list[Label]:
        out: list[Label] = []
        still = []
        for anomaly in self.running:
            if anomaly.started and now > anomaly.end:
                start, end = round(anomaly.start, 3), round(anomaly.end, 3)
                out += [Label(rule, subject, start, end, anomaly.number)
                        for rule, subject in anomaly.labels]
                for track in anomaly.tracks:
                    self.env.busy.release([track.device], anomaly.end + self.env.settle_s(
                        anomaly, self._kinds[track.kind]))
                self.env.ended(anomaly)
            else:
                still.append(anomaly)
        self.running[:] = still
        self.labels += out
        return out

    def finish(self, now_ts: float) -> list[Label]:
        """Labels of anomalies that ended by `now_ts`; those still running are dropped (their
        devices get their own readings back)."""
        out = self._finished(now_ts)
        for anomaly in self.running:
            self.env.busy.release((t.device for t in anomaly.tracks), now_ts)
        self.running.clear()
        return out


def _by_device(ids: np.ndarray, index: np.ndarray):
    order = np.argsort(ids, kind="stable")
    ids, index = ids[order], index[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    stops = np.r_[starts[1:], ids.shape[0]]
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        yield ids[a], np.sort(index[a:b])


def _round(group: KindRows, kind: DeviceKind) -> None:
    for c, channel in enumerate(kind.channels):
        group.values[:, c] = np.round(group.values[:, c], DECIMALS.get(channel.name, 3))
        if channel.name in CIRCULAR:
            group.values[:, c] %= 360.0
