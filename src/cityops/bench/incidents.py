"""`cityops bench incidents`: the incident list (`GET /api/v1/incidents`) over a year of cases.

A year of the Pudong city's cases (1,000,000 by default) is made column-wise with numpy from a
seed, built into `Incident`s chunk by chunk and bulk-loaded with `Store.insert_incidents`.
Then a fixed mix of the filtered first pages an operator's screen asks for, and the second
pages behind them (the `before` cursor), is timed one query at a time: straight on the store,
and optionally over HTTP on a node serving the same store.

The data is kept between runs (a SQLite file in the work dir, or a PostgreSQL schema of its
own) and reused when it holds the same count and seed, because loading takes minutes.

What the data looks like, and why:

- reported over the year before `NOW`, more by day than by night and fewer at weekends;
- categories in proportions of an urban grid's case mix (parking, garbage and street vending
  common; fires and typhoons rare), villages weighted by a skewed "busyness" (communities of
  the urban streets busier than rural villages);
- each case walks the real workflow (collected, registered, dispatched to every department
  of its category, accepted, done, verified, closed) with step durations drawn from
  log-normal laws scaled to the category's limits, a few cases stalling for weeks at one
  step, a few cancelled, a few orders returned by the wrong department or parked; the status
  is where the case stands at `NOW`, so open cases are mostly recent, as in a real city;
- deadlines follow the category's limits (a working hour counted as three wall-clock hours,
  a working day as 1.4 days: the data needs the right order of magnitude, not the calendar),
  and every deadline past at `NOW` has been escalated as the scheduler would have (up to the
  district centre, then marked overdue), so a node started on the data at `NOW` finds
  nothing left to escalate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import h3
import msgspec
import numpy as np
import shapely

from cityops.domain.city import AreaCodes, CityPack, Level as AreaLevel
from cityops.domain.geo import local_authority
from cityops.domain.incidents.model import (
    Incident,
    Level,
    OrderStatus,
    Status,
    WorkOrder,
)
from cityops.domain.workclock import Limit
from cityops.store.base import IncidentFilter, Store, open_store
from cityops.store.incident_rows import Columns, columns_of

DAY = 86_400.0
YEAR = 365 * DAY
# The data's "now": 10:00 in Shanghai on a Monday. Fixed, so that data kept from an earlier
# run still has the same open and overdue cases.
NOW = dt.datetime(2026, 11, 16, 2, 0, tzinfo=dt.UTC).timestamp()
UTC_OFFSET_S = 8 * 3600  # Asia/Shanghai, no daylight saving
META_KEY = "bench.incidents"
DATA_VERSION = 1  # bump when the generator changes: kept data of an older one is reloaded
BENCH_SCHEMA = "cityops_bench_incidents"
CHUNK = 20_000
MAX_ORDERS = 5

# Reports per local hour of the day (night shifts see few; the day and evening most).
HOURLY = np.array([0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.5, 3.0, 5.0, 6.0, 6.0, 5.5,
                   5.0, 5.5, 6.0, 6.0, 5.5, 5.0, 4.5, 4.0, 3.5, 2.5, 1.5, 0.8])
WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.7])  # Monday first

# Cases per 1,000 in an urban grid's year; a category not named here (a city's own) gets 10.
CATEGORY_MIX = {
    "component.public_facility.damaged": 40, "component.public_facility.manhole_cover": 15,
    "component.public_facility.street_lamp": 30, "component.public_facility.fire_hydrant": 5,
    "component.iot_device.fault": 40, "event.environment.noise_nuisance": 60,
    "event.sanitation.exposed_garbage": 120, "event.sanitation.street_cleaning": 70,
    "event.sanitation.garbage": 60, "event.construction.illegal_construction": 25,
    "event.construction.illegal_structure_demolition": 8, "event.greening.maintenance": 40,
    "event.street_order.fire_lane_blocked": 20, "event.street_order.muck_truck": 15,
    "event.street_order.illegal_parking": 150, "event.street_order.street_vending": 80,
    "event.transport.street_condition": 50, "event.housing.heat_hot_water": 10,
    "event.housing.building_condition": 30, "event.social_services.elderly_welfare_check": 15,
    "event.operations.vital_sign_anomaly": 5, "event.emergency.waterlogging": 5,
    "event.emergency.fire": 2, "event.emergency.fire_alarm_cluster": 2,
    "event.emergency.vehicle_fire": 1, "event.emergency.traffic_accident": 12,
    "event.emergency.typhoon": 0.3,
}
SOURCES = ("inspector", "hotline", "citizen", "open311", "video", "sensor")
SOURCE_MIX = np.array([0.35, 0.25, 0.10, 0.05, 0.12, 0.13])
CANCEL_REASONS = ("duplicate report", "not a matter for the city", "false report")

STATUSES = (Status.COLLECTED, Status.REGISTERED, Status.CANCELLED, Status.DISPATCHED,
            Status.ACCEPTED, Status.HANDLED, Status.VERIFIED, Status.CLOSED)
S_COLLECTED, S_REGISTERED, S_CANCELLED, S_DISPATCHED, S_ACCEPTED, S_HANDLED, S_VERIFIED, \
    S_CLOSED = range(8)
ORDER_STATUSES = (None, OrderStatus.DISPATCHED, OrderStatus.ACCEPTED, OrderStatus.PARKED,
                  OrderStatus.DONE, OrderStatus.RETURNED, OrderStatus.WITHDRAWN)
O_NONE, O_DISPATCHED, O_ACCEPTED, O_PARKED, O_DONE, O_RETURNED, O_WITHDRAWN = range(7)
LEVELS = (Level.VILLAGE, Level.TOWN, Level.DISTRICT)


def wall_seconds(text: str) -> float:
    limit = Limit.parse(text)
    per_unit = {"minutes": 60.0, "hours": 3600.0, "working_hours": 3 * 3600.0,
                "working_days": 1.4 * DAY}
    return limit.amount * per_unit[limit.unit]


def _lognormal(rng: np.random.Generator, median, sigma: float, size) -> np.ndarray:
    return np.asarray(median) * rng.lognormal(0.0, sigma, size)


# -- the data, column-wise ------------------------------------------------------------------


@dataclass
class CityTables:
    """What the generator needs of the city, as arrays and lookup lists."""

    villages: list[str]
    village_weight: np.ndarray
    village_names: list[str]
    areas: list[AreaCodes]
    points: np.ndarray  # (villages, K, 2) lon, lat inside each village
    cells: list[list[str]]  # (villages, K) H3 cell of each point
    owners: np.ndarray  # (villages, K) 1 + department index of the cell's owner, or 0
    departments: list[str]
    categories: list  # Category
    category_weight: np.ndarray
    dept_table: np.ndarray  # (categories, 1 + departments, MAX_ORDERS) department per slot
    dept_count: np.ndarray  # (categories, 1 + departments)
    staff: dict[str, list[str]]  # village or town -> staff ids of that beat


def city_tables(pack: CityPack, seed: int, points_per_village: int = 24) -> CityTables:
    rng = np.random.default_rng([seed, 4, 1])
    villages = [a for a in pack.areas if a.level is AreaLevel.VILLAGE]
    departments = [d.code for d in pack.departments]
    dept_index = {d: i for i, d in enumerate(departments)}
    k = points_per_village
    points = np.zeros((len(villages), k, 2))
    for v, area in enumerate(villages):
        shape = shapely.geometry.shape(area.geometry)
        x0, y0, x1, y1 = shape.bounds
        got = np.zeros((0, 2))
        while len(got) < k:
            xy = rng.uniform((x0, y0), (x1, y1), (4 * k, 2))
            got = np.vstack([got, xy[shapely.contains_xy(shape, xy[:, 0], xy[:, 1])]])
        points[v] = np.round(got[:k], 6)
    resolution = pack.info.h3_resolution
    cells = [[h3.latlng_to_cell(lat, lon, resolution) for lon, lat in row] for row in points]
    owners = np.zeros((len(villages), k), dtype=np.int16)
    for v, row in enumerate(cells):
        for j, cell in enumerate(row):
            owner = pack.cell_owners.get(cell, "")
            if owner in dept_index:  # a department keeping that ground (park, main road)
                owners[v, j] = 1 + dept_index[owner]
    # Urban street communities see more cases than rural villages; within each, busyness is
    # skewed (a market street, a transport hub).
    urban = np.array([int(a.code[6:9]) <= 12 for a in villages])
    weight = rng.lognormal(0.0, 0.6, len(villages)) * np.where(urban, 2.5, 1.0)
    categories = list(pack.categories)
    cat_weight = np.array([CATEGORY_MIX.get(c.code, 10.0) for c in categories])
    table = np.full((len(categories), 1 + len(departments), MAX_ORDERS), -1, dtype=np.int16)
    count = np.zeros((len(categories), 1 + len(departments)), dtype=np.int16)
    for c, cat in enumerate(categories):
        for o in range(1 + len(departments)):
            owner = departments[o - 1] if o else None
            chosen: list[int] = []
            for d in cat.departments:  # as Rules.route: city management stands for the owner
                d = owner if d == "city_management" and owner else d
                if d in dept_index and dept_index[d] not in chosen:
                    chosen.append(dept_index[d])
            chosen = chosen[:MAX_ORDERS]
            table[c, o, :len(chosen)] = chosen
            count[c, o] = len(chosen)
    staff: dict[str, list[str]] = {}
    for person in pack.staff:
        staff.setdefault(person.home_area, []).append(person.id)
    by_code = {a.code: a for a in pack.areas}
    return CityTables(
        villages=[a.code for a in villages],
        village_weight=weight / weight.sum(),
        village_names=[a.name for a in villages],
        areas=[AreaCodes(by_code[a.parent].parent, a.parent, a.code) for a in villages],
        points=points, cells=cells, owners=owners, departments=departments,
        categories=categories, category_weight=cat_weight / cat_weight.sum(),
        dept_table=table, dept_count=count, staff=staff,
    )


@dataclass
class Cases:
    """A year of cases as columns (row i is case i, oldest first). Times are epoch seconds,
    NaN where a step has not happened (or a deadline is not set)."""

    n: int
    ids: np.ndarray  # int64, 48 bits: "inc-%012x"
    reported: np.ndarray
    village: np.ndarray
    point: np.ndarray
    category: np.ndarray
    source: np.ndarray
    status: np.ndarray
    registered: np.ndarray
    dispatched: np.ndarray
    accepted: np.ndarray
    handled: np.ndarray
    verified: np.ndarray
    closed: np.ndarray
    cancelled: np.ndarray
    updated: np.ndarray
    dispatch_due: np.ndarray
    close_due: np.ndarray
    reports: np.ndarray
    last_report: np.ndarray
    voided: np.ndarray
    version: np.ndarray
    # Work orders, (n, MAX_ORDERS); slot status O_NONE means no order.
    o_dept: np.ndarray
    o_status: np.ndarray
    o_level: np.ndarray
    o_escalations: np.ndarray
    o_overdue: np.ndarray
    o_accept_due: np.ndarray
    o_finish_due: np.ndarray
    o_accepted: np.ndarray
    o_done: np.ndarray
    o_returned: np.ndarray  # when the wrong department sent it back
    o_parked: np.ndarray
    o_pick: np.ndarray  # random draw for the assignee and other per-order choices


def _report_times(rng: np.random.Generator, n: int, now: float) -> np.ndarray:
    local_now = now + UTC_OFFSET_S
    first_day = np.floor(local_now / DAY) - 365  # local midnight a year ago
    out = np.zeros(0)
    hourly = HOURLY / HOURLY.sum()
    while len(out) < n:
        m = int((n - len(out)) * 1.4) + 16
        day = first_day + rng.integers(0, 366, m)
        local = day * DAY + rng.choice(24, m, p=hourly) * 3600.0 + rng.uniform(0, 3600, m)
        weekday = ((day.astype(np.int64) + 3) % 7)  # 1970-01-01 was a Thursday
        keep = (rng.random(m) < WEEKDAY[weekday]) & (local < local_now)
        out = np.concatenate([out, np.round(local[keep] - UTC_OFFSET_S, 3)])
    return np.sort(out[:n])


def _unique_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    ids = rng.integers(0, 1 << 48, n, dtype=np.int64)
    while True:
        _, first = np.unique(ids, return_index=True)
        if len(first) == n:
            return ids
        again = np.ones(n, dtype=bool)
        again[first] = False
        ids[again] = rng.integers(0, 1 << 48, int(again.sum()), dtype=np.int64)


def make_cases(city: CityTables, n: int, seed: int, now: float = NOW) -> Cases:
    """The whole year, vectorised; deterministic for (city, n, seed, now)."""
    rng = np.random.default_rng([seed, 4, 2, n])
    nan = np.nan
    cats = city.categories
    urgent = np.array([c.urgent for c in cats])
    lim = {step: np.array([wall_seconds(getattr(c.limits, step)) for c in cats])
           for step in ("dispatch", "accept", "finish", "verify")}

    reported = _report_times(rng, n, now)
    village = rng.choice(len(city.villages), n, p=city.village_weight).astype(np.int16)
    point = rng.integers(0, city.points.shape[1], n).astype(np.int16)
    category = rng.choice(len(cats), n, p=city.category_weight).astype(np.int16)
    source = rng.choice(len(SOURCES), n, p=SOURCE_MIX).astype(np.int8)
    u = urgent[category]

    def stall(p: float, mean_days: float, size) -> np.ndarray:
        return np.where(rng.random(size) < p, rng.exponential(mean_days * DAY, size), 0.0)

    t_reg = reported + _lognormal(rng, np.where(u, 60.0, 480.0), 0.9, n) + stall(0.01, 20, n)
    t_disp = t_reg + _lognormal(rng, np.where(u, 60.0, 720.0), 0.9, n) + stall(0.005, 20, n)

    # Orders: the category's departments (the cell's keeper for city management), and for a
    # few cases a wrong department first, which sends its order back.
    owner = city.owners[village, point]
    n_real = city.dept_count[category, owner].astype(np.int64)
    dept = city.dept_table[category, owner].copy()  # (n, MAX_ORDERS)
    wrong = (rng.random(n) < 0.06) & (n_real < MAX_ORDERS)
    rows = np.flatnonzero(wrong)
    dept[rows, n_real[rows]] = rng.integers(0, len(city.departments), len(rows))
    slot = np.arange(MAX_ORDERS)[None, :]
    is_real = slot < n_real[:, None]
    is_wrong = wrong[:, None] & (slot == n_real[:, None])

    shape = (n, MAX_ORDERS)
    acc = t_disp[:, None] + _lognormal(rng, np.where(u, 120.0, 1200.0)[:, None], 1.0, shape) \
        + stall(0.01, 60, shape)
    fin_median = 0.45 * lim["finish"][category]
    done = acc + _lognormal(rng, fin_median[:, None], 0.8, shape)
    done[:, 0] += stall(0.04, 120, n)  # a case stuck for weeks waiting on one unit
    acc = np.where(is_real | is_wrong, acc, nan)
    done = np.where(is_real, done, nan)
    t_hand = np.fmax.reduce(done, axis=1)  # NaN for a case with no order
    t_ver = t_hand + _lognormal(rng, np.where(u, 1200.0, 7200.0), 0.9, n) + stall(0.02, 45, n)
    t_close = t_ver + _lognormal(rng, 900.0, 0.7, n) + stall(0.005, 10, n)

    # Cancellations: most before anyone was sent, some after (orders withdrawn).
    cancel = rng.random(n) < 0.04
    late_cancel = cancel & (rng.random(n) < 0.3)
    early_cancel = cancel & ~late_cancel
    t_cancel = np.where(early_cancel, reported + _lognormal(rng, 2400.0, 1.2, n),
                        t_disp + _lognormal(rng, 3600.0, 1.0, n))
    t_cancel = np.where(cancel, t_cancel, nan)
    t_reg = np.where(early_cancel, np.inf, t_reg)  # never registered
    t_disp = np.where(early_cancel, np.inf, t_disp)
    # A case can be cancelled only until it is handled; a later cancellation never happened.
    cancelled = cancel & (t_cancel <= now) & (early_cancel | (t_cancel < np.nan_to_num(t_hand)))

    live_wrong = is_wrong & (acc > now)  # the wrong unit has not sent it back yet
    pending_accept = ((is_real | live_wrong) & (acc > now)).any(axis=1)
    pending_done = (is_real & (done > now)).any(axis=1)
    status = np.select(
        [cancelled, t_reg > now, t_disp > now, pending_accept, pending_done, t_ver > now,
         t_close > now],
        [S_CANCELLED, S_COLLECTED, S_REGISTERED, S_DISPATCHED, S_ACCEPTED, S_HANDLED,
         S_VERIFIED], S_CLOSED).astype(np.int8)
    sent = (t_disp <= now) & ~(early_cancel & cancelled)  # the case has work orders
    is_open = ~np.isin(status, (S_CANCELLED, S_CLOSED))

    o_status = np.zeros(shape, dtype=np.int8)
    has = sent[:, None] & (is_real | is_wrong)
    o_status[has & is_real & (acc > now)] = O_DISPATCHED
    o_status[has & is_real & (acc <= now) & (done > now)] = O_ACCEPTED
    o_status[has & is_real & (done <= now)] = O_DONE
    o_status[has & is_wrong] = np.where(acc[has & is_wrong] > now, O_DISPATCHED, O_RETURNED)
    parked = (o_status == O_ACCEPTED) & (rng.random(shape) < 0.05)
    o_status[parked] = O_PARKED
    withdrawn = (has & late_cancel[:, None] & cancelled[:, None]
                 & np.isin(o_status, (O_DISPATCHED, O_ACCEPTED, O_PARKED)))
    o_status[withdrawn] = O_WITHDRAWN
    parked &= ~withdrawn
    withdrawn_at = np.where(withdrawn, t_cancel[:, None], nan)
    parked_at = np.where(parked, now - rng.random(shape) * (now - np.nan_to_num(acc)), nan)

    # Deadlines as the dispatch set them, then escalated as the scheduler would have by now.
    start_level = np.where(u, 2, 0)
    accept_due = np.where(has, t_disp[:, None] + lim["accept"][category][:, None], nan)
    finish_due = np.where(has, t_disp[:, None] + lim["finish"][category][:, None], nan)
    close_due = np.where(sent, t_disp + lim["finish"][category] + lim["verify"][category], nan)
    level = np.where(has, start_level[:, None], 0).astype(np.int8)
    escalations = np.zeros(shape, dtype=np.int8)
    watched = is_open[:, None] & np.isin(o_status, (O_DISPATCHED, O_ACCEPTED))
    due = np.where(o_status == O_DISPATCHED, accept_due, finish_due)
    grace = np.broadcast_to(lim["accept"][category][:, None], shape)
    for _ in range(2):
        up = watched & (due <= now) & (level < 2)
        level[up] += 1
        escalations[up] += 1
        due = np.where(up, due + grace, due)
    overdue_order = watched & (due <= now) & (level == 2)
    accept_due = np.where(watched & (o_status == O_DISPATCHED), due, accept_due)
    finish_due = np.where(watched & (o_status == O_ACCEPTED), due, finish_due)
    # An undispatched case past its dispatch deadline: the scheduler has raised it and
    # cleared the deadline.
    dispatch_due = reported + lim["dispatch"][category]
    dispatch_due = np.where(np.isin(status, (S_COLLECTED, S_REGISTERED)) & (dispatch_due > now),
                            dispatch_due, nan)

    def when(t: np.ndarray, reached: np.ndarray) -> np.ndarray:
        return np.where(reached & (t <= now), t, nan)

    registered = when(t_reg, ~early_cancel)
    dispatched = when(t_disp, sent)
    accepted_at = np.fmax.reduce(np.where(is_real & (acc <= now), acc, nan), axis=1)
    accepted_at = np.where(sent & (status >= S_ACCEPTED) & ~cancelled, accepted_at, nan)
    handled = when(t_hand, status >= S_HANDLED)
    verified = when(t_ver, status >= S_VERIFIED)
    closed_at = when(t_close, status == S_CLOSED)
    cancelled_at = np.where(cancelled, t_cancel, nan)
    o_accepted = np.where(np.isin(o_status, (O_ACCEPTED, O_PARKED, O_DONE)), acc, nan)
    o_done = np.where(o_status == O_DONE, done, nan)
    o_returned = np.where(o_status == O_RETURNED, acc, nan)
    steps = np.column_stack([reported, registered, dispatched, accepted_at, handled, verified,
                             closed_at, cancelled_at,
                             np.fmax.reduce(np.column_stack([o_accepted, o_done, o_returned,
                                                             withdrawn_at]), axis=1)])
    updated = np.fmax.reduce(steps, axis=1)
    reports = 1 + rng.poisson(0.25, n)
    last_report = np.where(reports > 1,
                           reported + rng.random(n) * (updated - reported), reported)
    version = (1 + ~np.isnan(registered) + ~np.isnan(dispatched) + ~np.isnan(verified)
               + ~np.isnan(closed_at) + ~np.isnan(cancelled_at) + (reports - 1)
               + (~np.isnan(o_accepted)).sum(axis=1) + (~np.isnan(o_done)).sum(axis=1)
               + escalations.sum(axis=1) + (o_status == O_RETURNED).sum(axis=1))
    return Cases(
        n=n, ids=_unique_ids(rng, n), reported=reported, village=village, point=point,
        category=category, source=source, status=status, registered=registered,
        dispatched=dispatched, accepted=accepted_at, handled=handled, verified=verified,
        closed=closed_at, cancelled=cancelled_at, updated=updated, dispatch_due=dispatch_due,
        close_due=close_due, reports=reports, last_report=last_report,
        voided=cancelled & late_cancel, version=version.astype(np.int32),
        o_dept=dept, o_status=o_status, o_level=level, o_escalations=escalations,
        o_overdue=overdue_order, o_accept_due=accept_due, o_finish_due=finish_due,
        o_accepted=o_accepted, o_done=o_done, o_returned=o_returned, o_parked=parked_at,
        o_pick=rng.integers(0, 1 << 30, shape),
    )


def _f(x: float) -> float | None:
    return None if x != x else x  # NaN -> None


def build(city: CityTables, cases: Cases, start: int, stop: int) -> list[Incident]:
    """Cases start..stop as `Incident`s (the per-row part: plain Python over lists)."""
    sl = slice(start, stop)
    c = {name: getattr(cases, name)[sl].tolist() for name in (
        "ids", "reported", "village", "point", "category", "source", "status", "registered",
        "dispatched", "accepted", "handled", "verified", "closed", "cancelled", "updated",
        "dispatch_due", "close_due", "reports", "last_report", "voided", "version", "o_dept",
        "o_status", "o_level", "o_escalations", "o_overdue", "o_accept_due", "o_finish_due",
        "o_accepted", "o_done", "o_returned", "o_parked", "o_pick")}
    points = city.points.tolist()  # plain floats: msgspec encodes them, not numpy's
    cats = city.categories
    depts = city.departments
    out: list[Incident] = []
    for i in range(stop - start):
        inc_id = f"inc-{c['ids'][i]:012x}"
        v = c["village"][i]
        areas = city.areas[v]
        cat = cats[c["category"][i]]
        lon, lat = points[v][c["point"][i]]
        status = STATUSES[c["status"][i]]
        source = SOURCES[c["source"][i]]
        orders = []
        for k in range(MAX_ORDERS):
            code = c["o_status"][i][k]
            if code == O_NONE:
                continue
            ostatus = ORDER_STATUSES[code]
            level = LEVELS[c["o_level"][i][k]]
            area = getattr(areas, level.value)
            pick = c["o_pick"][i][k]
            staff = city.staff.get(areas.village) or city.staff.get(areas.town) or ()
            worked = code in (O_ACCEPTED, O_PARKED, O_DONE)
            orders.append(WorkOrder(
                id=f"{inc_id}-{len(orders) + 1}", department=depts[c["o_dept"][i][k]],
                level=level, area=area, unit=local_authority(area), status=ostatus,
                created=c["dispatched"][i] if c["dispatched"][i] == c["dispatched"][i]
                else c["reported"][i],
                accept_due=_f(c["o_accept_due"][i][k]), finish_due=_f(c["o_finish_due"][i][k]),
                accepted_at=_f(c["o_accepted"][i][k]), done_at=_f(c["o_done"][i][k]),
                assignee=staff[pick % len(staff)] if worked and staff and pick % 10 < 7
                else None,
                progress="on_site" if code == O_ACCEPTED and pick % 3 == 0 else "",
                note="done, photos attached" if code == O_DONE else "",
                photos=[f"photos/{inc_id}-{len(orders) + 1}.jpg"] if code == O_DONE else [],
                reason=("not this department's case" if code == O_RETURNED else
                        "case cancelled: duplicate report" if code == O_WITHDRAWN else
                        "waiting for a replacement part" if code == O_PARKED else ""),
                parked_at=_f(c["o_parked"][i][k]),
                escalations=c["o_escalations"][i][k], overdue=c["o_overdue"][i][k],
            ))
        alert = f"alert-{c['ids'][i] ^ 0x5bd1e995:012x}" if source in ("sensor", "video") else None
        out.append(Incident(
            id=inc_id, category=cat.code, kind=cat.kind, title=cat.name,
            description=f"{source} report near {city.village_names[v]}",
            source=source, status=status, urgency=cat.urgency, lat=lat, lon=lon, areas=areas,
            cell=city.cells[v][c["point"][i]], reported_at=c["reported"][i],
            updated_at=c["updated"][i], registered_at=_f(c["registered"][i]),
            dispatched_at=_f(c["dispatched"][i]), accepted_at=_f(c["accepted"][i]),
            handled_at=_f(c["handled"][i]), verified_at=_f(c["verified"][i]),
            closed_at=_f(c["closed"][i]), cancelled_at=_f(c["cancelled"][i]),
            dispatch_due=_f(c["dispatch_due"][i]), close_due=_f(c["close_due"][i]),
            reports=c["reports"][i], last_report_at=c["last_report"][i], orders=orders,
            default_departments=list(cat.departments), voided=c["voided"][i],
            alert_id=alert, version=c["version"][i],
            reason=CANCEL_REASONS[c["ids"][i] % 3] if status is Status.CANCELLED else "",
        ))
    return out


# -- loading, and reusing what an earlier run loaded -----------------------------------------


def bench_store_url(store: str | None, workdir: Path) -> str:
    """The store the benchmark fills: SQLite in the work dir by default; a PostgreSQL URL
    without `?schema=` gets a schema of the benchmark's own, never a node's `cityops`."""
    if not store:
        return f"sqlite:///{(workdir / 'incidents.db').resolve()}"
    if store.startswith(("postgresql:", "postgres:")):
        parts = urlsplit(store)
        query = parse_qsl(parts.query)
        if not any(k == "schema" for k, _ in query):
            store = urlunsplit(parts._replace(query=urlencode([*query,
                                                               ("schema", BENCH_SCHEMA)])))
    return store


def backend_of(url: str) -> str:
    return "postgresql" if url.startswith(("postgresql:", "postgres:")) else url.split(":")[0]


class Loaded(msgspec.Struct):
    count: int
    seed: int
    now: float
    load_s: float
    version: int = 0
    city: str = ""  # fingerprint of what the cases are made of (see city_fingerprint)


def city_fingerprint(pack: CityPack) -> str:
    """Changes when the generator's input from the city pack changes."""
    import hashlib

    parts = msgspec.json.encode([[a.code for a in pack.areas], pack.categories,
                                 [d.code for d in pack.departments],
                                 [(p.id, p.home_area) for p in pack.staff],
                                 sorted(pack.cell_owners.items()), pack.info.h3_resolution])
    return hashlib.blake2b(parts, digest_size=8).hexdigest()


async def loaded(store: Store) -> Loaded | None:
    raw = await store.get_meta(META_KEY)
    return None if raw is None else msgspec.json.decode(raw, type=Loaded)


def owned(url: str, workdir: Path) -> bool:
    """Data the benchmark may throw away: its own SQLite file or its own PostgreSQL schema."""
    if url.startswith("sqlite:"):
        return url == bench_store_url(None, workdir)
    from cityops.store.postgres import split_url

    return split_url(url)[1].startswith("cityops_bench")


async def _discard(url: str) -> None:
    if url.startswith("sqlite:"):
        from cityops.store.sqlite import sqlite_path

        path = sqlite_path(url)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240 (once, after the run)
        return
    import psycopg

    from cityops.store.postgres import split_url

    conninfo, schema = split_url(url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def prepare(url: str, count: int, seed: int, *, owned: bool,
                  city: str = "") -> tuple[Store, Loaded | None]:
    """Open the store; the earlier load if it is the one wanted, else an empty store (an
    owned store holding other data is emptied; someone else's is refused)."""
    store = open_store(url)
    await store.open()
    have = await loaded(store)
    if have is not None and (have.count, have.seed, have.now, have.version, have.city) == (
            count, seed, NOW, DATA_VERSION, city):
        return store, have
    if have is not None or await store.list_incidents(IncidentFilter(), limit=1):
        await store.close()
        if not owned:
            raise RuntimeError(f"{url} already holds incidents that are not this benchmark's "
                               f"{count:,} (seed {seed}); give it an empty store or schema")
        await _discard(url)
        store = open_store(url)
        await store.open()
    return store, None


async def settle(url: str) -> bool:
    """What PostgreSQL's autovacuum does soon after a bulk load, done at once (the benchmark
    server may run with it off): table statistics for the planner, and the visibility map
    that lets index-only scans skip the heap. SQLite gets nothing: a node never runs ANALYZE
    on its embedded store, so neither does the benchmark."""
    if backend_of(url) != "postgresql":
        return False
    import psycopg

    from cityops.store.postgres import split_url

    conninfo, schema = split_url(url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(f'VACUUM (ANALYZE) "{schema}".incidents, '
                           f'"{schema}".incident_departments')
    return True


async def load(store: Store, city: CityTables, cases: Cases, *, chunk: int = CHUNK,
               progress: Callable[[int], None] = lambda n: None) -> float:
    """Build and insert chunk after chunk, the next one built (in a thread) while the store
    takes the last; returns the seconds it took."""
    started = time.perf_counter()
    pending: asyncio.Task | None = None
    pending_n = 0
    for first in range(0, cases.n, chunk):
        stop = min(first + chunk, cases.n)
        incidents = await asyncio.to_thread(build, city, cases, first, stop)
        if pending is not None:
            await pending
            progress(pending_n)
        pending = asyncio.create_task(store.insert_incidents(incidents))
        pending_n = stop - first
    if pending is not None:
        await pending
        progress(pending_n)
    return time.perf_counter() - started


# -- the query mix --------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    kind: str
    filter: IncidentFilter
    # How the API is asked the same: query parameters, and the scope of the key asking
    # (role, scope) or None for an unscoped key. `http` False: no key of this city yields it.
    params: dict[str, str]
    key: tuple[str, str] | None = None
    http: bool = True
    warm: bool = False  # a warm-up query: run, not counted


KINDS = (
    "recent", "status", "status_set", "category", "area_district", "area_town", "area_village",
    "department", "overdue", "open", "status_area", "department_status", "category_area",
    "overdue_area", "scoped_town", "scoped_village_open", "scoped_department",
    "scoped_town_department",
)
# Tabs an operator keeps open: several statuses at once.
STATUS_SETS = (("dispatched", "accepted"), ("collected", "registered"),
               ("dispatched", "accepted", "handled"), ("handled", "verified"))


@dataclass
class Sample:
    """Stored cases the query parameters are drawn from, so that every query asks for
    something that exists, in the proportions it exists in."""

    any: list[Columns]
    open: list[Columns]
    overdue: list[Columns]
    districts: list[str]


async def sample(store: Store, now: float, *, span_s: float = YEAR, probes: int = 200,
                 per_probe: int = 20, seed: int = 1) -> Sample:
    rnd = random.Random(seed)
    seen: dict[str, Columns] = {}

    async def take(f: IncidentFilter, limit: int, before=None) -> list[Columns]:
        cols = [columns_of(i) for i in await store.list_incidents(f, limit=limit, before=before)]
        for c in cols:
            seen.setdefault(c.id, c)
        return cols

    await take(IncidentFilter(), per_probe)
    for _ in range(probes):
        await take(IncidentFilter(), per_probe, (now - rnd.random() * span_s, ""))
    open_ = await take(IncidentFilter(open=True), 1000)
    overdue = await take(IncidentFilter(overdue_at=now), 500)
    everything = sorted(seen.values(), key=lambda c: c.id)
    return Sample(everything, open_, overdue,
                  sorted({c.district for c in everything if c.district}))


def _area_params(f: IncidentFilter) -> dict[str, str]:
    out: dict[str, str] = {}
    if f.status:
        out["status"] = ",".join(f.status)
    if f.category is not None:
        out["category"] = f.category
    if f.area is not None:
        out["area"] = f.area
    if f.department is not None:
        out["department"] = f.department
    if f.overdue_at is not None:
        out["overdue"] = "true"
    if f.open is not None:
        out["open"] = "true" if f.open else "false"
    return out


def plan(s: Sample, *, rounds: int, now: float, seed: int = 1, warmup_rounds: int = 1,
         department_areas: Mapping[str, Sequence[str]] | None = None) -> list[Query]:
    """`rounds` rounds of every kind of query (after `warmup_rounds` not counted), each
    round in a shuffled order, parameters drawn afresh every time. A kind whose sample is
    empty (no overdue case, say) is left out."""
    rnd = random.Random(seed)
    pool = s.any + s.open
    with_depts = [c for c in pool if c.departments]
    open_depts = [c for c in s.open if c.departments]
    statuses = sorted({c.status for c in pool})
    categories = sorted({c.category for c in pool})
    departments = sorted({d for c in pool for d in c.departments})
    served = department_areas or {}

    def q(kind: str, key: tuple[str, str] | None = None, http: bool = True, **kw) -> Query:
        f = IncidentFilter(**kw)
        return Query(kind, f, _area_params(f), key, http)

    def area_of(c: Columns) -> str:
        return c.town if rnd.random() < 0.5 else c.village

    makers: dict[str, Callable[[], Query | None]] = {
        "recent": lambda: q("recent"),
        "status": lambda: q("status", status=(rnd.choice(statuses),)),
        "status_set": lambda: q("status_set", status=rnd.choice(STATUS_SETS)),
        "category": lambda: q("category", category=rnd.choice(categories)),
        "area_district": lambda: q("area_district", area=rnd.choice(pool).district),
        "area_town": lambda: q("area_town", area=rnd.choice(pool).town),
        "area_village": lambda: q("area_village", area=rnd.choice(pool).village),
        "department": lambda: q("department", department=rnd.choice(departments)),
        "overdue": lambda: q("overdue", overdue_at=now),
        "open": lambda: q("open", open=True),
    }

    def status_area() -> Query:
        c = rnd.choice(s.open or pool)
        return q("status_area", status=(c.status,), area=area_of(c))

    def department_status() -> Query:
        c = rnd.choice(open_depts if open_depts and rnd.random() < 0.5 else with_depts)
        return q("department_status", department=rnd.choice(c.departments), status=(c.status,))

    def category_area() -> Query:
        c = rnd.choice(pool)
        return q("category_area", category=c.category, area=area_of(c))

    def overdue_area() -> Query:
        return q("overdue_area", overdue_at=now, area=rnd.choice(s.overdue).town)

    def scoped_town() -> Query:  # an operator of one street or town
        town = rnd.choice(pool).town
        return q("scoped_town", ("operator", town), scope_areas=(town,))

    def scoped_village_open() -> Query:  # a village station's open cases
        village = rnd.choice(s.open or pool).village
        return q("scoped_village_open", ("station", village), scope_areas=(village,), open=True)

    def scoped_department() -> Query:  # a department's key, as the API narrows it
        dept = rnd.choice(departments)
        areas = tuple(served.get(dept, s.districts))
        return q("scoped_department", ("department", dept), scope_areas=areas,
                 scope_departments=(dept,))

    def scoped_town_department() -> Query:  # a department serving one town only
        return q("scoped_town_department", None, False, scope_areas=(rnd.choice(pool).town,),
                 scope_departments=(rnd.choice(departments),))

    makers.update(status_area=status_area, department_status=department_status,
                  category_area=category_area, overdue_area=overdue_area,
                  scoped_town=scoped_town, scoped_village_open=scoped_village_open,
                  scoped_department=scoped_department,
                  scoped_town_department=scoped_town_department)
    usable = [k for k in KINDS if pool and (k not in ("overdue", "overdue_area") or s.overdue)
              and (k not in ("department", "department_status", "scoped_department",
                             "scoped_town_department") or departments)]
    out: list[Query] = []
    for n in range(warmup_rounds + rounds):
        kinds = list(usable)
        rnd.shuffle(kinds)
        round_ = [makers[k]() for k in kinds]
        out += [replace(q, warm=True) for q in round_] if n < warmup_rounds else round_
    return out


# -- measuring ------------------------------------------------------------------------------

class Timings:
    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {}
        self.rows: dict[str, int] = {}

    def add(self, kind: str, seconds: float, rows: int) -> None:
        self.ms.setdefault(kind, []).append(seconds * 1000)
        self.rows[kind] = self.rows.get(kind, 0) + rows

    def summary(self, prefix: str = "incidents_query") -> dict:
        every = np.concatenate([np.array(v) for v in self.ms.values()]) if self.ms else \
            np.zeros(1)
        per = {}
        for kind in sorted(self.ms):
            ms = np.array(self.ms[kind])
            per[kind] = {"queries": len(ms), "rows": self.rows[kind],
                         "p50_ms": round(float(np.percentile(ms, 50)), 2),
                         "p99_ms": round(float(np.percentile(ms, 99)), 2),
                         "max_ms": round(float(ms.max()), 2)}
        return {f"{prefix}_p50_ms": round(float(np.percentile(every, 50)), 2),
                f"{prefix}_p99_ms": round(float(np.percentile(every, 99)), 2),
                "queries": int(sum(len(v) for v in self.ms.values())),
                "per_query": per}


async def _measure(queries: Sequence[Query], run_page, limit: int,
                   progress: Callable[[int], None]) -> Timings:
    """Each query's first page, then its second page when the first said there is one.
    A runner asks one page as the API does (one row more than it shows, to know whether
    there is a next page) and answers (rows, cursor of the next page or None)."""
    timings = Timings()
    for query in queries:
        started = time.perf_counter()
        rows, cursor = await run_page(query, None, limit)
        first = time.perf_counter() - started
        second = None
        if cursor is not None:
            started = time.perf_counter()
            rows_2, _ = await run_page(query, cursor, limit)
            second = (time.perf_counter() - started, rows_2)
        if not query.warm:
            timings.add(query.kind, first, rows)
            if second is not None:
                timings.add(query.kind + ":page2", *second)
        progress(1)
    return timings


async def query_benchmark(store: Store, *, now: float | None = None, rounds: int = 50,
                          limit: int = 50, seed: int = 1,
                          department_areas: Mapping[str, Sequence[str]] | None = None,
                          progress: Callable[[int], None] = lambda n: None,
                          queries: Sequence[Query] | None = None) -> dict:
    """Time the incident list's query mix on an open store (in the running event loop), as
    `GET /api/v1/incidents` asks it: first pages of `limit`, and second pages through the
    `before` cursor. Parameters are drawn from the store's own cases (any store will do:
    this benchmark's, or one a pipeline run filled). `now` is the instant "overdue" is
    judged at. One round of every kind runs first, uncounted, to warm caches. Returns the
    p50/p99 over every query and per kind of query."""
    now = time.time() if now is None else now
    if queries is None:
        found = await sample(store, now, seed=seed)
        queries = plan(found, rounds=rounds, now=now, seed=seed,
                       department_areas=department_areas)

    async def run_page(query: Query, cursor, size: int):
        page = await store.list_incidents(query.filter, limit=size + 1, before=cursor)
        more = len(page) > size
        page = page[:size]
        return len(page), ((page[-1].reported_at, page[-1].id) if more and page else None)

    timings = await _measure(queries, run_page, limit, progress)
    return {**timings.summary(), "limit": limit}


def query_benchmark_at(url: str, **options) -> dict:
    """`query_benchmark` from synchronous code, on the store at `url` (opened and closed
    here; a SQLite file may be in use by a node at the same time)."""

    async def measure() -> dict:
        store = open_store(url)
        await store.open()
        try:
            return await query_benchmark(store, **options)
        finally:
            await store.close()

    return asyncio.run(measure())


async def http_benchmark(url: str, keys: Mapping[tuple[str, str] | None, str],
                         queries: Sequence[Query], *, limit: int = 50,
                         progress: Callable[[int], None] = lambda n: None) -> dict:
    """The same queries over HTTP: each with the key of its scope (None: an admin key)."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:

        async def run_page(query: Query, cursor, size: int):
            params = {**query.params, "limit": str(size)}
            if cursor is not None:
                params["cursor"] = cursor
            r = await client.get("/api/v1/incidents", params=params,
                                 headers={"Authorization": f"Bearer {keys[query.key]}"})
            r.raise_for_status()
            body = r.json()
            return len(body["items"]), body["next"]

        timings = await _measure([q for q in queries if q.http], run_page, limit, progress)
    return timings.summary("incidents_http")


# -- a node on the same store, for the HTTP measure ------------------------------------------


def serve_node(city: str, data: str, store_url: str, port: str, now: str) -> None:
    """Run in a child process: a node on the benchmark's store whose clock stands at the
    data's `now` (so "overdue" means the same as on the store, and the escalation scheduler
    finds nothing due), detection off (no readings come)."""
    import uvicorn

    from cityops.api.app import create_app
    from cityops.node import Node
    from cityops.packs.format import load_pack
    from cityops.settings import Settings

    at = float(now)
    settings = Settings(data_dir=Path(data), store_url=store_url, detect=False,
                        escalate_tick_s=3600.0)
    node = Node(load_pack(Path(city)), settings, clock=lambda: at)
    uvicorn.run(create_app(node), host="127.0.0.1", port=int(port), log_level="warning",
                loop="uvloop", http="httptools", access_log=False)


async def _make_keys(url: str, queries: Sequence[Query]) -> dict[tuple[str, str] | None, str]:
    from cityops.auth import new_key

    wanted = sorted({q.key for q in queries if q.http and q.key is not None})
    store = open_store(url)
    await store.open()
    try:
        secret, record = new_key("admin", None, "bench-incidents")
        await store.add_key(record)
        keys: dict[tuple[str, str] | None, str] = {None: secret}
        for role, scope in wanted:
            secret, record = new_key(role, scope, "bench-incidents")
            await store.add_key(record)
            keys[(role, scope)] = secret
    finally:
        await store.close()
    return keys


def measure_http(pack: CityPack, root: Path, url: str, queries: Sequence[Query], *,
                 limit: int, progress, note) -> dict:
    from cityops.bench.server import ServerProcess
    from cityops.packs.format import save_pack

    city = root / f"city-{pack.info.generator.get('seed', 0)}"
    if not (city / "city.yaml").exists():
        note("saving the city pack for the node")
        save_pack(pack, city)
    keys = asyncio.run(_make_keys(url, queries))
    data = root / "node"
    data.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(city, data, url)
    server.args = [sys.executable, "-c",
                   "import sys; from cityops.bench.incidents import serve_node; "
                   "serve_node(*sys.argv[1:])",
                   str(city), str(data), url, str(server.port), repr(NOW)]
    note("starting a node on the store")
    server.start()
    try:
        note("querying over HTTP")
        return asyncio.run(http_benchmark(server.url, keys, queries, limit=limit,
                                          progress=progress))
    finally:
        server.stop()


# -- the command ----------------------------------------------------------------------------


def run(*, count: int, store: str | None, workdir: Path | None, seed: int = 1,
        rounds: int = 50, limit: int = 50, http: bool = True,
        progress: Callable[[int], None] = lambda n: None,
        note: Callable[[str], None] = lambda s: None) -> dict:
    from cityops.packs.pudong import generate

    root = Path(workdir or "var/bench/incidents")
    root.mkdir(parents=True, exist_ok=True)
    url = bench_store_url(store, root)
    note("generating the Pudong city")
    pack = generate(seed)
    department_areas = {d.code: list(d.service_areas) for d in pack.departments}

    async def store_part() -> tuple[dict, list[Query]]:
        fingerprint = city_fingerprint(pack)
        st, have = await prepare(url, count, seed, owned=owned(url, root), city=fingerprint)
        try:
            if have is not None:
                note(f"reusing the {have.count:,} incidents already loaded")
                progress(count)
                load_s, reused = have.load_s, True
            else:
                note(f"generating and loading {count:,} incidents")
                city = city_tables(pack, seed)
                cases = make_cases(city, count, seed)
                load_s = await load(st, city, cases, progress=progress)
                note("vacuum and analyze, as autovacuum would")
                await settle(url)
                await st.set_meta(META_KEY, msgspec.json.encode(
                    Loaded(count, seed, NOW, round(load_s, 1), DATA_VERSION,
                           fingerprint)).decode())
                reused = False
            due = len(await st.due_incidents(NOW, 1000))
            note("querying the store")
            found = await sample(st, NOW, seed=seed)
            queries = plan(found, rounds=rounds, now=NOW, seed=seed,
                           department_areas=department_areas)
            result = await query_benchmark(st, now=NOW, limit=limit, queries=queries)
        finally:
            await st.close()
        return {"incidents": count, "backend": backend_of(url), "reused": reused,
                "rounds": rounds,
                "load_s": round(load_s, 1), "due_at_now": due,
                "sampled_cases": len(found.any), "open_sampled": len(found.open),
                **result}, queries

    load_before = os.getloadavg()[0]
    out, queries = asyncio.run(store_part())
    if http:
        try:
            out["http"] = measure_http(pack, root, url, queries, limit=limit,
                                       progress=lambda n: None, note=note)
        except RuntimeError as error:  # the node did not come up: keep the store's figures
            out["http"] = {"error": str(error)[-2000:]}
    # The machine is shared: how busy it was says how far the tail can be trusted.
    out["load_avg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return out


