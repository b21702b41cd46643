"""Geofence for movers: "a muck truck inside a forbidden zone", "a truck in a school zone in its
closed hours", "a vehicle dwelling 5 min in a fire lane".

Positions are the GPS fixes of the devices the rule selects (kind gps unless it says otherwise,
and its `where`, e.g. `role: muck_truck`); zones are the city's zones of the rule's `zones`
kind, found for a whole batch of fixes at once through an STRtree. A fix exactly on a zone's
border counts as inside. A zone with `meta.hours` ("07:00-22:00", local time) applies only in
those hours, and the rule's `when` only then: outside them a fix counts as outside the zone,
so a truck parked in a school zone at 06:55 is "entering" it at 07:00.

`on` says which episode is raised, per (device, zone), subject "<device id>@<zone id>":

- `inside` and `dwell`: once inside without a break for `dwell` (default 0 s: from the first
  fix inside; measured on fix times), until the first fix outside;
- `enter`: the same, but only after a crossing actually seen: a fix outside followed by one
  inside. A device whose very first fix is inside did not enter, as far as anyone knows (use
  `inside` for "must not be there at all");
- `exit`: from a crossing out (a fix inside followed by one outside) until back inside.

Fixes are taken in time order per device; a fix not newer than the newest already evaluated
for its device is ignored. Durations are measured on fix times, so time passing without fixes
decides nothing (a silent tracker is the absence rule's business). Signals: active on the
raise, inactive on the clear, and in between at most one active update per episode and batch
with the device's newest fix.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import shape

from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios import spec
from cityops.domain.scenarios.context import Context
from cityops.domain.scenarios.primitives.common import (
    US,
    PerState,
    duration_us,
    fmt_duration,
)
from cityops.domain.scenarios.primitives.movers import (
    ENTER,
    EXIT,
    REACH,
    Events,
    FixReader,
    Fixes,
    Runs,
)
from cityops.domain.scenarios.signals import Signal


class GeofenceEvaluator:
    source = "readings"

    def __init__(self, pack: spec.ScenarioPack, rule: spec.Geofence, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        self.reader = FixReader(rule, ctx)
        self.zones = [z for z in ctx.zones if z.kind == rule.zones]
        geometries = np.array([shape(z.geometry) for z in self.zones], dtype=object)
        shapely.prepare(geometries)
        self.tree = shapely.STRtree(geometries)
        # Zones closed only at some hours, grouped by their hours: a few calendar checks per
        # batch rather than one per zone.
        by_hours: dict[str, list[int]] = {}
        for i, zone in enumerate(self.zones):
            if zone.meta.get("hours"):
                by_hours.setdefault(str(zone.meta["hours"]), []).append(i)
        self.hours: list[tuple[spec.When, np.ndarray]] = []
        for text, members in by_hours.items():
            when = spec.When(hours=text)
            try:
                ctx.clock.compile(when)
            except ValueError as exc:
                raise ValueError(f"rule {rule.id!r}: zone {self.zones[members[0]].id!r}: "
                                 f"meta.hours: {exc}") from None
            self.hours.append((when, np.array(members, np.int64)))
        if rule.when is not None:
            ctx.clock.compile(rule.when)
        # `exit` counts time outside, not inside: `dwell` is not for it.
        self.dwell_us = PerState.of(rule, "dwell", duration_us)
        self.runs = Runs(len(self.zones))
        self.active: set[int] = set()  # keys (device * zones + zone) with an open episode

    def on_tick(self, ctx: Context) -> list[Signal]:
        return []

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        if not self.zones:
            return []
        fixes = self.reader.read(batch, ctx)
        if not len(fixes):
            return []
        pf, pz = self.tree.query(shapely.points(fixes.lon, fixes.lat), predicate="intersects")
        keep = self._applies(fixes, pf, pz, ctx)
        pf, pz = pf[keep], pz[keep]
        on = self.spec.on
        hold = 0 if on == "exit" else self.dwell_us.at(ctx, fixes.device[pf])
        events = self.runs.step(fixes, pf, pz, hold, need_crossing=on == "enter")
        changed, touched = self._signals(events, fixes, ctx)
        return changed + self._updates(fixes, ctx, touched)

    def _applies(self, fixes: Fixes, pf: np.ndarray, pz: np.ndarray, ctx: Context) -> np.ndarray:
        """Which (fix, zone) pairs count: inside the rule's `when` and the zone's hours."""
        keep = np.ones(pf.shape, bool)
        if pf.size == 0:
            return keep
        if self.spec.when is not None:
            keep &= ctx.clock.matches(self.spec.when, fixes.ts[pf])
        for when, members in self.hours:
            limited = np.isin(pz, members)
            if limited.any():
                keep[limited] &= ctx.clock.matches(when, fixes.ts[pf[limited]])
        return keep

    def _signals(self, events: Events, fixes: Fixes, ctx: Context
                 ) -> tuple[list[Signal], set[int]]:
        """Raises and clears, and the keys they touched."""
        out: list[Signal] = []
        touched: set[int] = set()
        on = self.spec.on
        width = len(self.zones)
        raise_on, clear_on = (EXIT, ENTER) if on == "exit" else (REACH, EXIT)
        for kind, f, z, since in zip(events.kind.tolist(), events.fix.tolist(),
                                     events.slot.tolist(), events.since.tolist(), strict=True):
            key = int(fixes.device[f]) * width + z
            if kind == raise_on and key not in self.active:
                self.active.add(key)
                touched.add(key)
                out.append(self._signal(ctx, fixes, f, z, True, since))
            elif kind == clear_on and key in self.active:
                self.active.discard(key)
                touched.add(key)
                out.append(self._signal(ctx, fixes, f, z, False, since))
        return out, touched

    def _updates(self, fixes: Fixes, ctx: Context, touched: set[int]) -> list[Signal]:
        """The newest fix of each device with an open episode raised in an earlier batch."""
        if not self.active - touched:
            return []
        width = len(self.zones)
        keys = np.fromiter(self.active, np.int64, len(self.active))
        last = np.flatnonzero(fixes.last)
        j = np.minimum(np.searchsorted(fixes.device[last], keys // width), last.size - 1)
        moved = fixes.device[last[j]] == keys // width
        out = []
        for key, f in zip(keys[moved].tolist(), last[j][moved].tolist(), strict=True):
            if key in touched:
                continue
            z = key % width
            since = None if self.spec.on == "exit" else self.runs.since_of(key // width, z)
            out.append(self._signal(ctx, fixes, f, z, True, since))
        return out

    def _signal(self, ctx: Context, fixes: Fixes, f: int, z: int, active: bool,
                since: int | None) -> Signal:
        device, ts = int(fixes.device[f]), int(fixes.ts[f])
        zone = self.zones[z]
        inside_s = (ts - since) / US if since is not None else float("nan")
        on = self.spec.on
        where = f"{zone.name or zone.id} ({zone.kind})"
        if on == "exit":
            detail = f"left {where}" if active else f"back inside {where}"
        elif active:
            detail = f"inside {where} for {fmt_duration(inside_s)}"
        else:
            detail = f"left {where} after {fmt_duration(inside_s)} inside"
        return Signal(
            rule=self.rule,
            subject=f"{ctx.device_id(device)}@{zone.id}",
            active=active,
            ts_us=ts,
            device=device,
            value=inside_s if on != "exit" else float("nan"),
            lat=float(fixes.lat[f]),
            lon=float(fixes.lon[f]),
            evidence=fixes.evidence(f),
            detail=detail,
        )
