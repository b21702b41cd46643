"""Which other rules an injected track also sets off.

Water rising 10 cm in an underpass may also pass the 15 cm depth line; a storm-force gust is a
gale too. Such rules are labelled with the anomaly ("companions") so that their alerts count as
detections rather than false alerts. The track is sampled at its reading cadence and every
other rule that reads the device is checked against the samples' envelopes: it fires for
certain, it cannot fire, or it might (then the plan picks another device or time, since a label
nobody can promise is worse than none).

Natural readings before and after the anomaly are taken to sit at the device's own level when
the anomaly started (`base`); rules are otherwise checked on the injected readings alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely

from cityops.domain.city import Device
from cityops.domain.scenarios import spec
from cityops.sim.anomalies.city import CityView
from cityops.sim.anomalies.shapes import WIGGLE_PERIOD_S, Hold, Path, Track

US = 1_000_000


@dataclass
class Verdict:
    certain: list[tuple[str, str]] = field(default_factory=list)  # (rule, subject)
    maybe: list[str] = field(default_factory=list)

    def add(self, other: Verdict) -> None:
        self.certain += other.certain
        self.maybe += other.maybe


def _param(rule, name: str, state: str):
    return spec.param(rule, name, state)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    out = []
    i, n = 0, flags.shape[0]
    while i < n:
        if flags[i]:
            j = i
            while j + 1 < n and flags[j + 1]:
                j += 1
            out.append((i, j))
            i = j + 1
        else:
            i += 1
    return out


def _longest(flags: np.ndarray, t: np.ndarray) -> float:
    """The longest time spanned by a run of True (-1 when there is none)."""
    spans = [t[b] - t[a] for a, b in _runs(flags)]
    return max(spans) if spans else -1.0


class Overlap:
    def __init__(self, view: CityView, rules: list[tuple[spec.ScenarioPack, spec.AnyRule]],
                 state: str) -> None:
        self.view = view
        self.rules = rules
        self.state = state
        self._selected: dict[int, set[str]] = {}

    def reads(self, rule: spec.AnyRule, device: Device) -> bool:
        ids = self._selected.get(id(rule))
        if ids is None:
            ids = self._selected[id(rule)] = {d.id for d in self.view.selected(rule)}
        return device.id in ids

    def check(self, track: Track, start: float, exclude: set[str]) -> Verdict:
        """Rules (other than `exclude`) the track, started at `start`, sets off."""
        device = self.view.by_id[track.device]
        base = track.base if track.base is not None else track.fallback
        step = max(min(track.cadence, 60.0), 1.0)
        dt = np.arange(0.0, track.duration + step / 2, step)
        env = track.shape.envelope(dt, base)
        t = start + dt
        verdict = Verdict()
        if track.shape.silent or track.shape.keeps_natural:
            return verdict  # silence and refused readings feed no value rule
        for pack, rule in self.rules:
            ref = f"{pack.name}.{rule.id}"
            if ref in exclude or not self.reads(rule, device):
                continue
            if isinstance(rule, spec.Geofence | spec.RouteDeviation):
                if isinstance(track.shape, Path):
                    verdict.add(self._mover(ref, rule, device, track, dt, t))
                continue
            if isinstance(rule, spec.Window) and rule.source != "readings":
                continue
            channel = self.view.channel_index(device.kind, rule.channel)
            if channel not in env:
                continue
            lo, hi = env[channel]
            b = float(base[channel])
            if isinstance(rule, spec.Threshold):
                verdict.add(self._threshold(ref, rule, device, track, lo, hi, t, step))
            elif isinstance(rule, spec.RateOfChange):
                if track.base is not None and not track.seen_base:
                    # Started without a reading of its own level: a jump from it is unknown.
                    spec_ = self.view.kinds[device.kind].channels[channel]
                    lo0, hi0 = spec_.min, spec_.max
                else:
                    lo0 = hi0 = b
                verdict.add(self._rate(ref, rule, device, lo, hi, lo0, hi0, t, step))
            elif isinstance(rule, spec.Window) and rule.per == "device":
                verdict.add(self._window(ref, rule, device, track, channel, lo, hi, t, step))
            elif isinstance(rule, spec.Baseline):
                continue  # a simulation starts with no history: a baseline decides nothing
                # (the same reason maker_for gives for not planning baseline anomalies)
            elif isinstance(rule, spec.Window | spec.Quiet):
                verdict.maybe.append(ref)  # aggregates over groups, quiet spells: not judged
        return verdict

    def _inside_when(self, rule, t: np.ndarray) -> np.ndarray:
        if rule.when is None:
            return np.ones(t.shape, bool)
        return self.view.clock.matches(rule.when, (t * US).astype(np.int64))

    def _threshold(self, ref, rule, device, track, lo, hi, t, step) -> Verdict:
        above, below = _param(rule, "above", self.state), _param(rule, "below", self.state)
        hold = spec.seconds(_param(rule, "for_", self.state))
        inside = self._inside_when(rule, t)
        if above is not None:
            sure, could = (lo > above) & inside, (hi > above) & inside
        else:
            sure, could = (hi < below) & inside, (lo < below) & inside
        if _longest(sure, t) >= hold + step:
            return Verdict(certain=[(ref, device.id)])
        if _longest(could, t) >= max(hold - step, 0.0):
            return Verdict(maybe=[ref])
        return Verdict()

    def _rate(self, ref, rule, device, lo, hi, base_lo, base_hi, t, step) -> Verdict:
        within = spec.seconds(_param(rule, "within", self.state))
        rise, fall = _param(rule, "rise", self.state), _param(rule, "fall", self.state)
        # The natural level before and after the anomaly is part of what the rule sees.
        t = np.concatenate([[t[0] - step], t, [t[-1] + step]])
        lo = np.concatenate([[base_lo], lo, [base_lo]])
        hi = np.concatenate([[base_hi], hi, [base_hi]])
        sure = could = False
        for j in range(t.shape[0]):
            i0 = int(np.searchsorted(t, t[j] - within - step))
            i1 = int(np.searchsorted(t, t[j] - within + step))
            if i0 >= j:
                continue
            if rise is not None:
                sure |= bool(i1 < j and lo[j] - hi[i1:j].min() > rise)
                could |= bool(hi[j] - lo[i0:j].min() > rise)
            if fall is not None:
                sure |= bool(i1 < j and lo[i1:j].max() - hi[j] > fall)
                could |= bool(hi[i0:j].max() - lo[j] > fall)
        if sure:
            return Verdict(certain=[(ref, device.id)])
        return Verdict(maybe=[ref]) if could else Verdict()

    def _window(self, ref, rule, device, track, channel, lo, hi, t, step) -> Verdict:
        over = spec.seconds(_param(rule, "over", self.state))
        above, below = _param(rule, "above", self.state), _param(rule, "below", self.state)
        value_above = _param(rule, "value_above", self.state)
        min_count = _param(rule, "min_count", self.state)
        inside = self._inside_when(rule, t)
        full = t[-1] - t[0] >= over + step and over / max(track.cadence, 1e-9) >= min_count
        agg = rule.agg
        if value_above is not None:
            sure_in, could_in = lo > value_above, hi > value_above
        else:
            sure_in = could_in = np.ones(t.shape, bool)
        sure_in, could_in = sure_in & inside, could_in & inside
        if not could_in.any():
            return Verdict()
        if agg == "range":
            if below is None:
                return Verdict(maybe=[ref])
            spread = _least_range(track, channel, lo, hi, over)
            if spread > below:
                return Verdict()
            if full and float(hi.max() - lo.min()) < below:
                return Verdict(certain=[(ref, device.id)])
            return Verdict(maybe=[ref])
        if below is not None:
            sure = {"mean": hi, "max": hi, "min": hi}.get(agg)
            could = {"mean": lo, "max": lo, "min": lo}.get(agg)
            if sure is None or not (could[could_in] < below).any():
                return Verdict() if sure is not None else Verdict(maybe=[ref])
            if full and (sure[sure_in] < below).all():
                return Verdict(certain=[(ref, device.id)])
            return Verdict(maybe=[ref])
        if agg == "count":
            per_window = int(np.floor(over / max(track.cadence, 1e-9)))
            if full and sure_in.all() and per_window > above:
                return Verdict(certain=[(ref, device.id)])
            return Verdict(maybe=[ref])
        if agg in ("mean", "max", "min"):
            if not (hi[could_in] > above).any():
                return Verdict()
            if full and (lo[sure_in] > above).all() and sure_in.all():
                return Verdict(certain=[(ref, device.id)])
            return Verdict(maybe=[ref])
        return Verdict(maybe=[ref])

    def _mover(self, ref, rule, device, track, dt, t) -> Verdict:
        shape = track.shape
        positions = shape.values(dt, track.base if track.base is not None else track.fallback)
        lat, lon = positions[shape.lat_channel], positions[shape.lon_channel]
        step = float(dt[1] - dt[0]) if dt.shape[0] > 1 else track.cadence
        x, y = self.view.to_xy(lat, lon)
        points = shapely.points(x, y)
        when = self._inside_when(rule, t)
        if isinstance(rule, spec.Geofence):
            need = spec.seconds(_param(rule, "dwell", self.state))
            out = Verdict()
            for zone in self.view.zones(rule.zones):
                inside = shapely.contains_xy(self.view.polygon_xy(zone), x, y) & when
                hours = zone.meta.get("hours")
                if hours:
                    inside &= self.view.clock.matches(spec.When(hours=str(hours)),
                                                      (t * US).astype(np.int64))
                if not inside.any():
                    continue
                if rule.on != "exit" and _longest(inside, t) >= need + step:
                    out.certain.append((ref, f"{device.id}@{zone.id}"))
                else:
                    out.maybe.append(ref)
            return out
        routes = self.view.routes_of(device.id, rule.routes)
        if not routes:
            return Verdict()
        lines = [self.view.route_xy(r) for r in routes]  # every part, as the rule measures
        distance = np.min([shapely.distance(line, points) for line in lines], axis=0)
        limit = _param(rule, "max_distance_m", self.state)
        hold = spec.seconds(_param(rule, "for_", self.state))
        if _longest((distance > limit * 1.1) & when, t) >= hold + step:
            return Verdict(certain=[(ref, device.id)])
        if _longest((distance > limit * 0.9) & when, t) >= max(hold - step, 0.0):
            return Verdict(maybe=[ref])
        return Verdict()


def _least_range(track: Track, channel: int, lo, hi, over: float) -> float:
    """The smallest spread the readings of any window of `over` seconds can have."""
    shape = track.shape
    if isinstance(shape, Hold) and shape.channel == channel:
        if over < WIGGLE_PERIOD_S:
            return 0.0
        return 2 * shape.wig.amplitude - 2 * (shape.wig.bound - shape.wig.amplitude)
    return float(lo.max() - hi.min())
