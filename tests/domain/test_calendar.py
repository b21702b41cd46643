"""LocalClock: local time for arrays of UTC instants and the `When` conditions of rules."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityops.domain.calendar import LocalClock, parse_hours
from cityops.domain.city import WorkCalendar, WorkPeriod
from cityops.domain.scenarios.spec import When

US = 1_000_000
HOUR = 3600 * US
ZONES = ["Europe/Dublin", "Asia/Shanghai", "America/New_York", "Australia/Lord_Howe",
         "America/Sao_Paulo"]


def at(tz: str, *args) -> int:
    return int(dt.datetime(*args, tzinfo=ZoneInfo(tz)).timestamp()) * US


def utc(*args) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * US


def expected(tz: str, ts_us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_us // US, ZoneInfo(tz))


@settings(max_examples=300, deadline=None)
@given(tz=st.sampled_from(ZONES),
       ts=st.lists(st.integers(utc(1975, 1, 1), utc(2090, 1, 1)), min_size=1, max_size=40))
def test_local_fields_agree_with_zoneinfo_everywhere(tz, ts):
    clock = LocalClock(tz)
    arr = np.array([t // US * US for t in ts], np.int64)
    hours, weekdays = clock.hour(arr), clock.weekday(arr)
    months, dates = clock.month(arr), clock.date(arr)
    for i, t in enumerate(arr.tolist()):
        local = expected(tz, t)
        assert hours[i] == pytest.approx(local.hour + local.minute / 60 + local.second / 3600)
        assert weekdays[i] == local.isoweekday()
        assert months[i] == local.month
        assert dates[i] == np.datetime64(local.date())


def test_dublin_across_both_dst_changes_in_one_batch():
    clock = LocalClock("Europe/Dublin")
    # Every 30 minutes from just before spring-forward to just after fall-back, 2024.
    ts = np.arange(utc(2024, 3, 30, 23), utc(2024, 10, 28, 3), HOUR // 2)
    want = [expected("Europe/Dublin", t) for t in ts.tolist()]
    assert np.array_equal(clock.hour(ts), [w.hour + w.minute / 60 for w in want])
    # 00:30 UTC is 00:30 GMT, 01:00 UTC is already 02:00 IST.
    assert clock.hour(np.array([utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 1)])).tolist() == [
        0.5, 2.0]
    # In October 01:30 local happens twice: at 00:30 UTC (IST) and at 01:30 UTC (GMT).
    assert clock.hour(np.array([utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30)])).tolist() \
        == [1.5, 1.5]


def test_shanghai_is_utc_plus_eight_all_year():
    clock = LocalClock("Asia/Shanghai")
    ts = np.arange(utc(2024, 1, 1), utc(2025, 1, 1), 24 * HOUR)
    assert clock.offset_us(ts) == 8 * HOUR
    assert clock.hour(np.array([utc(2024, 7, 1, 16)])).tolist() == [0.0]


def test_night_hours_wrap_past_midnight():
    clock = LocalClock("Asia/Shanghai")
    night = When(hours="22:00-06:00")
    times = [(21, 59, 59), (22, 0, 0), (23, 30, 0), (0, 0, 0), (5, 59, 59), (6, 0, 0), (12, 0, 0)]
    ts = np.array([at("Asia/Shanghai", 2024, 5, 8, *t) for t in times])
    assert clock.matches(night, ts).tolist() == [False, True, True, True, True, False, False]
    assert clock.matches(None, ts).all()
    day = When(hours="07:00-09:00, 17:00-19:00")
    ts = np.array([at("Asia/Shanghai", 2024, 5, 8, h) for h in (6, 7, 8, 9, 17, 19)])
    assert clock.matches(day, ts).tolist() == [False, True, True, False, True, False]
    whole = When(hours="00:00-24:00")
    assert clock.matches(whole, ts).all()


def test_night_follows_local_time_in_a_dst_zone():
    clock = LocalClock("Europe/Dublin")
    night = When(hours="22:00-06:00")
    # 05:30 UTC is 05:30 local in winter (night) but 06:30 local in summer (day).
    ts = np.array([utc(2024, 1, 15, 5, 30), utc(2024, 7, 15, 5, 30),
                   utc(2024, 7, 15, 21, 30), utc(2024, 1, 15, 21, 30)])
    assert clock.matches(night, ts).tolist() == [True, False, True, False]


@pytest.mark.parametrize("text", ["25:00-06:00", "22:00", "22:00-06:60", "ab-cd", "06:00-06:00",
                                  "24:00-06:00", "22:00-06:00,"])
def test_bad_hours_name_the_text(text):
    with pytest.raises(ValueError, match=text.split(",")[0].replace("(", r"\(")):
        parse_hours(text)
    with pytest.raises(ValueError):
        LocalClock("Asia/Shanghai").matches(When(hours=text), np.array([0]))


def test_bad_months_and_weekdays():
    clock = LocalClock("Asia/Shanghai")
    with pytest.raises(ValueError, match="months"):
        clock.compile(When(months=[0, 6]))
    with pytest.raises(ValueError, match="weekdays"):
        clock.compile(When(weekdays=[8]))


def calendar() -> WorkCalendar:
    return WorkCalendar(
        timezone="Asia/Shanghai",
        working_hours=[WorkPeriod(dt.time(9), dt.time(12)), WorkPeriod(dt.time(13, 30),
                                                                       dt.time(18))],
        holidays=[dt.date(2024, 10, 1), dt.date(2024, 10, 2)],  # Tuesday, Wednesday
        working_days=[dt.date(2024, 10, 12)],  # a Saturday worked to make up for them
    )


def test_holidays_weekends_and_declared_working_days():
    clock = LocalClock("Asia/Shanghai", calendar())
    days = [(2024, 9, 30), (2024, 10, 1), (2024, 10, 2), (2024, 10, 5), (2024, 10, 6),
            (2024, 10, 12), (2024, 10, 14)]
    ts = np.array([at("Asia/Shanghai", *d, 10) for d in days])
    off = [False, True, True, True, True, False, False]
    assert clock.day_off(ts).tolist() == off
    assert clock.matches(When(holiday=True), ts).tolist() == off
    assert clock.matches(When(holiday=False), ts).tolist() == [not o for o in off]


def test_working_hours_only_on_working_days():
    clock = LocalClock("Asia/Shanghai", calendar())
    times = [(2024, 9, 30, 8, 59), (2024, 9, 30, 9, 0), (2024, 9, 30, 12, 0),
             (2024, 9, 30, 13, 30), (2024, 9, 30, 17, 59), (2024, 9, 30, 18, 0),
             (2024, 10, 1, 10, 0), (2024, 10, 12, 10, 0), (2024, 10, 13, 10, 0)]
    ts = np.array([at("Asia/Shanghai", *t) for t in times])
    want = [False, True, False, True, True, False, False, True, False]
    assert clock.working_time(ts).tolist() == want
    assert clock.matches(When(working_hours=True), ts).tolist() == want
    assert clock.matches(When(working_hours=False), ts).tolist() == [not w for w in want]


def test_months_weekdays_and_fields_together():
    clock = LocalClock("Asia/Shanghai")
    typhoon_nights = When(months=[6, 7, 8, 9, 10], weekdays=[6, 7], hours="20:00-08:00")
    ts = np.array([at("Asia/Shanghai", 2024, 7, 6, 23),  # Saturday night in July
                   at("Asia/Shanghai", 2024, 7, 6, 12),  # Saturday noon
                   at("Asia/Shanghai", 2024, 7, 8, 23),  # Monday night
                   at("Asia/Shanghai", 2024, 11, 2, 23)])  # Saturday night in November
    assert clock.matches(typhoon_nights, ts).tolist() == [True, False, False, False]


def test_month_changes_at_local_midnight():
    clock = LocalClock("Asia/Shanghai")
    ts = np.array([utc(2024, 5, 31, 15, 59), utc(2024, 5, 31, 16)])  # 23:59 and 00:00 local
    assert clock.month(ts).tolist() == [5, 6]
    assert clock.matches(When(months=[6]), ts).tolist() == [False, True]


def test_seconds_inside_a_night():
    clock = LocalClock("Asia/Shanghai")
    night = When(hours="22:00-06:00")
    start = at("Asia/Shanghai", 2024, 5, 8, 12)
    assert clock.seconds_inside(night, start, start + 24 * HOUR) == 8 * 3600
    assert clock.seconds_inside(night, start, start + 11 * HOUR) == 3600
    assert clock.seconds_inside(night, start + 11 * HOUR, start) == -3600
    assert clock.seconds_inside(None, start, start + 90 * US) == 90
    ends = np.array([start, start + 11 * HOUR, start + 48 * HOUR])
    assert clock.seconds_inside(night, start, ends).tolist() == [0, 3600, 16 * 3600]


def test_seconds_inside_short_and_long_nights_in_dublin():
    clock = LocalClock("Europe/Dublin")
    night = When(hours="22:00-06:00")
    # The night of the spring change has only 7 hours between 22:00 and 06:00, autumn's 9.
    spring = clock.seconds_inside(night, at("Europe/Dublin", 2024, 3, 30, 12),
                                  at("Europe/Dublin", 2024, 3, 31, 12))
    autumn = clock.seconds_inside(night, at("Europe/Dublin", 2024, 10, 26, 12),
                                  at("Europe/Dublin", 2024, 10, 27, 12))
    assert (spring, autumn) == (7 * 3600, 9 * 3600)


def test_daytime_hours_of_working_days_over_a_week():
    clock = LocalClock("Asia/Shanghai", calendar())
    office = When(working_hours=True)
    monday = at("Asia/Shanghai", 2024, 9, 30)
    # 7.5 h a day on Monday, Thursday and Friday: 1-2 October are holidays, then a weekend.
    assert clock.seconds_inside(office, monday, monday + 7 * 24 * HOUR) == 3 * 7.5 * 3600


@settings(max_examples=150, deadline=None)
@given(tz=st.sampled_from(ZONES), start=st.integers(utc(2023, 1, 1), utc(2026, 1, 1)),
       minutes=st.integers(0, 4 * 24 * 60),
       when=st.sampled_from([When(hours="22:00-06:00"), When(hours="01:30-02:30"),
                             When(working_hours=True), When(holiday=True, hours="07:00-19:00"),
                             When(months=[3, 10]), When(weekdays=[7], working_hours=False)]))
def test_seconds_inside_agrees_with_counting_minutes(tz, start, minutes, when):
    clock = LocalClock(tz, calendar())
    start = start // (60 * US) * 60 * US  # every edge of these conditions is on a minute
    minute_starts = start + np.arange(minutes, dtype=np.int64) * 60 * US
    counted = 60.0 * clock.matches(when, minute_starts).sum()
    assert clock.seconds_inside(when, start, start + minutes * 60 * US) == pytest.approx(counted)
