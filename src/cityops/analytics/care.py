"""The 15-minute elderly-care service circle (interface; filled in by the analytics work)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CareCoverage:
    area: str  # the community's (village's) code
    name: str
    residents_60: int  # residents aged 60 and over
    covered_60: int  # of them, within 15 minutes' walk of a service point
    share: float | None  # covered_60 / residents_60; None with no resident of 60+


async def care_coverage(node, *, area: str | None = None) -> list[CareCoverage]:
    """Per community inside `area` (any level; None: the city)."""
    return []
