"""WorkClock: working time, deadlines and pauses on a work calendar.

The hand-worked cases use the default working periods 09:00-12:00 and 13:30-18:00 (7.5 working
hours a day). The property tests compare against `LocalClock` (a separate, vectorised
implementation of the same working-time definition) and against brute-force counts.
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cityops.domain.calendar import LocalClock
from cityops.domain.city import WorkCalendar, WorkPeriod
from cityops.domain.scenarios.spec import When
from cityops.domain.workclock import Limit, WorkClock

SH = "Asia/Shanghai"
NY = "America/New_York"
HOUR = 3600.0
US = 1_000_000

# National Day 2026 shaped as China schedules it: 1-7 October off, with Sunday 20 September
# and Saturday 10 October worked instead.
CN_HOLIDAYS = [dt.date(2026, 10, d) for d in range(1, 8)]
CN_WORKING = [dt.date(2026, 9, 20), dt.date(2026, 10, 10)]


def at(tz: str, *args: int) -> float:
    return dt.datetime(*args, tzinfo=ZoneInfo(tz)).timestamp()


def local(tz: str, ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, ZoneInfo(tz))


def clock(tz: str = SH, **kw) -> WorkClock:
    return WorkClock(WorkCalendar(timezone=tz, **kw))


def cn_clock() -> WorkClock:
    return clock(SH, holidays=CN_HOLIDAYS, working_days=CN_WORKING)


def period(text: str) -> WorkPeriod:
    a, b = text.split("-")
    return WorkPeriod(dt.time.fromisoformat(a), dt.time.fromisoformat(b))


# -- Limit -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "amount", "unit"), [
    ("4wh", 4, "working_hours"),
    ("4 wh", 4, "working_hours"),
    ("4 working hours", 4, "working_hours"),
    ("1 Working Hour", 1, "working_hours"),
    ("4 working_hours", 4, "working_hours"),
    ("20wd", 20, "working_days"),
    ("5 working days", 5, "working_days"),
    ("1 working day", 1, "working_days"),
    ("30min", 30, "minutes"),
    ("30 minutes", 30, "minutes"),
    ("2h", 2, "hours"),
    ("1.5 hours", 1.5, "hours"),
    (" 0.25h ", 0.25, "hours"),
    (".5wh", 0.5, "working_hours"),
    ("0min", 0, "minutes"),
])
def test_limit_parse(text, amount, unit):
    limit = Limit.parse(text)
    assert limit == Limit(float(amount), unit)
    assert Limit.parse(str(limit)) == limit


@pytest.mark.parametrize(("limit", "text"), [
    (Limit(4, "working_hours"), "4wh"),
    (Limit(20.0, "working_days"), "20wd"),
    (Limit(30, "minutes"), "30min"),
    (Limit(1.5, "hours"), "1.5h"),
])
def test_limit_str(limit, text):
    assert str(limit) == text


@pytest.mark.parametrize(("text", "message"), [
    ("", "is not like"),
    ("4", "is not like"),
    ("wh", "is not like"),
    ("-1h", "is not like"),
    ("4 weeks", "unknown unit 'weeks'"),
    ("4 w h", "unknown unit"),
    ("1.5wd", "working days are whole"),
    ("4wh later", "unknown unit"),
])
def test_limit_parse_refuses_bad_text(text, message):
    with pytest.raises(ValueError, match=message):
        Limit.parse(text)


def test_limit_refuses_bad_fields():
    with pytest.raises(ValueError, match="finite number >= 0"):
        Limit(-1, "hours")
    with pytest.raises(ValueError, match="finite number >= 0"):
        Limit(float("inf"), "working_hours")
    with pytest.raises(ValueError, match="not one of"):
        Limit(1, "weeks")
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"amount": 2.5, "unit": "working_days"}', type=Limit)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"amount": 2, "unit": "days"}', type=Limit)
    assert msgspec.json.decode(b'{"amount": 4, "unit": "working_hours"}', type=Limit) == \
        Limit.parse("4wh")
    assert Limit.parse("2h").wall_clock and not Limit.parse("2wh").wall_clock


@settings(max_examples=200, deadline=None)
@given(amount=st.floats(0, 1e9, allow_nan=False) | st.integers(0, 10**6).map(float),
       unit=st.sampled_from(["minutes", "hours", "working_hours", "working_days"]))
def test_limit_str_round_trips(amount, unit):
    if unit == "working_days":
        amount = float(int(amount))
    limit = Limit(amount, unit)
    assert Limit.parse(str(limit)) == limit


# -- the working day, Shanghai, 09:00-12:00 and 13:30-18:00 ------------------------------------

def test_working_time_and_its_edges():
    c = clock()
    mon = (2026, 6, 1)
    assert not c.is_working_time(at(SH, *mon, 8, 59, 59))
    assert c.is_working_time(at(SH, *mon, 9))
    assert c.is_working_time(at(SH, *mon, 11, 59, 59))
    assert not c.is_working_time(at(SH, *mon, 12))  # periods are half-open
    assert not c.is_working_time(at(SH, *mon, 13, 29))
    assert c.is_working_time(at(SH, *mon, 13, 30))
    assert not c.is_working_time(at(SH, *mon, 18))
    assert not c.is_working_time(at(SH, 2026, 6, 6, 10))  # Saturday
    assert c.working_spans(dt.date(2026, 6, 1)) == (
        (at(SH, *mon, 9), at(SH, *mon, 12)), (at(SH, *mon, 13, 30), at(SH, *mon, 18)))
    assert c.working_spans(dt.date(2026, 6, 7)) == ()


def test_next_working_start():
    c = clock()
    assert c.next_working_start(at(SH, 2026, 6, 1, 10, 15)) == at(SH, 2026, 6, 1, 10, 15)
    assert c.next_working_start(at(SH, 2026, 6, 1, 7)) == at(SH, 2026, 6, 1, 9)
    assert c.next_working_start(at(SH, 2026, 6, 1, 12)) == at(SH, 2026, 6, 1, 13, 30)
    assert c.next_working_start(at(SH, 2026, 6, 1, 18)) == at(SH, 2026, 6, 2, 9)
    assert c.next_working_start(at(SH, 2026, 6, 5, 18, 30)) == at(SH, 2026, 6, 8, 9)
    assert c.next_working_start(at(SH, 2026, 6, 7, 23, 59)) == at(SH, 2026, 6, 8, 9)


@pytest.mark.parametrize(("start", "limit", "due"), [
    # Friday 16:00: 2h on Friday, then 2h from Monday 09:00.
    ((2026, 6, 5, 16), "4wh", (2026, 6, 8, 11)),
    # The end of a working day: 1h to 18:00, 1h from 09:00.
    ((2026, 6, 1, 17), "2wh", (2026, 6, 2, 10)),
    # Across lunch: 11:00-12:00, then 13:30-14:30.
    ((2026, 6, 1, 11), "2wh", (2026, 6, 1, 14, 30)),
    # A start at lunch counts from 13:30.
    ((2026, 6, 1, 12, 30), "1wh", (2026, 6, 1, 14, 30)),
    ((2026, 6, 1, 12, 30), "4.5wh", (2026, 6, 1, 18)),
    ((2026, 6, 1, 12, 30), "6wh", (2026, 6, 2, 10, 30)),
    # Completing exactly at a period's end gives that end, not the next period's start.
    ((2026, 6, 1, 15), "3wh", (2026, 6, 1, 18)),
    ((2026, 6, 1, 10), "2wh", (2026, 6, 1, 12)),
    # Before opening, after closing, on a Saturday.
    ((2026, 6, 1, 7), "1wh", (2026, 6, 1, 10)),
    ((2026, 6, 1, 19), "1wh", (2026, 6, 2, 10)),
    ((2026, 6, 6, 10), "1wh", (2026, 6, 8, 10)),
    # Whole days: 7.5wh a day, Monday to Friday.
    ((2026, 6, 1, 9), "7.5wh", (2026, 6, 1, 18)),
    ((2026, 6, 1, 9), "15wh", (2026, 6, 2, 18)),
    ((2026, 6, 1, 9), "37.5wh", (2026, 6, 5, 18)),
    ((2026, 6, 1, 9), "38wh", (2026, 6, 8, 9, 30)),
    ((2026, 6, 1, 9, 0, 30), "0.25wh", (2026, 6, 1, 9, 15, 30)),
    ((2026, 6, 6, 10), "0wh", (2026, 6, 6, 10)),
])
def test_working_hours_deadlines(start, limit, due):
    c = clock()
    got = c.deadline(at(SH, *start), Limit.parse(limit))
    assert local(SH, got) == local(SH, at(SH, *due))
    assert c.working_seconds(at(SH, *start), got) == pytest.approx(
        Limit.parse(limit).amount * HOUR)


@pytest.mark.parametrize(("start", "end", "hours"), [
    ((2026, 6, 1, 8), (2026, 6, 1, 19), 7.5),
    ((2026, 6, 1, 10, 30), (2026, 6, 1, 14), 2),
    ((2026, 6, 5, 17), (2026, 6, 8, 10), 2),
    ((2026, 6, 6, 0), (2026, 6, 7, 23, 59), 0),
    ((2026, 6, 1, 9), (2026, 6, 8, 9), 37.5),
    ((2026, 6, 1, 12, 10), (2026, 6, 1, 13, 20), 0),
])
def test_working_seconds(start, end, hours):
    c = clock()
    assert c.working_seconds(at(SH, *start), at(SH, *end)) == hours * HOUR
    assert c.working_seconds(at(SH, *end), at(SH, *start)) == -hours * HOUR


@pytest.mark.parametrize(("start", "limit", "due"), [
    ((2026, 6, 1, 10), "1wd", (2026, 6, 2, 10)),
    ((2026, 6, 5, 10), "1wd", (2026, 6, 8, 10)),  # Friday to Monday
    ((2026, 6, 1, 10), "5wd", (2026, 6, 8, 10)),
    ((2026, 6, 1, 13, 30), "1wd", (2026, 6, 2, 13, 30)),  # a period's start, not 12:00
    ((2026, 6, 1, 12), "1wd", (2026, 6, 2, 13, 30)),  # lunch counts from 13:30
    ((2026, 6, 1, 17, 59), "2wd", (2026, 6, 3, 17, 59)),
    ((2026, 6, 1, 19), "1wd", (2026, 6, 3, 9)),  # counted from Tuesday 09:00
    ((2026, 6, 5, 18), "1wd", (2026, 6, 9, 9)),  # counted from Monday 09:00
    ((2026, 6, 6, 11), "0wd", (2026, 6, 8, 9)),
    ((2026, 6, 1, 10), "20wd", (2026, 6, 29, 10)),
])
def test_working_days_deadlines(start, limit, due):
    assert local(SH, clock().deadline(at(SH, *start), Limit.parse(limit))) == \
        local(SH, at(SH, *due))


def test_wall_clock_limits_ignore_the_calendar():
    c = cn_clock()
    # Saturday night across midnight, and across a public holiday.
    assert c.deadline(at(SH, 2026, 6, 6, 23, 50), Limit.parse("30min")) == \
        at(SH, 2026, 6, 7, 0, 20)
    assert c.deadline(at(SH, 2026, 9, 30, 23), Limit.parse("90 minutes")) == \
        at(SH, 2026, 10, 1, 0, 30)
    assert c.deadline(at(SH, 2026, 10, 2, 11), Limit.parse("2h")) == at(SH, 2026, 10, 2, 13)
    assert c.deadline(at(SH, 2026, 10, 2, 11), Limit.parse("2h")) - at(SH, 2026, 10, 2, 11) == \
        7200


# -- a Chinese public holiday with weekends moved ----------------------------------------------

def test_national_day_holiday():
    c = cn_clock()
    wh = Limit.parse("4wh")
    # Wednesday 30 September 17:00: 1h, then 1-7 October off, then 3h on Thursday 8 October.
    assert c.deadline(at(SH, 2026, 9, 30, 17), wh) == at(SH, 2026, 10, 8, 12)
    # A start on a holiday counts from the first working morning after it.
    assert not c.is_working_time(at(SH, 2026, 10, 1, 10))  # a Thursday
    assert c.next_working_start(at(SH, 2026, 10, 3, 10)) == at(SH, 2026, 10, 8, 9)
    assert c.deadline(at(SH, 2026, 10, 3, 10), Limit.parse("1wh")) == at(SH, 2026, 10, 8, 10)
    # Saturday 10 October is worked, Sunday 11 is not.
    assert c.is_working_time(at(SH, 2026, 10, 10, 10))
    assert c.deadline(at(SH, 2026, 10, 9, 17), Limit.parse("2wh")) == at(SH, 2026, 10, 10, 10)
    assert c.deadline(at(SH, 2026, 10, 10, 17), Limit.parse("2wh")) == at(SH, 2026, 10, 12, 10)
    # Sunday 20 September is worked, Saturday 19 is not.
    assert not c.is_working_time(at(SH, 2026, 9, 19, 10))
    assert c.deadline(at(SH, 2026, 9, 18, 17), Limit.parse("2wh")) == at(SH, 2026, 9, 20, 10)
    # 30 Sep, 8, 9 and 10 Oct are the working days in this span.
    assert c.working_seconds(at(SH, 2026, 9, 30, 9), at(SH, 2026, 10, 12, 9)) == 30 * HOUR
    # The default calendar (no holidays) would differ: the same start is due on 1 October.
    assert clock().deadline(at(SH, 2026, 9, 30, 17), wh) == at(SH, 2026, 10, 1, 12)


def test_national_day_working_days():
    c = cn_clock()
    # 8, 9, 10 (Saturday, worked), 12, 13 October.
    assert c.deadline(at(SH, 2026, 9, 30, 10), Limit.parse("5wd")) == at(SH, 2026, 10, 13, 10)
    # 15-18 Sep (4), Sun 20 (5), 21-25 (10), 28-30 (13), 8-10 Oct (16), 12-15 Oct (20).
    assert c.deadline(at(SH, 2026, 9, 14, 10), Limit.parse("20wd")) == \
        at(SH, 2026, 10, 15, 10)
    assert c.deadline(at(SH, 2026, 9, 14, 12, 30), Limit.parse("20wd")) == \
        at(SH, 2026, 10, 15, 13, 30)
    assert c.deadline(at(SH, 2026, 10, 2, 15), Limit.parse("1wd")) == at(SH, 2026, 10, 9, 9)


def test_a_declared_working_day_wins_over_a_holiday():
    day = dt.date(2026, 5, 4)  # a Monday
    c = clock(holidays=[day], working_days=[day])
    assert c.is_working_day(day)
    assert c.is_working_time(at(SH, 2026, 5, 4, 10))
    assert not clock(holidays=[day]).is_working_time(at(SH, 2026, 5, 4, 10))


def test_other_weekends_and_periods():
    # Friday and Saturday off; one long period.
    c = clock("Asia/Dubai", weekend=[5, 6], working_hours=[period("07:30-14:30")])
    thu = at("Asia/Dubai", 2026, 6, 4, 13, 30)
    assert c.deadline(thu, Limit.parse("2wh")) == at("Asia/Dubai", 2026, 6, 7, 8, 30)
    assert c.working_seconds(thu, at("Asia/Dubai", 2026, 6, 7, 8, 30)) == 2 * HOUR


def test_a_night_period_wrapping_midnight_belongs_to_each_date():
    # As in LocalClock: on a working date, 22:00-24:00 and 00:00-06:00 of that date work.
    c = clock(working_hours=[period("22:00-06:00")])
    assert c.is_working_time(at(SH, 2026, 6, 1, 3))  # Monday early morning
    assert c.is_working_time(at(SH, 2026, 6, 5, 23))  # Friday night
    assert not c.is_working_time(at(SH, 2026, 6, 6, 3))  # Saturday early morning
    assert c.working_seconds(at(SH, 2026, 6, 1, 0), at(SH, 2026, 6, 2, 0)) == 8 * HOUR
    assert c.deadline(at(SH, 2026, 6, 5, 23), Limit.parse("2wh")) == at(SH, 2026, 6, 8, 1)


def test_a_calendar_without_working_time():
    nothing = clock(working_hours=[])
    start = at(SH, 2026, 6, 1, 10)
    assert nothing.working_seconds(start, start + 30 * 86400) == 0
    assert not nothing.is_working_time(start)
    with pytest.raises(ValueError, match="no working time after 2026-06-01T10:00"):
        nothing.deadline(start, Limit.parse("1wh"))
    with pytest.raises(ValueError, match="no working time"):
        nothing.next_working_start(start)
    assert nothing.deadline(start, Limit.parse("1h")) == start + HOUR
    # Only two declared days work in this calendar.
    only = clock(weekend=[1, 2, 3, 4, 5, 6, 7], working_days=[
        dt.date(2026, 6, 3), dt.date(2027, 1, 5)])
    assert only.deadline(start, Limit.parse("8wh")) == at(SH, 2027, 1, 5, 9, 30)
    assert only.deadline(start, Limit.parse("1wd")) == at(SH, 2027, 1, 5, 9)
    with pytest.raises(ValueError, match="no working time"):
        only.deadline(start, Limit.parse("16wh"))
    with pytest.raises(ValueError, match="ISO weekday"):
        clock(weekend=[0, 6])


# -- daylight saving: New York, 2026 (8 March and 1 November) ---------------------------------

def test_new_york_working_hours_across_the_march_change():
    c = clock(NY)
    fri = at(NY, 2026, 3, 6, 17)
    due = c.deadline(fri, Limit.parse("2wh"))
    assert local(NY, due).replace(tzinfo=None) == dt.datetime(2026, 3, 9, 10)
    assert local(NY, due).utcoffset() == dt.timedelta(hours=-4)
    assert due - fri == 64 * HOUR  # 3 days less 8 hours, less the hour lost on Sunday
    assert c.working_seconds(at(NY, 2026, 3, 6, 9), at(NY, 2026, 3, 9, 18)) == 15 * HOUR
    assert c.deadline(at(NY, 2026, 3, 6, 10), Limit.parse("1wd")) == at(NY, 2026, 3, 9, 10)


def test_new_york_working_hours_across_the_november_change():
    c = clock(NY)
    fri = at(NY, 2026, 10, 30, 17)
    due = c.deadline(fri, Limit.parse("2wh"))
    assert local(NY, due).replace(tzinfo=None) == dt.datetime(2026, 11, 2, 10)
    assert local(NY, due).utcoffset() == dt.timedelta(hours=-5)
    assert due - fri == 66 * HOUR
    assert c.deadline(at(NY, 2026, 10, 30, 10), Limit.parse("1wd")) == at(NY, 2026, 11, 2, 10)
    assert c.working_seconds(at(NY, 2026, 10, 26, 0), at(NY, 2026, 11, 7, 0)) == 75 * HOUR


def test_new_york_periods_that_contain_the_change():
    # Both change days are Sundays, declared working, with a night period 01:00-04:00.
    days = [dt.date(2026, 3, 8), dt.date(2026, 11, 1)]
    cal = WorkCalendar(timezone=NY, working_hours=[period("01:00-04:00")], working_days=days)
    c = WorkClock(cal)
    march = c.working_spans(days[0])
    # 01:00-02:00 EST, then 03:00-04:00 EDT: the same hours of wall clock, two real hours.
    # 02:00 EST is 03:00 EDT, so the two parts make one span.
    assert march == ((at(NY, 2026, 3, 8, 1), at(NY, 2026, 3, 8, 4)),)
    assert march[0][1] - march[0][0] == 2 * HOUR
    assert not c.is_working_time(at(NY, 2026, 3, 8, 0, 59))
    # 01:00 EDT to 04:00 EST: 01:00-02:00 happens twice, four real hours.
    assert sum(b - a for a, b in c.working_spans(days[1])) == 4 * HOUR
    due = c.deadline(at(NY, 2026, 3, 8, 1, 30), Limit.parse("1wh"))
    assert local(NY, due).replace(tzinfo=None) == dt.datetime(2026, 3, 8, 3, 30)
    assert due - at(NY, 2026, 3, 8, 1, 30) == HOUR
    # Wall-clock hours are real hours.
    assert c.deadline(at(NY, 2026, 3, 8, 1, 30), Limit.parse("2h")) == at(NY, 2026, 3, 8, 4, 30)
    # Working days keep the wall-clock time, whatever the real length of the days between.
    wd = Limit.parse("1wd")
    assert c.deadline(at(NY, 2026, 3, 6, 1, 30), wd) == at(NY, 2026, 3, 8, 1, 30)
    assert c.deadline(at(NY, 2026, 3, 8, 3, 30), wd) == at(NY, 2026, 3, 9, 3, 30)
    # 02:30 does not exist on 8 March: the first instant after the gap, 03:00 EDT.
    assert c.deadline(at(NY, 2026, 3, 6, 2, 30), wd) == at(NY, 2026, 3, 8, 3)
    assert c.deadline(at(NY, 2026, 3, 6, 2, 30), wd) == at(NY, 2026, 3, 8, 1, 59) + 60
    # 01:30 happens twice on 1 November: the first time, in EDT.
    due = c.deadline(at(NY, 2026, 10, 30, 1, 30), wd)
    assert local(NY, due).replace(tzinfo=None) == dt.datetime(2026, 11, 1, 1, 30)
    assert local(NY, due).utcoffset() == dt.timedelta(hours=-4)
    assert c.deadline(at(NY, 2026, 11, 1, 3, 30), wd) == at(NY, 2026, 11, 2, 3, 30)
    lc = LocalClock(NY, cal)
    for day in days:
        lo = int(at(NY, day.year, day.month, day.day)) * US
        got = c.working_seconds(lo / US, lo / US + 86400)
        assert got == lc.seconds_inside(When(working_hours=True), lo, lo + 86400 * US)


def test_working_days_where_a_clock_change_cuts_the_periods():
    wd = Limit.parse("1wd")
    sunday = dt.date(2026, 3, 8)
    # 02:00-03:00 does not exist on 8 March: that declared Sunday has no working time and is
    # not counted as a working day.
    gone = clock(NY, working_hours=[period("02:00-03:00")], working_days=[sunday])
    assert gone.is_working_day(sunday) and gone.working_spans(sunday) == ()
    assert gone.deadline(at(NY, 2026, 3, 6, 2, 30), wd) == at(NY, 2026, 3, 9, 2, 30)
    # 01:00-02:30 keeps only 01:00-02:00: 02:15 falls in the gap, and the first instant after
    # it (03:00 EDT) is no longer working time, so the next working start is the deadline.
    cut = clock(NY, working_hours=[period("01:00-02:30")], working_days=[sunday])
    assert cut.working_spans(sunday) == ((at(NY, 2026, 3, 8, 1), at(NY, 2026, 3, 8, 3)),)
    assert cut.deadline(at(NY, 2026, 3, 6, 2, 15), wd) == at(NY, 2026, 3, 9, 1)


# -- pauses ------------------------------------------------------------------------------------

def test_a_parked_case_stops_the_working_clock():
    c = clock()
    start, limit = at(SH, 2026, 6, 1, 9), Limit.parse("4wh")
    assert c.deadline(start, limit) == at(SH, 2026, 6, 1, 14, 30)
    # Parked Monday 10:00 to Tuesday 10:00: 1h used before, 3h left from Tuesday 10:00.
    pause = (at(SH, 2026, 6, 1, 10), at(SH, 2026, 6, 2, 10))
    assert c.deadline_with_pauses(start, limit, [pause]) == at(SH, 2026, 6, 2, 14, 30)
    assert c.extend(c.deadline(start, limit), *pause, "working_hours") == \
        at(SH, 2026, 6, 2, 14, 30)
    # Time used by Tuesday 11:00: 1h before the pause and 1h after it.
    assert c.elapsed(start, at(SH, 2026, 6, 2, 11), "working_hours", [pause]) == 2 * HOUR


def test_pauses_outside_the_counted_time():
    c = clock()
    start = at(SH, 2026, 6, 1, 17)
    night = (at(SH, 2026, 6, 1, 19), at(SH, 2026, 6, 2, 8))
    due = c.deadline(start, Limit.parse("2wh"))
    assert c.deadline_with_pauses(start, Limit.parse("2wh"), [night]) == due
    assert c.extend(due, *night, "working_hours") == due
    # A wall clock does stop at night.
    assert c.deadline_with_pauses(start, Limit.parse("3h"), [night]) == at(SH, 2026, 6, 2, 9)
    # A pause after the deadline (the case was already late) changes nothing.
    late = (at(SH, 2026, 6, 2, 11), at(SH, 2026, 6, 3, 11))
    assert c.deadline_with_pauses(start, Limit.parse("2wh"), [late]) == due
    assert c.extend(due, *late, "working_hours") == due
    # A pause that starts exactly when the limit runs out does not save it.
    assert c.deadline_with_pauses(start, Limit.parse("2wh"), [(due, due + 86400)]) == due
    # Parts of a pause before the start do not count.
    early = (at(SH, 2026, 6, 1, 9), at(SH, 2026, 6, 1, 17, 30))
    assert c.deadline_with_pauses(start, Limit.parse("2wh"), [early]) == \
        at(SH, 2026, 6, 2, 10, 30)


def test_open_and_overlapping_pauses():
    c = clock()
    start, limit = at(SH, 2026, 6, 1, 9), Limit.parse("4wh")
    assert c.deadline_with_pauses(start, limit, [(at(SH, 2026, 6, 1, 10), None)]) is None
    # Opened after the limit ran out: the deadline stays.
    assert c.deadline_with_pauses(start, limit, [(at(SH, 2026, 6, 1, 15), None)]) == \
        at(SH, 2026, 6, 1, 14, 30)
    # 10:00-11:00 and 10:30-11:30 overlap: 1.5h paused, counted once; given out of order.
    pauses = [(at(SH, 2026, 6, 1, 10, 30), at(SH, 2026, 6, 1, 11, 30)),
              (at(SH, 2026, 6, 1, 10), at(SH, 2026, 6, 1, 11))]
    assert c.deadline_with_pauses(start, limit, pauses) == at(SH, 2026, 6, 1, 16)
    assert c.elapsed(start, at(SH, 2026, 6, 1, 16), "working_hours", pauses) == 4 * HOUR
    # Only the parts of pauses between start and end are left out.
    long_pause = [(at(SH, 2026, 5, 29, 10), at(SH, 2026, 6, 1, 10)),
                  (at(SH, 2026, 6, 1, 11), at(SH, 2026, 6, 2, 11))]
    assert c.elapsed(start, at(SH, 2026, 6, 1, 11, 30), "working_hours", long_pause) == HOUR
    assert c.elapsed(start, at(SH, 2026, 6, 1, 11, 30), "minutes", long_pause) == HOUR
    assert c.elapsed(start, at(SH, 2026, 6, 2, 12), "hours", long_pause) == 2 * HOUR
    assert c.elapsed(start, start - 1, "hours") == 0
    # An open pause leaves nothing counted after its start.
    assert c.elapsed(start, at(SH, 2026, 6, 3, 9), "working_hours",
                     [(at(SH, 2026, 6, 1, 10), None)]) == HOUR
    with pytest.raises(ValueError, match="before it starts"):
        c.deadline_with_pauses(start, limit, [(start + 100, start + 50)])


def test_a_parked_case_on_working_days():
    c = clock()
    start, limit = at(SH, 2026, 6, 1, 10), Limit.parse("2wd")
    assert c.deadline(start, limit) == at(SH, 2026, 6, 3, 10)
    # 15 working hours allowed; 2.5 used by Monday 14:00; parked until Thursday 14:00; then
    # 4h on Thursday, 7.5h on Friday, the last hour on Monday.
    pause = (at(SH, 2026, 6, 1, 14), at(SH, 2026, 6, 4, 14))
    assert c.deadline_with_pauses(start, limit, [pause]) == at(SH, 2026, 6, 8, 10)
    assert c.extend(c.deadline(start, limit), *pause, "working_days") == at(SH, 2026, 6, 8, 10)
    # A limit from 13:30 ends at 13:30 (not 12:00) however it was paused.
    start = at(SH, 2026, 6, 1, 13, 30)
    lunch_to_lunch = (at(SH, 2026, 6, 1, 15), at(SH, 2026, 6, 2, 15))
    assert c.deadline_with_pauses(start, Limit.parse("1wd"), [lunch_to_lunch]) == \
        at(SH, 2026, 6, 3, 13, 30)


# -- properties --------------------------------------------------------------------------------

CALENDARS = {
    "shanghai": WorkCalendar(timezone=SH),
    "china_holidays": WorkCalendar(timezone=SH, holidays=CN_HOLIDAYS, working_days=CN_WORKING),
    "new_york": WorkCalendar(timezone=NY, holidays=[dt.date(2026, 11, 26), dt.date(2026, 7, 3)]),
    "lord_howe": WorkCalendar(timezone="Australia/Lord_Howe",
                              working_hours=[period("08:15-12:45"), period("14:00-17:15")]),
    "night_shift": WorkCalendar(timezone="Europe/Dublin", working_hours=[period("22:00-06:00")],
                                weekend=[7], working_days=[dt.date(2026, 3, 29)]),
    "change_hours": WorkCalendar(timezone=NY, working_hours=[period("01:00-04:00")],
                                 working_days=[dt.date(2026, 3, 8), dt.date(2026, 11, 1)]),
}
CLOCKS = {name: WorkClock(cal) for name, cal in CALENDARS.items()}
LOCAL_CLOCKS = {name: LocalClock(cal.timezone, cal) for name, cal in CALENDARS.items()}
# 2026, the year the calendars above describe, with its two daylight-saving changes.
SPAN = (int(at(SH, 2025, 12, 20)), int(at(SH, 2027, 1, 10)))
names = st.sampled_from(sorted(CALENDARS))
instants = st.integers(*SPAN)


@settings(max_examples=400, deadline=None)
@given(name=names, ts=st.lists(instants, min_size=1, max_size=30))
def test_working_time_agrees_with_local_clock(name, ts):
    c, lc = CLOCKS[name], LOCAL_CLOCKS[name]
    want = lc.working_time(np.array(ts, np.int64) * US)
    assert [c.is_working_time(t) for t in ts] == want.tolist()


@settings(max_examples=300, deadline=None)
@given(name=names, start=instants, length=st.integers(0, 25 * 86400))
def test_working_seconds_agrees_with_local_clock(name, start, length):
    c, lc = CLOCKS[name], LOCAL_CLOCKS[name]
    want = lc.seconds_inside(When(working_hours=True), start * US, (start + length) * US)
    assert c.working_seconds(start, start + length) == pytest.approx(want, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(name=names, start=instants, quarters=st.integers(0, 4 * 60), frac=st.floats(0, 1))
def test_working_hours_deadline_is_the_earliest_instant_with_the_count(name, start, quarters,
                                                                      frac):
    c = CLOCKS[name]
    start = start + frac
    hours = quarters / 4
    due = c.deadline(start, Limit(hours, "working_hours"))
    assert c.working_seconds(start, due) == pytest.approx(hours * HOUR, abs=1e-3)
    if hours:
        # Working time runs up to the deadline itself: it is not a later instant with the same
        # count (such as the next period's start).
        day = c.local_date(due)
        spans = c.working_spans(day - dt.timedelta(days=1)) + c.working_spans(day)
        assert any(a < due <= b for a, b in spans)
    else:
        assert due == start


@settings(max_examples=150, deadline=None)
@given(name=names, slot=st.integers(SPAN[0] // 900, (SPAN[1] - 30 * 86400) // 900),
       quarters=st.integers(1, 4 * 40))
def test_working_hours_deadline_against_quarter_hour_counting(name, slot, quarters):
    # Every calendar's periods and clock changes fall on quarter hours, so counting working
    # quarter hours one by one (LocalClock decides each) finds the deadline too.
    start = slot * 900
    mids = start + 450 + 900 * np.arange(40 * 96, dtype=np.int64)
    working = LOCAL_CLOCKS[name].working_time(mids * US)
    assume(working.sum() >= quarters)
    nth = int(np.flatnonzero(working)[quarters - 1])
    assert CLOCKS[name].deadline(start, Limit(quarters / 4, "working_hours")) == \
        start + 900 * (nth + 1)


def _working_dates_after(cal: WorkCalendar, day: dt.date):
    while True:
        day += dt.timedelta(days=1)
        if day in cal.working_days or (day.isoweekday() not in cal.weekend
                                       and day not in cal.holidays):
            yield day


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(["shanghai", "china_holidays", "new_york", "lord_howe"]),
       start=instants, days=st.integers(0, 30))
def test_working_days_keep_the_local_time_of_day(name, start, days):
    cal, c = CALENDARS[name], CLOCKS[name]
    zone = ZoneInfo(cal.timezone)
    start = c.next_working_start(start)
    here = dt.datetime.fromtimestamp(start, zone)
    day = here.date()
    dates = _working_dates_after(cal, day)
    for _ in range(days):
        day = next(dates)
    want = dt.datetime.combine(day, here.time().replace(tzinfo=None), zone).timestamp()
    assert c.deadline(start, Limit(days, "working_days")) == want


@settings(max_examples=200, deadline=None)
@given(name=names, a=instants, b=instants, c_=instants)
def test_working_seconds_add_up(name, a, b, c_):
    c = CLOCKS[name]
    assert c.working_seconds(a, b) + c.working_seconds(b, c_) == \
        pytest.approx(c.working_seconds(a, c_), abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(name=names, ts=instants)
def test_next_working_start_is_the_first_working_instant(name, ts):
    c = CLOCKS[name]
    first = c.next_working_start(ts)
    assert first >= ts
    assert c.is_working_time(first)
    assert c.working_seconds(ts, first) == 0
    assert (first == ts) == c.is_working_time(ts)


pause_lists = st.lists(st.tuples(st.integers(0, 20 * 86400), st.integers(0, 5 * 86400)),
                       max_size=4)


@settings(max_examples=300, deadline=None)
@given(name=names, start=instants, limit=st.sampled_from(
    ["45min", "3h", "1wh", "4wh", "20wh", "1wd", "3wd", "0wh"]), raw=pause_lists)
def test_pauses_in_order_extend_the_deadline(name, start, limit, raw):
    c, limit = CLOCKS[name], Limit.parse(limit)
    # Disjoint pauses after the start, in order.
    pauses, t = [], start
    for gap, length in raw:
        pauses.append((t + gap, t + gap + length))
        t += gap + length + 1
    want = c.deadline_with_pauses(start, limit, pauses)
    due = c.deadline(start, limit)
    for ps, pe in pauses:
        due = c.extend(due, ps, pe, limit.unit)
    assert due == pytest.approx(want, abs=1e-3)
    # The clock counted exactly the limit, the paused time left out.
    counted = c.elapsed(start, want, limit.unit, pauses)
    allowed = c.elapsed(start, c.deadline(start, limit), limit.unit)
    assert counted == pytest.approx(allowed, abs=1e-3)
    if limit.unit == "working_hours":
        assert allowed == pytest.approx(limit.amount * HOUR)


@settings(max_examples=100, deadline=None)
@given(name=names, start=instants, raw=pause_lists)
def test_pauses_never_bring_a_deadline_forward(name, start, raw):
    c = CLOCKS[name]
    pauses = [(start + a, start + a + b) for a, b in raw]
    for text in ("2h", "6wh", "2wd"):
        limit = Limit.parse(text)
        assert c.deadline_with_pauses(start, limit, pauses) >= c.deadline(start, limit)


def test_long_limits_are_counted_by_days():
    c = WorkClock(CALENDARS["china_holidays"])
    start = at(SH, 2026, 1, 5, 10)
    t0 = time.perf_counter()
    due = c.deadline(start, Limit.parse("1000wd"))
    hours_due = c.deadline(start, Limit.parse("7500wh"))
    elapsed = time.perf_counter() - t0
    # 1000 working days of 7.5h each: both land at 10:00 on the same day.
    assert local(SH, due).time() == dt.time(10)
    assert hours_due == due
    assert c.working_seconds(start, due) == 7500 * HOUR
    # One hour less runs out at the end of the working day before (the earliest instant).
    before = c.deadline(start, Limit.parse("7499wh"))
    assert local(SH, before).time() == dt.time(18)
    assert c.working_seconds(before, due) == HOUR
    assert elapsed < 5  # about 1400 days each; a minute-by-minute count would take far longer
