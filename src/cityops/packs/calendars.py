"""Working calendars for the shipped cities.

China's public holidays are announced year by year by the State Council (General Office
notices on holiday arrangements), with weekend days moved to make up for the long breaks; they
cannot be computed, so they are listed here as published. United States federal holidays follow
fixed rules (5 U.S.C. 6103), so they are computed.
"""

from __future__ import annotations

import datetime

from cityops.domain.city import WorkCalendar, WorkPeriod

D = datetime.date


def _span(first: str, last: str) -> list[datetime.date]:
    start, end = D.fromisoformat(first), D.fromisoformat(last)
    return [start + datetime.timedelta(days=i) for i in range((end - start).days + 1)]


# (days off, weekend days that are working days) per year, as the State Council notices say.
_CHINA: dict[int, tuple[list[tuple[str, str]], list[str]]] = {
    2024: (
        [("2024-01-01", "2024-01-01"), ("2024-02-10", "2024-02-17"), ("2024-04-04", "2024-04-06"),
         ("2024-05-01", "2024-05-05"), ("2024-06-10", "2024-06-10"), ("2024-09-15", "2024-09-17"),
         ("2024-10-01", "2024-10-07")],
        ["2024-02-04", "2024-02-18", "2024-04-07", "2024-04-28", "2024-05-11", "2024-09-14",
         "2024-09-29", "2024-10-12"],
    ),
    2025: (
        [("2025-01-01", "2025-01-01"), ("2025-01-28", "2025-02-04"), ("2025-04-04", "2025-04-06"),
         ("2025-05-01", "2025-05-05"), ("2025-05-31", "2025-06-02"), ("2025-10-01", "2025-10-08")],
        ["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"],
    ),
    2026: (
        [("2026-01-01", "2026-01-03"), ("2026-02-15", "2026-02-23"), ("2026-04-04", "2026-04-06"),
         ("2026-05-01", "2026-05-05"), ("2026-06-19", "2026-06-21"), ("2026-09-25", "2026-09-27"),
         ("2026-10-01", "2026-10-07")],
        ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"],
    ),
}


def shanghai_calendar() -> WorkCalendar:
    holidays: list[datetime.date] = []
    working_days: list[datetime.date] = []
    for spans, moved in _CHINA.values():
        for first, last in spans:
            holidays.extend(_span(first, last))
        working_days.extend(D.fromisoformat(day) for day in moved)
    return WorkCalendar(
        timezone="Asia/Shanghai",
        working_hours=[
            WorkPeriod(datetime.time(9, 0), datetime.time(12, 0)),
            WorkPeriod(datetime.time(13, 30), datetime.time(18, 0)),
        ],
        weekend=[6, 7],
        holidays=sorted(holidays),
        working_days=sorted(working_days),
    )


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> datetime.date:
    """The n-th `weekday` (Monday 0) of a month; n = -1 for the last one."""
    if n > 0:
        first = D(year, month, 1)
        return first + datetime.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = D(year, month + 1, 1) - datetime.timedelta(days=1) if month < 12 else D(year, 12, 31)
    return last - datetime.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: datetime.date) -> datetime.date:
    """A fixed-date holiday on a Saturday is observed the Friday before, on a Sunday the Monday
    after."""
    if day.weekday() == 5:
        return day - datetime.timedelta(days=1)
    if day.weekday() == 6:
        return day + datetime.timedelta(days=1)
    return day


def us_federal_holidays(year: int) -> list[datetime.date]:
    monday, thursday = 0, 3
    days = [
        _observed(D(year, 1, 1)),  # New Year's Day
        _nth_weekday(year, 1, monday, 3),  # Birthday of Martin Luther King, Jr.
        _nth_weekday(year, 2, monday, 3),  # Washington's Birthday
        _nth_weekday(year, 5, monday, -1),  # Memorial Day
        _observed(D(year, 6, 19)),  # Juneteenth
        _observed(D(year, 7, 4)),  # Independence Day
        _nth_weekday(year, 9, monday, 1),  # Labor Day
        _nth_weekday(year, 10, monday, 2),  # Columbus Day
        _observed(D(year, 11, 11)),  # Veterans Day
        _nth_weekday(year, 11, thursday, 4),  # Thanksgiving Day
        _observed(D(year, 12, 25)),  # Christmas Day
    ]
    return sorted(days)


def new_york_calendar(years: range = range(2024, 2028)) -> WorkCalendar:
    holidays = sorted(day for year in years for day in us_federal_holidays(year))
    return WorkCalendar(
        timezone="America/New_York",
        working_hours=[WorkPeriod(datetime.time(9, 0), datetime.time(17, 0))],
        weekend=[6, 7],
        holidays=holidays,
    )
