"""The working-hours clock: time limits of cases counted on the city's work calendar (SPEC
section 4).

Instants are epoch seconds (UTC, floats), as incidents store them. Working time is every instant
whose local date is a working day and whose local time of day lies inside one of the calendar's
working periods, the same definition as `LocalClock.working_time`: periods are local wall-clock
times, so across a daylight-saving change a working day keeps its local hours (and a period that
contains the change is an hour shorter or longer in real time).

A working day is a day whose ISO weekday is not a weekend day and which is not a public holiday,
or a date the calendar declares a working day (China moves weekends around its holidays; a
declared date works even when it is also listed as a holiday).

Each day's working spans are found once, as UTC intervals, and cached; counting walks day by day,
never minute by minute.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from cityops.domain.city import WorkCalendar, WorkPeriod

Unit = Literal["minutes", "hours", "working_hours", "working_days"]
UNITS: tuple[str, ...] = ("minutes", "hours", "working_hours", "working_days")
WALL_CLOCK_UNITS = frozenset({"minutes", "hours"})

DAY = 86_400
_EPOCH = dt.date(1970, 1, 1)
_ONE_DAY = dt.timedelta(days=1)
_ALL_WEEK = frozenset(range(1, 8))
# Offsets are sampled this often when a day's spans are built; no zone has changed its offset
# twice within three hours.
_SAMPLE = 3 * 3600
_CACHE_DAYS = 4096
_ROUNDING = 1e-6  # seconds; epoch seconds as floats resolve about 2e-7 s today

_SHORT = {"minutes": "min", "hours": "h", "working_hours": "wh", "working_days": "wd"}
_UNIT_NAMES: dict[str, Unit] = {
    "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "wh": "working_hours", "working hour": "working_hours", "working hours": "working_hours",
    "wd": "working_days", "working day": "working_days", "working days": "working_days",
}
_LIMIT = re.compile(r"^\s*((?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*([a-z_ ]+?)\s*$",
                    re.IGNORECASE)

Pause = tuple[float, float | None]


class Limit(msgspec.Struct, frozen=True):
    """A time limit: wall-clock `minutes` / `hours`, or `working_hours` / `working_days` counted
    on the work calendar. Working days are whole days."""

    amount: float
    unit: Unit

    def __post_init__(self) -> None:
        if self.unit not in _SHORT:
            raise ValueError(f"time limit unit {self.unit!r} is not one of {', '.join(UNITS)}")
        amount = self.amount
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise ValueError(f"time limit amount {amount!r} is not a number")
        if not math.isfinite(amount) or amount < 0:
            raise ValueError(f"time limit amount {amount!r} is not a finite number >= 0")
        if self.unit == "working_days" and not float(amount).is_integer():
            raise ValueError(f"time limit of {amount!r} working days: working days are whole")

    @classmethod
    def parse(cls, text: str) -> Limit:
        """'4wh', '4 working hours', '20wd', '5 working days', '30min', '2h', '1.5 hours'."""
        match = _LIMIT.match(text) if isinstance(text, str) else None
        if not match:
            raise ValueError(f"time limit {text!r} is not like '4wh', '20wd', '30min' or '2h'")
        unit = _UNIT_NAMES.get(" ".join(match.group(2).replace("_", " ").lower().split()))
        if unit is None:
            raise ValueError(f"time limit {text!r}: unknown unit {match.group(2).strip()!r} "
                             "(use min, h, wh or wd)")
        try:
            return cls(float(match.group(1)), unit)
        except ValueError as exc:
            raise ValueError(f"time limit {text!r}: {exc}") from None

    def __str__(self) -> str:
        number = repr(float(self.amount))
        if number.endswith(".0"):
            number = number[:-2]
        return number + _SHORT[self.unit]

    @property
    def wall_clock(self) -> bool:
        return self.unit in WALL_CLOCK_UNITS


class WorkClock:
    """Working time, deadlines and pauses on one `WorkCalendar`. Pure: no I/O, no "now"."""

    def __init__(self, calendar: WorkCalendar) -> None:
        bad = [d for d in calendar.weekend if isinstance(d, bool) or d not in _ALL_WEEK]
        if bad:
            raise ValueError(f"weekend day {bad[0]!r} is not an ISO weekday 1..7")
        self.calendar = calendar
        self.zone = ZoneInfo(calendar.timezone)
        self._weekend = frozenset(calendar.weekend)
        self._holidays = frozenset(calendar.holidays)
        self._declared = sorted(set(calendar.working_days))
        self._declared_set = frozenset(self._declared)
        self._ranges = _day_ranges(calendar.working_hours)
        self._days: dict[dt.date, tuple[tuple[float, float], ...]] = {}

    # -- the calendar -----------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        if day in self._declared_set:
            return True
        return day.isoweekday() not in self._weekend and day not in self._holidays

    def local_date(self, ts: float) -> dt.date:
        return dt.datetime.fromtimestamp(ts, self.zone).date()

    def working_spans(self, day: dt.date) -> tuple[tuple[float, float], ...]:
        """The working time of a local date as sorted, disjoint [start, end) epoch seconds."""
        spans = self._days.get(day)
        if spans is None:
            if len(self._days) >= _CACHE_DAYS:
                self._days.clear()
            spans = self._days[day] = self._build_spans(day)
        return spans

    def is_working_time(self, ts: float) -> bool:
        return any(a <= ts < b for a, b in self.working_spans(self.local_date(ts)))

    def next_working_start(self, ts: float) -> float:
        """The first working instant at or after `ts` (`ts` itself when it is working time)."""
        for a, _ in self._spans_from(ts):
            return a
        raise self._no_working_time(ts)

    # -- counting ---------------------------------------------------------------------------

    def working_seconds(self, start: float, end: float) -> float:
        """Working time between two instants, in seconds; negative when end < start."""
        if end < start:
            return -self.working_seconds(end, start)
        total = 0.0
        for a, b in self._spans_from(start):
            if a >= end:
                break
            total += min(b, end) - a
        return total

    def elapsed(self, start: float, end: float, unit: Unit,
                pauses: Iterable[Pause] = ()) -> float:
        """Seconds a clock of `unit` counts from start to end, leaving out the pauses: wall time
        for minutes and hours, working time for working hours and days. An open pause (end None)
        runs until `end`."""
        measure = self._measure(unit)
        if end <= start:
            return 0.0
        total = measure(start, end)
        for ps, pe in _merge_pauses(pauses, start):
            if ps >= end:
                break
            total -= measure(ps, end if pe is None else min(pe, end))
        return max(total, 0.0)

    # -- deadlines --------------------------------------------------------------------------

    def deadline(self, start: float, limit: Limit) -> float:
        """When `limit`, counted from `start`, runs out.

        - minutes, hours: real elapsed time, start + amount (a 2-hour limit is 7200 seconds
          even across a daylight-saving change).
        - working hours: the earliest instant by which `amount` hours of working time have
          passed since start. Time outside working periods does not count, so a start outside
          working time begins counting at the next working period; a count that completes
          exactly at the end of a period gives that end (15:00 + 3wh with 13:30-18:00 is 18:00
          the same day, not 09:00 the next); 0 working hours is `start` itself.
        - working days: counting starts at s = next_working_start(start) (a start outside
          working time counts from the next period's start). The deadline is the same local
          wall-clock time as s on the amount-th working day after s's local date (13:30 stays
          13:30, even though the count of working time already reached it at 12:00). Where a
          clock change repeats that time it is its first occurrence; where a change skips it,
          or leaves it outside working time, the first working instant after. Working days
          whose periods a clock change removed entirely are not counted. 0 working days is s.
        """
        amount = float(limit.amount)
        if limit.unit == "minutes":
            return start + amount * 60
        if limit.unit == "hours":
            return start + amount * 3600
        if limit.unit == "working_hours":
            return self._advance(start, amount * 3600, late=False)
        return self._add_working_days(start, int(amount))

    def deadline_with_pauses(self, start: float, limit: Limit,
                             pauses: Iterable[Pause]) -> float | None:
        """The deadline when the clock stops during the pauses (a parked case).

        The clock counts as `elapsed` does; the deadline is the instant at which it has counted
        the whole limit. A pause that begins once the limit has already run out changes
        nothing. None while an open pause (end None) that began before the deadline lasts.
        Pauses may overlap and come in any order. For working days the limit is the working
        time from start to `deadline(start, limit)`, and the deadline takes a period's start
        rather than the previous period's end, as `deadline` does; without pauses the result
        is `deadline(start, limit)`."""
        merged = _merge_pauses(pauses, start)
        base = self.deadline(start, limit)
        if not merged:
            return base
        measure = self._measure(limit.unit)
        late = limit.unit == "working_days"
        if late:
            left = self.working_seconds(start, base)
        else:
            left = float(limit.amount) * (60 if limit.unit == "minutes" else 3600)
        cursor = start
        for ps, pe in merged:
            if ps >= cursor:  # a pause from the very instant the limit runs out is too late
                due = self._advance_by(limit.unit, cursor, left, late=late)
                if due <= ps:
                    return due
                left = max(left - measure(cursor, ps), 0.0)
            if pe is None:
                return None
            cursor = pe  # merged pauses are disjoint and sorted
        return self._advance_by(limit.unit, cursor, left, late=late)

    def extend(self, deadline: float, pause_start: float, pause_end: float,
               unit: Unit) -> float:
        """A deadline after one more pause, for keeping a stored deadline up to date: moved on
        by the pause's time as the clock of `unit` counts it (wall time for minutes and hours,
        working time otherwise). A pause that began at or after the deadline changes nothing.
        Applied pause by pause, in order, to `deadline(start, limit)`, it gives what
        `deadline_with_pauses` gives for disjoint pauses after start."""
        if pause_end < pause_start:
            raise ValueError(f"pause ends at {pause_end} before it starts at {pause_start}")
        if pause_start >= deadline:
            return deadline
        spent = self._measure(unit)(pause_start, pause_end)
        return self._advance_by(unit, deadline, spent, late=unit == "working_days")

    # -- internals --------------------------------------------------------------------------

    def _measure(self, unit: str) -> Callable[[float, float], float]:
        if unit in WALL_CLOCK_UNITS:
            return _wall_seconds
        if unit in _SHORT:
            return self.working_seconds
        raise ValueError(f"time limit unit {unit!r} is not one of {', '.join(UNITS)}")

    def _advance_by(self, unit: str, ts: float, seconds: float, *, late: bool) -> float:
        if unit in WALL_CLOCK_UNITS:
            return ts + seconds
        return self._advance(ts, seconds, late=late)

    def _advance(self, ts: float, seconds: float, *, late: bool) -> float:
        """An instant t with working_seconds(ts, t) == seconds: the earliest one, or with
        `late` the latest (the next period's start rather than the end of the one before)."""
        if seconds <= 0 and not late:
            return ts
        left = seconds
        for a, b in self._spans_from(ts):
            length = b - a
            # The tolerance keeps rounding in `left` from moving a count that ends at a
            # period's end to the next period's start, or the other way round.
            if late:
                if left < length - _ROUNDING:
                    return a + left
            elif left <= length + _ROUNDING:
                return min(a + left, b)
            left = max(left - length, 0.0)
        raise self._no_working_time(ts)

    def _add_working_days(self, start: float, days: int) -> float:
        s = self.next_working_start(start)
        if days == 0:
            return s
        here = dt.datetime.fromtimestamp(s, self.zone)
        wall = here.hour * 3600 + here.minute * 60 + here.second + here.microsecond / 1e6
        count = 0
        for day in self._working_dates_from(here.date() + _ONE_DAY):
            if not self.working_spans(day):  # a declared day whose periods a clock change ate
                continue
            count += 1
            if count == days:
                t = self._first_at_wall_time(day, wall)
                # Only when a clock change cut the period holding that time.
                return t if self.is_working_time(t) else self.next_working_start(t)
        raise self._no_working_time(s)

    def _first_at_wall_time(self, day: dt.date, seconds: float) -> float:
        """The first instant at which the local clock shows `day` at `seconds` after midnight
        or later: the first of two when a clock change repeats that time, the end of the gap
        when it skips it."""
        target = (day - _EPOCH).days * DAY + seconds
        midnight = (day - _EPOCH).days * DAY
        for p0, p1, offset in self._offset_pieces(midnight - DAY, midnight + 2 * DAY):
            if target - offset < p1:
                return max(p0, target - offset)
        raise AssertionError("offsets are under a day")  # pragma: no cover

    def _working_dates_from(self, day: dt.date) -> Iterator[dt.date]:
        if not self._ranges:
            return
        if self._weekend >= _ALL_WEEK:  # only declared days work: jump between them
            yield from self._declared[bisect.bisect_left(self._declared, day):]
            return
        while True:
            if self.is_working_day(day):
                yield day
            day += _ONE_DAY

    def _spans_from(self, ts: float) -> Iterator[tuple[float, float]]:
        """Working spans after ts, the first cut at ts; ends only when no working time is left."""
        for day in self._working_dates_from(self.local_date(ts) - _ONE_DAY):
            for a, b in self.working_spans(day):
                if b > ts:
                    yield (max(a, ts), b)

    def _build_spans(self, day: dt.date) -> tuple[tuple[float, float], ...]:
        if not self._ranges or not self.is_working_day(day):
            return ()
        midnight = (day - _EPOCH).days * DAY  # the day's 00:00 as local seconds since 1970
        out: list[tuple[float, float]] = []
        # Every instant dated `day` lies within a day either side, offsets being under a day.
        for p0, p1, offset in self._offset_pieces(midnight - DAY, midnight + 2 * DAY):
            for a, b in self._ranges:
                lo, hi = max(midnight + a - offset, p0), min(midnight + b - offset, p1)
                if lo < hi:
                    out.append((lo, hi))
        return tuple(_merge(out))

    def _offset(self, ts: float) -> float:
        offset = dt.datetime.fromtimestamp(ts, self.zone).utcoffset()
        assert offset is not None  # a time in a zone always has an offset
        return offset.total_seconds()

    def _offset_pieces(self, lo: int, hi: int) -> list[tuple[int, int, float]]:
        """[lo, hi) cut where the zone's offset changes, each piece with its offset."""
        pieces = []
        start, offset = lo, self._offset(lo)
        previous = lo
        for t in [*range(lo + _SAMPLE, hi, _SAMPLE), hi]:
            now = self._offset(t)
            if now != offset:
                a, b = previous, t  # the change happens in (a, b]
                while b - a > 1:
                    mid = (a + b) // 2
                    if self._offset(mid) == offset:
                        a = mid
                    else:
                        b = mid
                pieces.append((start, b, offset))
                start, offset = b, now
            previous = t
        pieces.append((start, hi, offset))
        return pieces

    def _no_working_time(self, ts: float) -> ValueError:
        when = dt.datetime.fromtimestamp(ts, self.zone).isoformat()
        return ValueError(f"the work calendar has no working time after {when}")


def _wall_seconds(start: float, end: float) -> float:
    return end - start


def _seconds_of_day(t: dt.time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def _day_ranges(periods: Sequence[WorkPeriod]) -> list[tuple[float, float]]:
    """Working periods as merged [start, end) seconds after local midnight. As in LocalClock,
    an end of 00:00 is midnight, and a period that ends before it starts wraps past midnight
    (both of its parts on the same date's day)."""
    ranges = []
    for period in periods:
        a, b = _seconds_of_day(period.start), _seconds_of_day(period.end) or DAY
        if a < b:
            ranges.append((a, b))
        else:
            ranges.append((a, DAY))
            if b > 0:
                ranges.append((0.0, b))
    return _merge(ranges)


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _merge_pauses(pauses: Iterable[Pause], start: float) -> list[Pause]:
    """Pauses sorted, overlaps joined, the parts before start dropped; an open pause ends
    the list."""
    items = []
    for ps, pe in pauses:
        if pe is not None and pe < ps:
            raise ValueError(f"pause ends at {pe} before it starts at {ps}")
        if pe is not None and pe <= start:
            continue
        items.append((max(ps, start), pe))
    items.sort(key=lambda p: p[0])
    out: list[Pause] = []
    for ps, pe in items:
        if out and (out[-1][1] is None or ps <= out[-1][1]):
            last_end = out[-1][1]
            out[-1] = (out[-1][0], None if last_end is None or pe is None else max(last_end, pe))
        else:
            out.append((ps, pe))
        if out[-1][1] is None:
            break
    return out
