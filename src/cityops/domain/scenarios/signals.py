"""What evaluators say: a rule's condition holds (or no longer holds) for a subject."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from cityops.domain.readings import ReadingBatch

if TYPE_CHECKING:
    from cityops.domain.scenarios.context import Context

MAX_EVIDENCE = 10


@dataclass(slots=True)
class Signal:
    rule: str  # "<pack>.<rule id>"
    subject: str  # what the episode is about: a device id, "cell:<h3>", "area:<code>", ...
    active: bool  # True: the condition holds (raise or update); False: it cleared
    ts_us: int  # the reading time (or tick time) that decided it
    device: int = -1  # registry index of the device that fired it, -1 if none
    value: float = math.nan
    lat: float = math.nan  # where, when not the device's fixed place (movers, aggregates)
    lon: float = math.nan
    # (device index, channel index, ts_us, value) of the readings that fired it, newest last.
    evidence: list[tuple[int, int, int, float]] = field(default_factory=list)
    detail: str = ""  # a sentence for people: "61.2 dB(A) for 12 min (limit 55 at night)"


class Evaluator(Protocol):
    rule: str  # "<pack>.<rule id>"

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        """Readings (already durable) arrive, in any order and possibly late."""

    def on_tick(self, ctx: Context) -> list[Signal]:
        """Time passes (about once a second): for absence, quiet and durations."""
