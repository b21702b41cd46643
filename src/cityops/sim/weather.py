"""The city's weather, shared by rain gauges, water-depth gauges and anemometers so that they
agree: a storm that passes over a gauge is the one that floods the underpass next to it."""

from __future__ import annotations

import numpy as np

from cityops.sim.places import BBox
from cityops.sim.randomness import normal, stream_key, uniform

STORM_SLOT_S = 7200.0  # at most one storm is centred in each two-hour slot
STORM_CHANCE = 0.12  # about three storms a day, most of them light
TYPHOON_CHANCE = 0.01  # per day
DAY_S = 86400.0


class Weather:
    def __init__(self, seed: int, bbox: BBox) -> None:
        self.bbox = bbox
        self._k = {name: stream_key(seed, f"weather.{name}") for name in (
            "storm", "peak", "when", "width", "lat", "lon", "radius", "typhoon",
            "wind", "veer", "prevailing",
        )}
        self._cos_lat = float(np.cos(np.radians((bbox.south + bbox.north) / 2)))
        dy = bbox.north - bbox.south
        dx = (bbox.east - bbox.west) * self._cos_lat
        self._diag = max(float(np.hypot(dx, dy)), 1e-3)

    def typhoon(self, t: np.ndarray) -> np.ndarray:
        """1.0 on typhoon days, else 0.0."""
        day = np.floor(t / DAY_S)
        return (uniform(self._k["typhoon"], day) < TYPHOON_CHANCE).astype(np.float64)

    def _storms(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """The storm (if any) centred in each slot: its peak, time, width, centre, reach."""
        k = self._k
        typhoon = self.typhoon(slots * STORM_SLOT_S)
        chance = STORM_CHANCE + typhoon * (0.95 - STORM_CHANCE)
        # Intensities are log-normal: mostly drizzle and showers, now and then a downpour.
        peak = np.minimum(np.exp(np.log(5.0) + 1.0 * normal(k["peak"], slots)), 120.0)
        storm = uniform(k["storm"], slots) < chance
        box = self.bbox
        return {
            "peak": np.where(storm, peak * (1.0 + 2.0 * typhoon), 0.0),
            "centre": (slots + uniform(k["when"], slots)) * STORM_SLOT_S,
            "width": 900.0 + 2700.0 * uniform(k["width"], slots),
            "lat": box.south + (box.north - box.south) * uniform(k["lat"], slots),
            "lon": box.west + (box.east - box.west) * uniform(k["lon"], slots),
            "radius": self._diag * (0.2 + 0.6 * uniform(k["radius"], slots)),
        }

    def rain(self, t: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Rainfall intensity in mm/h at each (t, lat, lon)."""
        here = np.floor(np.asarray(t, dtype=np.float64) / STORM_SLOT_S)
        total = np.zeros(np.broadcast(here, lat).shape)
        if not total.size:
            return total
        # A batch spans a second or so: its storms are those of a handful of slots.
        seen = np.unique(here)
        slots = np.unique(np.concatenate([seen - 1.0, seen, seen + 1.0]))
        storms = self._storms(slots)
        for shift in (-1.0, 0.0, 1.0):
            i = np.searchsorted(slots, here + shift)
            d2 = (lat - storms["lat"][i]) ** 2 + ((lon - storms["lon"][i]) * self._cos_lat) ** 2
            spatial = 0.2 + 0.8 * np.exp(-d2 / storms["radius"][i] ** 2)
            profile = np.exp(-0.5 * ((t - storms["centre"][i]) / storms["width"][i]) ** 2)
            total += storms["peak"][i] * profile * spatial
        return np.where(total < 0.05, 0.0, total)

    def wind(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """City-wide mean wind speed (m/s) and the direction it blows from (degrees)."""
        k = self._k
        hour = t / 3600.0
        h0 = np.floor(hour)
        f = hour - h0
        speeds = []
        angles = []
        for h in (h0, h0 + 1.0):
            day = np.floor(h * 3600.0 / DAY_S)
            speeds.append(1.0 + 6.0 * uniform(k["wind"], h) ** 2)
            veer = 80.0 * (uniform(k["veer"], h) - 0.5)
            angles.append(360.0 * uniform(k["prevailing"], day) + veer)
        speed = speeds[0] + f * (speeds[1] - speeds[0])
        turn = (angles[1] - angles[0] + 180.0) % 360.0 - 180.0
        direction = (angles[0] + f * turn) % 360.0
        typhoon = self.typhoon(t)
        return speed * (1.0 + 3.0 * typhoon) + 8.0 * typhoon, direction
