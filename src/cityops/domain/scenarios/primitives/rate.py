"""Rate of change: "water depth rising more than 5 cm in 10 min".

At each reading (time t, value v) of a device, the rise is v minus the lowest value the device
reported in [t - within, t], the fall the highest minus v (a reading exactly `within` old still
counts). A reading qualifies when the rise is strictly more than `rise` (the fall more than
`fall`) and it lies inside the rule's `when`. The first qualifying reading raises the episode;
it clears at the first reading, or tick, `clear_after` after the last qualifying reading (on
reading time; ticks use the engine's clock).

Devices reporting much faster than their kind's period (over 128 readings within `within`) make
the rule keep minima and maxima per pane of within/60: the window's start is then exact to one
pane. A late reading (older than the newest one evaluated for its device) is kept as history for the
readings after it but is not evaluated itself. Signals carry the change (positive: rise,
negative: fall) as their value: active on the raise, inactive on the clear, and at most one
active update per device and batch while qualifying readings keep coming.
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
    Groups,
    PerState,
    Selection,
    WindowStore,
    duration_us,
    evidence,
    fmt_duration,
    fmt_value,
    grown,
    in_time_order,
    runs,
    unit,
)
from cityops.domain.scenarios.signals import Signal


class RateOfChangeEvaluator:
    source = "readings"

    def __init__(self, pack: spec.ScenarioPack, rule: spec.RateOfChange, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        self.sel = Selection(rule, ctx)
        self.rise = PerState.of(rule, "rise")
        self.fall = PerState.of(rule, "fall")
        for r, f, state in zip(self.rise.values, self.fall.values, spec.STATES, strict=True):
            if math.isnan(r) and math.isnan(f):
                raise ValueError(f"rule {rule.id!r}: a rate of change needs `rise` or `fall` "
                                 f"(in state {state})")
        self.within = PerState.of(rule, "within", duration_us)
        self.clear_after = PerState.of(rule, "clear_after", duration_us)
        self.span = max(self.within.values)
        if rule.when is not None:
            ctx.clock.compile(rule.when)
        self.groups = Groups("device")
        self.table = WindowStore(self.span, 4)
        self._sized = False
        self.active = np.zeros(0, bool)  # per device group
        self.newest = np.zeros(0, np.int64)  # per group: newest reading evaluated
        self.last = np.zeros(0, np.int64)  # per group: newest qualifying reading
        self._refresh(ctx)

    def _refresh(self, ctx: Context) -> None:
        if not self.groups.refresh(self.sel, ctx):
            return
        n = len(self.groups)
        self.active = grown(self.active, n, False)
        self.newest = grown(self.newest, n, NEVER)
        self.last = grown(self.last, n, NEVER)
        if not self._sized:
            self._sized = True
            self.table = WindowStore(self.span, self.groups.capacity(ctx, self.span))

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        self._refresh(ctx)
        rows = self.sel.rows(batch, ctx)
        if rows.size == 0:
            return []
        dev = batch.device[rows]
        group = self.groups.of[dev]
        order = in_time_order(group, batch.ts[rows])
        rows, dev, group = rows[order], dev[order], group[order]
        ts, value = batch.ts[rows], batch.value[rows]
        before = self.newest[group]
        fresh = ts >= before
        starts, stops = runs(group)
        keep_from = np.repeat(np.maximum(ts[starts], before[starts]) - self.span, stops - starts)
        np.maximum.at(self.newest, group, ts)
        pick = np.flatnonzero(fresh)
        start = ts[pick] - self.within.at(ctx, dev[pick])
        _, _, low, high = self.table.add_and_query(
            (group, ts, value, dev), keep_from, (group[pick], start, ts[pick]), total=False)
        rows, dev, group, ts, value = rows[pick], dev[pick], group[pick], ts[pick], value[pick]
        up, down = value - low, high - value
        rising, falling = up > self.rise.at(ctx, dev), down > self.fall.at(ctx, dev)
        qualifies = rising | falling
        if self.spec.when is not None and qualifies.any():
            q = np.flatnonzero(qualifies)
            qualifies[q] = ctx.clock.matches(self.spec.when, ts[q])
        look = np.flatnonzero(qualifies | self.active[group])
        if look.size == 0:
            return []
        # The change reported: the one that qualified, else the larger.
        change = np.where(rising, up, np.where(falling | (down > up), -down, up))
        cols = (dev[look], ts[look], start[look], change[look], value[look],
                batch.channel[rows[look]])
        return self._decide(ctx, group[look], qualifies[look], cols)

    def _decide(self, ctx: Context, group: np.ndarray, qualifies: np.ndarray,
                cols: tuple[np.ndarray, ...]) -> list[Signal]:
        dev, ts = cols[0], cols[1]
        clear_after = np.broadcast_to(self.clear_after.at(ctx, dev), dev.shape)
        out: list[Signal] = []
        starts, stops = runs(group)
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            g = int(group[a])
            active, last, latest = bool(self.active[g]), int(self.last[g]), None
            for i in range(a, b):
                t = int(ts[i])
                if qualifies[i]:
                    if active:
                        latest = i
                    else:
                        active, latest = True, None
                        out.append(self._signal(ctx, g, True, i, cols))
                    last = self.last[g] = t
                elif active and t - last >= clear_after[i]:
                    active, latest = False, None
                    out.append(self._signal(ctx, g, False, i, cols))
            if latest is not None:
                out.append(self._signal(ctx, g, True, latest, cols))
            self.active[g], self.last[g] = active, last
        return out

    def on_tick(self, ctx: Context) -> list[Signal]:
        if not ctx.now_us:
            return []
        self._refresh(ctx)
        groups = np.flatnonzero(self.active[: len(self.groups)])
        if groups.size == 0:
            return []
        names = self.groups.names
        dev = np.array([names[g] for g in groups.tolist()], np.int64)
        now = np.maximum(self.newest[groups], ctx.now_us)
        over = np.flatnonzero(now - self.last[groups] >= self.clear_after.at(ctx, dev))
        out = []
        for k in over.tolist():
            g, d = int(groups[k]), int(dev[k])
            self.active[g] = False
            quiet = int(now[k] - self.last[g])
            out.append(Signal(self.rule, ctx.device_id(d), False, int(now[k]), d,
                              detail=f"no qualifying change for {fmt_duration(quiet / US)}"))
        return out

    def _signal(self, ctx: Context, g: int, active: bool, i: int,
                cols: tuple[np.ndarray, ...]) -> Signal:
        dev, ts, start, change, value, channel = cols
        d, t, ch, amount = int(dev[i]), int(ts[i]), int(channel[i]), float(change[i])
        if not active:
            return Signal(self.rule, ctx.device_id(d), False, t, d, amount,
                          detail=f"no qualifying change for "
                                 f"{fmt_duration((t - int(self.last[g])) / US)}")
        rows = self.table.rows(g, int(start[i]), t) or [(d, t, float(value[i]))]
        u = unit(ctx, d, ch)
        verb = "rose" if amount >= 0 else "fell"
        limit = self.rise.one(ctx, d) if amount >= 0 else self.fall.one(ctx, d)
        detail = (f"{verb} {fmt_value(abs(amount), u)} within "
                  f"{fmt_duration(self.within.one(ctx, d) / US)} to {fmt_value(value[i], u)} "
                  f"(limit: {fmt_value(limit, u)})")
        return Signal(self.rule, ctx.device_id(d), True, t, d, amount,
                      evidence=evidence((dv, ch, tt, v) for dv, tt, v in rows), detail=detail)
