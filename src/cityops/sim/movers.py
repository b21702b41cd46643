"""GPS movers: field staff on their beats and muck trucks on night runs.

A muck truck that the city pack gives an approved route (a `muck_route` zone listing it in
`meta.vehicles`) drives that route, vertex to vertex and back, only in its night duty hours,
and parks where it is when they end: the way a licensed spoil truck is meant to run, so any
alert about it is one the anomaly plan put there.

Each mover travels in legs: wait at a waypoint, then go in a straight line to the next one at a
steady speed. Waypoints are points inside areas (between an area's centroid and its boundary),
so movers stay inside the city. Leg k of mover m is drawn from (seed, m, k) alone: the path is
the same whatever times the simulator is asked about, as long as time moves forward.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cityops.domain.city import CityPack, Device, DeviceKind
from cityops.sim.places import (
    BBox,
    LocalClock,
    Place,
    bearing_deg,
    distance_m,
    finest_places,
    point_in_place,
)
from cityops.sim.randomness import normal, stream_key

DAY_S = 86400.0


class Role(enum.StrEnum):
    STAFF = "staff"
    TRUCK = "muck_truck"
    BUS = "bus"
    VEHICLE = "vehicle"


@dataclass(frozen=True, slots=True)
class Habits:
    speed_kmh: tuple[float, float]
    dwell_s: tuple[float, float]
    # Local hours on duty, [start, end) wrapping past midnight when start > end.
    duty: tuple[float, float]
    off_duty_trip: float  # chance that an off-duty stop is cut short by an extra trip


HABITS: dict[Role, Habits] = {
    # Inspectors walk or ride e-bikes; they stop to look at things.
    Role.STAFF: Habits((4.0, 16.0), (120.0, 900.0), (7.0, 19.0), 0.0),
    # Muck trucks may only run at night in most Chinese cities; a few get day permits.
    Role.TRUCK: Habits((20.0, 45.0), (300.0, 1500.0), (20.0, 6.0), 0.1),
    Role.BUS: Habits((15.0, 35.0), (20.0, 90.0), (5.5, 23.0), 0.0),
    Role.VEHICLE: Habits((15.0, 50.0), (60.0, 600.0), (0.0, 24.0), 0.0),
}
# Trucks on an approved route: night duty ending well before the 06:30 cut-off, no day trips.
ROUTE_HABITS = Habits((20.0, 35.0), (30.0, 120.0), (20.0, 5.0), 0.0)
ROUTE_END_STOP_S = (300.0, 1500.0)  # loading at the site, tipping at the disposal point
NIGHT_SHIFT_SHARE = 0.2  # staff who patrol round the clock
CATCH_UP_LIMIT_S = 6 * 3600.0


def _on_duty(duty: tuple[float, float], hour: float) -> bool:
    start, end = duty
    if start <= end:
        return start <= hour < end
    return hour >= start or hour < end


def _until_duty(duty: tuple[float, float], hour: float) -> float:
    """Seconds from `hour` until the duty period next starts."""
    return ((duty[0] - hour) % 24.0) * 3600.0


class Movers:
    """Positions of all GPS devices of a pack; `values` is vectorised over a batch."""

    def __init__(
        self,
        pack: CityPack,
        kind: DeviceKind,
        devices: Sequence[Device],
        seed: int,
        start_ts: float,
        clock: LocalClock,
        bbox: BBox,
    ) -> None:
        self.kind = kind
        self.devices = list(devices)
        self.seed = seed
        self.clock = clock
        self.bbox = bbox
        self._key_jitter = stream_key(seed, "movers.jitter")
        self._lo = np.array([c.min for c in kind.channels])
        self._hi = np.array([c.max for c in kind.channels])
        places = finest_places(pack) or [self._fallback_place(bbox)]
        self._places = places
        by_device_role: dict[str, Role] = {}
        for v in pack.vehicles:
            role = Role(v.role) if v.role in Role._value2member_map_ else Role.VEHICLE
            by_device_role[v.device_id] = role
        beat_of = {s.device_id: s.home_area for s in pack.staff}
        route_of: dict[str, list[tuple[float, float]]] = {}
        for zone in pack.zones:
            if zone.kind == "muck_route" and zone.geometry.get("type") == "LineString":
                vertices = [(lat, lon) for lon, lat in zone.geometry["coordinates"]]
                for device_id in zone.meta.get("vehicles", []):
                    route_of[device_id] = vertices
        beats: dict[str | None, list[Place]] = {}

        n = len(self.devices)
        self.roles: list[Role] = []
        self.beats: list[list[Place]] = []
        self.bases: list[tuple[float, float]] = []
        self.night_shift: list[bool] = []
        self.routes: list[list[tuple[float, float]] | None] = []
        self._stop = np.zeros(n, dtype=np.int64)  # route vertex a route truck is at
        self._step = np.ones(n, dtype=np.int64)  # +1 out to the disposal point, -1 back
        self._leg_no = np.zeros(n, dtype=np.int64)
        self.lat0 = np.zeros(n)
        self.lon0 = np.zeros(n)
        self.lat1 = np.zeros(n)
        self.lon1 = np.zeros(n)
        self.depart = np.zeros(n)
        self.arrive = np.zeros(n)
        self.speed = np.zeros(n)
        self.heading = np.zeros(n)
        for m, device in enumerate(self.devices):
            role = by_device_role.get(device.id, Role.STAFF)
            self.roles.append(role)
            home = beat_of.get(device.id)
            if home not in beats:
                beats[home] = self._beat(places, home)
            beat = beats[home]
            self.beats.append(beat)
            rng = self._rng(m, -1)
            base = point_in_place(beat[int(rng.random() * len(beat))], *rng.random(3))
            self.bases.append(base)
            self.night_shift.append(role is Role.STAFF and rng.random() < NIGHT_SHIFT_SHARE)
            route = route_of.get(device.id) if role is Role.TRUCK else None
            self.routes.append(route if route and len(route) > 1 else None)
            # Start somewhere on the beat, part-way through a wait, so movers are out of step.
            start = point_in_place(beat[int(rng.random() * len(beat))], *rng.random(3))
            if self.routes[m] is not None:
                start = self.routes[m][0]
            self.lat1[m], self.lon1[m] = start
            self.arrive[m] = start_ts - rng.random() * 600.0
            self.heading[m] = rng.random() * 360.0
            self._leg_no[m] = 0
            self._next_leg(m)

    @staticmethod
    def _fallback_place(bbox: BBox) -> Place:
        ring = np.array([
            [bbox.west, bbox.south], [bbox.east, bbox.south],
            [bbox.east, bbox.north], [bbox.west, bbox.north], [bbox.west, bbox.south],
        ])
        return Place("", (bbox.south + bbox.north) / 2, (bbox.west + bbox.east) / 2, ring)

    @staticmethod
    def _beat(places: list[Place], home: str | None) -> list[Place]:
        # A village code's first nine digits name its town: patrol the town around home.
        if home:
            for prefix in (home, home[:9]):
                beat = [p for p in places if p.code.startswith(prefix)]
                if len(beat) > 1 or (beat and prefix == home[:9]):
                    return beat
        return places

    def _rng(self, m: int, leg: int) -> np.random.Generator:
        return np.random.default_rng([self.seed & 0xFFFFFFFF, 0x6D6F76, m, leg + 1])

    def _habits(self, m: int) -> Habits:
        habits = HABITS[self.roles[m]]
        if self.night_shift[m]:
            return Habits(habits.speed_kmh, habits.dwell_s, (0.0, 24.0), habits.off_duty_trip)
        return habits

    def _next_leg(self, m: int) -> None:
        """Start the leg after the one mover `m` has just finished."""
        if self.routes[m] is not None:
            self._next_route_leg(m)
            return
        k = int(self._leg_no[m]) + 1
        self._leg_no[m] = k
        rng = self._rng(m, k)
        t0 = float(self.arrive[m])
        here = (float(self.lat1[m]), float(self.lon1[m]))
        habits = self._habits(m)
        hour = ((t0 + self.clock.offset_s(t0)) % DAY_S) / 3600.0
        dwell = habits.dwell_s[0] + (habits.dwell_s[1] - habits.dwell_s[0]) * rng.random()
        on_duty = _on_duty(habits.duty, hour)
        extra_trip = rng.random() < habits.off_duty_trip
        if on_duty or extra_trip:
            place = self.beats[m][int(rng.random() * len(self.beats[m]))]
            there = point_in_place(place, *rng.random(3))
        else:
            there = self.bases[m]
            if distance_m(*here, *there) < 1.0:
                # Parked at base: sit out the off-duty hours.
                dwell = max(dwell, _until_duty(habits.duty, hour))
        speed = habits.speed_kmh[0] + (habits.speed_kmh[1] - habits.speed_kmh[0]) * rng.random()
        metres = distance_m(*here, *there)
        self.lat0[m], self.lon0[m] = here
        self.lat1[m], self.lon1[m] = there
        self.depart[m] = t0 + dwell
        self.arrive[m] = self.depart[m] + metres / (speed / 3.6)
        self.speed[m] = speed
        if metres >= 1.0:
            self.heading[m] = bearing_deg(*here, *there)

    def _next_route_leg(self, m: int) -> None:
        """On duty: to the next vertex of the route (turning round at either end). Off duty:
        stay parked where the truck is until duty starts again."""
        route = self.routes[m]
        k = int(self._leg_no[m]) + 1
        self._leg_no[m] = k
        rng = self._rng(m, k)
        t0 = float(self.arrive[m])
        here = (float(self.lat1[m]), float(self.lon1[m]))
        hour = ((t0 + self.clock.offset_s(t0)) % DAY_S) / 3600.0
        stop = int(self._stop[m])
        at_end = stop in (0, len(route) - 1)
        low, high = ROUTE_END_STOP_S if at_end else ROUTE_HABITS.dwell_s
        dwell = low + (high - low) * rng.random()
        if not _on_duty(ROUTE_HABITS.duty, hour):
            dwell = max(dwell, _until_duty(ROUTE_HABITS.duty, hour))
            there = here
        else:
            if not 0 <= stop + self._step[m] < len(route):
                self._step[m] = -self._step[m]
            stop += int(self._step[m])
            self._stop[m] = stop
            there = route[stop]
        speed = ROUTE_HABITS.speed_kmh[0] + (
            ROUTE_HABITS.speed_kmh[1] - ROUTE_HABITS.speed_kmh[0]) * rng.random()
        metres = distance_m(*here, *there)
        self.lat0[m], self.lon0[m] = here
        self.lat1[m], self.lon1[m] = there
        self.depart[m] = t0 + dwell
        self.arrive[m] = self.depart[m] + metres / (speed / 3.6)
        self.speed[m] = speed
        if metres >= 1.0:
            self.heading[m] = bearing_deg(*here, *there)

    def reposition(self, m: int, lat: float, lon: float, at: float) -> None:
        """Mover `m` was taken off its beat (a job, `cityops.sim.fieldwork`) and is free again
        at (lat, lon) at `at`: its next leg sets out from there."""
        self.lat1[m], self.lon1[m] = lat, lon
        self.arrive[m] = at
        self._next_leg(m)

    def advance(self, member: np.ndarray, t: np.ndarray) -> None:
        """Move every mover asked about onto the leg that covers its latest time in the batch."""
        if not len(member):
            return
        latest = np.full(len(self.devices), -np.inf)
        np.maximum.at(latest, member, t)
        for m in np.flatnonzero(self.arrive <= latest):
            if latest[m] - self.arrive[m] > CATCH_UP_LIMIT_S:
                # Walking hours of legs nobody will see costs seconds: pick up from here.
                self.arrive[m] = latest[m] - 60.0
            while self.arrive[m] <= latest[m]:
                self._next_leg(int(m))

    def values(self, member: np.ndarray, t: np.ndarray, local_s: np.ndarray) -> np.ndarray:
        self.advance(member, t)
        depart, arrive = self.depart[member], self.arrive[member]
        span = np.maximum(arrive - depart, 1e-9)
        # Times before the current leg's start (an earlier reading in the same batch) are
        # placed at the leg's start: off by at most a batch's worth of travel.
        f = np.clip((t - depart) / span, 0.0, 1.0)
        lat = self.lat0[member] + f * (self.lat1[member] - self.lat0[member])
        lon = self.lon0[member] + f * (self.lon1[member] - self.lon0[member])
        moving = (t >= depart) & (t < arrive)
        wobble = normal(self._key_jitter, member, np.floor(t))
        speed = np.where(moving, self.speed[member] * (1.0 + 0.08 * wobble), 0.0)
        heading = (self.heading[member] + np.where(moving, 4.0 * wobble, 0.0)) % 360.0
        by_name = {"lat": lat, "lon": lon, "speed": np.maximum(speed, 0.0), "heading": heading}
        cols = [
            by_name.get(c.name, np.full(len(member), (c.min + c.max) / 2.0))
            for c in self.kind.channels
        ]
        return np.clip(np.stack(cols, axis=1), self._lo, self._hi)
