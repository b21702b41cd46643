"""Which device reports next: a weighted round robin over the whole city.

Each device reports in proportion to its kind's reporting frequency (1 / period): a GPS tracker
every 10 s reports sixty times as often as a bin sensor every 10 min. One cycle lists every
device that many times, spread evenly (stride scheduling), so any stretch of the cycle holds
each kind in its share and no device repeats in bursts.
"""

from __future__ import annotations

import numpy as np

from cityops.sim.randomness import stream_key, uniform

MAX_REPEATS = 400  # a cap on the fastest-to-slowest ratio, which bounds the cycle's length;
# it must cover hourly KPI series beside 10 s GPS fixes (360x)


def build_cycle(periods_s: np.ndarray, seed: int) -> np.ndarray:
    """Device indices in reporting order for one cycle."""
    n = len(periods_s)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    periods = np.maximum(np.asarray(periods_s, dtype=np.float64), 1e-3)
    slowest = periods.max()
    repeats = np.clip(np.rint(slowest / periods), 1, MAX_REPEATS).astype(np.int64)
    device = np.repeat(np.arange(n), repeats)
    # The j-th appearance of a device sits at (j + phase) / repeats of the way round the cycle.
    first = np.cumsum(repeats) - repeats
    j = np.arange(len(device)) - np.repeat(first, repeats)
    phase = uniform(stream_key(seed, "schedule.phase"), np.arange(n))
    when = (j + phase[device]) / repeats[device]
    return device[np.argsort(when, kind="stable")]


class RoundRobin:
    def __init__(self, periods_s: np.ndarray, seed: int) -> None:
        self.cycle = build_cycle(periods_s, seed)
        self.position = 0

    def take(self, n: int) -> np.ndarray:
        """The next `n` devices, wrapping round the cycle as often as needed."""
        size = len(self.cycle)
        if size == 0 or n <= 0:
            return np.empty(0, dtype=np.int64)
        index = (self.position + np.arange(n)) % size
        self.position = int((self.position + n) % size)
        return self.cycle[index]
