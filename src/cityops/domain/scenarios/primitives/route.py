"""Route deviation: "a muck truck more than 200 m off its approved route for 2 min".

Routes are the city's zones of the rule's `routes` kind (lines, `muck_route` by default). A
vehicle's route is every route whose `meta.vehicles` lists its GPS device id (the distance is
to the nearest of them); a vehicle no route lists is held to the nearest route of all, so an
unassigned truck still raises when it strays far from every approved route.

Distances are in metres on a plane touching the Earth at the centre of the routes
(equirectangular), good to a fraction of a percent across a city. A fix farther than
`max_distance_m` (strictly) is off route; off route without a break for `for` (measured on fix
times) raises, the first fix back on route (or outside the rule's `when`) clears. One episode
per device, subject the device id; the signal's value is the distance in metres.

Fixes are taken in time order per device; a fix not newer than the newest already evaluated
for its device is ignored. Signals: active on the raise, inactive on the clear, and in between
at most one active update per episode and batch with the device's newest fix.
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
    grown,
)
from cityops.domain.scenarios.primitives.movers import (
    EXIT,
    REACH,
    FixReader,
    Fixes,
    LocalMetres,
    Runs,
)
from cityops.domain.scenarios.signals import Signal

UNASSIGNED = -1


class RouteDeviationEvaluator:
    source = "readings"

    def __init__(self, pack: spec.ScenarioPack, rule: spec.RouteDeviation, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        self.reader = FixReader(rule, ctx)
        self.routes = [z for z in ctx.zones if z.kind == rule.routes]
        lines = [shape(z.geometry) for z in self.routes]
        if lines:
            minx, miny, maxx, maxy = shapely.total_bounds(lines)
            self.plane = LocalMetres((miny + maxy) / 2, (minx + maxx) / 2)
        else:
            self.plane = LocalMetres(0.0, 0.0)
        self.projected = np.array([shapely.transform(g, self._metres) for g in lines],
                                  dtype=object)
        shapely.prepare(self.projected)
        self.tree = shapely.STRtree(self.projected)
        # Per device: index into `targets` (its route, or the union of its routes).
        self.targets: list[shapely.Geometry] = []
        self.target_names: list[str] = []
        self.target_of = np.full(0, UNASSIGNED, np.int64)
        self._assign(ctx, self.projected)
        if rule.when is not None:
            ctx.clock.compile(rule.when)
        self.max_m = PerState.of(rule, "max_distance_m")
        self.for_us = PerState.of(rule, "for_", duration_us)
        self.runs = Runs(1)
        self.active: set[int] = set()  # devices with an open episode

    def _metres(self, lonlat: np.ndarray) -> np.ndarray:
        x, y = self.plane.xy(lonlat[:, 1], lonlat[:, 0])
        return np.column_stack([x, y])

    def _assign(self, ctx: Context, projected: np.ndarray) -> None:
        index = ctx.registry.index
        routes_of: dict[int, list[int]] = {}
        for r, zone in enumerate(self.routes):
            for device_id in zone.meta.get("vehicles", []) or []:
                if device_id in index:
                    routes_of.setdefault(index[device_id], []).append(r)
        self.targets, self.target_names = [], []
        self.target_of = np.full(len(ctx.registry), UNASSIGNED, np.int64)
        by_set: dict[tuple[int, ...], int] = {}
        for device, members in routes_of.items():
            members_key = tuple(sorted(set(members)))
            if members_key not in by_set:
                by_set[members_key] = len(self.targets)
                self.targets.append(shapely.union_all(projected[list(members_key)]))
                self.target_names.append(", ".join(self.routes[r].name or self.routes[r].id
                                                   for r in members_key))
            self.target_of[device] = by_set[members_key]
        shapely.prepare(np.array(self.targets, dtype=object))
        self._known = len(ctx.registry)

    def on_tick(self, ctx: Context) -> list[Signal]:
        return []

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        if not self.routes:
            return []
        fixes = self.reader.read(batch, ctx)
        if not len(fixes):
            return []
        if len(ctx.registry) != self._known:  # trackers registered since: look their routes up
            self._assign(ctx, self.projected)
        distance, against = self._distances(fixes)
        off = distance > self.max_m.at(ctx, fixes.device)
        if self.spec.when is not None:
            off &= ctx.clock.matches(self.spec.when, fixes.ts)
        pf = np.flatnonzero(off)
        events = self.runs.step(fixes, pf, np.zeros(pf.size, np.int64),
                                self.for_us.at(ctx, fixes.device[pf]), need_crossing=False)
        out: list[Signal] = []
        touched: set[int] = set()
        for kind, f, since in zip(events.kind.tolist(), events.fix.tolist(),
                                  events.since.tolist(), strict=True):
            device = int(fixes.device[f])
            if kind == REACH and device not in self.active:
                self.active.add(device)
            elif kind == EXIT and device in self.active:
                self.active.discard(device)
            else:
                continue
            touched.add(device)
            out.append(self._signal(ctx, fixes, f, kind == REACH, since, distance, against))
        for f in np.flatnonzero(fixes.last).tolist():
            device = int(fixes.device[f])
            if device in self.active and device not in touched:
                since = self.runs.since_of(device)
                out.append(self._signal(ctx, fixes, f, True, since, distance, against))
        return out

    def _distances(self, fixes: Fixes) -> tuple[np.ndarray, np.ndarray]:
        """Metres from each fix to its device's route(s), or to the nearest route; also what
        it was measured against: a target (>= 0) or, as -1 - r, the nearest route r."""
        x, y = self.plane.xy(fixes.lat, fixes.lon)
        points = shapely.points(x, y)
        against = grown(self.target_of, int(fixes.device.max()) + 1, UNASSIGNED)[fixes.device]
        distance = np.empty(len(fixes))
        assigned = against != UNASSIGNED
        if assigned.any():
            targets = np.array(self.targets, dtype=object)[against[assigned]]
            distance[assigned] = shapely.distance(points[assigned], targets)
        free = np.flatnonzero(~assigned)
        if free.size:
            (which, r), d = self.tree.query_nearest(points[free], return_distance=True,
                                                    all_matches=False)
            distance[free[which]] = d
            against[free[which]] = -1 - r
        return distance, against

    def _route_name(self, against: int) -> str:
        if against >= 0:
            return self.target_names[against]
        zone = self.routes[-1 - against]
        return zone.name or zone.id

    def _signal(self, ctx: Context, fixes: Fixes, f: int, active: bool, since: int | None,
                distance: np.ndarray, against: np.ndarray) -> Signal:
        device, ts = int(fixes.device[f]), int(fixes.ts[f])
        metres = float(distance[f])
        limit = float(np.broadcast_to(self.max_m.at(ctx, fixes.device[f:f + 1]), (1,))[0])
        off_s = (ts - since) / US if since is not None else 0.0
        route = self._route_name(int(against[f]))
        if active:
            detail = (f"{metres:,.0f} m off route {route} for {fmt_duration(off_s)} "
                      f"(limit {limit:,.0f} m)")
        else:
            detail = f"back on route {route} ({metres:,.0f} m) after {fmt_duration(off_s)}"
        return Signal(
            rule=self.rule,
            subject=ctx.device_id(device),
            active=active,
            ts_us=ts,
            device=device,
            value=metres,
            lat=float(fixes.lat[f]),
            lon=float(fixes.lon[f]),
            evidence=fixes.evidence(f),
            detail=detail,
        )
