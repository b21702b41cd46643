"""Threshold with minimum duration and hysteresis: "night-time noise above 55 dB(A) for 10 min,
clearing at 50".

Edges: `above` fires strictly above its level (55.0 does not fire `above: 55`), `below`
strictly below; an episode clears at or below `clear_below` (at or above `clear_above`), which
default to the trigger levels. Values in between keep an episode going but do not start one,
and break a pending one: the minimum duration `for` must be held without a break, measured on
reading timestamps (the first triggering reading to the one that completes it).

A reading outside the rule's `when` counts as not triggering and clears a running episode (a
night rule ends with the night). A reading older than the newest one already evaluated for its
device is ignored: late data never flips an episode backwards. Equal timestamps are evaluated
(a redelivered reading changes nothing).

Signals: active on the raise, inactive on the clear, and in between at most one active update
per device and batch, carrying the newest triggering reading.
"""

from __future__ import annotations

import math

import numpy as np

from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios import spec
from cityops.domain.scenarios.context import Context
from cityops.domain.scenarios.primitives.common import (
    NEVER,
    US,
    PerState,
    Selection,
    duration_us,
    evidence,
    fmt_duration,
    fmt_value,
    grown,
    in_time_order,
    runs,
    unit,
)
from cityops.domain.scenarios.signals import MAX_EVIDENCE, Signal

IDLE, PENDING, ACTIVE = 0, 1, 2


def _levels(rule: spec.Threshold) -> tuple[PerState, PerState, PerState, PerState]:
    """Trigger and clear levels per state; a side not used is +-inf, so it never compares."""
    above, below, clear_below, clear_above = [], [], [], []
    for state in spec.STATES:
        a, b = spec.param(rule, "above", state), spec.param(rule, "below", state)
        if a is None and b is None:
            raise ValueError(f"rule {rule.id!r}: a threshold needs `above` or `below` "
                             f"(in state {state})")
        a = math.inf if a is None else float(a)
        b = -math.inf if b is None else float(b)
        cb, ca = spec.param(rule, "clear_below", state), spec.param(rule, "clear_above", state)
        cb = a if cb is None else float(cb)
        ca = b if ca is None else float(ca)
        if cb > a:
            raise ValueError(f"rule {rule.id!r}: clear_below {cb:g} is above `above` {a:g}")
        if ca < b:
            raise ValueError(f"rule {rule.id!r}: clear_above {ca:g} is below `below` {b:g}")
        above.append(a)
        below.append(b)
        clear_below.append(cb)
        clear_above.append(ca)
    return PerState(above), PerState(below), PerState(clear_below), PerState(clear_above)


class ThresholdEvaluator:
    source = "readings"

    def __init__(self, pack: spec.ScenarioPack, rule: spec.Threshold, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        self.sel = Selection(rule, ctx)
        self.above, self.below, self.clear_below, self.clear_above = _levels(rule)
        self.hold_us = PerState.of(rule, "for_", duration_us)
        if rule.when is not None:
            ctx.clock.compile(rule.when)
        self.phase = np.zeros(0, np.int8)
        self.newest = np.zeros(0, np.int64)  # per device: newest reading time evaluated
        self.since = np.zeros(0, np.int64)  # per device: first reading of the pending episode
        self.recent: dict[int, list[tuple[int, int, int, float]]] = {}  # evidence, busy devices

    def _grow(self, n: int) -> None:
        self.phase = grown(self.phase, n, IDLE)
        self.newest = grown(self.newest, n, NEVER)
        self.since = grown(self.since, n, NEVER)

    def on_tick(self, ctx: Context) -> list[Signal]:
        return []  # durations are measured on reading time, so time passing decides nothing

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        rows = self.sel.rows(batch, ctx)
        if rows.size == 0:
            return []
        self._grow(len(ctx.registry))
        dev, ts, value = batch.device[rows], batch.ts[rows], batch.value[rows]
        trig = (value > self.above.at(ctx, dev)) | (value < self.below.at(ctx, dev))
        busy = self.phase[dev] != IDLE
        fresh = ts >= self.newest[dev]
        np.maximum.at(self.newest, dev, ts)
        # Most rows neither trigger nor touch a running episode: they end here.
        look = np.flatnonzero(fresh & (trig | busy))
        if look.size == 0:
            return []
        if self.spec.when is not None:
            trig[look] &= ctx.clock.matches(self.spec.when, ts[look])
            look = look[trig[look] | busy[look]]
            if look.size == 0:
                return []
        # Every fresh row of the devices concerned, in time order, decides in sequence ...
        concerned = np.zeros(self.phase.shape[0], bool)
        concerned[dev[look]] = True
        pick = np.flatnonzero(fresh & concerned[dev])
        pick = pick[in_time_order(dev[pick], ts[pick])]
        dev, ts, value, trig, busy = dev[pick], ts[pick], value[pick], trig[pick], busy[pick]
        when = self.spec.when
        inside = ctx.clock.matches(when, ts) if when is not None else np.ones(ts.shape, bool)
        clear = ((value <= self.clear_below.at(ctx, dev)) & (value >= self.clear_above.at(ctx, dev))
                 | ~inside)
        # ... except those that cannot change anything: a row that does not trigger, after a
        # row that cleared (or as the first row of an idle device), leaves the device idle.
        first = np.r_[True, dev[1:] != dev[:-1]]
        after_clear = np.r_[False, clear[:-1]]
        keep = np.flatnonzero(trig | np.where(first, busy, ~after_clear))
        return self._decide(ctx, dev[keep], ts[keep], value[keep], trig[keep], clear[keep],
                            inside[keep], batch.channel[rows[pick[keep]]])

    def _decide(self, ctx: Context, dev: np.ndarray, ts: np.ndarray, value: np.ndarray,
                trig: np.ndarray, clear: np.ndarray, inside: np.ndarray, channel: np.ndarray
                ) -> list[Signal]:
        hold = np.broadcast_to(self.hold_us.at(ctx, dev), dev.shape)
        out: list[Signal] = []
        starts, stops = runs(dev)
        cols = (ts.tolist(), value.tolist(), trig.tolist(), clear.tolist(), inside.tolist(),
                channel.tolist(), hold.tolist())
        t_, v_, trig_, clear_, in_, ch_, hold_ = cols
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            d = int(dev[a])
            phase, since = int(self.phase[d]), int(self.since[d])
            recent = self.recent.get(d, [])
            latest = None  # newest triggering row of a running episode, for the update
            for i in range(a, b):
                t, v = t_[i], v_[i]
                if phase == ACTIVE:
                    if clear_[i]:
                        latest = None
                        out.append(self._signal(ctx, d, False, t, v, [],
                                                self._cleared(ctx, d, ch_[i], v, in_[i])))
                        phase, recent = IDLE, []
                    elif trig_[i]:
                        recent.append((d, ch_[i], t, v))
                        latest = i
                elif trig_[i]:
                    if phase == IDLE:
                        phase, since, recent = PENDING, t, []
                    recent.append((d, ch_[i], t, v))
                    if t - since >= hold_[i]:
                        phase, latest = ACTIVE, None
                        out.append(self._signal(ctx, d, True, t, v, recent,
                                                self._held(ctx, d, ch_[i], v, t - since)))
                else:
                    phase, recent = IDLE, []
                del recent[:-MAX_EVIDENCE]
            if latest is not None:
                out.append(self._signal(ctx, d, True, t_[latest], v_[latest], recent,
                                        self._held(ctx, d, ch_[latest], v_[latest],
                                                           t_[latest] - since)))
            self.phase[d], self.since[d] = phase, since
            if phase == IDLE:
                self.recent.pop(d, None)
            else:
                self.recent[d] = recent
        return out

    def _signal(self, ctx: Context, d: int, active: bool, t: int, v: float,
                rows: list[tuple[int, int, int, float]], detail: str) -> Signal:
        return Signal(self.rule, ctx.device_id(d), active, t, d, v, evidence=evidence(rows),
                      detail=detail)

    def _limit(self, ctx: Context, d: int) -> str:
        above, below = self.above.one(ctx, d), self.below.one(ctx, d)
        parts = []
        if above < math.inf:
            parts.append(f"above {fmt_value(above)}")
        if below > -math.inf:
            parts.append(f"below {fmt_value(below)}")
        text = " or ".join(parts)
        if self.spec.when is not None and self.spec.when.hours:
            text += f" during {self.spec.when.hours}"
        return text

    def _held(self, ctx: Context, d: int, channel: int, v: float, held_us: int) -> str:
        return (f"{fmt_value(v, unit(ctx, d, channel))} for {fmt_duration(held_us / US)} "
                f"(limit: {self._limit(ctx, d)})")

    def _cleared(self, ctx: Context, d: int, channel: int, v: float, inside: bool) -> str:
        if not inside:
            return f"{fmt_value(v, unit(ctx, d, channel))}: outside the rule's hours"
        return f"{fmt_value(v, unit(ctx, d, channel))}: back within the limit"
