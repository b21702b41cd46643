"""The city's local clock: local time of day, weekday, month and date for arrays of UTC reading
times, and the calendar conditions of scenario rules (night hours, working hours, holidays).

Offsets come from the IANA time-zone database through `zoneinfo`. Each zone's transitions are
found once per year and kept as a sorted table, so converting a batch is one `searchsorted`
(or none, when the batch lies between two transitions, as nearly every batch does).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from cityops.domain.city import WorkCalendar
from cityops.domain.scenarios.spec import When

US = 1_000_000
DAY_US = 86_400 * US
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
# Years the transition table may span; beyond them the nearest known offset is used.
_FIRST_YEAR, _LAST_YEAR = 1900, 2200

# Transition tables by zone name, shared by every clock of the process (they are facts of the
# time-zone database, and finding them takes a few milliseconds per year).
_TABLES: dict[str, tuple[tuple[int, int], np.ndarray, np.ndarray]] = {}

_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def parse_time(text: str, *, end: bool = False) -> int:
    """'06:30' (or '06:30:15') as microseconds after midnight; '24:00' only as an end."""
    match = _TIME.match(text)
    if not match:
        raise ValueError(f"time {text!r} is not like 06:30")
    h, m, s = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if m > 59 or s > 59 or h > 24 or (h == 24 and (m or s or not end)):
        raise ValueError(f"time {text!r} is not a time of day")
    return ((h * 60 + m) * 60 + s) * US


def parse_hours(text: str) -> list[tuple[int, int]]:
    """'22:00-06:00' (or several, comma-separated) as (start, end) microseconds after local
    midnight; a range whose end is not after its start wraps past midnight."""
    ranges = []
    for part in text.split(","):
        bounds = part.split("-")
        if len(bounds) != 2:
            raise ValueError(f"hours {text!r}: {part.strip()!r} is not like 22:00-06:00")
        try:
            start, stop = parse_time(bounds[0]), parse_time(bounds[1], end=True)
        except ValueError as exc:
            raise ValueError(f"hours {text!r}: {exc}") from None
        if start == stop:
            raise ValueError(f"hours {text!r}: {part.strip()!r} is empty")
        ranges.append((start, stop))
    return ranges


def _in_ranges(tod: np.ndarray, ranges: list[tuple[int, int]]) -> np.ndarray:
    inside = np.zeros(tod.shape, bool)
    for start, stop in ranges:
        if start < stop:
            inside |= (tod >= start) & (tod < stop)
        else:
            inside |= (tod >= start) | (tod < stop)
    return inside


@dataclass(frozen=True)
class _Condition:
    """A `When` checked and turned into numbers once."""

    hours: list[tuple[int, int]] | None
    working_hours: bool | None
    holiday: bool | None
    months: np.ndarray | None
    weekdays: np.ndarray | None
    # Times of day where the condition may change its value, for seconds_inside.
    edges: np.ndarray


class LocalClock:
    """Local time in the city's zone, and `When` conditions against its work calendar."""

    def __init__(self, timezone: str, calendar: WorkCalendar | None = None) -> None:
        self.zone = ZoneInfo(timezone)
        self.timezone = timezone
        self.calendar = calendar or WorkCalendar(timezone=timezone)
        cal = self.calendar
        self._weekend = np.array(sorted(set(cal.weekend)), np.int64)
        self._holidays = np.array(sorted({d.toordinal() - _EPOCH_DAY for d in cal.holidays}),
                                  np.int64)
        self._working_days = np.array(
            sorted({d.toordinal() - _EPOCH_DAY for d in cal.working_days}), np.int64)
        # A period ending at 00:00 ends at midnight; one ending before it starts wraps.
        self._work_ranges = [(_time_us(p.start), _time_us(p.end) or DAY_US)
                             for p in cal.working_hours]
        self._years = (0, -1)  # years covered by the transition table
        self._trans = np.zeros(0, np.int64)  # UTC instants where the offset changes
        self._offsets = np.zeros(1, np.int64)  # offset before, between and after them
        self._conditions: dict[int, tuple[When, _Condition]] = {}

    # -- offsets ----------------------------------------------------------------------------

    def _offset_at(self, us: int) -> int:
        offset = dt.datetime.fromtimestamp(us // US, self.zone).utcoffset()
        assert offset is not None  # a time in a zone always has an offset
        return int(offset.total_seconds()) * US

    def _cover(self, first_year: int, last_year: int) -> None:
        shared = _TABLES.get(self.timezone)
        if shared is not None and (self._years[1] < self._years[0] or (
                shared[0][0] <= self._years[0] and self._years[1] <= shared[0][1])):
            self._years, self._trans, self._offsets = shared
        if self._years[0] <= self._years[1]:  # grow the table, never shrink it
            first_year, last_year = min(first_year, self._years[0]), max(last_year, self._years[1])
        first_year, last_year = max(_FIRST_YEAR, first_year), min(_LAST_YEAR, last_year)
        if (first_year, last_year) == self._years:
            return
        # Sampled daily (no zone changes its offset twice within a day), then each change is
        # pinned down to the second by bisection.
        start = (dt.date(first_year, 1, 1).toordinal() - _EPOCH_DAY) * DAY_US
        stop = (dt.date(last_year + 1, 1, 1).toordinal() - _EPOCH_DAY) * DAY_US
        trans, offsets = [], [self._offset_at(start)]
        previous = start
        for t in range(start + DAY_US, stop + DAY_US, DAY_US):
            offset = self._offset_at(t)
            if offset != offsets[-1]:
                lo, hi = previous // US, t // US  # offset(lo) is old, offset(hi) is new
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if self._offset_at(mid * US) == offsets[-1]:
                        lo = mid
                    else:
                        hi = mid
                trans.append(hi * US)
                offsets.append(offset)
            previous = t
        self._trans = np.array(trans, np.int64)
        self._offsets = np.array(offsets, np.int64)
        self._years = (first_year, last_year)
        _TABLES[self.timezone] = (self._years, self._trans, self._offsets)

    def offset_us(self, ts_us: np.ndarray) -> np.ndarray | int:
        """The zone's UTC offset at each time: an int when one offset serves the whole array."""
        ts_us = np.asarray(ts_us, np.int64)
        if ts_us.size == 0:
            return 0
        lo, hi = int(ts_us.min()), int(ts_us.max())
        first, last = _year(lo), _year(hi)
        if first < self._years[0] or last > self._years[1]:
            self._cover(first - 1, last + 1)
        i_lo, i_hi = np.searchsorted(self._trans, [lo, hi], side="right")
        if i_lo == i_hi:
            return int(self._offsets[i_lo])
        return self._offsets[np.searchsorted(self._trans, ts_us, side="right")]

    def transitions(self, start_us: int, end_us: int) -> np.ndarray:
        """UTC instants inside (start, end) where the offset changes."""
        self.offset_us(np.array([start_us, end_us], np.int64))
        i, j = np.searchsorted(self._trans, [start_us, end_us], side="right")
        out = self._trans[i:j]
        inside: np.ndarray = out[out != end_us]
        return inside

    # -- local time -------------------------------------------------------------------------

    def local_us(self, ts_us: np.ndarray) -> np.ndarray:
        """Local wall-clock time as microseconds since 1970-01-01 00:00 local."""
        ts_us = np.asarray(ts_us, np.int64)
        return ts_us + self.offset_us(ts_us)

    def day(self, ts_us: np.ndarray) -> np.ndarray:
        """Local date as days since 1970-01-01."""
        return self.local_us(ts_us) // DAY_US

    def time_of_day_us(self, ts_us: np.ndarray) -> np.ndarray:
        return self.local_us(ts_us) % DAY_US

    def hour(self, ts_us: np.ndarray) -> np.ndarray:
        """Local hour of day as a float, 0 <= h < 24 (13.5 is half past one)."""
        return self.time_of_day_us(ts_us) / (3600 * US)

    def weekday(self, ts_us: np.ndarray) -> np.ndarray:
        """ISO weekday, Monday 1 .. Sunday 7 (1970-01-01 was a Thursday)."""
        return (self.day(ts_us) + 3) % 7 + 1

    def month(self, ts_us: np.ndarray) -> np.ndarray:
        return self.date(ts_us).astype("datetime64[M]").astype(np.int64) % 12 + 1

    def date(self, ts_us: np.ndarray) -> np.ndarray:
        """Local dates as numpy datetime64[D]."""
        return self.day(ts_us).astype("datetime64[D]")

    def day_off(self, ts_us: np.ndarray) -> np.ndarray:
        """Public holidays and weekend days, except weekend days declared working days."""
        return self._day_off(self.day(ts_us))

    def _day_off(self, day: np.ndarray) -> np.ndarray:
        weekend = np.isin((day + 3) % 7 + 1, self._weekend)
        return (weekend | np.isin(day, self._holidays)) & ~np.isin(day, self._working_days)

    def working_time(self, ts_us: np.ndarray) -> np.ndarray:
        """Inside the calendar's working periods on a working day."""
        local = self.local_us(ts_us)
        working: np.ndarray = ~self._day_off(local // DAY_US) & _in_ranges(local % DAY_US,
                                                                          self._work_ranges)
        return working

    # -- conditions -------------------------------------------------------------------------

    def compile(self, when: When) -> _Condition:
        """Check a `When` (ValueError naming the bad text) and keep it ready for `matches`."""
        cached = self._conditions.get(id(when))
        if cached is not None and cached[0] is when:
            return cached[1]
        hours = parse_hours(when.hours) if when.hours is not None else None
        months = _members(when.months, 1, 12, "months")
        weekdays = _members(when.weekdays, 1, 7, "weekdays")
        edges = {0}
        for start, stop in hours or []:
            edges |= {start, stop % DAY_US}
        if when.working_hours is not None:
            for start, stop in self._work_ranges:
                edges |= {start, stop % DAY_US}
        cond = _Condition(hours, when.working_hours, when.holiday, months, weekdays,
                          np.array(sorted(edges), np.int64))
        if len(self._conditions) > 1024:  # callers building a fresh When per call
            self._conditions.clear()
        self._conditions[id(when)] = (when, cond)
        return cond

    def matches(self, when: When | None, ts_us: np.ndarray) -> np.ndarray:
        """Per time: does every field of `when` hold? (None holds always.)"""
        ts_us = np.asarray(ts_us, np.int64)
        ok = np.ones(ts_us.shape, bool)
        if when is None:
            return ok
        cond = self.compile(when)
        local = self.local_us(ts_us)
        tod = local % DAY_US
        day = local // DAY_US
        if cond.hours is not None:
            ok &= _in_ranges(tod, cond.hours)
        if cond.holiday is not None or cond.working_hours is not None:
            off = self._day_off(day)
            if cond.holiday is not None:
                ok &= off if cond.holiday else ~off
            if cond.working_hours is not None:
                working = ~off & _in_ranges(tod, self._work_ranges)
                ok &= working if cond.working_hours else ~working
        if cond.weekdays is not None:
            ok &= np.isin((day + 3) % 7 + 1, cond.weekdays)
        if cond.months is not None:
            month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
            ok &= np.isin(month, cond.months)
        return ok

    def seconds_inside(self, when: When | None, start_us: npt.ArrayLike,
                       end_us: npt.ArrayLike) -> float | np.ndarray:
        """Seconds of [start, end) that fall inside `when`; negative when end < start.

        Scalars give a float; arrays (broadcast against each other) give an array. The
        condition is constant between its edges (local midnights, the ends of its hour ranges
        and working periods, offset changes), so the span is cut there and each piece is
        tested once, at its middle."""
        start = np.asarray(start_us, np.int64)
        end = np.asarray(end_us, np.int64)
        scalar = start.ndim == 0 and end.ndim == 0
        if when is None:
            out = (end - start) / US
            return float(out) if scalar else out
        lo = int(min(start.min(), end.min()))
        hi = int(max(start.max(), end.max()))
        cuts = self._cuts(self.compile(when), lo, hi)
        if len(cuts) < 2:
            out = np.zeros(np.broadcast(start, end).shape)
            return float(out) if scalar else out
        inside = self.matches(when, cuts[:-1] + (cuts[1:] - cuts[:-1]) // 2)
        # Seconds inside from `lo` to each cut, then linear within the piece holding t.
        before = np.concatenate([[0.0], np.cumsum(np.where(inside, np.diff(cuts), 0) / US)])

        def upto(t: np.ndarray) -> np.ndarray:
            k = np.clip(np.searchsorted(cuts, t, side="right") - 1, 0, len(inside) - 1)
            return before[k] + np.where(inside[k], (t - cuts[k]) / US, 0.0)

        out = upto(end) - upto(start)
        return float(out) if scalar else out

    def _cuts(self, cond: _Condition, lo: int, hi: int) -> np.ndarray:
        """lo, hi and every instant between them where `cond` may change."""
        bounds = [lo, *self.transitions(lo, hi).tolist(), hi]
        cuts = [np.array(bounds, np.int64)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            offset = int(self.offset_us(np.array([a], np.int64)))
            first, last = (a + offset) // DAY_US, (b + offset) // DAY_US
            days = np.arange(first, last + 1, dtype=np.int64) * DAY_US
            edges = (days[:, None] + cond.edges[None, :]).ravel() - offset
            cuts.append(edges[(edges > a) & (edges < b)])
        return np.unique(np.concatenate(cuts))


def _year(us: int) -> int:
    year = int(np.datetime64(us, "us").astype("datetime64[Y]").astype(np.int64)) + 1970
    return min(max(year, _FIRST_YEAR), _LAST_YEAR)


def _time_us(t: dt.time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * US + t.microsecond


def _members(values: list[int] | None, low: int, high: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    bad = [v for v in values if not isinstance(v, int) or not low <= v <= high]
    if bad:
        raise ValueError(f"{name} {values!r}: {bad[0]!r} is not in {low}..{high}")
    return np.array(sorted(set(values)), np.int64)
