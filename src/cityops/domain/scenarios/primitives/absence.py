"""Absence: an active device silent for `periods` of its kind's reporting period is offline.

Checked on ticks: a device is offline once now - last heard >= periods x period_s. "Last heard"
is the newest of the reading times the engine has seen (ctx.last_seen_us, any channel), for
readings this rule saw arrive their arrival (the engine's clock then), so a device sending a
backlog of old readings counts as alive, and the moment the device entered the active state
(a device back from maintenance is silent from its return, not from its last reading before).
Nothing is offline until `periods` x period after the rule started either: a node that was
down heard nothing, which says nothing of the devices.

Only devices that have been heard count (cityops.domain.lifecycle): active in the registry,
or heard by this rule (a cluster's detect worker learns of a first reading from the reading,
before its registry reloads). A device never heard is commissioning, not offline: a node
started with a whole city and no readings yet raises nothing. A device in maintenance or
decommissioned never counts, and an offline one moved there clears, saying why. Offline
devices clear when a reading of theirs arrives. With `when`, new episodes are only raised
while the condition holds; clearing is never held back.
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
    fmt_duration,
    grown,
    in_time_order,
    runs,
)
from cityops.domain.scenarios.signals import Signal


class AbsenceEvaluator:
    source = "readings"

    def __init__(self, pack: spec.ScenarioPack, rule: spec.Absence, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        self.sel = Selection(rule, ctx, any_channel=True)
        self.periods = PerState.of(rule, "periods")
        if any(not p > 0 for p in self.periods.values):
            raise ValueError(f"rule {rule.id!r}: periods must be more than 0")
        if rule.when is not None:
            ctx.clock.compile(rule.when)
        self.started_us = 0
        self.heard = np.zeros(0, np.int64)  # per device: newest reading or arrival seen here
        self.offline = np.zeros(0, bool)

    def _grow(self, n: int) -> None:
        self.heard = grown(self.heard, n, NEVER)
        self.offline = grown(self.offline, n, False)

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        rows = self.sel.rows(batch, ctx)
        if rows.size == 0:
            return []
        self._grow(len(ctx.registry))
        dev, ts = batch.device[rows], batch.ts[rows]
        np.maximum.at(self.heard, dev, np.maximum(ts, ctx.now_us))
        back = np.flatnonzero(self.offline[dev])
        if back.size == 0:
            return []
        dev, ts = dev[back], ts[back]
        order = in_time_order(dev, ts)
        dev, ts = dev[order], ts[order]
        _, stops = runs(dev)
        out = []
        for d, newest in zip(dev[stops - 1].tolist(), ts[stops - 1].tolist(), strict=True):
            self.offline[d] = False
            out.append(Signal(self.rule, ctx.device_id(d), False, newest, d,
                              detail="reporting again"))
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
        registry = ctx.registry
        state = registry.lifecycle[:n]
        last = np.maximum(self.heard[:n], self.started_us)
        seen = ctx.last_seen_us
        if seen is not None:
            k = min(n, seen.shape[0])
            last[:k] = np.maximum(last[:k], seen[:k])
        # Silence of an active device counts from when it became active at the earliest.
        active = state == life.ACTIVE
        last = np.where(active, np.maximum(last, registry.lifecycle_at_us[:n]), last)
        resting = state >= life.MAINTENANCE  # never offline, whatever was heard
        counted = (active | (self.heard[:n] != NEVER)) & ~resting
        period_s = np.array([k.period_s for k in registry.kinds])[registry.kind_of]
        devices = np.arange(n)
        limit = (self.periods.at(ctx, devices) * period_s * US).astype(np.int64)
        silent = self.sel.mask & counted & (now - last >= limit)
        offline = self.offline[:n]
        out = []
        for d in np.flatnonzero(offline & resting).tolist():
            offline[d] = False
            why = "in maintenance" if state[d] == life.MAINTENANCE else "decommissioned"
            out.append(Signal(self.rule, ctx.device_id(d), False, now, d, detail=why))
        for d in np.flatnonzero(offline & ~silent).tolist():  # heard of elsewhere
            offline[d] = False
            out.append(Signal(self.rule, ctx.device_id(d), False, int(last[d]), d,
                              detail="reporting again"))
        if self.spec.when is not None and not ctx.clock.matches(self.spec.when,
                                                                np.array([now]))[0]:
            return out
        for d in np.flatnonzero(silent & ~offline).tolist():
            offline[d] = True
            quiet = (now - int(last[d])) / US
            detail = f"no reading for {fmt_duration(quiet)} (reports every " \
                     f"{fmt_duration(float(period_s[d]))})"
            if int(last[d]) == self.started_us and self.heard[d] == NEVER:
                detail = f"no reading since detection started {fmt_duration(quiet)} ago " \
                         f"(reports every {fmt_duration(float(period_s[d]))})"
            elif active[d] and int(last[d]) == int(registry.lifecycle_at_us[d]):
                detail = f"no reading for {fmt_duration(quiet)} since it became active " \
                         f"(reports every {fmt_duration(float(period_s[d]))})"
            out.append(Signal(self.rule, ctx.device_id(d), True, now, d, quiet, detail=detail))
        return out
