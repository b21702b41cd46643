"""Counter-based random numbers: a draw is a pure function of (seed, stream, keys).

The models ask "does device 17 have a nuisance episode in half-hour slot 952,311?" rather than
pulling from a generator, so a reading's value depends only on the seed, the device and the
time, never on how the readings were split into batches or in which order they were asked for.
That is what makes a seeded run reproducible at any rate and batch size.
"""

from __future__ import annotations

import numpy as np

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53


def _mix(x: np.ndarray) -> np.ndarray:
    # The splitmix64 finaliser: cheap, and good enough that neighbouring counters decorrelate.
    x = x ^ (x >> _U64(30))
    x = x * _M1
    x = x ^ (x >> _U64(27))
    x = x * _M2
    return x ^ (x >> _U64(31))


def _as_u64(a) -> np.ndarray:
    # Negative counters (times before the epoch, offsets) wrap rather than fail.
    return np.atleast_1d(np.asarray(a)).astype(np.int64, copy=False).view(np.uint64)


def stream_key(seed: int, name: str) -> int:
    """A 64-bit key for one named stream of draws under `seed` (stable across processes)."""
    h = 1469598103934665603
    for byte in f"{seed}:{name}".encode():
        h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def uniform(key: int, *counters) -> np.ndarray:
    """Uniform draws in [0, 1), one per element of the broadcast counters."""
    with np.errstate(over="ignore"):
        h = np.full(1, key, dtype=np.uint64)
        for c in counters:
            h = _mix((h + _GOLDEN) ^ _as_u64(c))
        bits = _mix(h + _GOLDEN) >> _U64(11)
    return bits.astype(np.float64) * _TO_UNIT


def normal(key: int, *counters) -> np.ndarray:
    """Standard normal draws (Box-Muller on two counter-based uniforms)."""
    u1 = uniform(key, *counters, 1)
    u2 = uniform(key, *counters, 2)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
