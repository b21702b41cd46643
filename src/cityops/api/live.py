"""GET /api/v1/live: the views' live feed, as server-sent events on a streamed response.

One `LiveHub` per app subscribes to the bus (`incidents`, `alerts`) and reads positions from
the history's in-memory latest values. Every `tick_s` it folds what changed into one delta
(incidents changed, alerts raised or cleared, people and vehicles that moved, staff statuses,
KPI values), filters it for each group of viewers sharing a key scope, encodes it once per
group and hands it to each viewer's bounded queue. A viewer whose queue is full (a slow
browser) is never waited for: its queue is emptied, the updates it lost are counted, and it is
sent a fresh snapshot instead. The bus side only ever folds messages into dictionaries, so a
viewer can never hold up detection or the incident desk.

Events: `snapshot` (everything in scope; sent first, after a drop, and every
`snapshot_every_s`), `delta` (only what changed), and comment pings to keep proxies open.

The snapshot's lists are capped (the newest open cases, active alerts), so no figure may be
counted off them: `counts` (open cases, overdue ones, open ones by status) come from the
store, asked at most every `counts_every_s` per scope, and go out in a delta when they change;
`incidents_open` says how many open cases the list holds of how many (`capped`), and
`alerts_capped` whether the alert list was cut at its limit.
The people are the node's roster (cityops.roster), by its stable indices: when it changes (a
person added, moved, retired) every viewer is sent a fresh snapshot; retired people are left
out of everything sent from then on.
The stream needs `Authorization: Bearer`; the pages read it with `fetch`, which can send that
header (EventSource cannot), so a key never appears in a URL. A request that does not accept
`text/event-stream` gets the snapshot alone, as JSON.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from cityops.api.alerts import may_see
from cityops.api.errors import ApiError, json_response
from cityops.api.incidents import READ, actor_of, is_overdue, scope_filter
from cityops.api.live_objects import (
    MEDIA,
    ObjectsFeed,
    ObjectsQuery,
    ObjectsStream,
    as_json,
    check_room,
    frames,
    parse_bbox,
)
from cityops.api.route import Call, Endpoint, Scope
from cityops.bus.subjects import ALERTS, INCIDENTS
from cityops.domain.access import Principal, Role, can_see_area, can_see_place
from cityops.domain.alerts import Alert, AlertEvent
from cityops.domain.incidents.model import Incident
from cityops.domain.incidents.workflow import OutOfScope
from cityops.domain.kinds import MAX_CHANNELS
from cityops.store.base import IncidentFilter
from cityops.store.incident_sql import OPEN_STATUSES

log = logging.getLogger(__name__)

Q = 100_000  # positions travel as integers of 1e-5 degree (about 1 m): shorter than floats
NEVER = np.iinfo(np.int64).min
SNAPSHOT_OPEN = 3000  # open cases in a snapshot (newest first) ...
SNAPSHOT_RECENT = 500  # ... plus the newest of any status, so closed ones can be counted
SNAPSHOT_ALERTS = 5000
COUNTS_EVERY_S = 5.0  # how stale the store's counts of a scope's cases may get
PING_S = 15.0  # a comment line after this long without news keeps proxies from closing
RECHECK_S = 5.0  # how stale a stream's key may get: revoked or expired, the stream ends
VEHICLE_LIST_MAX = 50_000  # past this many vehicles no event lists them: /live/objects does
EVERY_TICK_MAX = 100_000  # vehicles read at every tick; a larger fleet once a second (they
# report at 1 Hz, and reading a million positions four times a second would fill the loop)
# Vehicles that moved (their numbers) and where the fleet is now; none read this tick.
_Read = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
_NOT_READ: _Read = (np.empty(0, np.int64), None, None)
FLEET_READ_S = 1.0  # a large fleet is read once a second: its trackers report at 1 Hz


def next_fleet_read(due: float, now: float, period: float = FLEET_READ_S) -> float:
    """When a large fleet is next read, after the read that was due at `due` happened at
    `now`: a period after `due`, so the reads keep to the trackers' 1 Hz though each happens
    at the first tick after it is due. (Reading "a second after the last read" drifted by
    each tick's lateness, 0.25 s plus the tick's own work: 25 frames in 30 s at a million
    trucks.) A read a whole period late starts the cadence again from `now`."""
    following = due + period
    return following if following > now else now + period


RESYNC = object()  # queued to wake a viewer that must be sent a snapshot
CLOSE = object()  # queued to end a viewer's stream (the server is shutting down)


@dataclass(eq=False)  # viewers are kept in a set: each one is itself, not equal to another
class Viewer:
    who: Principal
    group: tuple
    queue: asyncio.Queue
    dropped: int = 0  # updates this viewer lost to a full queue (each was resynced)
    resync: bool = False


class _Positions:
    """Latest lat/lon of a list of GPS devices, read column-wise from the history's memory."""

    def __init__(self, node, device_ids: list[str]) -> None:
        self.node = node
        self.device_ids = device_ids
        self.index = np.array([node.registry.index.get(d, -1) for d in device_ids], np.int64)
        # Devices registered one after another (a fleet imported at once) are read as one
        # slice of the history's columns rather than gathered one by one: at a million
        # trackers that is most of the read.
        first = int(self.index[0]) if len(self.index) else 0
        self.run = first >= 0 and bool((self.index == np.arange(first, first + len(self.index))).all())

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) as integers of 1e-5 degree; NEVER where there is no fix yet."""
        state = self.node.history.state
        n = len(self.index)
        first = int(self.index[0]) if n else 0
        if self.run and (first + n) * MAX_CHANNELS <= state.capacity:
            values = state.latest_value.reshape(-1, MAX_CHANNELS)[first:first + n]
            stamps = state.latest_ts.reshape(-1, MAX_CHANNELS)[first:first + n]
            la, lo = values[:, 0], values[:, 1]
            fixed = (stamps[:, 0] != NEVER) & (stamps[:, 1] != NEVER) & np.isfinite(la) \
                & np.isfinite(lo)
            with np.errstate(invalid="ignore"):
                lat = np.rint(la * Q).astype(np.int64)
                lon = np.rint(lo * Q).astype(np.int64)
            lat[~fixed] = NEVER
            lon[~fixed] = NEVER
            return lat, lon
        lat = np.full(n, NEVER, np.int64)
        lon = np.full(n, NEVER, np.int64)
        base = self.index * MAX_CHANNELS
        ok = (self.index >= 0) & (base + 1 < state.capacity)
        if ok.any():
            b = base[ok]
            ts = np.minimum(state.latest_ts[b], state.latest_ts[b + 1])
            la, lo = state.latest_value[b], state.latest_value[b + 1]
            fixed = (ts != NEVER) & np.isfinite(la) & np.isfinite(lo)
            lat[ok] = np.where(fixed, np.round(np.nan_to_num(la) * Q), NEVER).astype(np.int64)
            lon[ok] = np.where(fixed, np.round(np.nan_to_num(lo) * Q), NEVER).astype(np.int64)
        return lat, lon


def incident_summary(inc: Incident, now: float) -> dict:
    """What the screen and the queue need of a case, not its whole document."""
    a = inc.areas
    return {
        "id": inc.id, "title": inc.title, "titles": inc.titles or {},
        "category": inc.category, "status": inc.status.value,
        "urgency": inc.urgency, "severity": inc.severity, "lat": inc.lat, "lon": inc.lon,
        "town": a.town if a else None, "village": a.village if a else None,
        "departments": inc.departments, "reported_at": inc.reported_at,
        "updated_at": inc.updated_at, "close_due": inc.close_due,
        "dispatch_due": inc.dispatch_due, "next_due": inc.next_due, "reports": inc.reports,
        "overdue": is_overdue(inc, now),
        "orders": [{"id": o.id, "department": o.department, "status": o.status.value,
                    "assignee": o.assignee, "progress": o.progress} for o in inc.orders],
        "source": inc.source,
    }


def alert_summary(alert: Alert, device: bool) -> dict:
    a = alert.areas
    return {"id": alert.id, "title": alert.title, "titles": alert.titles or {},
            "severity": alert.severity,
            "scenario": alert.scenario, "subject": alert.subject, "device": device,
            "lat": alert.lat, "lon": alert.lon, "town": a.town if a else None,
            "village": a.village if a else None, "first_seen": alert.first_seen,
            "value": alert.value}


class LiveHub:
    def __init__(self, node, *, tick_s: float = 0.25, kpi_every_s: float = 1.0,
                 snapshot_every_s: float = 120.0, queue_frames: int = 8,
                 bus_queue: int = 4096, recheck_s: float = RECHECK_S,
                 counts_every_s: float = COUNTS_EVERY_S) -> None:
        self.node = node
        self.counts_every_s = counts_every_s
        self.monotonic = time.monotonic  # the counts' clock (a test's may be a fake)
        self.tick_s = tick_s
        self.recheck_s = recheck_s
        self.kpi_every_s = kpi_every_s
        self.snapshot_every_s = snapshot_every_s
        self.queue_frames = queue_frames
        self.bus_queue = bus_queue
        self.viewers: set[Viewer] = set()
        self.stats = {"frames": 0, "dropped_updates": 0, "resyncs": 0, "viewers": 0,
                      "bus_messages": 0}
        self._tasks: list[asyncio.Task] = []
        self._subs: list = []
        self._lock = asyncio.Lock()
        self._pending_incidents: dict[str, Incident] = {}
        self._pending_alerts: dict[str, tuple[str, Alert]] = {}
        pack = node.pack
        self.vehicles = list(pack.vehicles)
        self._group_cache: dict[tuple, dict] = {}
        self._roster_seen = -1
        self._follow_roster()
        self._veh_pos = _Positions(node, [v.device_id for v in self.vehicles])
        self._sent_veh = self._veh_pos.read() if self.vehicles else None
        self._veh_village = np.full(len(self.vehicles), -1, np.int64)
        self._kpi: dict[str, Any] = {}
        self._kpi_at = 0.0
        self._history: collections.deque = collections.deque(maxlen=720)  # 1 h at 5 s
        self._history_at = 0.0
        self._device_village: np.ndarray | None = None
        self.objects = ObjectsFeed([v.role for v in self.vehicles])
        self._veh_due = -math.inf  # when the fleet is next read (monotonic; a large fleet)

    # -- life cycle --------------------------------------------------------------------------

    async def ensure_started(self) -> None:
        async with self._lock:
            if self._tasks:
                return
            # Each web node's hub reads in a group of its own: every node sees every change.
            bus = self.node.bus_for("live") if hasattr(self.node, "bus_for") else self.node.bus
            incidents = bus.subscribe(INCIDENTS, maxsize=self.bus_queue)
            alerts = bus.subscribe(ALERTS, maxsize=self.bus_queue)
            self._subs = [incidents, alerts]
            self._tasks = [
                asyncio.create_task(self._drain(incidents, self._fold_incident), name="live-inc"),
                asyncio.create_task(self._drain(alerts, self._fold_alerts), name="live-alerts"),
                asyncio.create_task(self._tick_loop(), name="live-tick"),
            ]
            if self.vehicles:
                self._tasks.append(asyncio.create_task(
                    self.objects.build(*self._sent_veh), name="live-objects-cells"))
            else:
                self.objects.ready.set()

    def close_streams(self) -> None:
        """End every open stream now, so that a server shutting down need not wait for (or
        cancel) them; the pages reconnect by themselves to the next server."""
        for viewer in list(self.viewers):
            while not viewer.queue.empty():
                viewer.queue.get_nowait()
            viewer.queue.put_nowait(CLOSE)
        self.objects.close()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for sub in self._subs:
            await sub.close()
        self._subs = []

    # -- the bus side: fold only, never wait on a viewer ----------------------------------------

    async def _drain(self, sub, fold) -> None:
        while True:
            for message in await sub.get_batch(256):
                self.stats["bus_messages"] += 1
                if self.viewers:
                    fold(message)

    def _fold_incident(self, change) -> None:
        self._pending_incidents[change.incident.id] = change.incident

    def _fold_alerts(self, events: list[AlertEvent]) -> None:
        for event in events:
            if event.change in ("raised", "cleared"):
                self._pending_alerts[event.alert.id] = (event.change, event.alert)

    # -- viewers -----------------------------------------------------------------------------

    def join(self, who: Principal, vehicles: bool = True) -> Viewer:
        """`vehicles`: whether this viewer's events list the vehicles (a page that reads them
        from /live/objects does not want them twice)."""
        viewer = Viewer(who, group_key(who, vehicles and len(self.vehicles) <= VEHICLE_LIST_MAX),
                        asyncio.Queue(self.queue_frames))
        self.viewers.add(viewer)
        self.stats["viewers"] = len(self.viewers)
        return viewer

    def leave(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        self.stats["viewers"] = len(self.viewers)
        if not any(v.group == viewer.group for v in self.viewers):
            self._group_cache.pop(viewer.group, None)

    def _offer(self, viewer: Viewer, frame: bytes, updates: int) -> None:
        try:
            viewer.queue.put_nowait(frame)
        except asyncio.QueueFull:
            # Too slow to keep up: what it missed is replaced by a snapshot, not queued.
            lost = updates
            while not viewer.queue.empty():
                viewer.queue.get_nowait()
                lost += 1
            viewer.dropped += lost
            self.stats["dropped_updates"] += lost
            self.stats["resyncs"] += 1
            viewer.resync = True
            viewer.queue.put_nowait(RESYNC)

    def _ask_resync(self, viewer: Viewer) -> None:
        viewer.resync = True
        with contextlib.suppress(asyncio.QueueFull):  # a full queue is read soon anyway
            viewer.queue.put_nowait(RESYNC)

    # -- the roster ----------------------------------------------------------------------------

    def _follow_roster(self) -> bool:
        """Lay the people out again when the roster changed; whether it did. Indices stay
        (the roster keeps them), so a viewer's snapshot and deltas agree on who is who."""
        roster = self.node.roster
        if roster.revision == self._roster_seen:
            return False
        self._roster_seen = roster.revision
        self.people = list(roster.people)
        self.on_roster = np.array(roster.active, bool)
        self.staff_ids = [s.id for s in self.people]
        self._staff_pos = _Positions(self.node, [s.device_id for s in self.people])
        self._sent_staff = self._staff_pos.read() if self.staff_ids else None
        self._sent_status: list[str] = self._statuses()
        self._group_cache.clear()  # the scopes' masks name people by index
        return True

    def _roster_changed(self) -> None:
        if self._follow_roster():
            for viewer in list(self.viewers):
                self._ask_resync(viewer)

    # -- scope -------------------------------------------------------------------------------

    def _group(self, who: Principal, key: tuple) -> dict:
        """What one scope may see, worked out once per group of viewers."""
        cached = self._group_cache.get(key)
        if cached is not None:
            return cached
        node = self.node
        scope = who.scope
        if scope.area is not None:
            prefixes: tuple[str, ...] | None = (scope.area,)
        elif scope.department is not None:
            prefixes = tuple(node.department_areas.get(scope.department, []))
        else:
            prefixes = None
        staff = self.on_roster.copy()
        for i, s in enumerate(self.people):
            if not staff[i]:
                continue
            if who.role is Role.FIELD:
                staff[i] = s.id == who.name or (scope.area is not None
                                                and s.home_area.startswith(scope.area))
            elif scope.department is not None:
                staff[i] = s.department == scope.department
            elif scope.area is not None:
                staff[i] = s.home_area.startswith(scope.area)
        villages = node.city.villages
        inside = np.ones(len(villages) + 1, bool)  # the last slot: outside the city
        if prefixes is not None:
            inside[:-1] = [any(v.startswith(p) for p in prefixes) for v in villages]
            inside[-1] = False
        if who.role is Role.FIELD and scope.area is None:
            inside[:] = False
        group = {"prefixes": prefixes, "staff": staff, "villages": inside,
                 "vehicles": None, "who": who, "list_vehicles": key[-1] is True}
        self._group_cache[key] = group
        return group

    def _sees_incident(self, who: Principal, inc: Incident) -> bool:
        act = self.node.act
        if act is None:
            return False
        try:
            act.rules.check_scope(inc, actor_of(who))
        except OutOfScope:
            return False
        return True

    def _vehicles_visible(self, group: dict) -> np.ndarray:
        if group["prefixes"] is None and group["villages"].all():
            return np.ones(len(self.vehicles), bool)
        return group["villages"][self._veh_village]

    def _refresh_vehicle_places(self, moved: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
        """Which village each moved vehicle is in now: only needed while a scoped viewer is
        connected, so an unscoped wall pays nothing for it."""
        if not len(moved):
            return
        idx = self.node.city.village_indices(lat[moved] / Q, lon[moved] / Q)
        idx[idx < 0] = len(self.node.city.villages)
        self._veh_village[moved] = idx

    # -- snapshots ---------------------------------------------------------------------------

    async def snapshot(self, viewer: Viewer, reason: str) -> bytes:
        return _event("snapshot", await self.snapshot_body(viewer, reason))

    async def snapshot_body(self, viewer: Viewer, reason: str, *, track: bool = True) -> dict:
        """Everything in the viewer's scope. `track`: the deltas that follow build on it (a
        one-off snapshot must not move what the group's live viewers were last sent)."""
        node = self.node
        who = viewer.who
        self._roster_changed()
        group = self._group(who, viewer.group)
        now = node.clock()
        cases: dict[str, Incident] = {}
        counts = None
        open_listed = 0
        if node.act is not None:
            scope = scope_filter(node, who)
            for f, limit in ((IncidentFilter(open=True, **scope), SNAPSHOT_OPEN),
                             (IncidentFilter(**scope), SNAPSHOT_RECENT)):
                for inc in await node.store.list_incidents(f, limit=limit):
                    if inc.id not in cases and self._sees_incident(who, inc):
                        cases[inc.id] = inc
                        open_listed += inc.is_open
            counts = await self._counts(group)
            if track:
                group["counts_sent"] = counts
        stored = await node.store.list_alerts(active=True, limit=SNAPSHOT_ALERTS)
        alerts = [a for a in stored if may_see(node, who, a)]
        staff_lat, staff_lon = self._staff_pos.read() if self.staff_ids else (None, None)
        board = node.act.staff if node.act is not None else None
        staff = {"i": [], "id": [], "name": [], "dept": [], "status": [], "lat": [], "lon": []}
        for i, s in enumerate(self.people):
            if not group["staff"][i]:
                continue
            staff["i"].append(i)
            staff["id"].append(s.id)
            staff["name"].append(s.name)
            staff["dept"].append(s.department)
            staff["status"].append(board.status[s.id].value if board else "available")
            staff["lat"].append(None if staff_lat[i] == NEVER else int(staff_lat[i]))
            staff["lon"].append(None if staff_lon[i] == NEVER else int(staff_lon[i]))
        vehicles: dict[str, list] = {"i": [], "id": [], "plate": [], "role": [], "lat": [],
                                     "lon": []}
        if self.vehicles and group["list_vehicles"]:
            lat, lon = self._veh_pos.read()
            if group["prefixes"] is not None:
                self._refresh_vehicle_places(np.flatnonzero(lat != NEVER), lat, lon)
            seen = self._vehicles_visible(group) & (lat != NEVER)
            idx = np.flatnonzero(seen)
            vehicles["i"] = idx.tolist()
            vehicles["id"] = [self.vehicles[i].id for i in idx.tolist()]
            vehicles["plate"] = [self.vehicles[i].plate for i in idx.tolist()]
            vehicles["role"] = [self.vehicles[i].role for i in idx.tolist()]
            vehicles["lat"] = lat[idx].tolist()
            vehicles["lon"] = lon[idx].tolist()
            if track:
                group["vehicles"] = seen.copy()
        kpi = self._kpi or self._kpis()
        body = {
            "type": "snapshot", "reason": reason, "t": now, "q": Q,
            "me": {"role": who.role.value, "scope": str(who.scope), "name": who.name},
            "city": {"name": node.pack.info.name, "center": list(node.pack.info.center),
                     "timezone": node.pack.info.timezone, "names": node.pack.info.names},
            "incidents": [incident_summary(i, now) for i in cases.values()],
            "alerts": [alert_summary(a, node.registry.get(a.subject) is not None)
                       for a in alerts],
            "staff": staff, "vehicles": vehicles, "vehicles_listed": group["list_vehicles"],
            "vehicles_total": len(self.vehicles),
            "kpi": self._kpi_for(kpi, group),
            "history": [[t, v] for t, v in self._history],
            "counts": counts,
            "incidents_open": None if counts is None else {
                "capped": counts["open"] > open_listed, "shown": open_listed,
                "total": counts["open"]},
            "alerts_capped": len(stored) >= SNAPSHOT_ALERTS,
            "dropped": viewer.dropped,
            "tick_s": self.tick_s,
        }
        return body

    # -- counts from the store -----------------------------------------------------------------

    async def _counts(self, group: dict) -> dict | None:
        """Open, overdue and per-status counts of the cases a scope's list filter covers, from
        the store: at most one round of count queries per scope and `counts_every_s`,
        however many viewers connect or resync. None for a field key, whose own cases (its
        orders') no store filter names; its list is small and whole."""
        who = group["who"]
        node = self.node
        if node.act is None or who.role is Role.FIELD:
            return None
        now = self.monotonic()
        cached = group.get("counts")
        if cached is not None and now - group.get("counts_at", -math.inf) < self.counts_every_s:
            return cached
        group["counts_at"] = now  # before the queries: a second caller meanwhile waits no more
        scope = scope_filter(node, who)
        store = node.store
        status = {s: await store.count_incidents(IncidentFilter(status=(s,), **scope))
                  for s in OPEN_STATUSES}
        overdue = await store.count_incidents(IncidentFilter(overdue_at=node.clock(), **scope))
        counts = {"open": sum(status.values()), "overdue": overdue, "status": status}
        group["counts"] = counts
        return counts

    async def refresh_counts(self) -> None:
        """The counts of every connected scope, where they are due (see `_counts`)."""
        seen: set[tuple] = set()
        for viewer in list(self.viewers):
            if viewer.group not in seen:
                seen.add(viewer.group)
                await self._counts(self._group(viewer.who, viewer.group))

    # -- deltas ------------------------------------------------------------------------------

    def _statuses(self) -> list[str]:
        act = self.node.act
        if act is None:
            return ["available"] * len(self.staff_ids)
        return [act.staff.status[s].value for s in self.staff_ids]

    async def _tick_loop(self) -> None:
        last_snapshot = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                if not self.viewers and not self.objects.streams:
                    self._pending_incidents.clear()
                    self._pending_alerts.clear()
                    await self._move_vehicles(idle=True)
                    continue
                periodic = time.monotonic() - last_snapshot > self.snapshot_every_s
                if periodic:
                    last_snapshot = time.monotonic()
                    for viewer in self.viewers:
                        self._ask_resync(viewer)
                await self.refresh_counts()
                self._tick(await self._move_vehicles())
            except Exception:
                log.exception("live update failed; viewers will be resynced")
                for viewer in list(self.viewers):
                    self._ask_resync(viewer)

    def _take_fleet(self, *, idle: bool = False) -> _Read | None:
        """The vehicles that moved, when they are due to be read (at every tick for a small
        fleet, once a second for a large one); None when they are not.

        With no viewer (`idle`) the cells are still kept current once a second: after a
        minute away most of a million trucks would have left their cells, and the next
        screen to open would wait seconds for them all to be placed again."""
        mono = time.monotonic()
        due = mono >= self._veh_due or (not idle and len(self.vehicles) <= EVERY_TICK_MAX)
        if not self.vehicles or not due or (idle and not self.objects.ready.is_set()):
            return None
        self._veh_due = next_fleet_read(self._veh_due, mono)
        return self._moved(self._veh_pos, self._sent_veh)

    async def _move_vehicles(self, *, idle: bool = False) -> _Read:
        """`_take_fleet`, with the objects' cells moved along (large batches beside the
        loop)."""
        read = self._take_fleet(idle=idle)
        if read is None:
            return _NOT_READ
        await self.objects.advance_aside(read[0], *self._sent_veh)
        return read

    def _read_vehicles(self) -> _Read:
        """`_move_vehicles` without leaving the loop (a tick driven by hand, in the tests)."""
        read = self._take_fleet()
        if read is None:
            return _NOT_READ
        self.objects.advance(read[0], *self._sent_veh)
        return read

    def _moved(self, pos: _Positions, sent) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lat, lon = pos.read()
        moved = np.flatnonzero(((lat != sent[0]) | (lon != sent[1])) & (lat != NEVER))
        sent[0][moved] = lat[moved]
        sent[1][moved] = lon[moved]
        return moved, lat, lon

    def _tick(self, vehicles: _Read | None = None) -> None:
        """One round of deltas; `vehicles` as `_move_vehicles` answered (read here when
        None)."""
        self._roster_changed()  # before any delta: a changed roster is sent as a snapshot
        node = self.node
        now = node.clock()
        incidents, self._pending_incidents = self._pending_incidents, {}
        alerts, self._pending_alerts = self._pending_alerts, {}
        staff_moved = np.empty(0, np.int64)
        staff_lat = staff_lon = None
        if self.staff_ids:
            staff_moved, staff_lat, staff_lon = self._moved(self._staff_pos, self._sent_staff)
        veh_moved, veh_lat, veh_lon = vehicles if vehicles is not None else self._read_vehicles()
        mono = time.monotonic()
        statuses = self._statuses()
        status_changed = [i for i, (a, b) in enumerate(zip(statuses, self._sent_status))
                          if a != b]
        self._sent_status = statuses
        kpi = None
        if mono - self._kpi_at >= self.kpi_every_s:
            self._kpi_at = mono
            fresh = self._kpis()
            if fresh != self._kpi:
                kpi = fresh
                self._kpi = fresh
        if mono - self._history_at >= 5.0:
            self._history_at = mono
            self._history.append((round(time.time(), 1), (self._kpi or {}).get("ingest_rate", 0)))
        scoped = any(self._group(v.who, v.group)["prefixes"] is not None for v in self.viewers) \
            or any(self._group(s.who, s.key)["prefixes"] is not None for s in self.objects.streams)
        if scoped and len(veh_moved):
            self._refresh_vehicle_places(veh_moved, veh_lat, veh_lon)
        frames: dict[tuple, tuple[bytes, int] | None] = {}
        for viewer in list(self.viewers):
            if viewer.group not in frames:
                group = self._group(viewer.who, viewer.group)
                frames[viewer.group] = self._delta_for(
                    group, now, incidents, alerts, staff_moved, staff_lat, staff_lon,
                    status_changed, statuses, veh_moved, veh_lat, veh_lon, kpi)
            frame = frames[viewer.group]
            if frame is not None and not viewer.resync:
                self._offer(viewer, *frame)
        self.stats["frames"] += 1

    def _delta_for(self, group, now, incidents, alerts, staff_moved, staff_lat, staff_lon,
                   status_changed, statuses, veh_moved, veh_lat, veh_lon, kpi):
        who = group["who"]
        node = self.node
        body: dict[str, Any] = {}
        updates = 0
        changed = [incident_summary(i, now) for i in incidents.values()
                   if self._sees_incident(who, i)]
        if changed:
            body["incidents"] = changed
            updates += len(changed)
        raised = [alert_summary(a, node.registry.get(a.subject) is not None)
                  for change, a in alerts.values() if change == "raised" and may_see(node, who, a)]
        cleared = [a.id for change, a in alerts.values()
                   if change == "cleared" and may_see(node, who, a)]
        if raised:
            body["alerts"] = raised
        if cleared:
            body["alerts_cleared"] = cleared
        updates += len(raised) + len(cleared)
        if len(staff_moved):
            keep = staff_moved[group["staff"][staff_moved]]
            if len(keep):
                body["staff"] = {"i": keep.tolist(), "lat": staff_lat[keep].tolist(),
                                 "lon": staff_lon[keep].tolist()}
                updates += len(keep)
        if status_changed:
            keep = [i for i in status_changed if group["staff"][i]]
            if keep:
                body["staff_status"] = {"i": keep, "s": [statuses[i] for i in keep]}
                updates += len(keep)
        if self.vehicles and group["list_vehicles"]:
            updates += self._vehicle_delta(group, body, veh_moved, veh_lat, veh_lon)
        if kpi is not None:
            changed_kpi = self._kpi_changes(group, self._kpi_for(kpi, group))
            if changed_kpi:
                body["kpi"] = changed_kpi
        counts = group.get("counts")
        if counts is not None and counts != group.get("counts_sent"):
            body["counts"] = group["counts_sent"] = counts
        if not body:
            return None
        body["type"] = "delta"
        body["t"] = now
        return _event("delta", body), max(updates, 1)

    def _vehicle_delta(self, group, body, moved, lat, lon) -> int:
        visible = self._vehicles_visible(group)
        before = group["vehicles"]
        if before is None:
            before = group["vehicles"] = np.zeros(len(self.vehicles), bool)
        now_visible = visible & (self._sent_veh[0] != NEVER)
        entered = np.flatnonzero(now_visible & ~before)
        left = np.flatnonzero(before & ~now_visible)
        group["vehicles"] = now_visible
        send = np.union1d(moved[now_visible[moved]], entered) if len(moved) or len(entered) \
            else np.empty(0, np.int64)
        n = 0
        if len(send):
            lat_now, lon_now = self._sent_veh
            body["vehicles"] = {"i": send.tolist(), "lat": lat_now[send].tolist(),
                                "lon": lon_now[send].tolist()}
            n += len(send)
        if len(entered):
            body["vehicles_new"] = {"i": entered.tolist(),
                                    "id": [self.vehicles[i].id for i in entered.tolist()],
                                    "plate": [self.vehicles[i].plate for i in entered.tolist()],
                                    "role": [self.vehicles[i].role for i in entered.tolist()]}
        if len(left):
            body["vehicles_gone"] = left.tolist()
            n += len(left)
        return n

    # -- KPIs --------------------------------------------------------------------------------

    def _kpis(self) -> dict:
        """Node-wide figures; `_kpi_for` narrows them to a scope."""
        node = self.node
        out: dict[str, Any] = {"ingest_rate": round(node.metrics.rate.rate())}
        reporting, total = self._device_health()
        out["health"] = {"reporting": reporting, "total": total}
        out["vital"] = node.detect.vital_signs("kpi") if node.detect is not None else []
        out["states"] = dict(node.detect.area_states) if node.detect is not None else {}
        out["detect"] = ({k: node.detect.stats.get(k, 0) for k in ("raised", "cleared")}
                         if node.detect is not None else {})
        return out

    def _device_health(self) -> tuple[dict[str, int], dict[str, int]]:
        """Devices that reported within three of their periods, by area (district, town and
        village codes), as the device-health panel counts them."""
        node = self.node
        registry = node.registry
        n = len(registry)
        if self._device_village is None or len(self._device_village) != n:
            villages = {v: i for i, v in enumerate(node.city.villages)}
            codes = np.full(n, len(villages), np.int64)
            for i, d in enumerate(registry.devices):
                if d.areas is not None:
                    codes[i] = villages.get(d.areas.village, len(villages))
            self._device_village = codes
            periods = np.array([k.period_s for k in registry.kinds], np.float64)
            self._periods = periods[registry.kind_of]
        state = node.history.state
        have = min(n, state.capacity // MAX_CHANNELS)
        last = np.full(n, NEVER, np.int64)
        if have:
            last[:have] = state.latest_ts[: have * MAX_CHANNELS].reshape(have, MAX_CHANNELS).max(1)
        now_us = node.clock() * 1e6
        fresh = (last != NEVER) & (now_us - last <= 3 * self._periods * 1e6)
        villages = node.city.villages
        size = len(villages) + 1
        tot = np.bincount(self._device_village, minlength=size)
        rep = np.bincount(self._device_village[fresh], minlength=size)
        reporting: dict[str, int] = {}
        total: dict[str, int] = {}
        for i, code in enumerate(villages):
            if not tot[i]:
                continue
            for c in (code[:6], code[:9], code):
                reporting[c] = reporting.get(c, 0) + int(rep[i])
                total[c] = total.get(c, 0) + int(tot[i])
        return reporting, total

    @staticmethod
    def _kpi_changes(group: dict, shown: dict) -> dict:
        """Only the figures that differ from what this group was last sent; the health
        counts entry by entry (one per area: most stay the same from one second to the next)."""
        sent = group.get("kpi_sent")
        group["kpi_sent"] = shown
        if sent is None:
            return shown
        out = {k: v for k, v in shown.items() if k != "health" and sent.get(k) != v}
        before = sent.get("health", {})
        health = {c: v for c, v in shown["health"].items() if before.get(c) != v}
        if health:
            out["health"] = health
        return out

    def _kpi_for(self, kpi: dict, group: dict) -> dict:
        who = group["who"]
        node = self.node
        prefixes = group["prefixes"]

        def shown(code: str) -> bool:
            return prefixes is None or any(code.startswith(p) or p.startswith(code)
                                           for p in prefixes)

        health = kpi.get("health", {"reporting": {}, "total": {}})
        vital = []
        for s in kpi.get("vital", []):
            device = node.registry.get(s["device_id"])
            if device is None or not can_see_place(who, device.areas, device.owner,
                                                   node.department_areas):
                continue
            vital.append({"id": s["device_id"], "kpi": device.meta.get("kpi", device.name),
                          "name": device.name, "area": device.meta.get("area") or
                          (device.areas.district if device.areas else None),
                          "level": device.meta.get("level") or "district",
                          "value": s["value"], "baseline": s["baseline"], "z": s["z"],
                          "status": s["status"], "ts": s["ts"]})
        return {
            "ingest_rate": kpi.get("ingest_rate", 0),
            "health": {c: [r, health["total"][c]] for c, r in health["reporting"].items()
                       if shown(c)},
            "vital": vital,
            "states": {c: s for c, s in kpi.get("states", {}).items()
                       if c == "city" or (c.isdigit() and can_see_area(who, c))},
            "detect": kpi.get("detect", {}),
        }


def group_key(who: Principal, vehicles: bool) -> tuple:
    """Viewers of one key scope share their work; those that list vehicles and those that do
    not are told apart."""
    return (who.role.value, str(who.scope), who.name, vehicles)


def _event(kind: str, body: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + msgspec.json.encode(body) + b"\n\n"


def hub_of(request: Request) -> LiveHub:
    app = request.app
    hub = getattr(app.state, "live", None)
    if hub is None:
        hub = app.state.live = LiveHub(app.state.node)
    return hub


class LiveQuery(msgspec.Struct, forbid_unknown_fields=False):
    vehicles: bool = True  # false: the page reads vehicles from /api/v1/live/objects


async def live(call: Call[None, LiveQuery]) -> Response:
    request, who = call.request, call.principal
    hub = hub_of(request)
    if request.app.state.node.act is None and who.role is Role.FIELD:
        raise ApiError(503, "this node does not run the incident desk")
    if "text/event-stream" not in request.headers.get("accept", ""):
        # A client that does not ask for the stream (curl, a script, a fuzzer) gets the
        # snapshot once, as plain JSON, instead of a response that never ends.
        listed = call.query.vehicles and len(hub.vehicles) <= VEHICLE_LIST_MAX
        once = Viewer(who, group_key(who, listed),
                      asyncio.Queue(1))
        return json_response(await hub.snapshot_body(once, "once", track=False))
    await hub.ensure_started()
    secret = request.headers.get("authorization", "").partition(" ")[2].strip()
    keys = request.app.state.node.keys
    loop = asyncio.get_running_loop()

    async def stream():
        # Joined before the snapshot is read, so nothing that happens meanwhile is missed
        # (deltas carry whole values: applying one the snapshot already had is harmless).
        viewer = hub.join(who, vehicles=call.query.vehicles)
        recheck_at = loop.time() + hub.recheck_s
        ping_at = loop.time() + PING_S
        try:
            yield await hub.snapshot(viewer, "connect")
            while True:
                # The key was good when the stream opened; a stream lives for hours, so it
                # is asked again (past the resolver's cache, which would hide a revocation
                # made by another process for its whole ttl) before anything more is sent.
                if loop.time() >= recheck_at:
                    if await keys.resolve_fresh(secret) is None:
                        yield _event("closed", {"reason": "the key was revoked or has "
                                                          "expired"})
                        return
                    recheck_at = loop.time() + hub.recheck_s
                if viewer.resync:
                    viewer.resync = False
                    while not viewer.queue.empty():
                        viewer.queue.get_nowait()
                    yield await hub.snapshot(viewer, "resync")
                    continue
                wait = min(recheck_at, ping_at) - loop.time()
                try:
                    item = await asyncio.wait_for(viewer.queue.get(), max(wait, 0.0))
                except TimeoutError:
                    if loop.time() >= ping_at:
                        ping_at = loop.time() + PING_S
                        yield b": ping\n\n"
                    continue
                if item is CLOSE:
                    return
                if item is not RESYNC:
                    ping_at = loop.time() + PING_S
                    yield item
        finally:
            hub.leave(viewer)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={
        "Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def live_objects(call: Call[None, ObjectsQuery]) -> Response:
    request, who = call.request, call.principal
    hub = hub_of(request)
    node = request.app.state.node
    bbox = parse_bbox(call.query.bbox)
    check_room(hub.objects)
    await hub.ensure_started()
    key = group_key(who, False)
    group = hub._group(who, key)
    if hub.vehicles and group["prefixes"] is not None:
        lat, lon = hub._sent_veh
        hub._refresh_vehicle_places(np.flatnonzero(lat != NEVER), lat, lon)
    stream = ObjectsStream(who, key, bbox, call.query.zoom)
    empty = np.empty(0, np.int64)

    def state():
        if not hub.vehicles:
            return empty, empty, np.empty(0, bool), node.clock()
        lat, lon = hub._sent_veh
        return lat, lon, hub._vehicles_visible(group), node.clock()

    if MEDIA not in request.headers.get("accept", ""):
        await hub.objects.ready.wait()
        lat, lon, visible, now = state()
        if hub.vehicles and not hub.viewers and not hub.objects.streams:
            # No tick runs without a viewer: what the hub holds may be old, so the answer
            # reads the positions now (and brings the cells up to date with them).
            lat, lon = hub._veh_pos.read()
            placed = np.flatnonzero(lat != NEVER)
            hub.objects.cells.update(placed, lat[placed] / Q, lon[placed] / Q)
        frame = stream.frame(hub.objects, lat, lon, visible, now)
        return json_response(as_json(frame) if frame is not None else {})
    secret = request.headers.get("authorization", "").partition(" ")[2].strip()
    loop = asyncio.get_running_loop()
    recheck_at = loop.time() + hub.recheck_s

    async def recheck() -> bool:
        nonlocal recheck_at
        if loop.time() < recheck_at:
            return True
        recheck_at = loop.time() + hub.recheck_s
        return await node.keys.resolve_fresh(secret) is not None

    return StreamingResponse(frames(hub.objects, stream, state, recheck, PING_S),
                             media_type=MEDIA, headers={"Cache-Control": "no-store",
                                                        "X-Accel-Buffering": "no"})


ROUTES = [
    Endpoint("GET", "/api/v1/live", live,
             "The views' live feed: server-sent events with Accept: text/event-stream, else "
             "one snapshot as JSON", READ, Scope.LIST, kind="incident", query=LiveQuery,
             response=dict[str, Any], alt_media=("text/event-stream",), errors=(503,),
             description="A stream re-checks its key at least every 5 s and ends with a "
                         "`closed` event when the key is revoked or has expired."),
    Endpoint("GET", "/api/v1/live/objects", live_objects,
             "The moving objects in a view: H3 bins or points, binary frames with Accept: "
             "application/octet-stream, else one full frame as JSON", READ, Scope.LIST,
             kind="device", query=ObjectsQuery, response=dict[str, Any], alt_media=(MEDIA,),
             errors=(503,),
             description="See cityops.api.live_objects for the frame layout. Bins while the "
                         "view holds more than 50,000 objects, points below; after the first "
                         "frame only what changed. A slow client is sent the sum of what it "
                         "missed, never a queue."),
]


def graceful_server(config):
    """A uvicorn server that ends the live streams first when it shuts down: otherwise uvicorn
    waits for them (they never end by themselves) until its graceful-shutdown timeout, then
    cancels them with an error in the log."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            hub = getattr(getattr(config.app, "state", None), "live", None)
            if hub is not None:
                hub.close_streams()
            await super().shutdown(sockets)

    return Server(config)
