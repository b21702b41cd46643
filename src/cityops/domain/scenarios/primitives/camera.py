"""Camera analytics events: "a vehicle dwelling more than 5 min in a fire lane".

A camera reports a detection as two rows with the same device and time: the `event` channel
(a code of domain/kinds.CAMERA_EVENTS, 0 for nothing) and the `dwell` channel (seconds the
object has been there). An event row without its dwell row counts as dwell 0; a dwell row
alone says nothing. The episode is raised by the rule's event with dwell >= `dwell` (at least)
inside `when`; it continues while the camera keeps reporting that event (a shorter dwell of the
same event keeps it going), and clears when the camera reports no event (0) or another one, or
reports it outside `when`. As with thresholds, a report older than the newest one evaluated for
the camera is ignored, and a running episode gets at most one active update per batch.
"""

from __future__ import annotations

import numpy as np

from cityops.domain.kinds import CAMERA_EVENTS
from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios import spec
from cityops.domain.scenarios.context import Context
from cityops.domain.scenarios.primitives.common import (
    FUTURE_LIMIT_US,
    NEVER,
    US,
    PerState,
    Selection,
    duration_us,
    fmt_duration,
    grown,
    in_time_order,
    runs,
)
from cityops.domain.scenarios.signals import Signal

CODES = {name: code for code, name in CAMERA_EVENTS.items()}


class CameraEventEvaluator:
    source = "readings"

    def __init__(self, pack: spec.ScenarioPack, rule: spec.CameraEvent, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        if rule.event not in CODES or CODES[rule.event] == 0:
            known = ", ".join(n for c, n in CAMERA_EVENTS.items() if c)
            raise ValueError(f"rule {rule.id!r}: unknown camera event {rule.event!r} "
                             f"(known: {known})")
        self.code = CODES[rule.event]
        self.sel = Selection(rule, ctx, kind="camera", channel="event")
        assert self.sel.kind is not None  # the rule's kind, or cameras
        kind = ctx.registry.kind(self.sel.kind)
        try:
            self.event_ch, self.dwell_ch = kind.channel_index("event"), kind.channel_index("dwell")
        except KeyError as exc:
            raise ValueError(f"rule {rule.id!r}: kind {kind.name!r} has no {exc} channel") \
                from None
        self.dwell = PerState.of(rule, "dwell", duration_us)
        if rule.when is not None:
            ctx.clock.compile(rule.when)
        self.active = np.zeros(0, bool)
        self.newest = np.zeros(0, np.int64)

    def _grow(self, n: int) -> None:
        self.active = grown(self.active, n, False)
        self.newest = grown(self.newest, n, NEVER)

    def on_tick(self, ctx: Context) -> list[Signal]:
        return []  # cameras say when the event is over

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        self.sel.refresh(ctx)
        camera = np.take(self.sel.channel_of >= 0, batch.device, mode="clip")
        channel = batch.channel
        keep = camera & ((channel == self.event_ch) | (channel == self.dwell_ch))
        if ctx.now_us:
            keep &= batch.ts <= ctx.now_us + FUTURE_LIMIT_US
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            return []
        self._grow(len(ctx.registry))
        dev, ts, channel, value = (batch.device[rows], batch.ts[rows], channel[rows],
                                   batch.value[rows])
        # Pair each event row with the dwell row of the same camera and time.
        order = np.lexsort((channel != self.event_ch, ts, dev))
        dev, ts, channel, value = dev[order], ts[order], channel[order], value[order]
        is_event = channel == self.event_ch
        nxt = np.r_[np.arange(1, dev.size), dev.size - 1]
        paired = (~is_event[nxt]) & (dev[nxt] == dev) & (ts[nxt] == ts) & (nxt != np.arange(
            dev.size))
        events = np.flatnonzero(is_event)
        dev, ts, code = dev[events], ts[events], value[events]
        dwell = np.where(paired[events], value[nxt[events]], 0.0)
        fresh = ts >= self.newest[dev]
        np.maximum.at(self.newest, dev, ts)
        hit = (code == self.code) & (dwell * US >= self.dwell.at(ctx, dev))
        busy = self.active[dev]
        look = np.flatnonzero(fresh & (hit | busy))
        if look.size == 0:
            return []
        inside = np.ones(look.size, bool)
        if self.spec.when is not None:
            inside = ctx.clock.matches(self.spec.when, ts[look])
        dev, ts, code, dwell, hit = dev[look], ts[look], code[look], dwell[look], hit[look]
        hit &= inside
        over = (code != self.code) | ~inside
        order = in_time_order(dev, ts)
        return self._decide(ctx, *(a[order] for a in (dev, ts, code, dwell, hit, over)))

    def _decide(self, ctx: Context, dev: np.ndarray, ts: np.ndarray, code: np.ndarray,
                dwell: np.ndarray, hit: np.ndarray, over: np.ndarray) -> list[Signal]:
        out: list[Signal] = []
        starts, stops = runs(dev)
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            d = int(dev[a])
            active, latest = bool(self.active[d]), None
            for i in range(a, b):
                if active and over[i]:
                    active, latest = False, None
                    name = CAMERA_EVENTS.get(int(code[i]), f"event {int(code[i])}")
                    out.append(Signal(self.rule, ctx.device_id(d), False, int(ts[i]), d,
                                      float(dwell[i]), detail=f"now reporting {name}"))
                elif hit[i]:
                    if active:
                        latest = i
                    else:
                        active, latest = True, None
                        out.append(self._raised(ctx, d, i, ts, code, dwell))
            if latest is not None:
                out.append(self._raised(ctx, d, latest, ts, code, dwell))
            self.active[d] = active
        return out

    def _raised(self, ctx: Context, d: int, i: int, ts: np.ndarray, code: np.ndarray,
                dwell: np.ndarray) -> Signal:
        t, held = int(ts[i]), float(dwell[i])
        limit = self.dwell.one(ctx, d) / US
        detail = f"{self.spec.event} for {fmt_duration(held)}"
        if limit:
            detail += f" (limit: {fmt_duration(limit)})"
        rows = [(d, self.event_ch, t, float(code[i])), (d, self.dwell_ch, t, held)]
        return Signal(self.rule, ctx.device_id(d), True, t, d, held, evidence=rows,
                      detail=detail)
