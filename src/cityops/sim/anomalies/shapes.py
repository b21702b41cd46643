"""What one device reports during an anomaly: a track with a shape over time.

A shape gives the values of the channels it changes at times `dt` seconds into the anomaly, and
an envelope (lowest and highest value it can produce there) that the overlap check reasons
with. Values wiggle (a slow sine plus a little noise) the way real instruments do; besides
looking right, that keeps a held level from also reading as a frozen sensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cityops.sim.randomness import normal, stream_key

# Noise of the wiggle is clipped at this many standard deviations, so envelopes are hard bounds.
CLIP_SIGMA = 3.0
WIGGLE_PERIOD_S = 173.0  # not a multiple of any reporting period, so readings see it move


class Shape:
    """Channels -> values over time. `dt` is seconds since the anomaly started."""

    silent = False  # the device sends nothing
    keeps_natural = False  # natural readings pass untouched; only made readings carry it

    def values(self, dt: np.ndarray, base: np.ndarray) -> dict[int, np.ndarray]:
        raise NotImplementedError

    def envelope(self, dt: np.ndarray, base: np.ndarray) -> dict[int, tuple[np.ndarray,
                                                                          np.ndarray]]:
        out = self.values(dt, base)
        return {c: (v, v) for c, v in out.items()}


@dataclass
class Wiggle:
    """amplitude * sin + noise, deterministic for (key, anomaly, second)."""

    key: int
    anomaly: int
    amplitude: float
    noise: float

    @property
    def bound(self) -> float:
        return self.amplitude + CLIP_SIGMA * self.noise

    def __call__(self, dt: np.ndarray) -> np.ndarray:
        sine = self.amplitude * np.sin(2 * math.pi * dt / WIGGLE_PERIOD_S + self.anomaly)
        jitter = normal(self.key, self.anomaly, np.floor(dt * 10.0))
        return sine + self.noise * np.clip(jitter, -CLIP_SIGMA, CLIP_SIGMA)


def wiggle(seed: int, anomaly: int, channel: str, amplitude: float) -> Wiggle:
    return Wiggle(stream_key(seed, f"anomaly.{channel}"), anomaly, amplitude, amplitude / 4)


@dataclass
class Hold(Shape):
    """A level held (with its wiggle) from the start: the noise meter at 62 dB(A)."""

    channel: int
    level: float
    wig: Wiggle

    def values(self, dt, base):
        return {self.channel: self.level + self.wig(dt)}

    def envelope(self, dt, base):
        b = self.wig.bound
        return {self.channel: (np.full(dt.shape, self.level - b),
                               np.full(dt.shape, self.level + b))}


@dataclass
class Ramp(Shape):
    """From the device's own level, change by `change` over `rise_s`, hold for `hold_s`, and go
    back over `back_s`: water rising in an underpass and draining away."""

    channel: int
    change: float
    rise_s: float
    hold_s: float
    back_s: float
    floor: float
    ceiling: float
    wig: Wiggle

    def profile(self, dt: np.ndarray) -> np.ndarray:
        up = np.clip(dt / self.rise_s, 0.0, 1.0)
        down = np.clip((dt - self.rise_s - self.hold_s) / self.back_s, 0.0, 1.0)
        return self.change * (up - down)

    def start_level(self, base: np.ndarray) -> float:
        # A fall needs room below; a rise, room above.
        b = float(base[self.channel])
        if self.change < 0:
            return max(b, self.floor - self.change + self.wig.bound)
        return min(b, self.ceiling - self.change - self.wig.bound)

    def values(self, dt, base):
        return {self.channel: self.start_level(base) + self.profile(dt) + self.wig(dt)}

    def envelope(self, dt, base):
        mid = self.start_level(base) + self.profile(dt)
        b = self.wig.bound
        return {self.channel: (mid - b, mid + b)}


@dataclass
class Freeze(Shape):
    """The value the device had when it froze, repeated: a stuck sensor."""

    channel: int

    def values(self, dt, base):
        return {self.channel: np.full(dt.shape, float(base[self.channel]))}


@dataclass
class Garbage(Shape):
    """Readings a device cannot physically make, sent between its normal ones."""

    channel: int
    value: float
    keeps_natural = True

    def values(self, dt, base):
        return {self.channel: np.full(dt.shape, self.value)}


@dataclass
class Silence(Shape):
    silent = True

    def values(self, dt, base):
        return {}


@dataclass
class Sighting(Shape):
    """A camera event whose dwell grows from `dwell0` seconds at the start."""

    event_channel: int
    dwell_channel: int
    code: float
    dwell0: float = 0.0

    def values(self, dt, base):
        return {self.event_channel: np.full(dt.shape, self.code),
                self.dwell_channel: self.dwell0 + np.maximum(dt, 0.0)}


@dataclass
class Path(Shape):
    """A mover along waypoints (metres, via the city's projection) at given times; speed and
    heading follow from the legs, with a little wiggle on the speed."""

    lat_channel: int
    lon_channel: int
    speed_channel: int | None
    heading_channel: int | None
    times: np.ndarray  # seconds since the start, increasing
    lat: np.ndarray
    lon: np.ndarray
    speeds: np.ndarray  # km/h on each leg (len(times) - 1)
    headings: np.ndarray  # degrees on each leg
    wig: Wiggle | None = None

    def leg(self, dt: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.times, dt, side="right") - 1, 0, len(self.speeds) - 1)

    def values(self, dt, base):
        out = {self.lat_channel: np.interp(dt, self.times, self.lat),
               self.lon_channel: np.interp(dt, self.times, self.lon)}
        leg = self.leg(dt)
        if self.speed_channel is not None:
            speed = self.speeds[leg]
            if self.wig is not None:
                speed = np.where(speed > 0, speed + self.wig(dt), speed)
            out[self.speed_channel] = np.maximum(speed, 0.0)
        if self.heading_channel is not None:
            out[self.heading_channel] = self.headings[leg]
        return out

    def envelope(self, dt, base):
        out = {c: (v, v) for c, v in self.values(dt, base).items()}
        if self.speed_channel is not None and self.wig is not None:
            speed = self.speeds[self.leg(dt)]
            b = np.where(speed > 0, self.wig.bound, 0.0)
            out[self.speed_channel] = (np.maximum(speed - b, 0.0), speed + b)
        return out


@dataclass
class Track:
    """One device's part in an anomaly. It starts when the device is next seen (so that a
    ramp starts from the device's own level), or after `arm_s` without it."""

    device: str
    kind: str
    shape: Shape
    duration: float
    cadence: float  # a reading at least this often while it lasts (added when missing)
    offset: float = 0.0  # start this long after the anomaly is armed
    armed_at: float = 0.0
    arm_s: float = 5.0
    start: float | None = None
    base: np.ndarray | None = None
    last: float = -math.inf  # newest reading carrying the anomaly
    natural: float = -math.inf  # newest natural reading of the device seen during it
    seen_base: bool = False  # `base` is a real reading just before the start (not a guess)
    made: int = 0  # readings added
    changed: int = 0  # natural readings changed or dropped
    fallback: np.ndarray | None = field(default=None, repr=False)

    @property
    def end(self) -> float:
        return (self.start if self.start is not None else math.inf) + self.duration

    def due(self, now: float) -> bool:
        return now >= self.armed_at + self.offset
