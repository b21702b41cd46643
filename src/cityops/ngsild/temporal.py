"""The NGSI-LD temporal API's machinery (GS CIM 009 clauses 4.5.7-4.5.9, 4.5.19, 4.11, 5.7.3,
5.7.4, 6.3.10): the temporal query, reading attribute histories, and the three
representations (normalized instances, simplified `temporalValues`, `aggregatedValues`).

The history behind a device-backed entity is the readings history (`HistoryReader.series`):
each mapped attribute is one channel of one device, each reading one instance. A context
entity keeps no history, so its temporal evolution is its current state.

Everything an answer holds is bounded. An attribute gives at most `INSTANCE_CAP` instances in
one answer and one answer at most `ANSWER_INSTANCES`; aggregation reads at most
`AGGREGATE_ROWS` readings. Where the bound cuts a history, every attribute of every entity in
the answer is cut at the same instant, and the answer says so the spec's way (clause 6.3.10):
206 Partial Content with `Content-Range: date-time <start>-<end>/<size>`, so that the client
asks for the rest from `<end>` on without missing an instance of another attribute.

Time bounds (clause 4.11): `before` is exclusive, `after` inclusive, `between` includes its
lower bound and excludes its upper one - the readings history's own half-open windows.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cityops.domain.readings import ReadingBatch, series_ranks
from cityops.ngsild.errors import NgsiError

US = 1_000_000
NEVER = 2**62  # the history's open upper bound (microseconds)

INSTANCE_CAP = 1_000  # instances of one attribute in one answer
ANSWER_INSTANCES = 100_000  # instances in one answer, all attributes of all entities
AGGREGATE_ROWS = 2_000_000  # readings one aggregated answer may read (16 bytes a column)
MAX_PERIODS = 100_000  # aggregation periods one calendar-based duration may span
MAX_LAST_N = 100_000  # lastN beyond the caps only truncates, but it is still a number

TIMERELS = ("before", "after", "between")
TIMEPROPERTIES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
NUMERIC_ONLY = frozenset({"sum", "avg", "min", "max", "stddev", "sumsq"})


def bad(parameter: str, why: str) -> NgsiError:
    return NgsiError("BadRequestData", f"{parameter}: {why}")


# -- times and durations -------------------------------------------------------------------

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$")


def parse_time(raw: str, parameter: str) -> int:
    """A DateTime (clause 4.6.3: a date, a time and a zone) as epoch microseconds. A date
    alone, or a time without a zone, is refused: it names no instant."""
    text = raw.strip()
    if not _DATE_TIME.match(text):
        raise bad(parameter, f"{raw[:60]!r} is not a DateTime such as 2024-05-01T12:00:00Z")
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most 6 fraction digits; the history holds microseconds
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end():]}"
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad(parameter, f"{raw[:60]!r} is not a valid date and time") from None
    return (calendar.timegm(when.utctimetuple()) * US + when.microsecond)


def iso(ts_us: int) -> str:
    """RFC 3339 in UTC with `Z`, with a fraction only when the instant has one."""
    seconds, micros = divmod(int(ts_us), US)
    when = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{micros:06d}Z" if micros else f"{text}Z"


_DURATION = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:[.,]\d+)?)S)?)?$")


@dataclass(frozen=True)
class Duration:
    """An ISO 8601 duration: calendar months (years are twelve) and a fixed part. Months are
    kept apart because their length varies: P1M from 31 January is 28 or 29 February."""

    months: int
    micros: int

    @property
    def zero(self) -> bool:
        return self.months == 0 and self.micros == 0

    def after(self, start_us: int, n: int) -> int:
        """The instant `n` durations after `start_us`."""
        if not self.months:
            return start_us + n * self.micros
        when = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=start_us)
        month = when.year * 12 + when.month - 1 + n * self.months
        year, month0 = divmod(month, 12)
        if not 1 <= year <= 9999:
            return NEVER
        day = min(when.day, calendar.monthrange(year, month0 + 1)[1])
        moved = when.replace(year=year, month=month0 + 1, day=day)
        return _us(moved) + n * self.micros


def _us(when: dt.datetime) -> int:
    return calendar.timegm(when.timetuple()) * US + when.microsecond


def parse_duration(raw: str, parameter: str = "aggrPeriodDuration") -> Duration:
    text = raw.strip().upper()
    found = _DURATION.match(text)
    if not found or text in ("P", "PT") or text.endswith("T"):
        raise bad(parameter, f"{raw[:60]!r} is not an ISO 8601 duration such as PT1H or P1D")
    part = {k: v for k, v in found.groupdict().items() if v is not None}
    months = int(part.get("y", 0)) * 12 + int(part.get("mo", 0))
    days = int(part.get("w", 0)) * 7 + int(part.get("d", 0))
    seconds = (days * 86_400 + int(part.get("h", 0)) * 3600 + int(part.get("mi", 0)) * 60)
    micros = seconds * US + round(float(part.get("s", "0").replace(",", ".")) * US)
    if months > 12 * 10_000 or micros > 10_000 * 366 * 86_400 * US:
        raise bad(parameter, f"{raw[:60]!r} is longer than ten thousand years")
    return Duration(months, micros)


# -- the temporal query --------------------------------------------------------------------

NORMALIZED, SIMPLIFIED, AGGREGATED = "normalized", "temporalValues", "aggregatedValues"


@dataclass(frozen=True)
class TemporalQuery:
    timerel: str | None = None
    time_at: int | None = None
    end_time_at: int | None = None
    last_n: int | None = None
    timeproperty: str = "observedAt"
    representation: str = NORMALIZED
    methods: tuple[str, ...] = ()
    period: Duration | None = None

    @property
    def window(self) -> tuple[int, int]:
        """[from, to) in epoch microseconds."""
        if self.timerel == "before":
            assert self.time_at is not None
            return -NEVER, self.time_at
        if self.timerel == "after":
            assert self.time_at is not None
            return self.time_at, NEVER
        if self.timerel == "between":
            assert self.time_at is not None and self.end_time_at is not None
            return self.time_at, self.end_time_at
        return -NEVER, NEVER


def temporal_query(*, timerel: str | None, time_at: str | None, end_time_at: str | None,
                   last_n: str | int | None, timeproperty: str | None,
                   options: Sequence[str] = (), aggr_methods: str | Sequence[str] | None = None,
                   aggr_period: str | None = None) -> TemporalQuery:
    """The temporal query of a request, checked; each fault names its parameter."""
    if timerel is not None and timerel not in TIMERELS:
        raise bad("timerel", f"{timerel[:40]!r} is none of before, after, between")
    if timerel is None and (time_at is not None or end_time_at is not None):
        raise bad("timerel", "is required with timeAt or endTimeAt")
    at = end = None
    if timerel is not None:
        if time_at is None or not time_at.strip():
            raise bad("timeAt", f"is required with timerel={timerel}")
        at = parse_time(time_at, "timeAt")
        if timerel == "between":
            if end_time_at is None or not end_time_at.strip():
                raise bad("endTimeAt", "is required with timerel=between")
            end = parse_time(end_time_at, "endTimeAt")
            if end <= at:
                raise bad("endTimeAt", "must be after timeAt")
        elif end_time_at is not None and end_time_at.strip():
            parse_time(end_time_at, "endTimeAt")  # malformed is refused even where unused
    n = _last_n(last_n)
    prop = timeproperty or "observedAt"
    if prop not in TIMEPROPERTIES:
        raise bad("timeproperty", f"{prop[:40]!r} is none of {', '.join(TIMEPROPERTIES)}")
    representation = NORMALIZED
    if "temporalValues" in options and "aggregatedValues" in options:
        raise bad("options", "temporalValues and aggregatedValues exclude each other")
    if "temporalValues" in options:
        representation = SIMPLIFIED
    elif "aggregatedValues" in options:
        representation = AGGREGATED
    methods = _methods(aggr_methods)
    period = parse_duration(aggr_period) if aggr_period is not None else None
    if representation == AGGREGATED and not methods:
        raise bad("aggrMethods", "is required with options=aggregatedValues")
    return TemporalQuery(timerel, at, end, n, prop, representation, methods, period)


def _last_n(raw: str | int | None) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not (isinstance(raw, int) or re.fullmatch(r"\d{1,12}", raw)):
        raise bad("lastN", f"{str(raw)[:40]!r} is not a positive integer")
    n = int(raw)
    if n < 1:
        raise bad("lastN", "must be a positive integer")
    return min(n, MAX_LAST_N)


def _methods(raw: str | Sequence[str] | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for item in items:
        name = item.strip() if isinstance(item, str) else ""
        if name not in AGGR_METHODS:
            raise bad("aggrMethods", f"{str(item)[:40]!r} is none of {', '.join(AGGR_METHODS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise bad("aggrMethods", "names no aggregation method")
    return tuple(out)


# -- reading the histories, bounded ---------------------------------------------------------


@dataclass
class Histories:
    """The readings of an answer's device-backed attributes, ordered by device, channel and
    time, and where a bound cut them (`cut_at`: None when nothing was cut)."""

    rows: ReadingBatch
    cut_at: int | None = None


def read_histories(reader: Any, devices: Sequence[int], query: TemporalQuery, *,
                   series: int, aggregate: bool = False) -> Histories:
    """The readings of `devices` in the query's window: the oldest first, or the last `lastN`
    of each channel (not with aggregation, where lastN counts periods). `series` is how many
    attributes the answer holds, so that the answer's own bound is shared between them. One
    reading more than the bound is read, which tells whether it cut a history."""
    start, end = query.window
    newest = query.last_n is not None and not aggregate
    if aggregate:
        per = max(1, AGGREGATE_ROWS // max(1, series))
    else:
        per = min(INSTANCE_CAP, max(1, ANSWER_INSTANCES // max(1, series)))
        if query.last_n is not None:
            per = min(per, query.last_n)
    exact = newest and query.last_n is not None and per >= query.last_n
    rows: ReadingBatch = reader.series(list(devices), start, end, per + 1, newest=newest)
    return cut_histories(rows, per, newest=newest, exact=exact)


def cut_histories(rows: ReadingBatch, per: int, *, newest: bool, exact: bool) -> Histories:
    """Keep at most `per` readings of each series (read with one more than that), cut every
    series at the same instant. `exact`: `per` is what the client asked for (lastN), so a
    series longer than it is not a truncation."""
    if not len(rows):
        return Histories(rows)
    first, sizes, rank = series_ranks(rows, newest)
    over = sizes > per
    if not over.any():
        return Histories(rows)
    kept = rows.take(np.flatnonzero(rank < per))
    if exact:
        return Histories(kept)
    # Where each truncated series stops: every series is cut there too, so the answer holds
    # every instance up to that instant and none past it.
    edge = np.flatnonzero(rank == per - 1)
    edge = edge[over[np.searchsorted(first, edge, side="right") - 1]]
    if newest:
        cut = int(rows.ts[edge].max())
        kept = kept.take(np.flatnonzero(kept.ts >= cut))
    else:
        cut = int(rows.ts[edge].min())
        kept = kept.take(np.flatnonzero(kept.ts <= cut))
    return Histories(kept, cut)


def content_range(query: TemporalQuery, histories: Histories,
                  shown: Sequence[int]) -> str | None:
    """The Content-Range of a cut answer: from where the answer starts to where it was cut,
    in the answer's order (newest first with lastN), `/lastN` or `/*`."""
    if histories.cut_at is None:
        return None
    start, end = query.window
    newest = query.last_n is not None
    if newest:
        first = end if end < NEVER else (max(shown) if shown else histories.cut_at)
    else:
        first = start if start > -NEVER else (min(shown) if shown else histories.cut_at)
    size = str(query.last_n) if query.last_n is not None else "*"
    return f"date-time {iso(first)}-{iso(histories.cut_at)}/{size}"


# -- aggregation ---------------------------------------------------------------------------


@dataclass
class Aggregates:
    """Per (series, period) group of the readings: which series, its period's bounds and each
    method's value (NaN where a method has no value)."""

    series: np.ndarray  # index into the series the rows were grouped by
    start: np.ndarray  # period start, epoch microseconds
    end: np.ndarray
    values: dict[str, np.ndarray]


def aggregate(rows: ReadingBatch, series_of_row: np.ndarray, origin_of_series: np.ndarray,
              period: Duration | None, methods: Sequence[str], whole_end: np.ndarray
              ) -> Aggregates:
    """Aggregate readings (ordered by series, then time) per series and period, vectorised.

    Periods of a series run from its origin in steps of `period`; without one (or P0D) a
    series is one period, from its origin to `whole_end`. Periods without readings are left
    out. `stddev` is the sample standard deviation (0 for a single reading), as PostgreSQL's.
    """
    n = len(rows)
    if n == 0:
        empty_i, empty_f = np.empty(0, np.int64), np.empty(0, np.float64)
        return Aggregates(empty_i, empty_i, empty_i, {m: empty_f for m in methods})
    ts = rows.ts.astype(np.int64)
    origin = origin_of_series[series_of_row]
    if period is None or period.zero:
        k = np.zeros(n, np.int64)
    elif not period.months:
        k = (ts - origin) // period.micros
    else:
        k = _calendar_periods(ts, series_of_row, origin_of_series, period)
    starts = np.ones(n, bool)
    starts[1:] = (series_of_row[1:] != series_of_row[:-1]) | (k[1:] != k[:-1])
    first = np.flatnonzero(starts)
    sizes = np.diff(np.append(first, n))
    group = np.repeat(np.arange(len(first)), sizes)
    series = series_of_row[first]
    kk = k[first]
    if period is None or period.zero:
        p_start = origin_of_series[series]
        p_end = whole_end[series]
    elif not period.months:
        p_start = origin_of_series[series] + kk * period.micros
        p_end = p_start + period.micros
    else:
        p_start = np.array([period.after(int(o), int(i))
                            for o, i in zip(origin_of_series[series], kk)], np.int64)
        p_end = np.array([period.after(int(o), int(i) + 1)
                          for o, i in zip(origin_of_series[series], kk)], np.int64)
    v = rows.value.astype(np.float64)
    values: dict[str, np.ndarray] = {}
    total = np.add.reduceat(v, first)
    for m in methods:
        if m == "totalCount":
            values[m] = sizes.astype(np.float64)
        elif m == "sum":
            values[m] = total
        elif m == "avg":
            values[m] = total / sizes
        elif m == "min":
            values[m] = np.minimum.reduceat(v, first)
        elif m == "max":
            values[m] = np.maximum.reduceat(v, first)
        elif m == "sumsq":
            values[m] = np.add.reduceat(v * v, first)
        elif m == "stddev":
            dev = v - np.repeat(total / sizes, sizes)
            squares = np.add.reduceat(dev * dev, first)
            values[m] = np.sqrt(squares / np.maximum(sizes - 1, 1))
        elif m == "distinctCount":
            order = np.lexsort((v, group))
            g, sv = group[order], v[order]
            new = np.ones(n, bool)
            new[1:] = (g[1:] != g[:-1]) | (sv[1:] != sv[:-1])
            values[m] = np.bincount(g[new], minlength=len(first)).astype(np.float64)
    return Aggregates(series, p_start, p_end, values)


def _calendar_periods(ts: np.ndarray, series_of_row: np.ndarray, origin_of_series: np.ndarray,
                      period: Duration) -> np.ndarray:
    """Period index of each reading for a duration with months: each series' boundaries are
    laid out from its origin (bounded by MAX_PERIODS) and the readings found among them."""
    k = np.empty(len(ts), np.int64)
    for s in np.unique(series_of_row):
        at = np.flatnonzero(series_of_row == s)
        origin = int(origin_of_series[s])
        last = int(ts[at].max())
        bounds = [origin]
        while bounds[-1] <= last:
            if len(bounds) > MAX_PERIODS:
                raise NgsiError("TooManyResults", f"aggrPeriodDuration: more than "
                                f"{MAX_PERIODS:,} periods between the first and last instance")
            bounds.append(period.after(origin, len(bounds)))
        k[at] = np.searchsorted(np.asarray(bounds, np.int64), ts[at], side="right") - 1
    return k


def aggregate_json(value: float, method: str) -> float | int | None:
    if math.isnan(value):
        return None
    if method in ("totalCount", "distinctCount"):
        return int(value)
    return float(value)


# -- the representations -------------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    """How one mapped attribute stands in the history: which channel of the device, and the
    attribute's instance as the current entity shows it (type, unitCode ...)."""

    attr: str  # the expanded attribute IRI
    channel: int
    unit_code: str | None = None
    kind: str = "Property"


def instance_id(device_id: str, channel: str, ts_us: int) -> str:
    """A reading's instance id: stable, as a reading never moves."""
    return f"urn:ngsi-ld:Reading:{device_id}:{channel}:{ts_us}"


def series_instances(channel: Channel, ts: np.ndarray, values: np.ndarray, device_id: str,
                     channel_name: str, representation: str) -> list[Any] | dict[str, Any]:
    """One attribute's instances in the normalized or simplified representation."""
    times = [iso(t) for t in ts.tolist()]
    if representation == SIMPLIFIED:
        return {"type": channel.kind, "values": [[v, t] for v, t in zip(values.tolist(), times)]}
    out = []
    for t_us, t, v in zip(ts.tolist(), times, values.tolist()):
        instance: dict[str, Any] = {"type": channel.kind, "value": v, "observedAt": t,
                                    "instanceId": instance_id(device_id, channel_name, t_us)}
        if channel.unit_code:
            instance["unitCode"] = channel.unit_code
        out.append(instance)
    return out


def current_instances(instances: Sequence[Mapping[str, Any]], query: TemporalQuery
                      ) -> list[Mapping[str, Any]]:
    """A context entity's attribute instances (its current state) that fall in the window:
    by the query's time property where they carry it; without it an instance has no time
    and is shown only when no timerel is asked."""
    start, end = query.window
    out = []
    for instance in instances:
        stamp = instance.get(query.timeproperty)
        if not isinstance(stamp, str):
            if query.timerel is None:
                out.append(instance)
            continue
        try:
            at = parse_time(stamp, query.timeproperty)
        except NgsiError:
            continue
        if start <= at < end:
            out.append(instance)
    return out
