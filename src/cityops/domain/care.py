"""The 15-minute elderly-care circle: which residents aged 60 and over live within a quarter of
an hour's walk of an elderly-care service point, per community. Pure arithmetic over travel
times that the street network gave (cityops.analytics.walk computes them).

Residents are placed at population points (residential buildings or blocks), each carrying
how many residents of 60+ live there and in which community. A point is covered when its walk
to the nearest service point takes at most `LIMIT_S`; a community's share is its covered
residents over all of them.

The limit is the "15-minute community life circle" of China's urban residential planning
standard (GB 50180-2018) and of Shanghai's planning guide for it (2016): the services a
resident should reach within 15 minutes on foot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LIMIT_S = 900.0  # 15 minutes


@dataclass(frozen=True, slots=True)
class Share:
    area: str
    residents_60: int
    covered_60: int

    @property
    def share(self) -> float | None:
        return self.covered_60 / self.residents_60 if self.residents_60 else None


def covered(seconds: np.ndarray, limit_s: float = LIMIT_S) -> np.ndarray:
    """Which points are covered (a NaN or infinite time, no way there, is not)."""
    s = np.asarray(seconds, dtype=float)
    inside: np.ndarray = np.isfinite(s) & (s <= limit_s)
    return inside


def shares(areas: Sequence[str], point_area: np.ndarray, point_residents: np.ndarray,
           seconds: np.ndarray, limit_s: float = LIMIT_S) -> list[Share]:
    """Per community of `areas` (in that order): residents 60+ and those covered.

    `point_area[i]` is the index into `areas` of point i's community, `point_residents[i]` its
    residents of 60+, `seconds[i]` its walk to the nearest service point."""
    idx = np.asarray(point_area, dtype=np.int64)
    weight = np.asarray(point_residents, dtype=np.int64)
    if len(idx) != len(weight) or len(idx) != len(seconds):
        raise ValueError("one area, one resident count and one time per point")
    total = np.bincount(idx, weights=weight, minlength=len(areas))
    inside = np.bincount(idx, weights=weight * covered(seconds, limit_s), minlength=len(areas))
    return [Share(a, int(round(t)), int(round(c)))
            for a, t, c in zip(areas, total, inside, strict=True)]


def newly_covered(before_s: np.ndarray, after_s: np.ndarray,
                  limit_s: float = LIMIT_S) -> np.ndarray:
    """The points a change brings within the limit that were outside it before."""
    gained: np.ndarray = covered(after_s, limit_s) & ~covered(before_s, limit_s)
    return gained


def split_residents(total: int, parts: int) -> np.ndarray:
    """`total` residents over `parts` points as evenly as whole people allow (the first
    points get the remainder), so the points add up to the community's figure exactly."""
    if parts <= 0:
        return np.zeros(0, dtype=np.int64)
    base, extra = divmod(int(total), parts)
    out = np.full(parts, base, dtype=np.int64)
    out[:extra] += 1
    return out
