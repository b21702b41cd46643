"""Baseline anomaly on a city KPI ("vital sign"): "110 calls this hour far above the same hour's
usual", per series (a `kpi` device: one KPI in one area).

Each value is compared with the history of its hour of the week (168 slots, local time from the
city's clock) BEFORE it joins that history:

- `robust_z`: z = (value - median) / (MAD x 1.4826) over the slot's last `weeks` values. The
  spread is floored at sqrt(|median|) and at 1: KPI series are counts, whose noise is at least
  Poisson's, so a flat history (MAD 0) does not turn the next small wobble into an anomaly;
- `ewma`: z = (value - mean) / sd with the slot's exponentially weighted mean and variance
  (weight `alpha` for the newest value), the spread floored the same way.

High: z > z_above and value >= min_value. Low (only with `z_below`): z < -z_below and the
baseline >= min_value (a drop means something only where there usually is something). A slot
with fewer than `min_history` values is still learning and decides nothing. `weeks` and
`alpha` shape what is learnt, the city's history, so they do not change with the operating
state; the levels do.

One value per hour: a series that reports its running count more often replaces the hour's
value, compared with the history before that hour. A reading older than the newest one of its
series is ignored. Episodes per series: raised by an anomalous value, updated by each further
one, cleared by the first value that is not (or falls outside the rule's `when`).
`snapshot()` gives per series the latest value, baseline, z and status for the vital-signs API.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios import spec
from cityops.domain.scenarios.context import Context
from cityops.domain.scenarios.primitives.common import (
    NEVER,
    US,
    PerState,
    Selection,
    fmt_value,
    grown,
    in_time_order,
)
from cityops.domain.scenarios.signals import Signal

HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US
SLOTS = 7 * 24
MAD_TO_SD = 1.4826
NORMAL, HIGH, LOW, LEARNING = "normal", "high", "low", "learning"
STATUSES = (NORMAL, HIGH, LOW, LEARNING)
_NORMAL, _HIGH, _LOW, _LEARNING = range(4)  # the statuses as their index in STATUSES
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def floor_sd(centre: np.ndarray) -> np.ndarray:
    """The least spread a count series can have around `centre`."""
    least: np.ndarray = np.maximum(np.sqrt(np.abs(np.nan_to_num(centre))), 1.0)
    return least


class BaselineEvaluator:
    source = "readings"

    def __init__(self, pack: spec.ScenarioPack, rule: spec.Baseline, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        self.sel = Selection(rule, ctx, kind="kpi")
        if rule.when is not None:
            ctx.clock.compile(rule.when)
        if rule.method == "robust_z":
            self.history: _History = _Window(max(1, int(rule.weeks)))
        else:
            if not 0 < rule.alpha <= 1:
                raise ValueError(f"rule {rule.id!r}: alpha {rule.alpha} is not in (0, 1]")
            self.history = _Ewma(float(rule.alpha))
        self.z_above = PerState.of(rule, "z_above")
        self.z_below = PerState.of(rule, "z_below")
        self.min_value = PerState.of(rule, "min_value")
        self.min_history = PerState.of(rule, "min_history")
        self.row_of = np.full(0, -1, np.int64)  # per device: its row in the history tables
        self.series: list[int] = []  # per row: the device
        self.newest = np.full(0, NEVER, np.int64)  # per device: newest reading evaluated
        # Per device, what snapshot() reports, as columns: a dict per device per batch cost
        # more than the statistics for a city's thousands of noise meters.
        self.last_ts = np.full(0, NEVER, np.int64)
        self.last_value = np.full(0, np.nan)
        self.last_baseline = np.full(0, np.nan)
        self.last_z = np.full(0, np.nan)
        self.last_status = np.full(0, -1, np.int8)  # index into STATUSES; -1: never seen
        self.last_count = np.zeros(0, np.int64)
        self._ids = ctx.device_id
        self.active: set[int] = set()

    def on_tick(self, ctx: Context) -> list[Signal]:
        return []

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        rows = self.sel.rows(batch, ctx)
        rows = rows[np.isfinite(batch.value[rows])]
        if rows.size == 0:
            return []
        rows = rows[in_time_order(batch.device[rows], batch.ts[rows])]
        dev = batch.device[rows].astype(np.int64)
        ts = batch.ts[rows]
        self.newest = grown(self.newest, len(ctx.registry), NEVER)
        fresh = ts >= self.newest[dev]
        rows, dev, ts = rows[fresh], dev[fresh], ts[fresh]
        if rows.size == 0:
            return []
        np.maximum.at(self.newest, dev, ts)
        value = batch.value[rows]
        local = ctx.clock.local_us(ts)
        hour = local // HOUR_US
        slot = ((local // DAY_US + 3) % 7) * 24 + (local % DAY_US) // HOUR_US  # Monday 00h: 0

        series = self._rows(dev)
        baseline, z, count = self.history.compare_and_add(series, slot, hour, value)
        status = self._status(ctx, dev, value, baseline, z, count)
        anomalous = (status == _HIGH) | (status == _LOW)
        if self.spec.when is not None:
            anomalous &= ctx.clock.matches(self.spec.when, ts)

        last = np.flatnonzero(np.r_[dev[1:] != dev[:-1], True])
        n = len(ctx.registry)
        self.last_ts = grown(self.last_ts, n, NEVER)
        self.last_value = grown(self.last_value, n, np.nan)
        self.last_baseline = grown(self.last_baseline, n, np.nan)
        self.last_z = grown(self.last_z, n, np.nan)
        self.last_status = grown(self.last_status, n, -1)
        self.last_count = grown(self.last_count, n, 0)
        d = dev[last]
        self.last_ts[d] = ts[last]
        self.last_value[d] = value[last]
        self.last_baseline[d] = baseline[last]
        self.last_z[d] = z[last]
        self.last_status[d] = status[last]
        self.last_count[d] = count[last]
        self._ids = ctx.device_id
        # Only series with an open episode or an anomaly in this batch have anything to decide.
        busy = np.concatenate([np.fromiter(self.active, np.int64, len(self.active)),
                               dev[anomalous]])
        look = np.flatnonzero(np.isin(dev, busy))
        out: list[Signal] = []
        for i in look.tolist():
            d = int(dev[i])
            if anomalous[i] or d in self.active:
                if not anomalous[i]:
                    self.active.discard(d)
                else:
                    self.active.add(d)
                out.append(self._signal(ctx, d, bool(anomalous[i]), int(rows[i]), batch,
                                        float(baseline[i]), float(z[i]), int(slot[i])))
        return out

    def learning_span_us(self) -> int:
        """How far back the history this rule keeps reaches: what a starting node reads to
        learn it (robust_z: its weeks and the current one; ewma: until the oldest value
        weighs under 2 %, at most a year)."""
        if self.spec.method == "robust_z":
            weeks = int(self.spec.weeks) + 1
        else:
            weeks = min(52, max(1, math.ceil(math.log(0.02) / math.log(1 - self.spec.alpha))))
        return weeks * 7 * DAY_US

    def learn(self, batch: ReadingBatch, ctx: Context) -> None:
        """Take in past readings (stored history, imported or not) as if they had been seen
        live, deciding nothing: the episodes of the past are not today's."""
        self.on_batch(batch, ctx)
        self.active.clear()

    def _rows(self, dev: np.ndarray) -> np.ndarray:
        """History rows of these devices, adding rows for series seen for the first time."""
        self.row_of = grown(self.row_of, int(dev.max()) + 1, -1)
        for d in np.unique(dev[self.row_of[dev] < 0]).tolist():
            self.row_of[d] = len(self.series)
            self.series.append(d)
        self.history.grow(len(self.series))
        rows: np.ndarray = self.row_of[dev]
        return rows

    def _status(self, ctx: Context, dev: np.ndarray, value: np.ndarray, baseline: np.ndarray,
                z: np.ndarray, count: np.ndarray) -> np.ndarray:
        min_value = self.min_value.at(ctx, dev)
        with np.errstate(invalid="ignore"):
            high = (z > self.z_above.at(ctx, dev)) & (value >= min_value)
            low = (z < -np.asarray(self.z_below.at(ctx, dev))) & (baseline >= min_value)
        status: np.ndarray = np.where(high, _HIGH, np.where(low, _LOW, _NORMAL)).astype(np.int8)
        status[count < self.min_history.at(ctx, dev)] = _LEARNING
        return status

    def _signal(self, ctx: Context, device: int, active: bool, row: int, batch: ReadingBatch,
                baseline: float, z: float, slot: int) -> Signal:
        value, ts = float(batch.value[row]), int(batch.ts[row])
        day, hour = divmod(slot, 24)
        usual = f"{_WEEKDAYS[day]} {hour:02d}:00"
        if active:
            side = "above" if z > 0 else "below"
            detail = (f"{fmt_value(value)} is far {side} the usual {fmt_value(round(baseline, 1))}"
                      f" for {usual} (z = {z:.1f})")
        else:
            detail = f"back to usual: {fmt_value(value)} against {fmt_value(round(baseline, 1))}"
        return Signal(
            rule=self.rule,
            subject=ctx.device_id(device),
            active=active,
            ts_us=ts,
            device=device,
            value=value,
            evidence=[(device, int(batch.channel[row]), ts, value)],
            detail=detail,
        )

    def snapshot(self) -> list[dict[str, Any]]:
        """Per series, for the vital-signs API: the latest value, its baseline (median or
        mean of its hour of the week), z and status (normal, high, low or learning)."""
        seen = np.flatnonzero(self.last_status >= 0)
        return [{
            "device_id": self._ids(int(d)),
            "ts": int(self.last_ts[d]) / US,
            "value": float(self.last_value[d]),
            "baseline": _number(float(self.last_baseline[d])),
            "z": _number(float(self.last_z[d])),
            "status": STATUSES[int(self.last_status[d])],
            "history": int(self.last_count[d]),
            "method": self.spec.method,
        } for d in seen.tolist()]


def _number(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 3)


class _History:
    def grow(self, rows: int) -> None:
        raise NotImplementedError

    def compare_and_add(self, row: np.ndarray, slot: np.ndarray, hour: np.ndarray,
                        value: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per reading (in time order): baseline, z and history size before the reading
        joins its slot. A (row, slot) may recur in one batch (a replay spanning weeks, or a
        running count updated within its hour): those go in rounds, in time order."""
        key = row * SLOTS + slot
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(key.size), 0))
        occurrence = np.empty(key.size, np.int64)
        occurrence[order] = np.arange(key.size) - group_start
        baseline, z, count = np.full(key.size, np.nan), np.full(key.size, np.nan), \
            np.zeros(key.size, np.int64)
        for k in range(int(occurrence.max()) + 1):
            i = np.flatnonzero(occurrence == k)
            baseline[i], z[i], count[i] = self._round(row[i], slot[i], hour[i], value[i])
        return baseline, z, count

    def _round(self, row: np.ndarray, slot: np.ndarray, hour: np.ndarray,
               value: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError


class _Window(_History):
    """The slot's last `weeks` values (one per hour), newest last, plus the current hour's.

    The history before an hour does not change while the hour lasts, so its median, spread
    and size are worked out once, at the hour's first value, and kept beside it: a meter that
    reports every minute costs a lookup per reading, not a median."""

    def __init__(self, weeks: int) -> None:
        self.weeks = weeks
        self.values = np.full((0, SLOTS, weeks + 1), np.nan)
        self.hour = np.full((0, SLOTS), NEVER, np.int64)  # hour of the newest value stored
        self.median = np.full((0, SLOTS), np.nan)  # of the history before that hour
        self.sd = np.full((0, SLOTS), np.nan)
        self.count = np.zeros((0, SLOTS), np.int64)

    def grow(self, rows: int) -> None:
        self.values = grown(self.values, rows, np.nan)
        self.hour = grown(self.hour, rows, NEVER)
        self.median = grown(self.median, rows, np.nan)
        self.sd = grown(self.sd, rows, np.nan)
        self.count = grown(self.count, rows, 0)

    def _round(self, row: np.ndarray, slot: np.ndarray, hour: np.ndarray,
               value: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        new = self.hour[row, slot] != hour
        if new.any():
            # A new hour in these slots: last week's value joins the history, the oldest
            # leaves, and the history's statistics are worked out for the hour.
            r, s = row[new], slot[new]
            shifted = np.roll(self.values[r, s], -1, axis=1)
            shifted[:, -1] = np.nan
            past = shifted[:, :-1]
            count = np.sum(~np.isnan(past), axis=1)
            median = _nanmedian(past, count)
            mad = _nanmedian(np.abs(past - median[:, None]), count) * MAD_TO_SD
            self.values[r, s] = shifted
            self.hour[r, s] = hour[new]
            self.median[r, s] = median
            self.sd[r, s] = np.maximum(mad, floor_sd(median))
            self.count[r, s] = count
        median = self.median[row, slot]
        count = self.count[row, slot]
        z = np.where(count > 0, (value - median) / self.sd[row, slot], np.nan)
        self.values[row, slot, -1] = value
        return median, z, count


def _nanmedian(values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN (NaN where a row has none), without numpy's all-NaN warnings."""
    ordered = np.sort(values, axis=1)  # NaN sort last
    rows = np.arange(values.shape[0])
    lo = np.maximum((count - 1) // 2, 0)
    hi = np.maximum(count // 2, 0)
    hi = np.minimum(hi, values.shape[1] - 1)
    median = (ordered[rows, lo] + ordered[rows, hi]) / 2
    return np.where(count > 0, median, np.nan)


class _Ewma(_History):
    """Per slot an exponentially weighted mean and variance, and the same before the current
    hour's value joined them, so that a later value of the same hour can replace it."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.state = np.zeros((0, SLOTS, 3))  # mean, variance, count
        self.before = np.zeros((0, SLOTS, 3))
        self.hour = np.full((0, SLOTS), NEVER, np.int64)

    def grow(self, rows: int) -> None:
        self.state = grown(self.state, rows, 0.0)
        self.before = grown(self.before, rows, 0.0)
        self.hour = grown(self.hour, rows, NEVER)

    def _round(self, row: np.ndarray, slot: np.ndarray, hour: np.ndarray,
               value: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        same = self.hour[row, slot] == hour
        current = np.where(same[:, None], self.before[row, slot], self.state[row, slot])
        mean, var, count = current[:, 0], current[:, 1], current[:, 2]
        known = count > 0
        sd = np.maximum(np.sqrt(var), floor_sd(mean))
        z = np.where(known, (value - mean) / sd, np.nan)
        baseline = np.where(known, mean, np.nan)
        diff = value - mean
        new_mean = np.where(known, mean + self.alpha * diff, value)
        new_var = np.where(known, (1 - self.alpha) * (var + self.alpha * diff * diff), 0.0)
        self.before[row, slot] = current
        self.state[row, slot] = np.column_stack([new_mean, new_var, count + 1])
        self.hour[row, slot] = hour
        return baseline, z, count.astype(np.int64)
