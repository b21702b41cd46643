"""Simulated departments and field staff that close the loop on a running node.

What a city's people do with CityOps, done by the demo on the node's own clock (the simulated
clock: wall time in `cityops demo`, a fake one in tests): the centre checks new reports,
registers and dispatches them; each department takes its work order up (a department with
field staff in the pack proposes its nearest available person, who acknowledges on the phone;
the emergency services, who have no trackers in the pack, send a crew from their station);
the person sets out, travels the streets at an urban speed (`fieldplan`), reports being on
site, works for the category's typical time and finishes with a photo and a note; an
inspector goes to look, verifies, or sends a share of the cases back for rework; the centre
closes what was verified.

Every move goes through the node's incident desk as the key of that role would make it (the
workflow checks role, scope and state exactly as for the API), the evidence photo is kept as
the upload route keeps one, staff status goes on the staff board as the field page sets it,
and the trackers' fixes go through the ingest pipeline, so the big screen sees the dots move
exactly as it sees any tracker's. The field staff's trackers are driven here, on their beats
(`cityops.sim.movers`, as the simulator drives them) while free and along their trips while
on a job; `cityops simulate --leave-out-staff` then leaves them out of the simulator's feed.

Bounded per tick: the store is read a page at a time per kind of work (a cursor that wraps,
so a backlog of thousands is worked through fairly), at most `max_moves` moves are made, and
one batch of fixes (at most one per person) is sent every `fix_every_s` of simulated time.
Every draw is seeded by (seed, what it is for): a run with one seed makes the same choices.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cityops.act import evidence
from cityops.act.desk import NotFound
from cityops.domain.access import Role, Scope
from cityops.domain.city import Staff
from cityops.domain.incidents.model import Incident, OrderStatus, Status, WorkOrder
from cityops.domain.incidents.workflow import Actor, OutOfScope, Refused
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.nearest import StaffStatus
from cityops.ingest.decode import Reading
from cityops.ingest.pipeline import Overloaded
from cityops.sim import fieldplan as plan
from cityops.sim.fieldplan import Path, rng_for, street_path, uniform
from cityops.sim.movers import Movers
from cityops.sim.places import LocalClock, city_bbox

log = logging.getLogger(__name__)

CENTRE = Actor("sim-centre", Role.OPERATOR, Scope(), "district centre (simulated)")
REWORK_SHARE = 0.12  # of inspections that find the work not done (SPEC: rework rate)
FALSE_REPORT_SHARE = 0.03  # of checked reports the centre finds are no case
CHECK_S = {"urgent": (45.0, 120.0), "": (120.0, 480.0)}  # report -> registered
DISPATCH_S = {"urgent": (20.0, 60.0), "": (30.0, 180.0)}  # registered -> dispatched
CLOSE_S = {"urgent": (30.0, 90.0), "": (60.0, 240.0)}  # verified -> closed
ACK_S = (10.0, 45.0)  # offered -> acknowledged on the phone (the desk waits 90 s)
INSPECT_AFTER_S = {"urgent": (20.0, 60.0), "": (60.0, 300.0)}  # handled -> inspector sets out
CREW_BASE_M = 1500.0  # a crew's station lies this far at most from its town's centre
REWORK_FACTOR = 0.5  # redoing is shorter than doing


@dataclass(slots=True)
class Trip:
    """A person on the move (or standing, on a path of one point) from `depart`."""

    path: Path
    depart: float
    speed: float  # m/s

    @property
    def arrive(self) -> float:
        return self.depart + self.path.metres / self.speed

    def where(self, t: float) -> tuple[float, float, float, float]:
        """(lat, lon, speed km/h, heading) at `t`."""
        metres = (t - self.depart) * self.speed
        lat, lon = self.path.at(metres)
        moving = 0.0 < metres < self.path.metres
        return lat, lon, self.speed * 3.6 if moving else 0.0, self.path.heading_at(metres)


@dataclass(slots=True)
class Job:
    """One piece of work the simulation owes a case: its next step and when."""

    kind: str  # centre, order, inspect
    incident: str
    phase: str
    due: float
    order: str = ""
    department: str = ""
    category: str = ""
    urgency: str = "normal"
    site: tuple[float, float] | None = None
    person: str | None = None  # a field person doing it; None: a crew without a tracker
    trip: Trip | None = None
    rework: bool = False


@dataclass(slots=True)
class Staged:
    """A case the demo staged: who it goes to, and how long each unit works on it."""

    departments: list[str]
    work_min: dict[str, tuple[float, float]] = field(default_factory=dict)
    check_s: tuple[float, float] = (60.0, 120.0)


def _png(width: int, height: int, seed: int) -> bytes:
    """A small photo-like image (a sky-to-street gradient, tinted per job): evidence that a
    browser shows and the upload route's checks accept."""
    rng = np.random.default_rng(seed)
    tint = rng.integers(60, 200, 3)
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    x = np.linspace(0.0, 1.0, width)[None, :, None]
    image = (tint * (1.2 - 0.6 * y) + 30 * x + rng.normal(0, 6, (height, width, 3)))
    rows = np.clip(image, 0, 255).astype(np.uint8)
    raw = b"".join(b"\x00" + rows[r].tobytes() for r in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                                               2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _field_actor(staff_id: str) -> Actor:
    # As a field key named after its person, covering the whole city (as the demo's is).
    return Actor(f"sim-field-{staff_id}", Role.FIELD, Scope(), staff_id)


def _unit_actor(department: str) -> Actor:
    return Actor(f"sim-dept-{department}", Role.DEPARTMENT, Scope(department=department),
                 department)


class Fieldwork:
    """The simulated people of a node: call `tick()` as the clock moves (or `run()`)."""

    def __init__(self, node: Any, *, seed: int = 0, clock: Callable[[], float] | None = None,
                 max_moves: int = 40, page: int = 100, fix_every_s: float = 5.0,
                 rework_share: float = REWORK_SHARE, hands_off: Collection[str] = ()) -> None:
        """`hands_off`: people a real person plays (the demo's field page): never given a job
        here, and their tracker left alone while they are on one."""
        if node.act is None:
            raise ValueError("field work needs a node that runs the incident desk")
        self.node = node
        self.seed = seed
        self.clock = clock or node.clock
        self.desk = node.act.desk
        self.board = node.act.staff
        self.max_moves = max_moves
        self.page = page
        self.fix_every_s = fix_every_s
        self.rework_share = rework_share
        self.hands_off = frozenset(hands_off)
        self.jobs: dict[str, Job] = {}
        self.staged: dict[str, Staged] = {}
        self.busy: dict[str, str] = {}  # person -> the job key they are on
        self.stats: Counter[str] = Counter()
        self._cursors: dict[str, tuple[float, str] | None] = {}
        self._last_fix = -np.inf
        self._last_scan = -np.inf
        self.scan_every_s = fix_every_s  # the store's pages are read this often, not every tick
        self._moves = 0
        kinds = {**BUILTIN_KINDS, **node.pack.kinds}
        devices = {d.id: d for d in node.pack.devices}
        # The roster as the node holds it when the work starts (the pack's people with the
        # stored changes, the retired left out); only trackers of the pack are driven here.
        self.people: list[Staff] = [s for s in node.roster.current()
                                    if s.device_id in devices
                                    and kinds.get(devices[s.device_id].kind) is not None
                                    and kinds[devices[s.device_id].kind].mobile]
        self.index = {s.id: k for k, s in enumerate(self.people)}
        self.rostered = {s.department for s in self.people if s.id not in self.hands_off}
        self.where: dict[str, tuple[float, float]] = {}
        self.movers: Movers | None = None
        if self.people:
            kind = kinds[devices[self.people[0].device_id].kind]
            self.movers = Movers(node.pack, kind, [devices[s.device_id] for s in self.people],
                                 seed, self.clock(), LocalClock(node.pack.info.timezone,
                                                                node.pack.info.center[1]),
                                 city_bbox(node.pack))
            self._local = LocalClock(node.pack.info.timezone, node.pack.info.center[1])

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, every_s: float = 1.0) -> None:
        """Tick until cancelled; a failing tick is logged and the next one tried."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("field work: a tick failed; trying again")
            await asyncio.sleep(every_s)

    async def tick(self) -> None:
        now = self.clock()
        self._moves = 0
        if now - self._last_scan >= self.scan_every_s:
            self._last_scan = now
            await self._scan(now)
        for key in sorted((k for k, j in self.jobs.items() if j.due <= now),
                          key=lambda k: self.jobs[k].due):
            if self._moves >= self.max_moves:
                self.stats["deferred"] += 1
                break
            job = self.jobs.get(key)
            if job is None:
                continue
            try:
                await self._step(key, job, now)
            except (Refused, NotFound, OutOfScope) as why:
                # Someone else moved the case on (an operator, the scheduler): let go of it;
                # the next scan picks up whatever is still owed.
                log.debug("field work: %s dropped: %s", key, why)
                self.stats["let_go"] += 1
                self._drop(key)
        await self._fixes(now)

    def _drop(self, key: str) -> None:
        job = self.jobs.pop(key, None)
        if job is not None and job.person is not None and self.busy.get(job.person) == key:
            self._release(job.person, job, self.clock())

    # -- finding work --------------------------------------------------------------------------

    async def _page(self, name: str, statuses: tuple[str, ...]) -> list[Incident]:
        from cityops.store.base import IncidentFilter

        before = self._cursors.get(name)
        cases = await self.node.store.list_incidents(IncidentFilter(status=statuses),
                                                     limit=self.page, before=before)
        self._cursors[name] = ((cases[-1].reported_at, cases[-1].id)
                               if len(cases) == self.page else None)
        return cases

    async def _scan(self, now: float) -> None:
        for inc in await self._page("centre", ("collected", "registered", "verified")):
            self._centre_job(inc, now)
        for inc in await self._page("orders", ("dispatched", "accepted")):
            for order in inc.orders:
                self._order_job(inc, order, now)
        for inc in await self._page("inspect", ("handled",)):
            key = f"inspect:{inc.id}"
            if key not in self.jobs and inc.lat is not None:
                after = uniform(rng_for(self.seed, "inspect", inc.id, inc.reworks),
                                INSPECT_AFTER_S[_urgent(inc.urgency)])
                self.jobs[key] = Job("inspect", inc.id, "pick", (inc.handled_at or now) + after,
                                     category=inc.category, urgency=inc.urgency,
                                     site=(inc.lat, inc.lon))

    def _centre_job(self, inc: Incident, now: float) -> None:
        key = f"centre:{inc.id}"
        if key in self.jobs:
            return
        urgent = _urgent(inc.urgency)
        rng = rng_for(self.seed, "centre", inc.id, inc.status, inc.reopened)
        if inc.status is Status.COLLECTED:
            staged = self.staged.get(inc.id)
            span = staged.check_s if staged else CHECK_S[urgent]
            phase, due = "check", inc.reported_at + uniform(rng, span)
        elif inc.status is Status.REGISTERED:
            if inc.live_orders():
                return
            phase, due = "dispatch", now + uniform(rng, DISPATCH_S[urgent])
        else:
            phase, due = "close", (inc.verified_at or now) + uniform(rng, CLOSE_S[urgent])
        self.jobs[key] = Job("centre", inc.id, phase, due, category=inc.category,
                             urgency=inc.urgency)

    def _order_job(self, inc: Incident, order: WorkOrder, now: float) -> None:
        key = f"order:{order.id}"
        if key in self.jobs or inc.lat is None or order.status not in (
                OrderStatus.DISPATCHED, OrderStatus.ACCEPTED):
            return
        if order.assignee in self.hands_off or (
                order.offer is not None and order.offer.staff_id in self.hands_off):
            return  # a real person's job
        job = Job("order", inc.id, "take", order.created, order=order.id,
                  department=order.department, category=inc.category, urgency=inc.urgency,
                  site=(inc.lat, inc.lon), rework=order.reworks > 0)
        if order.status is OrderStatus.DISPATCHED:
            job.due = order.created + plan.react_s(self.seed, inc.urgency, order.id)
        else:  # accepted: sent back for rework, or taken up before a restart
            job.phase, job.due = "resume", now
            job.person = order.assignee if order.assignee in self.index else None
        self.jobs[key] = job

    # -- the steps -----------------------------------------------------------------------------

    async def _step(self, key: str, job: Job, now: float) -> None:
        step = getattr(self, f"_{job.kind}_{job.phase}")
        await step(key, job, now)

    async def _move(self, incident_id: str, action: str, actor: Actor, **args: Any) -> Incident:
        self._moves += 1
        inc: Incident = await self.desk.async_act(incident_id, action, actor, **args)
        self.stats[action] += 1
        return inc

    async def _order_move(self, order_id: str, action: str, actor: Actor,
                          **args: Any) -> Incident:
        self._moves += 1
        inc: Incident = await self.desk.async_act_on_order(order_id, action, actor, **args)
        self.stats[action if action != "progress" else args.get("progress", action)] += 1
        return inc

    async def _centre_check(self, key: str, job: Job, now: float) -> None:
        rng = rng_for(self.seed, "false report", job.incident)
        if job.incident not in self.staged and rng.random() < FALSE_REPORT_SHARE:
            await self._move(job.incident, "cancel", CENTRE,
                             reason="not a case: checked on the video, nothing there")
            del self.jobs[key]
            return
        await self._move(job.incident, "register", CENTRE)
        urgent = _urgent(job.urgency)
        job.phase = "dispatch"
        job.due = now + uniform(rng_for(self.seed, "dispatch", job.incident), DISPATCH_S[urgent])

    async def _centre_dispatch(self, key: str, job: Job, now: float) -> None:
        staged = self.staged.get(job.incident)
        args = {"departments": staged.departments} if staged else {}
        inc = await self._move(job.incident, "dispatch", CENTRE, **args)
        del self.jobs[key]
        for order in inc.orders:
            self._order_job(inc, order, now)

    async def _centre_close(self, key: str, job: Job, now: float) -> None:
        await self._move(job.incident, "close", CENTRE, note="verified on site; closed")
        del self.jobs[key]

    async def _order_take(self, key: str, job: Job, now: float) -> None:
        """The unit takes the order up: its nearest free person, or a crew from its station."""
        inc = await self.desk.get(job.incident)
        order = inc.order(job.order)
        if order.status is not OrderStatus.DISPATCHED:
            del self.jobs[key]
            return
        if job.department in self.rostered:
            person = self._nearest_free(job, order, now)
            if person is None:
                job.due = now + 60.0  # everyone busy: the order waits for the first free
                self.stats["waiting"] += 1
                return
            await self._order_move(job.order, "assign", _unit_actor(job.department),
                                   staff_id=person)
            self._reserve(person, key, job)
            job.phase = "acknowledge"
            job.due = now + uniform(rng_for(self.seed, "ack", job.order, person), ACK_S)
            return
        # A department without field staff in the roster (police, fire, ambulance ...).
        await self._order_move(job.order, "accept", _unit_actor(job.department))
        await self._set_out(job, now, _unit_actor(job.department))

    async def _order_acknowledge(self, key: str, job: Job, now: float) -> None:
        assert job.person is not None
        actor = _field_actor(job.person)
        await self._order_move(job.order, "acknowledge", actor)
        await self._set_out(job, now, actor)

    async def _order_resume(self, key: str, job: Job, now: float) -> None:
        """An accepted order with nobody on it here: back to it (a rework), or taken over."""
        if job.person is not None:
            if self.busy.get(job.person, key) != key:
                job.due = now + 60.0  # on another job: comes when that one is done
                return
            self._reserve(job.person, key, job)
            await self._set_out(job, now, _field_actor(job.person))
        else:
            await self._set_out(job, now, _unit_actor(job.department))

    async def _set_out(self, job: Job, now: float, actor: Actor) -> None:
        assert job.site is not None
        start = (self.where.get(job.person) if job.person is not None
                 else self._station(job)) or self._station(job)
        path = street_path(start, job.site, self.board.network)
        job.trip = Trip(path, now, plan.speed_mps(job.department, path.metres))
        await self._order_move(job.order, "progress", actor, progress="en_route")
        self._status(job.person, StaffStatus.EN_ROUTE)
        job.phase, job.due = "arrive", job.trip.arrive

    async def _order_arrive(self, key: str, job: Job, now: float) -> None:
        actor = _field_actor(job.person) if job.person else _unit_actor(job.department)
        await self._order_move(job.order, "progress", actor, progress="on_site")
        self._status(job.person, StaffStatus.ON_SITE)
        assert job.site is not None
        job.trip = Trip(street_path(job.site, job.site), now, 1.0)
        staged = self.staged.get(job.incident)
        span = staged.work_min.get(job.department) if staged else None
        work = plan.work_s(self.seed, job.category, job.department,
                           f"{job.order}#{job.rework}", {"": span} if span else None)
        job.phase, job.due = "finish", now + work * (REWORK_FACTOR if job.rework else 1.0)

    async def _order_finish(self, key: str, job: Job, now: float) -> None:
        actor = _field_actor(job.person) if job.person else _unit_actor(job.department)
        photo = await self._photo(job, actor)
        await self._order_move(job.order, "finish", actor, photos=[photo],
                               note="redone as the inspector asked" if job.rework
                               else "done on site; photo attached")
        del self.jobs[key]
        if job.person is not None:
            self._release(job.person, job, now)

    async def _inspect_pick(self, key: str, job: Job, now: float) -> None:
        assert job.site is not None
        inc = await self.desk.get(job.incident)
        if inc.status is not Status.HANDLED:
            del self.jobs[key]
            return
        # Not one of the people who did the work: the check is someone else's.
        workers = {o.assignee for o in inc.orders if o.assignee}
        found = self.board.candidates(job.site[0], job.site[1], "city_management", now,
                                      skill="inspection", exclude=self._not_free() | workers,
                                      limit=1)
        if not found:
            # Nobody free to go: the centre judges from the photos and the cameras.
            job.phase = "judge"
            return
        job.person = found[0].staff_id
        self._reserve(job.person, key, job)
        path = street_path(self.where.get(job.person) or job.site, job.site,
                           self.board.network)
        job.trip = Trip(path, now, plan.speed_mps("city_management", path.metres))
        self._status(job.person, StaffStatus.EN_ROUTE)
        job.phase, job.due = "arrive", job.trip.arrive

    async def _inspect_arrive(self, key: str, job: Job, now: float) -> None:
        assert job.site is not None
        self._status(job.person, StaffStatus.ON_SITE)
        job.trip = Trip(street_path(job.site, job.site), now, 1.0)
        span = (plan.INSPECT_MIN[0] * 60, plan.INSPECT_MIN[1] * 60)
        job.phase = "judge"
        job.due = now + uniform(rng_for(self.seed, "look", job.incident, job.person), span)

    async def _inspect_judge(self, key: str, job: Job, now: float) -> None:
        inc = await self.desk.get(job.incident)
        actor = _field_actor(job.person) if job.person else CENTRE
        rng = rng_for(self.seed, "verdict", job.incident, inc.reworks)
        staged = job.incident in self.staged
        if not staged and inc.reworks == 0 and rng.random() < self.rework_share:
            inc = await self._move(job.incident, "rework", actor,
                                   reason="not done as asked: seen on site, see the photo")
            for order in inc.orders:
                self._order_job(inc, order, now)
        else:
            inc = await self._move(job.incident, "verify", actor, note="solved, seen on site")
            self._centre_job(inc, now)
        del self.jobs[key]
        if job.person is not None:
            self._release(job.person, job, now)

    # -- people --------------------------------------------------------------------------------

    def _not_free(self) -> set[str]:
        return set(self.busy) | set(self.hands_off)

    def _nearest_free(self, job: Job, order: WorkOrder, now: float) -> str | None:
        if not self.people:
            return None
        assert job.site is not None
        found = self.board.candidates(job.site[0], job.site[1], job.department, now,
                                      exclude=self._not_free() | set(order.offers_tried),
                                      limit=1)
        return found[0].staff_id if found else None

    def _reserve(self, person: str, key: str, job: Job) -> None:
        job.person = person
        self.busy[person] = key

    def _release(self, person: str, job: Job, now: float) -> None:
        """Done here: free again, and back on the beat from where they stand."""
        self.busy.pop(person, None)
        self._status(person, StaffStatus.AVAILABLE)
        spot = job.site if job.trip is None else job.trip.where(now)[:2]
        m = self.index.get(person)
        if m is not None and self.movers is not None and spot is not None:
            self.movers.reposition(m, spot[0], spot[1], now)
            self.where[person] = spot

    def _status(self, person: str | None, status: StaffStatus) -> None:
        if person is not None and person in self.board:
            self.board.set_status(person, status.value)

    def _station(self, job: Job) -> tuple[float, float]:
        """Where a crew sets out from: its station in the case's town (near the town's
        centre), the same for every job of that department there."""
        assert job.site is not None
        areas = self.node.city.resolve(*job.site)
        if areas is None:
            return job.site
        centre = self.node.city.geometry(areas.town).centroid
        rng = rng_for(self.seed, "station", job.department, areas.town)
        r, bearing = CREW_BASE_M * np.sqrt(rng.random()), 2 * np.pi * rng.random()
        dlat = r * np.cos(bearing) / 111_320.0
        dlon = r * np.sin(bearing) / (111_320.0 * np.cos(np.radians(centre.y)))
        return float(centre.y + dlat), float(centre.x + dlon)

    async def _photo(self, job: Job, actor: Actor) -> str:
        """Kept as the upload route keeps one: the file, then its record; the path is what a
        finish cites."""
        from cityops.api import images

        body = _png(64, 48, int(rng_for(self.seed, "photo", job.order, job.rework)
                                .integers(1 << 31)))
        name = evidence.name_for(job.order, body, "png")
        path = evidence.folder_of(self.node.settings.data_dir, job.order) / name
        if not path.exists():
            await asyncio.to_thread(images.save, path, body)
        photos = evidence.EvidencePhotos(self.node.store, self.clock)
        if await photos.get(name) is None:
            owner = f"staff:{actor.name}" if actor.role is Role.FIELD else f"key:{actor.key_id}"
            await photos.keep(owner, name, evidence.OrderPhoto(order=job.order,
                                                              type="image/png",
                                                              bytes=len(body)))
        return evidence.path_of(job.order, name)

    # -- trackers ------------------------------------------------------------------------------

    async def _fixes(self, now: float) -> None:
        """One fix per person: along the trip of a job, else on the beat."""
        if self.movers is None or now - self._last_fix < self.fix_every_s:
            return
        self._last_fix = now
        free = [m for m, s in enumerate(self.people)
                if s.id not in self.busy and not (s.id in self.hands_off and
                                                  self.board.status.get(s.id)
                                                  in (StaffStatus.EN_ROUTE,
                                                      StaffStatus.ON_SITE))]
        rows: list[tuple[int, Reading]] = []
        if free:
            member = np.array(free, dtype=np.int64)
            t = np.full(len(member), now)
            values = self.movers.values(member, t, t + self._local.offset_s(now))
            names = [c.name for c in self.movers.kind.channels]
            for m, row in zip(free, values.tolist()):
                fix = dict(zip(names, row))
                rows.append((len(rows), Reading(self.people[m].device_id, ts=now,
                                                values=_rounded(fix))))
                self.where[self.people[m].id] = (fix["lat"], fix["lon"])
        for person, key in self.busy.items():
            job = self.jobs.get(key)
            m = self.index.get(person)
            if job is None or job.trip is None or m is None:
                continue
            lat, lon, speed, heading = job.trip.where(now)
            rows.append((len(rows), Reading(self.people[m].device_id, ts=now, values=_rounded(
                {"lat": lat, "lon": lon, "speed": speed, "heading": heading}))))
            self.where[person] = (lat, lon)
        if not rows:
            return
        try:
            result = await self.node.ingestor.ingest(rows, source="fieldwork")
        except Overloaded:
            self.stats["fixes_refused"] += len(rows)  # the node is busy: the next round
            return
        self.stats["fixes"] += result.accepted

    # -- what the tests and the demo read ------------------------------------------------------

    def en_route(self) -> list[str]:
        return sorted(p for p, key in self.busy.items()
                      if (job := self.jobs.get(key)) is not None and job.phase == "arrive"
                      and job.trip is not None and job.trip.path.metres > 0)

    def phases(self) -> Counter[str]:
        return Counter(f"{j.kind}.{j.phase}" for j in self.jobs.values())


def _urgent(urgency: str) -> str:
    return "urgent" if urgency == "urgent" else ""


def _rounded(fix: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6 if k in ("lat", "lon") else 2) for k, v in fix.items()}

