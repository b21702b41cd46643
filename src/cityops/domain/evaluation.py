"""Evaluation, the seventh step of the case workflow (SPEC section 4): closure rate, on-time
closure rate, rework rate, dispatch accuracy, registration accuracy and mean step times, for one
period, city-wide or per department, area or category.

Pure: facts about cases in, figures out. Each row carries the numerators and denominators of its
rates (and the sample count of each mean), so a reader can recompute any figure and add groups
together; a rate whose denominator is 0 is None, a mean with no sample is None.

A period is the half-open interval [period_start, period_end) of epoch seconds. Each figure
judges one step of the workflow, and a case enters a period's figure when that step happened in
the period:

| figure | a case is in the denominator when | and in the numerator when |
|---|---|---|
| closure rate | it is due to close in the period (`due_to_close`) | it was closed before the end |
| on-time closure rate | same | it was closed before the end and by its deadline |
| rework rate | it is due to close in the period and was handled | it was reworked at least once |
| dispatch accuracy | it was (first) dispatched in the period | it was never returned as wrong unit |
| registration accuracy | it was registered in the period | it was not voided |

| mean time | a sample is taken from a case whose ... in the period |
|---|---|
| report -> register | registration |
| register -> dispatch | dispatch |
| dispatch -> accept | acceptance |
| dispatch -> close | closing |

Counting cases, not actions: dispatch accuracy counts a case returned twice as one wrong
dispatch, like the rework rate counts a case reworked twice as one reworked case, so that a
numerator is always a subset of its denominator and a rate stays within [0, 1].

Parked cases (挂账/缓办, approved as not solvable within the limit) are left out of every
figure, numerators, denominators and mean times alike, so that every figure of a row describes
the same cases; each row says how many were left out.

Joint dispatch: one incident may be worked on by several departments. Grouped by department, a
case counts once in each of its departments (its `department` and `departments`, without
repeats), with all its facts, so the department rows may add up to more cases than the city
row; a case with no department yet falls in the group None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, TypeGuard

import msgspec

GroupBy = Literal["department", "area", "category"]
_GROUP_BYS = ("department", "area", "category")

# The workflow's steps in the order they must happen; a case's recorded times may not run
# backwards along this chain, or a mean step time could come out negative.
_CHAIN = ("reported", "registered", "dispatched", "accepted", "closed")


class CaseFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What one case (incident) contributes to evaluation. Times are epoch seconds."""

    id: str
    category: str
    department: str | None = None
    departments: list[str] = []  # joint dispatch: every department with a work order
    area: str | None = None  # area code
    reported: float
    registered: float | None = None
    dispatched: float | None = None  # first dispatch
    accepted: float | None = None  # first acceptance
    closed: float | None = None
    deadline: float | None = None  # close deadline
    parked: bool = False  # parked now
    voided: bool = False  # registered, then cancelled
    returned_wrong_unit: int = 0  # times returned by a unit as not its own
    reworks: int = 0  # failed verifications, each sending the case back
    handled: bool = False  # feedback given at least once

    def __post_init__(self) -> None:
        previous = None
        for name in (*_CHAIN, "deadline"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"case {self.id}: {name} is {value}, not a time")
        for name in _CHAIN:
            value = getattr(self, name)
            if value is None:
                continue
            if previous is not None and value < getattr(self, previous):
                raise ValueError(f"case {self.id}: {name} is before {previous}")
            previous = name
        for name, needs in (("dispatched", "registered"), ("accepted", "dispatched"),
                            ("closed", "registered")):
            if getattr(self, name) is not None and getattr(self, needs) is None:
                raise ValueError(f"case {self.id}: {name} without {needs}")
        if self.voided and self.registered is None:
            raise ValueError(f"case {self.id}: voided but never registered")
        if self.returned_wrong_unit < 0 or self.reworks < 0:
            raise ValueError(f"case {self.id}: negative count of returns or reworks")
        if self.reworks and not self.handled:
            raise ValueError(f"case {self.id}: reworked but never handled")

    def department_keys(self) -> list[str | None]:
        """The departments the case counts in when grouped by department."""
        keys: list[str | None] = list(dict.fromkeys(
            ([self.department] if self.department is not None else []) + self.departments))
        return keys or [None]


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """One row of evaluation: a group's counts, rates and mean step times (seconds)."""

    group: str | None  # the department, area code or category; None for the city as a whole
    parked: int  # cases of the group left out because they are parked

    due: int
    closed: int
    closed_on_time: int
    closure_rate: float | None
    on_time_closure_rate: float | None

    handled: int
    reworked: int
    rework_rate: float | None

    dispatched: int
    returned_wrong_unit: int
    dispatch_accuracy: float | None

    registered: int
    voided: int
    registration_accuracy: float | None

    report_to_register: float | None
    report_to_register_samples: int
    register_to_dispatch: float | None
    register_to_dispatch_samples: int
    dispatch_to_accept: float | None
    dispatch_to_accept_samples: int
    dispatch_to_close: float | None
    dispatch_to_close_samples: int


def due_to_close(case: CaseFacts, period_start: float, period_end: float, *,
                 now: float | None = None) -> bool:
    """Whether `case` counts as due to close in [period_start, period_end), as seen at `now`
    (None: after the period, when every limit in it has passed).

    A case is due when it is neither parked nor voided and either
    - it was closed in the period, or
    - its close deadline falls in the period, has passed by `now` (a case whose deadline is
      `now` is overdue), and it was not already closed before the period.

    A period still running therefore judges only the cases it can judge: an open case whose
    limit lies ahead is not yet late, and counting it as due and not closed would read a
    mid-month on-time rate of nearly 0 %.

    So a case closed early is due only in the period it closed in (never twice), and a case
    closed late is due both in its deadline's period (counted there as not closed, since it
    closed after that period's end) and in the period it finally closed in.
    """
    if case.parked or case.voided:
        return False
    closed = case.closed
    if closed is not None and period_start <= closed < period_end:
        return True
    deadline = case.deadline
    return (deadline is not None and period_start <= deadline < period_end
            and (now is None or deadline <= now)
            and (closed is None or closed >= period_start))


class _Tally:
    __slots__ = ("parked", "due", "closed", "on_time", "handled", "reworked", "dispatched",
                 "returned", "registered", "voided", "sums", "samples")

    def __init__(self) -> None:
        self.parked = self.due = self.closed = self.on_time = 0
        self.handled = self.reworked = self.dispatched = self.returned = 0
        self.registered = self.voided = 0
        self.sums = [0.0, 0.0, 0.0, 0.0]
        self.samples = [0, 0, 0, 0]

    def add(self, case: CaseFacts, start: float, end: float, now: float | None) -> None:
        if case.parked:
            self.parked += 1
            return

        def within(t: float | None) -> TypeGuard[float]:
            return t is not None and start <= t < end

        if due_to_close(case, start, end, now=now):
            self.due += 1
            if case.closed is not None and case.closed < end:
                self.closed += 1
                # A case given no limit cannot be late.
                if case.deadline is None or case.closed <= case.deadline:
                    self.on_time += 1
            if case.handled:
                self.handled += 1
                self.reworked += case.reworks > 0
        if within(case.dispatched):
            self.dispatched += 1
            self.returned += case.returned_wrong_unit > 0
        if within(case.registered):
            self.registered += 1
            self.voided += case.voided
        steps = ((case.registered, case.reported), (case.dispatched, case.registered),
                 (case.accepted, case.dispatched), (case.closed, case.dispatched))
        for i, (later, earlier) in enumerate(steps):
            if within(later) and earlier is not None:
                self.sums[i] += later - earlier
                self.samples[i] += 1

    def figures(self, group: str | None) -> Figures:
        def rate(num: int, den: int) -> float | None:
            return num / den if den else None

        means = [s / n if n else None for s, n in zip(self.sums, self.samples)]
        return Figures(
            group=group, parked=self.parked,
            due=self.due, closed=self.closed, closed_on_time=self.on_time,
            closure_rate=rate(self.closed, self.due),
            on_time_closure_rate=rate(self.on_time, self.due),
            handled=self.handled, reworked=self.reworked,
            rework_rate=rate(self.reworked, self.handled),
            dispatched=self.dispatched, returned_wrong_unit=self.returned,
            dispatch_accuracy=rate(self.dispatched - self.returned, self.dispatched),
            registered=self.registered, voided=self.voided,
            registration_accuracy=rate(self.registered - self.voided, self.registered),
            report_to_register=means[0], report_to_register_samples=self.samples[0],
            register_to_dispatch=means[1], register_to_dispatch_samples=self.samples[1],
            dispatch_to_accept=means[2], dispatch_to_accept_samples=self.samples[2],
            dispatch_to_close=means[3], dispatch_to_close_samples=self.samples[3],
        )


def _keys(case: CaseFacts, group_by: GroupBy | None) -> list[str | None]:
    if group_by is None:
        return [None]
    if group_by == "department":
        return case.department_keys()
    if group_by == "area":
        return [case.area]
    return [case.category]


def evaluate(cases: Iterable[CaseFacts], period_start: float, period_end: float,
             group_by: GroupBy | None = None, *, groups: Iterable[str] = (),
             now: float | None = None) -> list[Figures]:
    """The figures of [period_start, period_end), one row per group, ordered by group key
    (None last). With `group_by=None`, one row for all cases. `groups` names keys that get a
    row even when no case falls in them (every department of the city, say), so that a unit
    with nothing to do is shown as such rather than missing. `now`: when the figures are
    taken, for a period not yet over (see `due_to_close`)."""
    if group_by is not None and group_by not in _GROUP_BYS:
        raise ValueError(f"group_by {group_by!r} is not one of {', '.join(_GROUP_BYS)}")
    if not (math.isfinite(period_start) and math.isfinite(period_end)) \
            or period_end <= period_start:
        raise ValueError(f"period [{period_start}, {period_end}) is empty or not finite")
    tallies: dict[str | None, _Tally] = {}
    if group_by is None:
        tallies[None] = _Tally()
    else:
        for name in groups:
            tallies.setdefault(name, _Tally())
    for case in cases:
        for key in _keys(case, group_by):
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = _Tally()
            tally.add(case, period_start, period_end, now)
    order = sorted(tallies, key=lambda k: (k is None, k or ""))
    return [tallies[key].figures(key) for key in order]


class WaitFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The service hall's queue numbers called in the period: how long people waited from
    taking a number to its call, and how many did not come when called (their waits count:
    they waited that long too)."""

    called: int
    no_shows: int
    mean_wait_s: float | None  # None when no number was called


def wait_figures(waits: Iterable[tuple[float, bool]]) -> WaitFigures:
    """From (wait in seconds, was a no-show) of each number called."""
    got = list(waits)
    mean = math.fsum(w for w, _ in got) / len(got) if got else None
    return WaitFigures(called=len(got), no_shows=sum(1 for _, gone in got if gone),
                       mean_wait_s=mean)
