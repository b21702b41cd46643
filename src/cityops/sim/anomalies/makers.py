"""One maker per rule primitive: which devices to pick and what they report so that the rule's
condition really holds, in the operating state the run assumes.

Each anomaly is made to meet its rule with room to spare (levels well past the line, durations
past `for` and `dwell` by minutes) and to be plausible for the instrument: a noise meter at a
party's level, an underpass filling 10 cm in 10 minutes, a camera watching a car stand in a
fire lane, a muck truck creeping into a school zone. A maker that cannot work in this city (no
such device, no zones) says why once; one that cannot work now (wrong time of day, every device
busy) returns None and the plan tries another rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely

from cityops.domain.city import Device, DeviceKind, Zone
from cityops.domain.kinds import CAMERA_EVENTS
from cityops.domain.scenarios import spec
from cityops.sim.anomalies.city import CityView
from cityops.sim.anomalies.overlap import Overlap
from cityops.sim.anomalies.shapes import (
    Freeze,
    Garbage,
    Hold,
    Path,
    Ramp,
    Sighting,
    Silence,
    Track,
    Wiggle,
    wiggle,
)
from cityops.sim.models import DECIMALS

US = 1_000_000
TRIES = 8  # devices tried per anomaly before giving up for now

# How much a reading wanders while held at a level, per channel: what the instrument's own
# jitter looks like at that level.
WIGGLE = {
    ("noise", "laeq"): 1.2, ("water_depth", "depth"): 0.3, ("rainfall", "intensity"): 2.0,
    ("wind", "speed"): 1.0, ("smoke", "obscuration"): 1.5, ("manhole_tilt", "tilt"): 0.8,
    ("bin_fill", "fill"): 0.6, ("water_meter", "flow"): 0.0, ("street_lamp", "power"): 0.3,
    ("air_quality", "pm25"): 2.0, ("gps", "speed"): 2.0, ("kpi", "value"): 0.4,
}

# Levels real anomalies of a kind sit at, when the rule's line leaves room for them: a
# displaced cover tilts tens of degrees, a dead lamp draws a watt, an alarm reads far past
# its threshold, a speeding truck is well over the limit.
TYPICAL = {
    ("manhole_tilt", "tilt", "above"): (22.0, 38.0),
    ("street_lamp", "power", "below"): (0.5, 1.5),
    ("smoke", "obscuration", "above"): (9.0, 25.0),
    ("water_meter", "flow", "below"): (0.0, 0.0),
}


@dataclass
class Anomaly:
    number: int
    rule: str  # the rule it is made for
    labels: list[tuple[str, str]]  # (rule, subject): the rule's own first, then companions
    tracks: list[Track]
    armed_at: float

    @property
    def started(self) -> bool:
        return all(t.start is not None for t in self.tracks)

    @property
    def start(self) -> float:
        return min(t.start for t in self.tracks if t.start is not None)

    @property
    def end(self) -> float:
        return max(t.end for t in self.tracks)


class Busy:
    """Devices in an anomaly, and after it until they have rested: long enough for the rules
    to see them normal again (episodes clear, an offline device is back) before the next."""

    def __init__(self) -> None:
        self.until: dict[str, float] = {}
        self.now = -math.inf

    def __contains__(self, device: str) -> bool:
        return self.until.get(device, -math.inf) > self.now

    def take(self, devices) -> None:
        for device in devices:
            self.until[device] = math.inf

    def release(self, devices, at: float) -> None:
        for device in devices:
            self.until[device] = at


def rest_s(kind: DeviceKind) -> float:
    return max(300.0, 3.0 * kind.period_s)


@dataclass
class Env:
    """What makers share: the city, the run's operating state, the overlap check, and which
    devices are already busy with an anomaly."""

    view: CityView
    state: str
    seed: int
    overlap: Overlap
    rules: dict[str, tuple[spec.ScenarioPack, spec.AnyRule]]
    busy: Busy = field(default_factory=Busy)
    end_ts: float | None = None
    running: list[Anomaly] = field(default_factory=list)
    # Anomalies that have ended, with the time until which alerts they set off may still be
    # open (a rate-of-change episode waits `clear_after` before it clears).
    settling: list[tuple[Anomaly, float]] = field(default_factory=list)

    def composites(self) -> list[tuple[str, set[str], float]]:
        """(composite, its member rules, its distance) of every active composite rule."""
        out = []
        for ref, (pack, rule) in self.rules.items():
            if isinstance(rule, spec.Composite):
                members = {m if "." in m else f"{pack.name}.{m}" for m in rule.all_of}
                out.append((ref, members, float(self.param(rule, "distance_m"))))
        return out

    def settle_s(self, anomaly: Anomaly, kind: DeviceKind) -> float:
        """How long after its end a device of the anomaly must rest: until the episodes of
        every rule it set off have cleared, and the rules have seen it normal again."""
        linger = 0.0
        for ref, _ in anomaly.labels:
            found = self.rules.get(ref)
            if found is not None and isinstance(found[1], spec.RateOfChange):
                linger = max(linger, self.seconds(found[1], "clear_after"))
        return linger + rest_s(kind)

    def ended(self, anomaly: Anomaly) -> None:
        until = anomaly.end + max(self.settle_s(anomaly, self.view.kinds[t.kind])
                                  for t in anomaly.tracks)
        self.settling.append((anomaly, until))

    def joins(self, refs: set[str], devices: list[str], own: set[int] | None = None) -> bool:
        """Would an anomaly setting off `refs` (its rule and companions) on `devices` complete
        a composite together with another anomaly nearby, running or ended with its alerts
        still open (an alert nobody labelled)?"""
        own = own or set()
        view = self.view
        self.settling = [(a, until) for a, until in self.settling if until > self.busy.now]
        others = self.running + [a for a, _ in self.settling]
        for _, members, distance in self.composites():
            mine = refs & members
            if not mine:
                continue
            for anomaly in others:
                if anomaly.number in own:
                    continue
                theirs = {r for r, _ in anomaly.labels} & members
                # Members of each side, together all of them: the composite can take some
                # from this anomaly and the rest from that one.
                if not theirs or not members <= mine | theirs:
                    continue
                for track in anomaly.tracks:
                    there = view.by_id[track.device]
                    if any(view.distance_m(view.by_id[d], there) <= 1.5 * distance
                           for d in devices):
                        return True
        return False

    def param(self, rule, name: str):
        return spec.param(rule, name, self.state)

    def seconds(self, rule, name: str) -> float:
        return spec.seconds(self.param(rule, name))

    def fits(self, when: spec.When | None, start: float, duration: float) -> bool:
        """The whole span lies inside `when` (and inside the run)."""
        if self.end_ts is not None and start + duration > self.end_ts:
            return False
        if when is None:
            return True
        inside = self.view.clock.seconds_inside(when, int(start * US),
                                                int((start + duration) * US))
        return inside >= duration - 1.0

    def kind(self, device: Device) -> DeviceKind:
        return self.view.kinds[device.kind]


def _fallback(env: Env, device: Device) -> np.ndarray:
    """A device's values when it has not been seen yet: the bottom of each range (rest), its
    registered place for positions."""
    kind = env.kind(device)
    out = np.array([max(c.min, 0.0) if c.min <= 0 <= c.max else c.min for c in kind.channels])
    names = [c.name for c in kind.channels]
    if "lat" in names:
        out[names.index("lat")] = device.lat
    if "lon" in names:
        out[names.index("lon")] = device.lon
    return out


def _cadence(kind: DeviceKind, span: float, readings: float = 5.0) -> float:
    """At least `readings` readings over `span`, and never rarer than the kind's period."""
    return max(1.0, min(kind.period_s, span / readings if span > 0 else 10.0, 60.0))


def _wait_for_level(kind: DeviceKind) -> float:
    """How long a ramp or a freeze waits to see the device's own level before it starts from
    the bottom of the range: two periods, which a simulator at any useful rate reaches."""
    return min(2.0 * kind.period_s, 1200.0)


class Maker:
    """Builds anomalies for one rule."""

    def __init__(self, env: Env, pack: spec.ScenarioPack, rule: spec.AnyRule) -> None:
        self.env = env
        self.pack = pack
        self.rule = rule
        self.ref = f"{pack.name}.{rule.id}"
        self.candidates = self._candidates()

    def _candidates(self) -> list[Device]:
        return self.env.view.selected(self.rule)

    def why_not(self) -> str | None:
        """Why this rule cannot be injected in this city at all (None: it can)."""
        if not self.candidates:
            return "no device in the city matches the rule (kind, channel, where)"
        return None

    def make(self, now: float, number: int, rng: np.random.Generator) -> Anomaly | None:
        free = [d for d in self.candidates if d.id not in self.env.busy]
        if not free:
            return None
        for i in rng.permutation(len(free))[:TRIES].tolist():
            tracks = self.tracks(free[i], now, number, rng)
            if not tracks:
                continue
            anomaly = self.accept(tracks, now, number, self.subject(free[i], tracks))
            if anomaly is not None:
                return anomaly
        return None

    def subject(self, device: Device, tracks: list[Track]) -> str:
        return device.id

    def tracks(self, device: Device, now: float, number: int,
               rng: np.random.Generator) -> list[Track]:
        raise NotImplementedError

    def accept(self, tracks: list[Track], now: float, number: int,
               subject: str) -> Anomaly | None:
        """An anomaly of these tracks if no other rule might fire from them; with the rules
        that certainly do as companions."""
        labels = [(self.ref, subject)]
        for track in tracks:
            track.armed_at = now
            track.fallback = _fallback(self.env, self.env.view.by_id[track.device])
            verdict = self.env.overlap.check(track, now + track.offset, {self.ref})
            if verdict.maybe:
                return None
            labels += [c for c in verdict.certain if c not in labels]
        # Companions count: deep water at an underpass is water rising there too.
        if self.env.joins({ref for ref, _ in labels}, [t.device for t in tracks]):
            return None
        return Anomaly(number, self.ref, labels, tracks, now)

    # -- shared pieces --------------------------------------------------------------------

    def wig(self, device: Device, channel: str, number: int, scale: float = 1.0) -> Wiggle:
        amplitude = WIGGLE.get((device.kind, channel))
        if amplitude is None:
            amplitude = 0.01 * max(abs(scale), 1.0)
        return wiggle(self.env.seed, number, channel, amplitude)

    def level(self, device: Device, channel: int, line: float, upward: bool, wig: Wiggle,
              rng: np.random.Generator) -> float | None:
        """A level past `line` (above it when `upward`) with room for the wiggle, inside the
        channel's range; None when the range leaves no such room."""
        spec_ = self.env.kind(device).channels[channel]
        step = 2 * 10.0 ** -DECIMALS.get(spec_.name, 3)
        bound = wig.bound
        typical = TYPICAL.get((device.kind, spec_.name, "above" if upward else "below"))
        if typical is not None:
            value = float(rng.uniform(*typical))
            if (value - bound > line + step) if upward else (value + bound < line - step):
                if spec_.min + bound <= value <= spec_.max - bound:
                    return value
        margin = max(0.12 * abs(line), 3 * bound, 5 * step, 0.5)
        if upward:
            value = min(line + margin * float(rng.uniform(1.0, 1.5)), spec_.max - bound - step)
            return value if value - bound > line + step else None
        value = max(line - margin * float(rng.uniform(1.0, 1.5)), spec_.min + bound + step)
        return value if value + bound < line - step else None


# -- value rules ----------------------------------------------------------------------------


class ThresholdMaker(Maker):
    def tracks(self, device, now, number, rng):
        env, rule = self.env, self.rule
        channel = env.view.channel_index(device.kind, rule.channel)
        name = env.kind(device).channels[channel].name
        above, below = env.param(rule, "above"), env.param(rule, "below")
        hold = env.seconds(rule, "for_")
        kind = env.kind(device)
        cadence = _cadence(kind, hold, 5.0) if hold > 0 else min(kind.period_s, 10.0)
        duration = hold + max(3 * cadence, 0.5 * hold, 60.0)
        if not env.fits(rule.when, now, duration):
            return []
        wig = self.wig(device, name, number, above if above is not None else below)
        line, upward = (above, True) if above is not None else (below, False)
        level = self.level(device, channel, line, upward, wig, rng)
        if level is None:
            return []
        return [Track(device.id, device.kind, Hold(channel, level, wig), duration, cadence)]


class RateMaker(Maker):
    """Water rising (or falling) twice the rule's change within 80 % of its window, held a
    while, and back."""

    def tracks(self, device, now, number, rng):
        env, rule = self.env, self.rule
        within = env.seconds(rule, "within")
        rise, fall = env.param(rule, "rise"), env.param(rule, "fall")
        change = 2.0 * rise if rise is not None else -2.0 * fall
        channel = env.view.channel_index(device.kind, rule.channel)
        spec_ = env.kind(device).channels[channel]
        up, hold, back = 0.8 * within, 0.3 * within, 1.0 * within
        duration = up + hold + back
        if not env.fits(rule.when, now, duration):
            return []
        wig = self.wig(device, spec_.name, number, change)
        wig.amplitude = min(wig.amplitude, abs(change) / 20)
        wig.noise = wig.amplitude / 4
        if spec_.max - spec_.min < abs(change) + 2 * wig.bound:
            return []
        shape = Ramp(channel, change, up, hold, back, spec_.min, spec_.max, wig)
        cadence = _cadence(env.kind(device), within, 10.0)
        return [Track(device.id, device.kind, shape, duration, cadence,
                      arm_s=_wait_for_level(env.kind(device)))]


class QuietMaker(Maker):
    """No reading above `active_above` for the rule's time counted inside its `when`."""

    def tracks(self, device, now, number, rng):
        env, rule = self.env, self.rule
        need = env.seconds(rule, "for_") + max(1800.0, 0.05 * env.seconds(rule, "for_"))
        duration = self._span(now, need)
        if duration is None or (env.end_ts is not None and now + duration > env.end_ts):
            return []
        if rule.when is not None and not env.view.clock.matches(
                rule.when, np.array([int(now * US)]))[0]:
            return []  # start inside the counted hours: "silent from 07:00"
        channel = env.view.channel_index(device.kind, rule.channel)
        spec_ = env.kind(device).channels[channel]
        active = float(env.param(rule, "active_above"))
        level = max(spec_.min, 0.0) if spec_.min <= 0.0 <= active else spec_.min
        if level > active:
            return []
        wig = wiggle(env.seed, number, spec_.name, 0.0)
        kind = env.kind(device)
        return [Track(device.id, device.kind, Hold(channel, level, wig), duration,
                      kind.period_s)]

    def _span(self, start: float, need: float) -> float | None:
        """Wall time from `start` until `need` seconds inside `when` have passed."""
        when = self.rule.when
        if when is None:
            return need
        clock = self.env.view.clock
        span = need
        for _ in range(30):  # a week of trying covers any sane `when`
            inside = clock.seconds_inside(when, int(start * US), int((start + span) * US))
            if inside >= need:
                return span
            span += need - inside
        return None


class CameraMaker(Maker):
    def _candidates(self):
        return self.env.view.selected(self.rule, default_kind="camera")

    def tracks(self, device, now, number, rng):
        env, rule = self.env, self.rule
        codes = {name: code for code, name in CAMERA_EVENTS.items()}
        names = env.view.channel_names(device.kind)
        dwell = env.seconds(rule, "dwell")
        duration = dwell + max(180.0, 0.5 * dwell)
        if not env.fits(rule.when, now, duration):
            return []
        shape = Sighting(names.index("event"), names.index("dwell"), float(codes[rule.event]))
        cadence = min(env.kind(device).period_s, 30.0)
        return [Track(device.id, device.kind, shape, duration, cadence)]


class AbsenceMaker(Maker):
    """The device goes silent for its periods and a margin, then comes back."""

    def _candidates(self):
        # Movers come and go with their duties; a fixed sensor going dark is the clear case.
        devices = self.env.view.selected(self.rule)
        fixed = [d for d in devices if not self.env.kind(d).mobile]
        return fixed or devices

    def tracks(self, device, now, number, rng):
        env = self.env
        period = env.kind(device).period_s
        duration = float(env.param(self.rule, "periods")) * period + max(2 * period, 60.0)
        if not env.fits(self.rule.when, now, duration):
            return []
        # Silence starts right after a reading, where "last heard" is for the rule.
        return [Track(device.id, device.kind, Silence(), duration, period,
                      arm_s=_wait_for_level(env.kind(device)))]


class WindowMaker(Maker):
    """Aggregates per device: a held level (mean, max, min, count of readings over a value),
    a frozen value (range below), or readings the device cannot make (source: rejections)."""

    def _candidates(self):
        devices = self.env.view.selected(self.rule)
        if self.rule.source == "rejections":
            # A fixed single-channel instrument makes the plainest broken sensor.
            fixed = [d for d in devices if not self.env.kind(d).mobile
                     and len(self.env.kind(d).channels) == 1 and d.kind != "kpi"]
            return fixed or devices
        return devices

    def why_not(self):
        rule = self.rule
        if rule.per != "device" and rule.source == "readings" and (
                rule.agg != "count" or rule.above is None):
            return f"per-{rule.per} windows are injected only as counts above a level"
        if rule.source == "readings" and rule.per == "device" and rule.below is not None \
                and rule.agg not in ("range", "mean", "max", "min"):
            return f"a {rule.agg} below a level is not injected"
        return super().why_not()

    def subject(self, device, tracks):
        return self.env.view.group_key(device, self.rule.per) or device.id

    def tracks(self, device, now, number, rng):
        env, rule = self.env, self.rule
        over = env.seconds(rule, "over")
        kind = env.kind(device)
        channel = env.view.channel_index(device.kind, rule.channel)
        spec_ = kind.channels[channel]
        above, below = env.param(rule, "above"), env.param(rule, "below")
        value_above = env.param(rule, "value_above")
        min_count = int(env.param(rule, "min_count"))
        duration = over + max(180.0, 0.5 * over)
        if not env.fits(rule.when, now, duration):
            return []
        if rule.source == "rejections":
            count = (above if above is not None else 0) + 4
            cadence = max(1.0, over / count)
            wild = spec_.max + max(0.1 * (spec_.max - spec_.min), 1.0)
            return [Track(device.id, device.kind, Garbage(channel, wild), duration, cadence,
                          arm_s=0.0)]
        if rule.agg == "range":
            cadence = _cadence(kind, over, min_count + 5)
            return [Track(device.id, device.kind, Freeze(channel), duration, cadence,
                          arm_s=_wait_for_level(kind))]
        if kind.mobile and spec_.name == "speed":
            return []  # speeds of movers: see DriveMaker
        wig = self.wig(device, spec_.name, number, above if above is not None else below)
        if rule.agg == "count":
            if value_above is None or above is None:
                return []
            level = self.level(device, channel, value_above, True, wig, rng)
            cadence = max(1.0, min(kind.period_s, over / (above + 3)))
        else:
            line = above if above is not None else below
            if value_above is not None and above is not None:
                line = max(line, value_above)
            level = self.level(device, channel, line, above is not None, wig, rng)
            cadence = _cadence(kind, over, min_count + 3)
        if level is None:
            return []
        return [Track(device.id, device.kind, Hold(channel, level, wig), duration, cadence)]


class ClusterMaker(WindowMaker):
    """More readings over a level than the rule allows in one cell or area: several devices of
    the group at once, each also able to carry the count alone (at the rule's own rate). A rule
    counting distinct devices needs more of them than it allows, so only groups with that many
    free devices take one."""

    def why_not(self):
        if self.rule.agg != "count" or self.rule.above is None:
            return f"per-{self.rule.per} windows are injected only as counts above a level"
        if self.rule.distinct == "device":
            sizes: dict[str, int] = {}
            for device in self.candidates:
                key = self.env.view.group_key(device, self.rule.per)
                if key is not None:
                    sizes[key] = sizes.get(key, 0) + 1
            want = self._want()
            if not sizes or max(sizes.values()) < want:
                return (f"no {self.rule.per} of the city has the {want} devices the rule "
                        "counts (distinct devices)")
        return Maker.why_not(self)

    def _want(self) -> int:
        return int(math.floor(float(self.env.param(self.rule, "above")))) + 1

    def make(self, now, number, rng):
        env, rule = self.env, self.rule
        groups: dict[str, list[Device]] = {}
        for device in self.candidates:
            if device.id in env.busy:
                continue
            key = env.view.group_key(device, rule.per)
            if key is not None:
                groups.setdefault(key, []).append(device)
        if not groups:
            return None
        want = self._want()
        # The groups with the most devices, so that the cluster is several devices where the
        # city has them.
        keys = sorted(groups, key=lambda k: -len(groups[k]))
        best = len(groups[keys[0]])
        least = want if rule.distinct == "device" else min(best, want)
        top = [k for k in keys if len(groups[k]) >= least]
        for i in rng.permutation(len(top))[:TRIES].tolist():
            key = top[i]
            members = groups[key]
            picks = [members[j] for j in rng.permutation(len(members))[:want].tolist()]
            tracks = []
            for k, device in enumerate(picks):
                made = WindowMaker.tracks(self, device, now, number, rng)
                if not made:
                    break
                track = made[0]
                over = env.seconds(rule, "over")
                track.offset = k * over / (2 * len(picks))
                track.duration -= track.offset
                tracks.append(track)
            if len(tracks) != len(picks):
                continue
            anomaly = self.accept(tracks, now, number, key)
            if anomaly is not None:
                return anomaly
        return None


# -- movers ---------------------------------------------------------------------------------


def _heading(dx: float, dy: float) -> float:
    return math.degrees(math.atan2(dx, dy)) % 360.0


class MoverMaker(Maker):
    """Anomalies of GPS movers, as paths in metres turned back into fixes."""

    def _candidates(self):
        return self.env.view.selected(self.rule, default_kind="gps")

    def path(self, device: Device, points: list[tuple[float, float]],
             speeds_kmh: list[float], number: int, pauses: dict[int, float] | None = None,
             ) -> Path | None:
        """Through `points` (x, y metres) at `speeds_kmh` per leg; `pauses` waits at a point."""
        view = self.env.view
        names = view.channel_names(device.kind)
        if "lat" not in names or "lon" not in names:
            return None
        times, xs, ys, speeds, headings = [0.0], [points[0][0]], [points[0][1]], [], []
        for i in range(1, len(points)):
            (x0, y0), (x1, y1) = points[i - 1], points[i]
            metres = math.hypot(x1 - x0, y1 - y0)
            v = max(speeds_kmh[i - 1], 1.0) / 3.6
            times.append(times[-1] + max(metres / v, 1.0))
            xs.append(x1), ys.append(y1)
            speeds.append(speeds_kmh[i - 1])
            headings.append(_heading(x1 - x0, y1 - y0) if metres > 0 else
                            (headings[-1] if headings else 0.0))
            if pauses and i in pauses:
                times.append(times[-1] + pauses[i])
                xs.append(x1), ys.append(y1)
                speeds.append(0.0), headings.append(headings[-1])
        lat, lon = view.to_latlon(np.array(xs), np.array(ys))
        speed_channel = names.index("speed") if "speed" in names else None
        heading_channel = names.index("heading") if "heading" in names else None
        wig = self.wig(device, "speed", number, 10.0)
        wig.amplitude, wig.noise = 1.0, 0.25
        return Path(names.index("lat"), names.index("lon"), speed_channel, heading_channel,
                    np.array(times), lat, lon, np.array(speeds), np.array(headings), wig)

    def along(self, line: shapely.LineString, start_m: float, metres: float
              ) -> list[tuple[float, float]]:
        """Points along a route line from `start_m`, turning back at its ends, every 100 m."""
        length = max(line.length, 1.0)
        out = []
        for d in np.arange(0.0, metres + 100.0, 100.0):
            pos = (start_m + min(d, metres)) % (2 * length)
            pos = pos if pos <= length else 2 * length - pos
            p = line.interpolate(pos)
            out.append((p.x, p.y))
        return out

    def route_line(self, device: Device, rng) -> shapely.LineString | None:
        routes = self.env.view.routes_of(device.id, "muck_route")
        if not routes:
            return None
        return self.env.view.line_xy(routes[int(rng.integers(len(routes)))])


class DriveMaker(MoverMaker):
    """A mover driving at a speed that breaks a speed rule (threshold, or a window mean), along
    its approved route when it has one so that nothing else is set off."""

    def tracks(self, device, now, number, rng):
        env, rule = self.env, self.rule
        if isinstance(rule, spec.Threshold):
            hold = env.seconds(rule, "for_")
            line, upward = env.param(rule, "above"), env.param(rule, "above") is not None
            if not upward:
                return []
            speed = line + float(rng.uniform(12.0, 20.0))
            duration = hold + max(180.0, 0.5 * hold)
        else:
            over = env.seconds(rule, "over")
            above = env.param(rule, "above")
            if above is None or rule.agg not in ("mean", "max", "min"):
                return []
            speed = above + float(rng.uniform(12.0, 20.0))
            duration = over + max(180.0, 0.5 * over)
        if not env.fits(rule.when, now, duration):
            return []
        metres = speed / 3.6 * duration
        line = self.route_line(device, rng)
        if line is not None:
            points = self.along(line, float(rng.uniform(0, line.length)), metres)
        else:
            x, y = env.view.to_xy(device.lat, device.lon)
            angle = float(rng.uniform(0, 2 * math.pi))
            points = [(float(x) + d * math.sin(angle), float(y) + d * math.cos(angle))
                      for d in np.arange(0.0, metres + 100.0, 100.0)]
        path = self.path(device, points, [speed] * (len(points) - 1), number)
        if path is None:
            return []
        kind = env.kind(device)
        return [Track(device.id, device.kind, path, float(path.times[-1]),
                      min(kind.period_s, 10.0), arm_s=0.0)]


class GeofenceMaker(MoverMaker):
    """A truck creeping from its route into a zone it may not enter, and waiting there."""

    APPROACH_KMH = 12.0  # slow enough that no speed rule hears of it
    INSIDE_KMH = 8.0
    OUTSIDE_M = 80.0

    def zones(self) -> list[Zone]:
        return self.env.view.zones(self.rule.zones)

    def why_not(self):
        if not self.zones():
            return f"the city has no zones of kind {self.rule.zones!r}"
        if self.rule.on == "exit":
            return "exits are not injected"
        return super().why_not()

    def subject(self, device, tracks):
        return f"{device.id}@{self._zone.id}"

    def tracks(self, device, now, number, rng):
        env, rule, view = self.env, self.rule, self.env.view
        dwell = env.seconds(rule, "dwell")
        zones = self.zones()
        for z in rng.permutation(len(zones)).tolist():
            zone = zones[z]
            polygon = view.polygon_xy(zone)
            if polygon.is_empty or polygon.area < 100.0:
                continue
            inside_pt = self._inside_point(polygon, rng)
            angle = float(rng.uniform(0, 2 * math.pi))
            edge = self._exit_point(polygon, inside_pt, angle)
            line = self.route_line(device, rng)
            start = None
            if line is not None:
                near = line.interpolate(line.project(shapely.Point(edge)))
                if math.hypot(near.x - edge[0], near.y - edge[1]) < 1500.0:
                    start = (near.x, near.y)
            if start is None:
                start = (edge[0] + 300.0 * math.sin(angle), edge[1] + 300.0 * math.cos(angle))
            loiter = (inside_pt[0] + 15.0, inside_pt[1])
            stay = dwell + max(90.0, 0.5 * dwell)
            points = [start, edge, inside_pt, loiter, inside_pt]
            speeds = [self.APPROACH_KMH, self.INSIDE_KMH, 3.0, 3.0]
            path = self.path(device, points, speeds, number, pauses={2: stay / 2, 4: stay / 2})
            if path is None:
                return []
            duration = float(path.times[-1])
            when = rule.when
            hours = zone.meta.get("hours")
            if not env.fits(when, now, duration) or (
                    hours and not env.fits(spec.When(hours=str(hours)), now, duration)):
                continue
            self._zone = zone
            kind = env.kind(device)
            return [Track(device.id, device.kind, path, duration, min(kind.period_s, 10.0),
                          arm_s=0.0)]
        return []

    @staticmethod
    def _inside_point(polygon, rng) -> tuple[float, float]:
        x0, y0, x1, y1 = polygon.bounds
        for _ in range(50):
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if polygon.buffer(-30.0).contains(shapely.Point(x, y)):
                return float(x), float(y)
        p = polygon.representative_point()
        return p.x, p.y

    def _exit_point(self, polygon, inside, angle) -> tuple[float, float]:
        """From `inside`, straight out along `angle` to OUTSIDE_M past the border."""
        x, y = inside
        dx, dy = math.sin(angle), math.cos(angle)
        d = 0.0
        while polygon.contains(shapely.Point(x + d * dx, y + d * dy)) and d < 50_000:
            d += 10.0
        d += self.OUTSIDE_M
        return x + d * dx, y + d * dy


class RouteMaker(MoverMaker):
    """A truck on its route that turns off it, drives a parallel street well away from it for
    longer than the rule allows, and is then done."""

    KMH = 12.0
    PLACES = 6  # turn-off points (and sides) tried per truck

    def _candidates(self):
        view = self.env.view
        if not view.zones(self.rule.routes):
            return []
        return super()._candidates()

    def why_not(self):
        if not self.env.view.zones(self.rule.routes):
            return f"the city has no routes of kind {self.rule.routes!r}"
        return super().why_not()

    def tracks(self, device, now, number, rng):
        env, rule, view = self.env, self.rule, self.env.view
        limit = env.param(rule, "max_distance_m")
        hold = env.seconds(rule, "for_")
        routes = view.routes_of(device.id, rule.routes)
        lines = [view.line_xy(r) for r in routes]
        # What the rule measures against: every part of every route the truck may use.
        held_to = shapely.union_all([view.route_xy(r) for r in routes])
        step = min(env.kind(device).period_s, 10.0)
        for _ in range(self.PLACES):
            line = lines[int(rng.integers(len(lines)))]
            if line.length < 200.0:
                continue
            path = self._detour(device, line, limit, hold, number, rng)
            if path is None:
                return []
            # Routes bend and come back near themselves: a detour that ends far away may
            # still pass within the limit of another stretch on its way, which restarts the
            # rule's clock. The whole detour must be off route long enough, with room.
            if _longest_off(path, held_to, view, 1.1 * limit, step) >= hold + 6 * step:
                break
        else:
            return []
        duration = float(path.times[-1])
        if not env.fits(rule.when, now, duration):
            return []
        return [Track(device.id, device.kind, path, duration, step, arm_s=0.0)]

    def _detour(self, device, line, limit, hold, number, rng) -> Path | None:
        v = self.KMH / 3.6
        at = float(rng.uniform(0.2, 0.8)) * line.length
        on = [line.interpolate(at + d) for d in (0.0, v * 60.0)]
        a, b = (on[0].x, on[0].y), (on[1].x, on[1].y)
        dx, dy = b[0] - a[0], b[1] - a[1]
        norm = math.hypot(dx, dy) or 1.0
        side = 1.0 if rng.random() < 0.5 else -1.0
        nx, ny = side * -dy / norm, side * dx / norm
        away = max(2.5 * limit, limit + 400.0)
        c = (b[0] + away * nx, b[1] + away * ny)
        stay = hold + max(120.0, 0.5 * hold)
        run = v * stay
        d = (c[0] + run * dx / norm, c[1] + run * dy / norm)
        return self.path(device, [a, b, c, d], [self.KMH] * 3, number)


def _longest_off(path: Path, route: shapely.Geometry, view: CityView, limit: float,
                 step: float) -> float:
    """The longest time the path stays farther than `limit` from `route`, sampled as the
    tracker reports (every `step` seconds)."""
    dt = np.arange(0.0, float(path.times[-1]) + step / 2, step)
    values = path.values(dt, None)
    x, y = view.to_xy(values[path.lat_channel], values[path.lon_channel])
    off = shapely.distance(route, shapely.points(x, y)) > limit
    edges = np.diff(np.r_[0, off.astype(np.int8), 0])
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return float((dt[stops] - dt[starts]).max()) if starts.size else -1.0


# -- composites and the rest ----------------------------------------------------------------


class CompositeMaker(Maker):
    """Every member rule's anomaly at once, on devices within the composite's distance of the
    last member's device (the specific place: the underpass, not the rain gauge)."""

    SUPPORTED = (spec.Threshold, spec.RateOfChange, spec.CameraEvent, spec.Quiet)

    def __init__(self, env, pack, rule):
        self.members: list[tuple[str, Maker]] = []
        for ref in rule.all_of:
            full = ref if "." in ref else f"{pack.name}.{ref}"
            found = env.rules.get(full)
            if found is not None:
                self.members.append((full, maker_for(env, *found)))
        super().__init__(env, pack, rule)

    def _candidates(self):
        return self.members[-1][1].candidates if self.members else []

    def why_not(self):
        rule = self.rule
        if len(self.members) != len(rule.all_of):
            return "a member rule is not active in this state"
        for ref, maker in self.members:
            if not isinstance(maker.rule, self.SUPPORTED) or isinstance(maker, MoverMaker):
                return f"member {ref} ({type(maker.rule).__name__}) is not injected in composites"
            why = maker.why_not()
            if why:
                return f"member {ref}: {why}"
        return super().why_not()

    def make(self, now, number, rng):
        env = self.env
        distance = float(env.param(self.rule, "distance_m"))
        last_ref, last = self.members[-1]
        free = [d for d in last.candidates if d.id not in env.busy]
        for i in rng.permutation(len(free))[:TRIES].tolist():
            anchor = free[i]
            chosen: list[tuple[str, Maker, Device]] = []
            taken = {anchor.id}
            for ref, maker in self.members[:-1]:
                near = sorted((d for d in maker.candidates
                               if d.id not in env.busy and d.id not in taken),
                              key=lambda d: env.view.distance_m(d, anchor))
                near = [d for d in near if env.view.distance_m(d, anchor) <= 0.5 * distance]
                if not near:
                    break
                chosen.append((ref, maker, near[0]))
                taken.add(near[0].id)
            else:
                chosen.append((last_ref, last, anchor))
                anomaly = self._together(chosen, now, number, rng)
                if anomaly is not None:
                    return anomaly
        return None

    def _together(self, chosen, now, number, rng) -> Anomaly | None:
        parts = []
        for ref, maker, device in chosen:
            tracks = maker.tracks(device, now, number, rng)
            if len(tracks) != 1:
                return None
            parts.append((ref, maker, device, tracks[0]))
        # Every member lasts as long as the longest, so that all are active together.
        longest = max(t.duration for *_, t in parts)
        for *_, track in parts:
            track.duration = longest
        subject = "+".join(maker.subject(device, [track]) for _, maker, device, track in parts)
        labels = [(self.ref, subject)]
        tracks = []
        exclude = {self.ref} | {ref for ref, *_ in parts}
        for ref, maker, device, track in parts:
            track.armed_at = now
            track.fallback = _fallback(self.env, device)
            labels.append((ref, maker.subject(device, [track])))
            verdict = self.env.overlap.check(track, now, exclude)
            if verdict.maybe:
                return None
            labels += [c for c in verdict.certain if c not in labels]
            tracks.append(track)
        if not all(self.env.fits(m.rule.when, now, longest) for _, m, _, _ in parts):
            return None
        # The composite pairs each member with the nearest fitting episode of the others, so
        # another anomaly's member nearby would make a pair nobody labelled.
        if self.env.joins({ref for ref, _ in labels}, [t.device for t in tracks]):
            return None
        return Anomaly(number, self.ref, labels, tracks, now)


class Unsupported(Maker):
    def __init__(self, env, pack, rule, why: str) -> None:
        self._why = why
        super().__init__(env, pack, rule)

    def why_not(self):
        return self._why

    def make(self, now, number, rng):
        return None


def maker_for(env: Env, pack: spec.ScenarioPack, rule: spec.AnyRule) -> Maker:
    if isinstance(rule, spec.Baseline):
        weeks = int(env.param(rule, "min_history"))
        return Unsupported(env, pack, rule, f"a baseline needs {weeks} weeks of history of the "
                           "same hour of the week before it decides; a simulation starts with none")
    if isinstance(rule, spec.Outage):
        return Unsupported(env, pack, rule, "a network outage silences many devices at once: "
                           "the storm makes those, labelled as outages (`outages=`)")
    if isinstance(rule, spec.Threshold | spec.Window):
        kind = env.view.kinds.get(rule.kind or "")
        if kind is not None and kind.mobile and (rule.channel or kind.primary.name) == "speed":
            return DriveMaker(env, pack, rule)
    if isinstance(rule, spec.Window) and rule.per != "device" and rule.source == "readings":
        return ClusterMaker(env, pack, rule)
    makers: dict[type, type[Maker]] = {
        spec.Threshold: ThresholdMaker, spec.RateOfChange: RateMaker, spec.Quiet: QuietMaker,
        spec.CameraEvent: CameraMaker, spec.Absence: AbsenceMaker, spec.Window: WindowMaker,
        spec.Geofence: GeofenceMaker, spec.RouteDeviation: RouteMaker,
        spec.Composite: CompositeMaker,
    }
    return makers[type(rule)](env, pack, rule)

