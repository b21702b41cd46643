"""The temporal API's machinery without HTTP: parameters, durations, bounds, cuts, aggregation."""

import numpy as np
import pytest

from cityops.domain.readings import ReadingBatch
from cityops.ngsild.errors import NgsiError
from cityops.ngsild.temporal import (
    AGGR_METHODS,
    NEVER,
    Duration,
    Histories,
    TemporalQuery,
    aggregate,
    content_range,
    current_instances,
    cut_histories,
    iso,
    parse_duration,
    parse_time,
    temporal_query,
)

S = 1_000_000
H = 3600 * S
T0 = parse_time("2020-08-01T12:03:00Z", "t")


def query(**kw):
    base = dict(timerel=None, time_at=None, end_time_at=None, last_n=None, timeproperty=None)
    base.update(kw)
    return temporal_query(**base)


def refused(parameter, **kw):
    with pytest.raises(NgsiError) as caught:
        query(**kw)
    assert caught.value.kind == "BadRequestData"
    assert caught.value.status == 400
    assert parameter in caught.value.detail
    return caught.value.detail


def test_times_are_date_times_with_a_zone():
    assert iso(T0) == "2020-08-01T12:03:00Z"
    assert parse_time("2020-08-01T12:03:00.000Z", "t") == T0
    assert parse_time("2020-08-01T14:03:00+02:00", "t") == T0
    assert parse_time("2020-08-01T12:03:00.1234567Z", "t") == T0 + 123_456
    assert iso(T0 + 5) == "2020-08-01T12:03:00.000005Z"
    for wrong in ("2020-08-01", "2020-08-01T12:03:00", "yesterday", "2020-13-01T00:00:00Z", ""):
        with pytest.raises(NgsiError) as caught:
            parse_time(wrong, "timeAt")
        assert caught.value.detail.startswith("timeAt:")


def test_durations():
    assert parse_duration("PT1H") == Duration(0, H)
    assert parse_duration("P1D") == Duration(0, 24 * H)
    assert parse_duration("P1W") == Duration(0, 7 * 24 * H)
    assert parse_duration("PT0.5S") == Duration(0, S // 2)
    assert parse_duration("P1Y2M3DT4H5M6S") == Duration(14, (3 * 86400 + 4 * 3600 + 5 * 60 + 6)
                                                        * S)
    assert parse_duration("P0D").zero and parse_duration("PT0S").zero
    for wrong in ("P", "PT", "1H", "PT1H1D", "P1DT", "P-1D", "PT1.5H", "P99999999Y"):
        with pytest.raises(NgsiError) as caught:
            parse_duration(wrong)
        assert "aggrPeriodDuration" in caught.value.detail
    # A month is a calendar month: from 31 January, one is 29 February 2024, two 31 March.
    jan31 = parse_time("2024-01-31T00:00:00Z", "t")
    month = parse_duration("P1M")
    assert iso(month.after(jan31, 1)) == "2024-02-29T00:00:00Z"
    assert iso(month.after(jan31, 2)) == "2024-03-31T00:00:00Z"


def test_timerel_windows_follow_the_spec_bounds():
    assert query(timerel="before", time_at="2020-08-01T12:03:00Z").window == (-NEVER, T0)
    assert query(timerel="after", time_at="2020-08-01T12:03:00Z").window == (T0, NEVER)
    between = query(timerel="between", time_at="2020-08-01T12:03:00Z",
                    end_time_at="2020-08-01T13:03:00Z")
    assert between.window == (T0, T0 + H)
    assert query().window == (-NEVER, NEVER)


def test_each_bad_parameter_is_named():
    refused("timerel", timerel="during", time_at="2020-08-01T12:03:00Z")
    refused("timerel", time_at="2020-08-01T12:03:00Z")
    refused("timeAt", timerel="after")
    refused("timeAt", timerel="after", time_at="2020-08-01")
    refused("endTimeAt", timerel="between", time_at="2020-08-01T12:03:00Z")
    refused("endTimeAt", timerel="between", time_at="2020-08-01T12:03:00Z",
            end_time_at="2020-08-01T12:00:00Z")
    refused("endTimeAt", timerel="after", time_at="2020-08-01T12:03:00Z", end_time_at="soon")
    for n in ("0", "2.5", "-1", "many", 0):
        refused("lastN", last_n=n)
    refused("timeproperty", timeproperty="sometime")
    refused("aggrMethods", aggr_methods="median")
    refused("aggrMethods", aggr_methods=",")
    refused("aggrMethods", options=["aggregatedValues"])
    refused("aggrPeriodDuration", aggr_methods="avg", aggr_period="1 hour")
    refused("options", options=["temporalValues", "aggregatedValues"])


def test_a_good_query_reads_back():
    q = query(timerel="after", time_at="2020-08-01T12:03:00Z", last_n="4",
              options=["aggregatedValues"], aggr_methods="avg,max,avg", aggr_period="PT1H")
    assert q == TemporalQuery("after", T0, None, 4, "observedAt", "aggregatedValues",
                              ("avg", "max"), Duration(0, H))
    assert query(aggr_methods=["sum", "min"]).methods == ("sum", "min")
    assert query(options=["temporalValues"]).representation == "temporalValues"


def batch(device, channel, ts, value=None):
    n = len(ts)
    return ReadingBatch(np.asarray(device, np.int32), np.asarray(channel, np.int8),
                        np.asarray(ts, np.int64),
                        np.arange(n, dtype=float) if value is None else np.asarray(value, float))


def test_a_cut_holds_every_series_to_the_same_instant():
    # Two series read with one more than the bound (3): the first is longer than the bound,
    # so the answer stops at its third instant, and the second is cut there too.
    rows = batch([1] * 4 + [1] * 3, [0] * 4 + [1] * 3,
                 [10, 20, 30, 40, 5, 25, 35])
    got = cut_histories(rows, 3, newest=False, exact=False)
    assert got.cut_at == 30
    assert list(zip(got.rows.channel.tolist(), got.rows.ts.tolist())) == [
        (0, 10), (0, 20), (0, 30), (1, 5), (1, 25)]
    newest = cut_histories(rows, 3, newest=True, exact=False)
    assert newest.cut_at == 20
    assert newest.rows.ts.tolist() == [20, 30, 40, 25, 35]
    # lastN within the bound: a longer history is simply what lastN leaves out.
    exact = cut_histories(rows, 3, newest=True, exact=True)
    assert exact.cut_at is None and exact.rows.ts.tolist() == [20, 30, 40, 5, 25, 35]
    whole = cut_histories(rows, 4, newest=False, exact=False)
    assert whole.cut_at is None and len(whole.rows) == 7


def test_content_range_runs_in_the_answers_order():
    after = query(timerel="after", time_at="2020-08-01T12:03:00Z")
    assert content_range(after, Histories(batch([], [], []), None), []) is None
    cut = Histories(batch([], [], []), T0 + H)
    assert content_range(after, cut, [T0 + 60 * S]) == \
        "date-time 2020-08-01T12:03:00Z-2020-08-01T13:03:00Z/*"
    assert content_range(query(), cut, [T0 + 60 * S, T0]) == \
        "date-time 2020-08-01T12:03:00Z-2020-08-01T13:03:00Z/*"
    last = query(last_n="20", timerel="before", time_at="2021-01-01T01:01:00Z")
    assert content_range(last, Histories(batch([], [], []), T0), [T0]) == \
        "date-time 2021-01-01T01:01:00Z-2020-08-01T12:03:00Z/20"


def test_aggregation_of_the_spec_example():
    # GS CIM 014 020_11: speed 120, 80, 100 at 12:03, 12:05, 12:07; fuelLevel 67, 53, 40 at
    # 12:03, 13:05, 14:07; hours from 12:03.
    minutes = [0, 2, 4, 0, 62, 124]
    rows = batch([0] * 6, [0, 0, 0, 1, 1, 1], [T0 + m * 60 * S for m in minutes],
                 [120, 80, 100, 67, 53, 40])
    series = np.array([0, 0, 0, 1, 1, 1])
    got = aggregate(rows, series, np.array([T0, T0]), parse_duration("PT1H"), ["avg", "max"],
                    np.array([0, 0]))
    assert got.series.tolist() == [0, 1, 1, 1]
    assert [iso(t) for t in got.start] == ["2020-08-01T12:03:00Z", "2020-08-01T12:03:00Z",
                                           "2020-08-01T13:03:00Z", "2020-08-01T14:03:00Z"]
    assert [iso(t) for t in got.end][1] == "2020-08-01T13:03:00Z"
    assert got.values["avg"].tolist() == [100.0, 67.0, 53.0, 40.0]
    assert got.values["max"].tolist() == [120.0, 67.0, 53.0, 40.0]


def test_every_method_agrees_with_a_plain_computation():
    rng = np.random.default_rng(7)
    ts = np.sort(rng.integers(0, 10 * H, 500))
    values = rng.integers(0, 20, 500).astype(float)  # repeats, for distinctCount
    rows = batch([0] * 500, [0] * 500, ts, values)
    got = aggregate(rows, np.zeros(500, np.int64), np.array([0]), Duration(0, 3 * H),
                    AGGR_METHODS, np.array([0]))
    assert got.start.tolist() == [0, 3 * H, 6 * H, 9 * H]
    for i, start in enumerate(got.start.tolist()):
        v = values[(ts >= start) & (ts < start + 3 * H)]
        expect = {"totalCount": len(v), "distinctCount": len(set(v.tolist())),
                  "sum": v.sum(), "avg": v.mean(), "min": v.min(), "max": v.max(),
                  "stddev": v.std(ddof=1), "sumsq": (v * v).sum()}
        for method, value in expect.items():
            assert got.values[method][i] == pytest.approx(value), method


def test_whole_window_and_calendar_periods():
    jan = parse_time("2024-01-15T00:00:00Z", "t")
    ts = [jan, jan + 20 * 86400 * S, jan + 40 * 86400 * S, jan + 70 * 86400 * S]
    rows = batch([0] * 4, [0] * 4, ts, [1, 2, 3, 4])
    whole = aggregate(rows, np.zeros(4, np.int64), np.array([jan]), None, ["sum"],
                      np.array([jan + 100 * 86400 * S]))
    assert whole.values["sum"].tolist() == [10.0]
    assert whole.end.tolist() == [jan + 100 * 86400 * S]
    monthly = aggregate(rows, np.zeros(4, np.int64), np.array([jan]), parse_duration("P1M"),
                        ["totalCount"], np.array([0]))
    # 15 Jan - 15 Feb holds two, 15 Feb - 15 Mar one, 15 Mar - 15 Apr one (25 March).
    assert monthly.values["totalCount"].tolist() == [2.0, 1.0, 1.0]
    assert [iso(t)[:10] for t in monthly.start] == ["2024-01-15", "2024-02-15", "2024-03-15"]
    assert iso(int(monthly.end[-1]))[:10] == "2024-04-15"
    single = aggregate(batch([0], [0], [jan], [5.0]), np.zeros(1, np.int64), np.array([jan]),
                       None, ["stddev"], np.array([jan]))
    assert single.values["stddev"].tolist() == [0.0]


def test_a_context_entitys_instances_in_the_window():
    stamped = {"type": "Property", "value": 1, "observedAt": "2020-08-01T12:03:00Z"}
    bare = {"type": "Property", "value": 2}
    instances = [stamped, bare]
    assert current_instances(instances, query()) == [stamped, bare]
    assert current_instances(instances, query(timerel="after",
                                              time_at="2020-08-01T12:03:00Z")) == [stamped]
    assert current_instances(instances, query(timerel="before",
                                              time_at="2020-08-01T12:03:00Z")) == []
