"""Nothing happened: no reading above `active_above` for `for` of time counted only inside
`when` ("an elderly person living alone: no water flow for 12 daytime hours").

Activity is a reading strictly above `active_above`. The quiet time of a device is the time
inside `when` between its newest activity (or, never active, the first tick: the rule's start)
and now; the episode is raised on the tick at which it reaches `for` (at least), and cleared
by the next activity newer than the newest known one. A late activity reading also clears a
running episode when it is newer than the activity the episode was measured from (the person
did turn the tap on; the reading was slow to come). Silence is not activity: a meter that
stops reporting also goes quiet here; the absence rule says it is offline. Only devices heard
at least once (or active in the registry) are watched, never those in maintenance or
decommissioned (cityops.domain.lifecycle), and quiet time counts from when the device became
active at the earliest: a meter being installed is nobody going quiet.
"""

from __future__ import annotations

import numpy as np

from cityops.domain import lifecycle as life
from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios import spec
from cityops.domain.scenarios.context import Context
from cityops.domain.scenarios.primitives.common import (
    NEVER,
    US,
    PerState,
    Selection,
    duration_us,
    fmt_duration,
    fmt_value,
    grown,
    in_time_order,
    runs,
    unit,
)
from cityops.domain.scenarios.signals import Signal


class QuietEvaluator:
    source = "readings"

    def __init__(self, pack: spec.ScenarioPack, rule: spec.Quiet, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        self.sel = Selection(rule, ctx)
        self.active_above = PerState.of(rule, "active_above")
        self.hold = PerState.of(rule, "for_", duration_us)
        if rule.when is not None:
            ctx.clock.compile(rule.when)
        self.started_us = 0
        self.last_active = np.zeros(0, np.int64)  # per device: newest activity
        self.quiet = np.zeros(0, bool)  # per device: an episode is running

    def _grow(self, n: int) -> None:
        self.last_active = grown(self.last_active, n, NEVER)
        self.quiet = grown(self.quiet, n, False)

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        rows = self.sel.rows(batch, ctx)
        if rows.size == 0:
            return []
        dev, value = batch.device[rows], batch.value[rows]
        busy = np.flatnonzero(value > self.active_above.at(ctx, dev))
        if busy.size == 0:
            return []
        self._grow(len(ctx.registry))
        rows, dev = rows[busy], dev[busy]
        ts = batch.ts[rows]
        order = in_time_order(dev, ts)
        rows, dev, ts = rows[order], dev[order], ts[order]
        _, stops = runs(dev)
        last = stops - 1
        newest_dev, newest_ts = dev[last], ts[last]
        newer = newest_ts > self.last_active[newest_dev]
        self.last_active[newest_dev] = np.maximum(self.last_active[newest_dev], newest_ts)
        out = []
        for k in np.flatnonzero(newer & self.quiet[newest_dev]).tolist():
            d, t, r = int(newest_dev[k]), int(newest_ts[k]), int(rows[last[k]])
            self.quiet[d] = False
            v, ch = float(batch.value[r]), int(batch.channel[r])
            out.append(Signal(self.rule, ctx.device_id(d), False, t, d, v,
                              evidence=[(d, ch, t, v)],
                              detail=f"active again: {fmt_value(v, unit(ctx, d, ch))}"))
        return out

    def on_tick(self, ctx: Context) -> list[Signal]:
        now = ctx.now_us
        if not now:
            return []
        if not self.started_us:
            self.started_us = now
        self.sel.refresh(ctx)
        n = len(ctx.registry)
        self._grow(n)
        # As for absence: a device never heard of is being installed, one in maintenance or
        # decommissioned is resting; neither is a person who stopped using water. Quiet time
        # counts from when the device became active at the earliest.
        registry = ctx.registry
        state = registry.lifecycle[:n]
        heard = self.last_active[:n] != NEVER
        seen = ctx.last_seen_us
        if seen is not None:
            k = min(n, seen.shape[0])
            heard[:k] |= seen[:k] != NEVER
        counted = ((state == life.ACTIVE) | heard) & (state < life.MAINTENANCE)
        watch = np.flatnonzero(self.sel.mask & counted & ~self.quiet[:n])
        if watch.size == 0:
            return []
        since = np.maximum(self.last_active[watch], self.started_us)
        since = np.maximum(since, np.where(state[watch] == life.ACTIVE,
                                           registry.lifecycle_at_us[watch], since))
        quiet_s = np.asarray(ctx.clock.seconds_inside(self.spec.when, since, np.int64(now)))
        hold_s = np.asarray(self.hold.at(ctx, watch)) / US
        out = []
        for k in np.flatnonzero(quiet_s >= hold_s).tolist():
            d = int(watch[k])
            self.quiet[d] = True
            out.append(Signal(self.rule, ctx.device_id(d), True, now, d, float(quiet_s[k]),
                              detail=self._detail(ctx, d, float(quiet_s[k]), int(since[k]),
                                                  now)))
        return out

    def _detail(self, ctx: Context, d: int, quiet_s: float, since: int, now: int) -> str:
        level = fmt_value(self.active_above.one(ctx, d), unit(ctx, d, self._channel(d)))
        when = self.spec.when
        inside = ""
        if when is not None:
            inside = f" inside {when.hours}" if when.hours else " inside the rule's hours"
        if self.last_active[d] == NEVER:
            origin = "since detection started"
        else:
            origin = f"last activity {fmt_duration((now - since) / US)} ago"
        return f"nothing above {level} for {fmt_duration(quiet_s)}{inside} ({origin})"

    def _channel(self, d: int) -> int:
        return max(0, int(self.sel.channel_of[d]))
