"""Garbage-sorting accuracy per community (interface; filled in by the analytics work)."""

from __future__ import annotations

from dataclasses import dataclass, field

STREAMS = ("wet", "dry", "recyclable", "hazardous")


@dataclass(slots=True)
class CommunityAccuracy:
    area: str  # the community's (village's) code
    name: str
    town: str  # its town's code
    inspections: int
    accuracy: float | None  # correct / inspected over every stream; None with no inspection
    by_stream: dict[str, float] = field(default_factory=dict)
    rank: int = 0  # within its town, 1 = best
    below_target: bool = False
    trend: float | None = None  # accuracy change against the previous period of equal length


async def sorting_ranking(node, *, start: float, end: float,
                          area: str | None = None) -> list[CommunityAccuracy]:
    """Per community inside `area` (any level; None: the city), over [start, end) (epoch s)."""
    return []
