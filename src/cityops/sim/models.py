"""Reading models per device kind, vectorised over a batch of (device, time) pairs.

A model's values are a pure function of the seed, the device and the time (see `randomness`), so
a run is reproducible whatever the rate or batch size. Every model clips to its kind's channel
ranges: the simulator produces valid readings; faults are for tests to inject on purpose.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from cityops.domain.city import Device, DeviceKind
from cityops.domain.kinds import CAMERA_EVENTS
from cityops.sim.randomness import normal, stream_key, uniform
from cityops.sim.weather import Weather

DAY_S = 86400.0

# How busy the city is by local hour, 0 (dead of night) to 1 (working day). The shape follows the
# hourly medians of real street noise monitors: a trough at 3-4 am, a steep rise from 6 to 8, a
# plateau through the day and a slow fall through the evening.
_ACTIVITY = np.array([
    0.45, 0.35, 0.22, 0.08, 0.05, 0.20, 0.40, 0.72, 0.90, 0.95, 0.97, 1.00,
    1.00, 0.98, 0.98, 0.98, 1.00, 1.00, 0.98, 0.95, 0.85, 0.75, 0.65, 0.55,
])


def activity(hour: np.ndarray) -> np.ndarray:
    """`_ACTIVITY`, linearly interpolated, for fractional local hours."""
    h0 = np.floor(hour).astype(np.int64) % 24
    f = hour - np.floor(hour)
    return _ACTIVITY[h0] + f * (_ACTIVITY[(h0 + 1) % 24] - _ACTIVITY[h0])


def _bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = (hour - centre + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (d / width) ** 2)


def device_keys(devices: Sequence[Device]) -> np.ndarray:
    """A stable number per device id, so a device keeps its character when others are added."""
    return np.array([zlib.crc32(d.id.encode()) for d in devices], dtype=np.int64)


class Model:
    """Values for the devices of one kind. `member` indexes this model's own device list."""

    # A calm city has no incidents of its own (no nuisance, spikes, displaced covers, failed
    # lamps, silent households, blocked fire lanes): when anomalies are injected and scored,
    # every alert must be one the plan put there.
    calm = False

    def __init__(self, kind: DeviceKind, devices: Sequence[Device], seed: int, weather: Weather):
        self.kind = kind
        self.devices = list(devices)
        self.seed = seed
        self.weather = weather
        self._keys: dict[str, int] = {}
        self.dev = device_keys(self.devices)
        self.lat = np.array([d.lat for d in self.devices], dtype=np.float64)
        self.lon = np.array([d.lon for d in self.devices], dtype=np.float64)
        self.lo = np.array([c.min for c in kind.channels])
        self.hi = np.array([c.max for c in kind.channels])

    def key(self, name: str) -> int:
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = stream_key(self.seed, f"{self.kind.name}.{name}")
        return key

    def draw(self, name: str, *counters) -> np.ndarray:
        return uniform(self.key(name), *counters)

    def param(self, name: str, lo: float, hi: float) -> np.ndarray:
        """A per-device constant drawn uniformly in [lo, hi)."""
        return lo + (hi - lo) * uniform(self.key(name), self.dev)

    def values(self, member: np.ndarray, t: np.ndarray, local_s: np.ndarray) -> np.ndarray:
        out = self.raw(member, t, local_s)
        return np.clip(out, self.lo, self.hi)

    def raw(self, member: np.ndarray, t: np.ndarray, local_s: np.ndarray) -> np.ndarray:
        """(n, channels) values before clipping to the kind's ranges."""
        raise NotImplementedError


class Generic(Model):
    """A kind the simulator knows nothing about: slow wander inside the middle of its range."""

    def raw(self, member, t, local_s):
        n, ch = len(member), len(self.kind.channels)
        cols = []
        for c in range(ch):
            phase = 2 * np.pi * self.draw(f"phase{c}", self.dev[member])
            wave = 0.5 + 0.2 * np.sin(2 * np.pi * t / 3600.0 + phase)
            jitter = 0.03 * normal(self.key(f"jitter{c}"), self.dev[member], np.floor(t))
            cols.append(self.lo[c] + (self.hi[c] - self.lo[c]) * np.clip(wave + jitter, 0.0, 1.0))
        return np.stack(cols, axis=1) if n else np.empty((0, ch))


class Noise(Model):
    """Sound level: quiet nights, busy days, and now and then a night-time nuisance (a party,
    square dancing, night works) that lasts its half hour."""

    NUISANCE_SLOT_S = 1800.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.night = self.param("night", 40.0, 48.0)
        self.day = np.clip(self.night + self.param("swing", 12.0, 20.0), 55.0, 70.0)
        self.nuisance_chance = self.param("nuisance_chance", 0.0, 0.06)

    def raw(self, member, t, local_s):
        hour = (local_s % DAY_S) / 3600.0
        d, tick = self.dev[member], np.floor(t)
        night, day = self.night[member], self.day[member]
        level = night + (day - night) * activity(hour)
        level = level + 2.5 * normal(self.key("jitter"), d, tick)
        slot = np.floor(local_s / self.NUISANCE_SLOT_S)
        at_night = (hour >= 22.0) | (hour < 5.0)
        episode = at_night & (self.draw("nuisance", d, slot) < self.nuisance_chance[member])
        episode &= not self.calm
        loud = 68.0 + 17.0 * self.draw("loudness", d, slot) + 2.0 * normal(self.key("nj"), d, tick)
        if self.calm:  # a calm evening winds down under the night limit (50 dB(A) clears)
            level = np.where(at_night | (hour >= 21.0), np.minimum(level, 48.0), level)
        return np.where(episode, np.maximum(level, loud), level)[:, None]


class Rainfall(Model):
    def raw(self, member, t, local_s):
        rain = self.weather.rain(t, self.lat[member], self.lon[member])
        gauge = rain * (1.0 + 0.08 * normal(self.key("jitter"), self.dev[member], np.floor(t)))
        return np.where(rain > 0.0, np.maximum(gauge, 0.1), 0.0)[:, None]


class WaterDepth(Model):
    """Depth at a flood gauge (underpass, low road, river bank): a base level plus the rain of
    the last few hours, draining away with a time constant of about an hour."""

    LAG_S = 900.0
    LAGS = 12
    DRAIN_S = 3600.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.base = self.param("base", 0.0, 4.0)
        self.gain = self.param("gain", 0.1, 0.9)  # cm of water per mm of recent rain

    def raw(self, member, t, local_s):
        lat, lon = self.lat[member, None], self.lon[member, None]
        lags = np.arange(self.LAGS) * self.LAG_S
        mm = self.weather.rain(t[:, None] - lags, lat, lon) * (self.LAG_S / 3600.0)
        recent = (mm * np.exp(-lags / self.DRAIN_S)).sum(axis=1)
        depth = self.base[member] + self.gain[member] * recent
        depth = depth + 0.3 * normal(self.key("jitter"), self.dev[member], np.floor(t))
        return np.maximum(depth, 0.0)[:, None]


class Wind(Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.exposure = self.param("exposure", 0.6, 1.4)
        self.skew = self.param("skew", -20.0, 20.0)  # buildings deflect the flow

    def raw(self, member, t, local_s):
        mean, direction = self.weather.wind(t)
        rain = self.weather.rain(t, self.lat[member], self.lon[member])
        tick = np.floor(t)
        gust = 1.0 + 0.25 * normal(self.key("gust"), self.dev[member], tick)
        speed = (mean + 0.15 * rain) * self.exposure[member] * gust
        turn = 15.0 * normal(self.key("turn"), self.dev[member], tick)
        heading = (direction + self.skew[member] + turn) % 360.0
        return np.stack([np.maximum(speed, 0.0), heading], axis=1)


class Smoke(Model):
    SLOT_S = 600.0
    SPIKE_CHANCE = 2e-4  # per detector per ten minutes

    def raw(self, member, t, local_s):
        d = self.dev[member]
        level = 0.05 * np.abs(normal(self.key("jitter"), d, np.floor(t)))
        slot = np.floor(t / self.SLOT_S)
        spike = (self.draw("spike", d, slot) < self.SPIKE_CHANCE) & (not self.calm)
        spiked = 5.0 + 35.0 * self.draw("height", d, slot)
        return np.where(spike, spiked, level)[:, None]


class ManholeTilt(Model):
    SLOT_S = 6 * 3600.0
    DISPLACED_CHANCE = 5e-4  # per cover per six hours

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seat = self.param("seat", 0.0, 1.0)  # how far off level the cover sits

    def raw(self, member, t, local_s):
        d = self.dev[member]
        tilt = self.seat[member] + 0.2 * np.abs(normal(self.key("jitter"), d, np.floor(t)))
        slot = np.floor(t / self.SLOT_S)
        displaced = (self.draw("displaced", d, slot) < self.DISPLACED_CHANCE) & (not self.calm)
        since = slot * self.SLOT_S + self.SLOT_S * self.draw("when", d, slot)
        angle = 12.0 + 70.0 * self.draw("angle", d, slot)
        return np.where(displaced & (t >= since), angle, tilt)[:, None]


class BinFill(Model):
    """Fill ramps up through the day and drops when the round collects the bin at dawn."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.collect_h = self.param("collect", 4.0, 8.0)
        self.rate = self.param("rate", 1.5, 5.5)  # % per hour
        self.left = self.param("left", 0.0, 6.0)  # what the round leaves behind

    def raw(self, member, t, local_s):
        hour = (local_s % DAY_S) / 3600.0
        since = (hour - self.collect_h[member]) % 24.0
        day = np.floor((local_s - self.collect_h[member] * 3600.0) / DAY_S)
        busy = 0.7 + 0.6 * self.draw("busy", self.dev[member], day)  # market days, holidays
        fill = self.left[member] + self.rate[member] * busy * since
        if self.calm:  # every bin is emptied before it is full: no overflow of its own
            fill = np.minimum(fill, 80.0)
        return (fill + 1.5 * normal(self.key("jitter"), self.dev[member], np.floor(t)))[:, None]


class AirQuality(Model):
    """Particles and NO2 peak with the rush hours, ozone with the afternoon sun; some days are
    simply worse than others."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.site = self.param("site", 0.75, 1.3)  # roadside stations read higher
        self.coarse = self.param("coarse", 1.4, 2.0)  # pm10 / pm25

    def raw(self, member, t, local_s):
        hour = (local_s % DAY_S) / 3600.0
        day = np.floor(local_s / DAY_S)
        smog = np.exp(0.45 * normal(self.key("smog"), day))
        rush = 0.6 + 0.5 * _bump(hour, 8.0, 1.3) + 0.4 * _bump(hour, 18.5, 1.6)
        tick = np.floor(t)
        d = self.dev[member]
        site = self.site[member]
        pm25 = 28.0 * smog * rush * site * (1.0 + 0.1 * normal(self.key("pm"), d, tick))
        pm10 = pm25 * self.coarse[member] * (1.0 + 0.05 * normal(self.key("pm10"), d, tick))
        no2 = 35.0 * rush * site * (1.0 + 0.1 * normal(self.key("no2"), d, tick))
        o3 = (25.0 + 90.0 * _bump(hour, 15.0, 2.5)) * (1.0 + 0.1 * normal(self.key("o3"), d, tick))
        return np.stack([pm25, pm10, no2, o3], axis=1)


class WaterMeter(Model):
    """Household flow: taps run in the morning and evening, rarely at night. A few households
    go silent for half days at a time (away, or an elderly resident who needs a visit)."""

    SLOT_S = 300.0
    SILENCE_S = 12 * 3600.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.quiet_prone = self.draw("quiet_prone", self.dev) < 0.05
        self.thirst = self.param("thirst", 0.6, 1.4)

    def raw(self, member, t, local_s):
        hour = (local_s % DAY_S) / 3600.0
        d = self.dev[member]
        slot = np.floor(local_s / self.SLOT_S)
        morning, evening = _bump(hour, 7.5, 1.0), _bump(hour, 19.5, 1.5)
        use = 0.02 + 0.35 * morning + 0.12 * activity(hour) + 0.3 * evening
        running = self.draw("running", d, slot) < use * self.thirst[member]
        flow = 2.0 + 10.0 * self.draw("flow", d, slot)
        block = np.floor(local_s / self.SILENCE_S)
        silent = self.quiet_prone[member] & (self.draw("silent", d, block) < 0.4)
        silent &= not self.calm
        return np.where(running & ~silent, flow, 0.0)[:, None]


class StreetLamp(Model):
    """Lamps light at dusk and go dark at dawn; now and then one fails dark for a night or
    sticks on through the day."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rated = np.choose(
            (self.draw("rating", self.dev) * 4).astype(np.int64), [60.0, 100.0, 150.0, 250.0]
        )
        self.on_h = self.param("on", 18.0, 19.0)
        self.off_h = self.param("off", 5.25, 6.25)

    def raw(self, member, t, local_s):
        hour = (local_s % DAY_S) / 3600.0
        d = self.dev[member]
        # A lamp's "night" starts at noon, so one night keeps one fault across midnight.
        night = np.floor((local_s - 12 * 3600.0) / DAY_S)
        lit = (hour >= self.on_h[member]) | (hour < self.off_h[member])
        dead = (self.draw("dead", d, night) < 0.003) & (not self.calm)
        stuck = (self.draw("stuck", d, night) < 0.001) & (not self.calm)
        on = (lit & ~dead) | stuck
        power = self.rated[member] * (1.0 + 0.02 * normal(self.key("jitter"), d, np.floor(t)))
        return np.where(on, power, 0.0)[:, None]


class Camera(Model):
    """Analytics events: mostly nothing, now and then an event that lasts minutes, reported
    with how long the object has dwelt so far."""

    SLOT_S = 600.0
    # Relative frequency of each event code: illegal parking is by far the commonest, garbage
    # and stalls next; crowds and smoke are rare. Every code now raises a rule (a case), so
    # over Pudong's 8,000 cameras these give roughly a hundred parking cases an hour but a few
    # crowds and about one camera-seen fire: a district's operations centre, not a disaster.
    _WEIGHTS = {1: 0.12, 2: 0.15, 3: 0.25, 4: 0.025, 5: 0.45, 6: 0.002}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy = self.param("busy", 0.002, 0.03)
        codes = [c for c in self._WEIGHTS if c in CAMERA_EVENTS]
        weights = np.array([self._WEIGHTS[c] for c in codes])
        self.codes = np.array(codes, dtype=np.float64)
        self.cum = np.cumsum(weights / weights.sum())

    def raw(self, member, t, local_s):
        d = self.dev[member]
        event = np.zeros(len(member))
        dwell = np.zeros(len(member))
        here = np.floor(t / self.SLOT_S)
        # An event starts in one ten-minute slot and may run on into the next ones.
        for back in (3.0, 2.0, 1.0, 0.0):
            slot = here - back
            happens = self.draw("event", d, slot) < self.busy[member]
            start = (slot + self.draw("start", d, slot)) * self.SLOT_S
            length = 60.0 + 1440.0 * self.draw("length", d, slot)
            active = happens & (t >= start) & (t < start + length)
            pick = np.searchsorted(self.cum, self.draw("code", d, slot), side="right")
            code = self.codes[np.minimum(pick, len(self.codes) - 1)]
            if self.calm:  # every camera event code has a rule: a calm camera sees none
                active = np.zeros_like(active)
            event = np.where(active, code, event)
            dwell = np.where(active, t - start, dwell)
        return np.stack([event, dwell], axis=1)


class Kpi(Model):
    """Vital-sign series: hourly counts with the day's rhythm (one value per local hour, however
    often it is reported), and communities' daily garbage-sorting accuracy in percent."""

    # Illustrative counts in an average hour for a district of a few million people; a street
    # or town carries a 36th. Not official figures: they only give the series a plausible scale.
    DISTRICT_PER_HOUR = {"calls_110": 180.0, "visits_120": 60.0, "traffic_accidents": 25.0,
                         "orders_12345": 220.0}
    TOWN_SHARE = 1 / 36

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kpi = [d.meta.get("kpi", "") for d in self.devices]
        level = [d.meta.get("level", "district") for d in self.devices]
        self.mean = np.array([self.DISTRICT_PER_HOUR.get(k, 10.0)
                              * (self.TOWN_SHARE if lv == "town" else 1.0)
                              for k, lv in zip(kpi, level)])
        self.accuracy_series = np.array([k == "sorting_accuracy" for k in kpi])
        self.usual_accuracy = self.param("usual_accuracy", 91.0, 99.0)

    def raw(self, member, t, local_s):
        d = self.dev[member]
        hour_no = np.floor(local_s / 3600.0)
        rhythm = 0.4 + 1.2 * activity(np.floor((local_s % DAY_S) / 3600.0))
        mean = self.mean[member] * rhythm
        count = np.maximum(0.0, np.round(mean + np.sqrt(mean) * normal(self.key("count"), d,
                                                                          hour_no)))
        day_no = np.floor(local_s / DAY_S)
        accuracy = self.usual_accuracy[member] + 1.5 * normal(self.key("accuracy"), d, day_no)
        if self.calm:  # no community slips under the 90 % line on its own
            accuracy = np.maximum(accuracy, 90.5)
        return np.where(self.accuracy_series[member], np.clip(accuracy, 0.0, 100.0),
                        count)[:, None]


SENSOR_MODELS: dict[str, type[Model]] = {
    "noise": Noise,
    "water_depth": WaterDepth,
    "rainfall": Rainfall,
    "wind": Wind,
    "smoke": Smoke,
    "manhole_tilt": ManholeTilt,
    "bin_fill": BinFill,
    "air_quality": AirQuality,
    "water_meter": WaterMeter,
    "street_lamp": StreetLamp,
    "camera": Camera,
    "kpi": Kpi,
}

# Decimal places worth sending per channel; more would be noise the instrument cannot resolve.
DECIMALS: dict[str, int] = {
    "laeq": 1, "depth": 1, "intensity": 1, "speed": 1, "direction": 0, "obscuration": 2,
    "tilt": 1, "fill": 0, "pm25": 0, "pm10": 0, "no2": 0, "o3": 0, "flow": 1, "power": 1,
    "event": 0, "dwell": 0, "lat": 6, "lon": 6, "heading": 0,
}

# Angles wrap: 359.6 rounds to 360, which is north again and should read 0.
CIRCULAR = {"heading", "direction"}


def model_for(kind: DeviceKind, devices: Sequence[Device], seed: int, weather: Weather) -> Model:
    cls = SENSOR_MODELS.get(kind.name, Generic)
    expected = {"air_quality": 4, "wind": 2, "camera": 2}.get(kind.name, 1)
    if cls is not Generic and len(kind.channels) != expected:
        cls = Generic  # a pack redefined a built-in kind's channels: stay valid rather than clever
    return cls(kind, devices, seed, weather)
