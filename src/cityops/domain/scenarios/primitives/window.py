"""Window aggregate: count, sum, mean, max, min or range of a channel over a sliding window per
device, grid cell, village, town or district ("more than 3 smoke alarms in one cell in 5 min",
"a value whose range stays under 0.01 for an hour: stuck").

The window ending at time t holds the group's readings with t - over <= ts <= t (a reading
exactly `over` old still counts). It is evaluated at each reading, the readings of one group
within the same second together, at the newest of them. `value_above` keeps only readings
strictly above it; `above`/`below` compare the aggregate strictly. The condition holds when the
window has at least `min_count` readings and the aggregate passes; an episode clears as soon as
it does not hold, fewer readings than `min_count` included. Time passing is noticed on ticks:
running episodes are evaluated again at the engine's clock, so a cluster of alarms clears once
they fall out of the window even if nothing else arrives.

A group whose windows hold more than 128 readings (a meter at 1 Hz over 30 min) makes the rule
keep counts, sums and extremes per pane of over/60 instead of the readings: memory and work per
window no longer grow with the rate, and a window's ends are then exact to a pane or two (the
panes holding them count whole); the evidence is then the batch's readings of the group.

A window never ends earlier than one already evaluated: a late reading is added to the group's
rows (it counts wherever its time falls inside a window) and is evaluated at the group's newest
time, not at its own. Parameters in force are those of the device of the newest reading.

Signals: active on the raise, inactive on the clear, and at most one active update per group
and batch for a running episode, at the newest evaluation.

`source: rejections` makes the engine feed this rule the readings intake refused (out of
range): a storm of refused values is a sick device. With no `channel`, every channel counts.

`distinct: device` (with `agg: count` only) counts the devices with a reading in the window
rather than the readings, `min_count` included: "more than three detectors in alarm", which one
detector repeating itself never is. Since a window never ends earlier than one already
evaluated, it holds a device exactly when it holds the device's newest reading, so the rule
keeps one reading per device (and one batch's): exact whatever the rate, never in panes. The
evidence is each device's newest reading in the window.
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
    runs,
    subject,
    unit,
)
from cityops.domain.scenarios.signals import Signal

SECOND = US


class WindowEvaluator:
    def __init__(self, pack: spec.ScenarioPack, rule: spec.Window, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        self.source = rule.source
        self.per = rule.per
        if self.per != "device":
            ctx.places.group(self.per)  # refuses an unknown grouping
        rejections = rule.source == "rejections"
        self.sel = Selection(rule, ctx, any_channel=rejections and rule.channel is None)
        self.over = PerState.of(rule, "over", duration_us)
        self.span = max(self.over.values)
        self.above = PerState.of(rule, "above")
        self.below = PerState.of(rule, "below")
        if all(math.isnan(a) and math.isnan(b) for a, b in
               zip(self.above.values, self.below.values, strict=True)):
            raise ValueError(f"rule {rule.id!r}: a window needs `above` or `below`")
        self.value_above = PerState.of(rule, "value_above")
        self.min_count = PerState.of(rule, "min_count", int)
        self.distinct = rule.distinct == "device"
        if self.distinct and rule.agg != "count":
            raise ValueError(f"rule {rule.id!r}: `distinct: device` counts devices, so it needs "
                             f"`agg: count`, not {rule.agg!r}")
        self.table = WindowStore(self.span, 4, distinct=self.distinct)
        # This batch's rows in group order (group, ts, value, device), for evidence.
        self._batch: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | tuple[()] = ()
        self._sized = False
        self.groups = Groups(self.per)
        self.active = np.zeros(0, bool)  # per group
        self.newest = np.zeros(0, np.int64)  # per group: end of the latest window evaluated
        self.device = np.zeros(0, np.int32)  # per group: device of the newest reading

    def _refresh(self, ctx: Context) -> None:
        if not self.groups.refresh(self.sel, ctx):
            return
        g = len(self.groups)
        self.active = grown(self.active, g, False)
        self.newest = grown(self.newest, g, NEVER)
        self.device = grown(self.device, g, -1)
        if not self._sized:
            self._sized = True
            sparse = self.spec.value_above is not None or self.source == "rejections"
            capacity = 4 if sparse else self.groups.capacity(ctx, self.span)
            self.table = WindowStore(self.span, capacity, distinct=self.distinct)

    # -- evaluation -----------------------------------------------------------------------

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        self._refresh(ctx)
        rows = self.sel.rows(batch, ctx)
        if rows.size == 0:
            return []
        dev = batch.device[rows]
        value = batch.value[rows]
        if self.spec.value_above is not None or not self.value_above.uniform:
            passes = ~(value <= self.value_above.at(ctx, dev))  # no level (NaN): all pass
            rows, dev, value = rows[passes], dev[passes], value[passes]
        group = self.groups.of[dev]
        ok = group >= 0
        if not ok.all():
            rows, dev, value, group = rows[ok], dev[ok], value[ok], group[ok]
        if rows.size == 0:
            return []
        ts = batch.ts[rows]
        end = np.maximum(ts, self.newest[group])  # a window never ends earlier than before
        order = np.lexsort((ts, end, group))
        group, ts, end, value, dev = group[order], ts[order], end[order], value[order], dev[order]
        starts, stops = runs(group)
        keep_from = np.repeat(end[starts] - self.span, stops - starts)
        # Evaluate at the last reading of each group and second.
        second = end // SECOND
        last = np.flatnonzero(np.r_[(group[1:] != group[:-1]) | (second[1:] != second[:-1]),
                                    True])
        g, e, d = group[last], end[last], dev[last]
        stats = self.table.add_and_query((group, ts, value, dev), keep_from,
                                         (g, e - self.over.at(ctx, d), e), **self._wanted())
        self._batch = (group, ts, value, dev)
        return self._evaluate(ctx, g, e, d, tick=False, stats=stats)

    def on_tick(self, ctx: Context) -> list[Signal]:
        if not ctx.now_us:
            return []
        self._refresh(ctx)
        groups = np.flatnonzero(self.active[: len(self.groups)])
        if groups.size == 0:
            return []
        end = np.maximum(self.newest[groups], ctx.now_us)
        self._batch = ()
        return self._evaluate(ctx, groups, end, self.device[groups], tick=True)

    def _wanted(self) -> dict[str, bool]:
        return {"total": self.spec.agg in ("sum", "mean"),
                "extremes": self.spec.agg in ("min", "max", "range")}

    def _evaluate(self, ctx: Context, group: np.ndarray, end: np.ndarray, dev: np.ndarray,
                  tick: bool, stats: tuple[np.ndarray, ...] | None = None) -> list[Signal]:
        """Windows ending at `end` for `group` (sorted by group, then time)."""
        start = end - self.over.at(ctx, dev)
        if stats is None:
            stats = self.table.stats(group, start, end, **self._wanted())
        count, total, low, high = stats
        agg = _aggregate(self.spec.agg, count, total, low, high)
        holds = ((count >= self.min_count.at(ctx, dev))
                 & ((agg > self.above.at(ctx, dev)) | (agg < self.below.at(ctx, dev))))
        first = np.r_[True, group[1:] != group[:-1]]
        before = np.where(first, self.active[group], np.r_[False, holds[:-1]])
        raise_, clear = holds & ~before, ~holds & before
        final = np.r_[group[1:] != group[:-1], True]
        update = final & holds & ~raise_ & ~tick
        fin = np.flatnonzero(final)
        self.active[group[fin]] = holds[fin]
        self.newest[group[fin]] = end[fin]
        self.device[group[fin]] = dev[fin]
        out = []
        for i in np.flatnonzero(raise_ | clear | update).tolist():
            out.append(self._signal(ctx, int(group[i]), bool(holds[i]), int(start[i]),
                                    int(end[i]), int(dev[i]), float(agg[i]), int(count[i])))
        return out

    def _signal(self, ctx: Context, g: int, active: bool, start: int, end: int, d: int,
                agg: float, count: int) -> Signal:
        channel = max(0, int(self.sel.channel_of[d]))
        rows = []
        if active:
            rows = self.table.rows(g, start, end) if self.table.exact else self._batch_rows(
                g, start, end)
            if self.distinct:
                rows = list({dv: (dv, t, v) for dv, t, v in rows}.values())  # newest per device
        shown = agg if self.spec.agg != "count" else float(count)
        name = subject(ctx, self.per, self.groups.names[g])
        return Signal(self.rule, name, active, end, d, shown,
                      evidence=evidence((dv, channel, t, v) for dv, t, v in rows),
                      detail=self._detail(ctx, d, channel, agg, count, end - start, active))

    def _batch_rows(self, g: int, start: int, end: int) -> list[tuple[int, int, float]]:
        """Once the store keeps panes only, the evidence is what this batch brought."""
        if not self._batch:
            return []
        group, ts, value, dev = self._batch
        idx = np.flatnonzero((group == g) & (ts >= start) & (ts <= end))
        return list(zip(dev[idx].tolist(), ts[idx].tolist(), value[idx].tolist(), strict=True))

    def _detail(self, ctx: Context, d: int, channel: int, agg: float, count: int, over: int,
                active: bool) -> str:
        rule = self.spec
        what = "refused readings" if self.source == "rejections" else "readings"
        if rule.value_above is not None:
            what += f" above {fmt_value(self.value_above.one(ctx, d))}"
        if rule.agg == "count" and self.distinct:
            text = f"{count} devices with {what} in {fmt_duration(over / US)}"
        elif rule.agg == "count":
            text = f"{count} {what} in {fmt_duration(over / US)}"
        else:
            u = unit(ctx, d, channel) if self.source == "readings" else ""
            text = (f"{rule.agg} {fmt_value(agg, u)} of {count} {what} "
                    f"in {fmt_duration(over / US)}")
        limits = []
        above, below = self.above.one(ctx, d), self.below.one(ctx, d)
        if not math.isnan(above):
            limits.append(f"above {fmt_value(above)}")
        if not math.isnan(below):
            limits.append(f"below {fmt_value(below)}")
        verdict = "limit" if active else "back within the limit"
        return f"{text} ({verdict}: {' or '.join(limits)})"


def _aggregate(agg: str, count: np.ndarray, total: np.ndarray, low: np.ndarray,
               high: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        if agg == "count":
            return count.astype(np.float64)
        if agg == "sum":
            return total
        if agg == "mean":
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)
        if agg == "max":
            return np.where(count > 0, high, np.nan)
        if agg == "min":
            return np.where(count > 0, low, np.nan)
        return np.where(count > 0, high - low, np.nan)  # range
