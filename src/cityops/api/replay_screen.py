"""GET /api/v1/screen/replay: what the big screen showed over a past window, for its replay.

The live screen is fed by the hub's deltas; a replay cannot be, since nothing kept them. It
is rebuilt from what is stored instead, in a columnar form the page steps through:

- frames at `from + k * step` (k < steps): each person's and vehicle's position as of that
  moment (the latest GPS fix at or before it, held for `POSITION_HOLD_S`), and each vital
  sign's value as of it (held for two of its periods), sampled by the history reader in
  DuckDB and numpy (`cityops.history.query.sampled`), never reading by reading;
- the cases of the window with their status changes from their stored timeline, so the page
  draws each one as it stood at any moment of the window, and the number open at each frame;
- the alerts raised before the window's end and not cleared before its start, with when they
  were raised and cleared: the devices in alarm at any moment.

Scoped as the live screen is: a case by the desk's scope check, a person by home area (a
field key: itself), a vehicle only at the frames where it is inside the key's area, a vital
sign by its device's place. Bounded: a window of at most `MAX_WINDOW_S`, `MAX_STEPS` frames
and `MAX_POINTS` values (series x frames); past these the answer is a 400 naming the limit,
and the page asks for the window in chunks as the replay runs.
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Any

import msgspec
import numpy as np

from cityops.api.alerts import may_see
from cityops.api.errors import ApiError
from cityops.api.incidents import READ, visible
from cityops.api.params import time_us
from cityops.api.route import Call, Endpoint, Scope
from cityops.domain.access import Principal, Role, can_see_place
from cityops.domain.alerts import Alert
from cityops.domain.incidents.model import OPEN, Incident, Status
from cityops.history.query import sampled

Q = 100_000  # positions as integers of 1e-5 degree, as the live feed sends them
MAX_WINDOW_S = 24 * 3600
MAX_STEPS = 1440
MAX_POINTS = 400_000
MAX_INCIDENTS = 2000  # the newest reported of the window's cases, past this
MAX_ALERTS = 5000  # alerts read for a window, newest first
ALERT_PAGE = 500
# How far before the window an alert may have been raised and still be found (unless it is
# still active): the alert list is ordered by when an alert was raised, not when it cleared.
ALERT_LOOKBACK_S = 24 * 3600
POSITION_HOLD_S = 1800  # a fix older than this is no longer shown: the tracker was off
# (held longer, every frame-0 lookback would read hours of every tracker's fixes)
DEFAULT_WINDOW_S = 3600
DEFAULT_FRAMES = 360  # the step when none is asked: the window in this many frames

_OPEN_NAMES = frozenset(s.value for s in OPEN)

TimeParam = Annotated[str, msgspec.Meta(max_length=40, description="RFC 3339 or epoch seconds")]


class ReplayQuery(msgspec.Struct, forbid_unknown_fields=False):
    from_: TimeParam | None = msgspec.field(default=None, name="from")
    to: Annotated[str, msgspec.Meta(max_length=40, description="RFC 3339 or epoch seconds "
                                    "(exclusive); default now")] | None = None
    step: Annotated[int, msgspec.Meta(ge=1, le=3600, description="seconds between frames; "
                                      "default: the window in 360 frames")] | None = None


class Movers(msgspec.Struct):
    """One entry per person (or vehicle) the key may see; `i` is its number in the city's
    list, as the live feed numbers it. `lat`/`lon`: one row per mover, one column per frame,
    integers of 1e-5 degree, null where it had no fix (or, for a scoped key, was elsewhere)."""

    i: list[int]
    id: list[str]
    name: list[str]  # a person's name, a vehicle's plate
    group: list[str]  # a person's department, a vehicle's role
    lat: list[list[int | None]]
    lon: list[list[int | None]]


class ReplayIncident(msgspec.Struct):
    id: str
    title: str
    category: str
    urgency: str
    lat: float | None
    lon: float | None
    town: str | None
    village: str | None
    changes: list[tuple[float, str]]  # (epoch s, status from then on), oldest first


class ReplayAlert(msgspec.Struct):
    id: str
    title: str
    subject: str
    device: bool  # about one device (drawn as a ring on the map), not a cell or an area
    lat: float | None
    lon: float | None
    first_seen: float
    cleared_at: float | None  # null: still active, or cleared without a time


class Vital(msgspec.Struct):
    id: str
    kpi: str
    name: str
    area: str | None
    values: list[float | None]  # one per frame


class Replay(msgspec.Struct):
    start: float  # epoch s of frame 0
    step: int
    steps: int
    q: int
    staff: Movers
    vehicles: Movers
    incidents: list[ReplayIncident]
    incidents_capped: bool
    open: list[int]  # cases open at each frame, of those listed
    alerts: list[ReplayAlert]
    alerts_capped: bool
    kpi: list[Vital]


def _window(q: ReplayQuery, now: float) -> tuple[int, int, int]:
    """(from, to) in whole seconds and the step, or a 400 saying which bound was passed."""
    to_us = time_us(q.to, "to", int(now * 1_000_000))
    from_us = time_us(q.from_, "from", to_us - DEFAULT_WINDOW_S * 1_000_000)
    start, end = from_us // 1_000_000, -(-to_us // 1_000_000)
    if start >= end:
        raise ApiError(400, "`from` must be before `to`")
    if end - start > MAX_WINDOW_S:
        raise ApiError(400, f"the window is {end - start} s long; at most {MAX_WINDOW_S} s "
                            "(24 h) may be replayed at once: ask for it in chunks")
    step = q.step or max(1, math.ceil((end - start) / DEFAULT_FRAMES))
    steps = math.ceil((end - start) / step)
    if steps > MAX_STEPS:
        raise ApiError(400, f"{steps} frames of {step} s; at most {MAX_STEPS} frames per "
                            "answer: take a longer step or a shorter window")
    return start, step, steps


def _visible_staff(node: Any, who: Principal) -> list[int]:
    """The people the live screen shows this key (see LiveHub._group)."""
    scope = who.scope
    out = []
    for i, s in enumerate(node.roster.people):  # retired ones too: the past had them
        if who.role is Role.FIELD:
            ok = s.id == who.name or (scope.area is not None and s.home_area.startswith(scope.area))
        elif scope.department is not None:
            ok = s.department == scope.department
        elif scope.area is not None:
            ok = s.home_area.startswith(scope.area)
        else:
            ok = True
        if ok:
            out.append(i)
    return out


def _inside(node: Any, who: Principal) -> np.ndarray | None:
    """Per village (in the city's order, plus one slot for outside it) whether the key may
    see a vehicle there; None when everywhere (an unscoped key)."""
    scope = who.scope
    if who.role is Role.FIELD and scope.area is None:
        prefixes: tuple[str, ...] = ()  # a field key with no area sees no vehicle
    elif scope.area is not None:
        prefixes = (scope.area,)
    elif scope.department is not None:
        prefixes = tuple(node.department_areas.get(scope.department, []))
    else:
        return None
    villages = node.city.villages
    inside = np.zeros(len(villages) + 1, bool)
    inside[:-1] = [any(v.startswith(p) for p in prefixes) for v in villages]
    return inside


def _positions(values: np.ndarray) -> tuple[list[list[int | None]], list[list[int | None]]]:
    """(movers, 2, steps) degrees as rows of integer 1e-5 degrees, null where unknown."""
    known = np.isfinite(values[:, 0]) & np.isfinite(values[:, 1])
    scaled = np.round(np.nan_to_num(values) * Q).astype(np.int64)
    return _nullable(scaled[:, 0], known), _nullable(scaled[:, 1], known)


def _nullable(values: np.ndarray, known: np.ndarray) -> list[Any]:
    """`values` as nested lists with null where not `known` (JSON has no NaN)."""
    out = values.astype(object)
    out[~known] = None
    result: list[Any] = out.tolist()
    return result


def _sample_movers(node: Any, device_ids: list[str], start: int, step: int,
                   steps: int) -> np.ndarray:
    registry = node.registry
    index = [registry.index.get(d, -1) for d in device_ids]
    known = [k for k, i in enumerate(index) if i >= 0]
    out = np.full((len(device_ids), 2, steps), np.nan)
    if known:
        got = sampled(node.reader, [index[k] for k in known], ("lat", "lon"),
                      start * 1_000_000, step * 1_000_000, steps, POSITION_HOLD_S * 1_000_000)
        out[known] = got
    return out


def _vital_devices(node: Any, who: Principal) -> list[int]:
    registry = node.registry
    out = []
    for i, d in enumerate(registry.devices):
        if d.kind == "kpi" and can_see_place(who, d.areas, d.owner, node.department_areas):
            out.append(i)
    return out


def _frames(node: Any, who: Principal, start: int, step: int, steps: int
            ) -> tuple[Movers, Movers, list[Vital]]:
    """The sampled part of a replay (DuckDB and numpy: run in a thread)."""
    pack = node.pack
    staff = _visible_staff(node, who)
    vehicles = list(range(len(pack.vehicles)))
    vital = _vital_devices(node, who)
    points = (len(staff) + len(vehicles) + len(vital)) * steps
    if points > MAX_POINTS:
        raise ApiError(400, f"{steps} frames of {len(staff) + len(vehicles) + len(vital)} "
                            f"series are {points} values; at most {MAX_POINTS}: take a longer "
                            "step or a shorter window")
    people = node.roster.people  # indices only ever appended to: the ones taken above hold
    staff_pos = _sample_movers(node, [people[i].device_id for i in staff], start, step,
                               steps)
    veh_pos = _sample_movers(node, [v.device_id for v in pack.vehicles], start, step, steps)
    inside = _inside(node, who)
    if inside is not None and len(vehicles):
        # A vehicle is the key's only while it is in the key's area: elsewhere it is hidden.
        flat_lat, flat_lon = veh_pos[:, 0].ravel(), veh_pos[:, 1].ravel()
        fixed = np.isfinite(flat_lat) & np.isfinite(flat_lon)
        where = np.full(len(flat_lat), len(inside) - 1, np.int64)
        if fixed.any():
            found = node.city.village_indices(flat_lat[fixed], flat_lon[fixed])
            where[fixed] = np.where(found < 0, len(inside) - 1, found)
        hidden = ~inside[where].reshape(veh_pos[:, 0].shape)
        veh_pos[:, 0][hidden] = np.nan
        veh_pos[:, 1][hidden] = np.nan
        seen = np.flatnonzero(np.isfinite(veh_pos[:, 0]).any(axis=1))
        vehicles = seen.tolist()
        veh_pos = veh_pos[seen]
    s_lat, s_lon = _positions(staff_pos)
    v_lat, v_lon = _positions(veh_pos)
    movers = Movers(staff, [people[i].id for i in staff], [people[i].name for i in staff],
                    [people[i].department for i in staff], s_lat, s_lon)
    cars = Movers(vehicles, [pack.vehicles[i].id for i in vehicles],
                  [pack.vehicles[i].plate for i in vehicles],
                  [pack.vehicles[i].role for i in vehicles], v_lat, v_lon)
    return movers, cars, _vitals(node, vital, start, step, steps)


def _vitals(node: Any, devices: list[int], start: int, step: int, steps: int) -> list[Vital]:
    if not devices:
        return []
    registry = node.registry
    period = registry.kinds[int(registry.kind_of[devices[0]])].period_s
    values = sampled(node.reader, devices, ("value",), start * 1_000_000, step * 1_000_000,
                     steps, int(2 * period * 1_000_000))[:, 0]
    rows = _nullable(np.round(values, 3), np.isfinite(values))
    out = []
    for i, row in zip(devices, rows, strict=True):
        d = registry.devices[i]
        out.append(Vital(d.id, d.meta.get("kpi", d.name), d.name,
                         d.meta.get("area") or (d.areas.district if d.areas else None), row))
    return out


async def _incidents(call: Call[None, ReplayQuery], start: int, end: int
                     ) -> tuple[list[ReplayIncident], bool]:
    node, who = call.node, call.principal
    if node.act is None:
        return [], False
    found = [inc for inc in await node.store.incidents_for_period(start, end)
             if visible(call.request, who, inc)]
    found.sort(key=lambda inc: (-inc.reported_at, inc.id))
    capped = len(found) > MAX_INCIDENTS
    found = found[:MAX_INCIDENTS]
    out = []
    for inc in found:
        changes = await _changes(node, inc)
        a = inc.areas
        out.append(ReplayIncident(inc.id, inc.title, inc.category, inc.urgency, inc.lat,
                                  inc.lon, a.town if a else None, a.village if a else None,
                                  changes))
    return out, capped


async def _changes(node: Any, inc: Incident) -> list[tuple[float, str]]:
    """When the case's status changed, from its stored timeline; a case loaded in bulk (an
    import: no timeline) from the times its document keeps of each step."""
    events = await node.store.incident_events(inc.id)
    changes: list[tuple[float, str]] = []
    if events:
        for e in sorted(events, key=lambda e: e.at):
            if e.after and (not changes or changes[-1][1] != e.after):
                changes.append((e.at, e.after))
        if changes and changes[0][0] > inc.reported_at:
            changes.insert(0, (inc.reported_at, Status.COLLECTED.value))
        return changes
    stamps = [(inc.reported_at, Status.COLLECTED), (inc.registered_at, Status.REGISTERED),
              (inc.dispatched_at, Status.DISPATCHED), (inc.accepted_at, Status.ACCEPTED),
              (inc.handled_at, Status.HANDLED), (inc.verified_at, Status.VERIFIED),
              (inc.closed_at, Status.CLOSED), (inc.cancelled_at, Status.CANCELLED)]
    for at, status in sorted(((t, s) for t, s in stamps if t is not None),
                             key=lambda ts: ts[0]):
        changes.append((at, status.value))
    if not changes or changes[-1][1] != inc.status.value:
        changes.append((inc.updated_at, inc.status.value))
    return changes


async def _alerts(call: Call[None, ReplayQuery], start: int, end: int
                  ) -> tuple[list[ReplayAlert], bool]:
    """Alerts in force at some moment of [start, end) that the key may see: the active ones,
    then pages of the list (newest raised first) back to a day before the window."""
    node, who = call.node, call.principal
    store = node.store
    found: dict[str, Alert] = {}
    for a in await store.list_alerts(active=True, limit=MAX_ALERTS):
        if a.first_seen < end:
            found[a.id] = a
    before: tuple[float, str] = (float(end), "")  # every alert raised before the end
    capped = len(found) >= MAX_ALERTS
    while not capped:
        page = await store.list_alerts(limit=ALERT_PAGE, before=before)
        for a in page:
            if a.active or (a.cleared_at is not None and a.cleared_at >= start):
                found.setdefault(a.id, a)
        capped = len(found) >= MAX_ALERTS
        if len(page) < ALERT_PAGE or page[-1].first_seen < start - ALERT_LOOKBACK_S:
            break
        before = (page[-1].first_seen, page[-1].id)
    out = []
    for a in sorted(found.values(), key=lambda a: (-a.first_seen, a.id))[:MAX_ALERTS]:
        if may_see(node, who, a):
            out.append(ReplayAlert(a.id, a.title, a.subject,
                                   node.registry.get(a.subject) is not None, a.lat, a.lon,
                                   a.first_seen, None if a.active else a.cleared_at))
    return out, capped


def open_at(incidents: list[ReplayIncident], times: np.ndarray) -> np.ndarray:
    """How many of `incidents` were open at each of `times`: each case's status changes are
    looked up for all times at once."""
    counts = np.zeros(len(times), np.int64)
    for inc in incidents:
        at = np.array([t for t, _ in inc.changes])
        is_open = np.array([s in _OPEN_NAMES for _, s in inc.changes])
        k = np.searchsorted(at, times, side="right") - 1
        counts += (k >= 0) & is_open[np.maximum(k, 0)]
    return counts


async def screen_replay(call: Call[None, ReplayQuery]) -> Replay:
    node = call.node
    if not hasattr(node.reader, "history"):
        raise ApiError(503, "this node does not hold the reading history")
    start, step, steps = _window(call.query, node.clock())
    end = start + step * steps
    staff, vehicles, kpi = await asyncio.to_thread(_frames, node, call.principal, start, step,
                                                   steps)
    incidents, capped = await _incidents(call, start, end)
    alerts, alerts_capped = await _alerts(call, start, end)
    times = start + step * np.arange(steps, dtype=np.float64)
    return Replay(float(start), step, steps, Q, staff, vehicles, incidents, capped,
                  open_at(incidents, times).tolist(), alerts, alerts_capped, kpi)


ROUTES = [
    Endpoint("GET", "/api/v1/screen/replay", screen_replay,
             "The big screen over a past window: positions, vital signs, open cases and alarms",
             READ, Scope.LIST, kind="incident", query=ReplayQuery, response=Replay,
             errors=(503,),
             description=f"At most {MAX_WINDOW_S} s, {MAX_STEPS} frames and {MAX_POINTS} "
                         "values (series x frames) per answer, else 400; the default window "
                         "is the last hour. Cases carry their status changes, so the page "
                         "shows each as it stood at any moment."),
]
