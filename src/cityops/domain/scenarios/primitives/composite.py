"""Composite: "heavy rain AND rising water at an underpass, within 30 min and 2 km".

A composite reads no readings: it follows the signals of the rules it names (`all_of`; "rule"
means a rule of the same pack, "pack.rule" one of another) and keeps each one's open episodes:
when it opened and was last confirmed (first and last signal), and where (the signal's lat/lon,
or its device's place).

It raises when every member has an open episode such that, taken together,
- they are close in time: the latest start is at most `within` after the earliest last
  confirmation (an episode whose rule stopped confirming it long before the others began does
  not count), and
- every two are at most `distance_m` apart (a member with no position is not held to it).

One composite episode per open episode of the LAST rule in `all_of`, joined with the nearest
fitting episode of each other rule: list the specific condition last ("rain" then "water at
the underpass": one alert per flooded underpass, not one per rain gauge). Its subject is the
member subjects joined with "+", in `all_of` order; it is cleared as soon as any of its member
episodes clears, and updated when one of them is. `within` and `distance_m` are taken in the
operating state at the last member's device.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios import spec
from cityops.domain.scenarios.context import Context
from cityops.domain.scenarios.primitives.common import (
    PerState,
    duration_us,
    evidence,
    fmt_duration,
    states_of,
)
from cityops.domain.scenarios.signals import Signal

US = 1_000_000
EARTH_RADIUS_M = 6_371_008.8
MAX_TRIES = 10_000  # combinations tried per last-member episode before giving up


@dataclass(slots=True)
class _Episode:
    rule: str
    subject: str
    first_us: int
    last_us: int
    lat: float
    lon: float
    device: int
    evidence: list[tuple[int, int, int, float]] = field(default_factory=list)


class CompositeEvaluator:
    source = "signals"

    def __init__(self, pack: spec.ScenarioPack, rule: spec.Composite, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        self.members = [m if "." in m else f"{pack.name}.{m}" for m in rule.all_of]
        if len(set(self.members)) != len(self.members) or len(self.members) < 2:
            raise ValueError(f"rule {rule.id!r}: all_of must name at least two different rules")
        if self.rule in self.members:
            raise ValueError(f"rule {rule.id!r}: a composite cannot be its own member")
        self.within_us = PerState.of(rule, "within", duration_us)
        self.distance_m = PerState.of(rule, "distance_m")
        self.open: dict[str, dict[str, _Episode]] = {m: {} for m in self.members}
        # Composite subject -> its member episodes' (rule, subject), in all_of order.
        self.active: dict[str, tuple[tuple[str, str], ...]] = {}

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        return []

    def on_tick(self, ctx: Context) -> list[Signal]:
        return []

    def on_signals(self, signals: list[Signal], ctx: Context) -> list[Signal]:
        out: list[Signal] = []
        confirmed: set[tuple[str, str]] = set()
        for s in signals:
            episodes = self.open.get(s.rule)
            if episodes is None:
                continue
            if s.active:
                self._fold(episodes, s, ctx)
                confirmed.add((s.rule, s.subject))
            elif episodes.pop(s.subject, None) is not None:
                out += self._clear_with(s)
        if not confirmed:
            return out
        for key, parts in self.active.items():
            if confirmed.intersection(parts):
                out.append(self._signal(ctx, key, parts, True))
        out += self._match(ctx)
        return out

    def _fold(self, episodes: dict[str, _Episode], s: Signal, ctx: Context) -> None:
        lat, lon = s.lat, s.lon
        if math.isnan(lat) and 0 <= s.device < ctx.places.lat.shape[0]:
            lat, lon = float(ctx.places.lat[s.device]), float(ctx.places.lon[s.device])
        episode = episodes.get(s.subject)
        if episode is None:
            episodes[s.subject] = _Episode(s.rule, s.subject, s.ts_us, s.ts_us, lat, lon,
                                           s.device, list(s.evidence))
            return
        episode.first_us = min(episode.first_us, s.ts_us)
        episode.last_us = max(episode.last_us, s.ts_us)
        if not math.isnan(lat):
            episode.lat, episode.lon = lat, lon
        episode.evidence = evidence(episode.evidence + list(s.evidence))

    def _clear_with(self, s: Signal) -> list[Signal]:
        out = []
        for key, parts in list(self.active.items()):
            if (s.rule, s.subject) in parts:
                del self.active[key]
                out.append(Signal(self.rule, key, False, s.ts_us, s.device,
                                  detail=f"cleared: {_short(s.rule)} at {s.subject} ended"))
        return out

    def _match(self, ctx: Context) -> list[Signal]:
        """New composites: for each open episode of the last member not yet in one, the
        nearest fitting episode of every other member."""
        anchors = self.open[self.members[-1]]
        taken = {parts[-1][1] for parts in self.active.values()}
        others = [list(self.open[m].values()) for m in self.members[:-1]]
        if not anchors or any(not o for o in others):
            return []
        out = []
        for anchor in list(anchors.values()):
            if anchor.subject in taken:
                continue
            state = states_of(ctx, np.array([max(anchor.device, 0)]))
            within = int(np.broadcast_to(self.within_us.array[state], (1,))[0])
            reach = float(np.broadcast_to(self.distance_m.array[state], (1,))[0])
            combination = self._nearest_fit(anchor, others, within, reach)
            if combination is None:
                continue
            parts = tuple((e.rule, e.subject) for e in combination)
            key = "+".join(subject for _, subject in parts)
            self.active[key] = parts
            out.append(self._signal(ctx, key, parts, True))
        return out

    def _nearest_fit(self, anchor: _Episode, others: list[list[_Episode]], within: int,
                     reach: float) -> list[_Episode] | None:
        candidates = []
        for episodes in others:
            near = [(_metres(anchor, e), e) for e in episodes]
            near = [(d, e) for d, e in near if not d > reach]  # NaN: no position, kept
            if not near:
                return None
            near.sort(key=lambda de: (de[0] if not math.isnan(de[0]) else math.inf,
                                      de[1].subject))
            candidates.append([e for _, e in near])
        for tries, chosen in enumerate(itertools.product(*candidates)):
            if tries >= MAX_TRIES:
                return None
            combination = [*chosen, anchor]
            if _fits(combination, within, reach):
                return combination
        return None

    def _signal(self, ctx: Context, key: str, parts: tuple[tuple[str, str], ...],
                active: bool) -> Signal:
        episodes = [self.open[rule][subject] for rule, subject in parts]
        anchor = episodes[-1]
        spread = max(e.first_us for e in episodes) - min(e.first_us for e in episodes)
        distances = [d for a, b in itertools.combinations(episodes, 2)
                     if not math.isnan(d := _metres(a, b))]
        apart = f", {max(distances):,.0f} m apart" if distances else ""
        detail = (" and ".join(f"{_short(e.rule)} at {e.subject}" for e in episodes)
                  + f" within {fmt_duration(spread / US)}{apart}")
        return Signal(
            rule=self.rule,
            subject=key,
            active=active,
            ts_us=max(e.last_us for e in episodes),
            device=anchor.device,
            lat=anchor.lat,
            lon=anchor.lon,
            evidence=evidence(row for e in episodes for row in e.evidence),
            detail=detail,
        )


def _fits(episodes: list[_Episode], within: int, reach: float) -> bool:
    if max(e.first_us for e in episodes) - min(e.last_us for e in episodes) > within:
        return False
    return not any(_metres(a, b) > reach for a, b in itertools.combinations(episodes, 2))


def _metres(a: _Episode, b: _Episode) -> float:
    """Great-circle distance (haversine); NaN when either has no position."""
    if math.isnan(a.lat) or math.isnan(b.lat):
        return math.nan
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _short(rule: str) -> str:
    return rule.split(".", 1)[-1]
