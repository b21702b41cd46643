"""Garbage-sorting accuracy per community: pure arithmetic over bin inspections.

An inspection is one look at one community's bins of one stream (wet, dry, recyclable,
hazardous): so many items checked, so many correctly sorted. A community's accuracy over a
period is items correct over items checked, summed over its inspections, so a big inspection
weighs more than a small one (a mean of per-inspection ratios would let a two-bag check count
as much as a two-hundred-bag one). Communities are ranked within their town; the trend is the
change against the period of equal length just before.

The targets are Shanghai's own marks as the issue states them: a street (town) should average
above 90 % and its best communities reach above 98 %. A community below 90 % is flagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

STREAMS = ("wet", "dry", "recyclable", "hazardous")
TARGET = 0.90  # a community, and a street's (town's) average, should be above this
BEST_MARK = 0.98  # the best communities reach above this
MAX_ITEMS = 100_000  # one inspection; a bigger number is a typing error, not a count


class InspectionError(ValueError):
    """An inspection that cannot be right (names the field at fault)."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.reason = f"{field_name}: {reason}"


@dataclass(frozen=True, slots=True)
class Inspection:
    area: str  # the community's 12-digit code
    stream: str
    checked: int
    correct: int
    at: float  # epoch seconds


def check_inspection(i: Inspection) -> None:
    if i.stream not in STREAMS:
        raise InspectionError("stream", f"{i.stream!r} is not one of {', '.join(STREAMS)}")
    if not 1 <= i.checked <= MAX_ITEMS:
        raise InspectionError("checked", f"must be 1 to {MAX_ITEMS}, not {i.checked}")
    if not 0 <= i.correct <= i.checked:
        raise InspectionError("correct", f"must be 0 to checked ({i.checked}), not {i.correct}")


@dataclass(slots=True)
class Tally:
    inspections: int = 0
    checked: int = 0
    correct: int = 0
    stream_checked: dict[str, int] = field(default_factory=dict)
    stream_correct: dict[str, int] = field(default_factory=dict)

    def add(self, i: Inspection) -> None:
        self.inspections += 1
        self.checked += i.checked
        self.correct += i.correct
        self.stream_checked[i.stream] = self.stream_checked.get(i.stream, 0) + i.checked
        self.stream_correct[i.stream] = self.stream_correct.get(i.stream, 0) + i.correct

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.checked if self.checked else None

    def by_stream(self) -> dict[str, float]:
        return {s: self.stream_correct[s] / self.stream_checked[s]
                for s in STREAMS if self.stream_checked.get(s)}


def tally(inspections: Iterable[Inspection]) -> dict[str, Tally]:
    out: dict[str, Tally] = {}
    for i in inspections:
        t = out.get(i.area)
        if t is None:
            t = out[i.area] = Tally()
        t.add(i)
    return out


@dataclass(frozen=True, slots=True)
class Community:
    code: str
    name: str
    town: str


@dataclass(slots=True)
class Ranked:
    code: str
    name: str
    town: str
    inspections: int
    accuracy: float | None
    by_stream: dict[str, float]
    rank: int  # within its town, 1 = best; 0 with no inspection
    below_target: bool
    best: bool  # above the best-community mark
    trend: float | None  # accuracy minus the previous period's
    previous: float | None


@dataclass(slots=True)
class TownAverage:
    town: str
    communities: int  # communities with at least one inspection
    accuracy: float | None  # items correct over items checked in the whole town
    below_target: bool


def rank(communities: Sequence[Community], current: Iterable[Inspection],
         previous: Iterable[Inspection], *, target: float = TARGET,
         best_mark: float = BEST_MARK) -> tuple[list[Ranked], list[TownAverage]]:
    """Every community, ranked within its town (best first, ties by code; communities with no
    inspection last, rank 0), and each town's average. The answer is in town order, then rank."""
    now, before = tally(current), tally(previous)
    rows: list[Ranked] = []
    for c in communities:
        t = now.get(c.code, Tally())
        acc = t.accuracy
        prev = before[c.code].accuracy if c.code in before else None
        rows.append(Ranked(c.code, c.name, c.town, t.inspections, acc, t.by_stream(), 0,
                           acc is not None and acc < target,
                           acc is not None and acc > best_mark,
                           acc - prev if acc is not None and prev is not None else None, prev))
    rows.sort(key=lambda r: (r.town, r.accuracy is None, -(r.accuracy or 0.0), r.code))
    towns: list[TownAverage] = []
    n = 0
    for i, r in enumerate(rows):
        if i == 0 or r.town != rows[i - 1].town:
            n = 0
        if r.accuracy is not None:
            n += 1
            r.rank = n
    for town in sorted({c.town for c in communities}):
        members = [now[c.code] for c in communities if c.town == town and c.code in now]
        checked = sum(t.checked for t in members)
        acc = sum(t.correct for t in members) / checked if checked else None
        towns.append(TownAverage(town, len(members), acc, acc is not None and acc < target))
    return rows, towns
