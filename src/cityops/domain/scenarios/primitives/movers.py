"""What the rules on moving devices share: GPS fixes put together from their lat and lon rows,
and the runs of a condition along each device's fixes (inside a zone, off its route).

A fix arrives as one row per channel with the same device and time. Fixes are handled in
device-and-time order; a fix no newer than the newest one already evaluated for its device is
late and changes nothing, so a replayed or delayed fix cannot undo what later fixes decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios.context import Context
from cityops.domain.scenarios.primitives.common import NEVER, Selection, grown
from cityops.domain.scenarios.spec import Rule

EARTH_RADIUS_M = 6_371_008.8

# Event kinds, in the order they apply at one fix.
ENTER, REACH, EXIT = 0, 1, 2


@dataclass(slots=True)
class Fixes:
    """Positions sorted by device, then time; `first`/`last`: the device's first/last fix in
    the batch; `seen`: the device had an evaluated fix before this batch."""

    device: np.ndarray
    ts: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    first: np.ndarray
    last: np.ndarray
    seen: np.ndarray
    lat_channel: int
    lon_channel: int

    def __len__(self) -> int:
        return int(self.device.shape[0])

    def evidence(self, f: int) -> list[tuple[int, int, int, float]]:
        d, t = int(self.device[f]), int(self.ts[f])
        return [(d, self.lat_channel, t, float(self.lat[f])),
                (d, self.lon_channel, t, float(self.lon[f]))]


class FixReader:
    """Turns batches into new fixes of the devices a rule selects, remembering per device the
    time of the newest fix evaluated."""

    def __init__(self, rule: Rule, ctx: Context) -> None:
        self.selection = Selection(rule, ctx, kind="gps", any_channel=True)
        assert self.selection.kind is not None  # the rule's kind, or gps
        spec = ctx.registry.kind(self.selection.kind)
        try:
            self.lat_channel = spec.channel_index("lat")
            self.lon_channel = spec.channel_index("lon")
        except KeyError:
            raise ValueError(f"rule {rule.id!r}: kind {spec.name!r} has no lat and lon "
                             f"channels") from None
        self.newest = np.full(0, NEVER, np.int64)

    def read(self, batch: ReadingBatch, ctx: Context) -> Fixes:
        rows = self.selection.rows(batch, ctx)
        channel = batch.channel[rows]
        rows = rows[(channel == self.lat_channel) | (channel == self.lon_channel)]
        device, ts, channel = batch.device[rows], batch.ts[rows], batch.channel[rows]
        order = np.lexsort((channel, ts, device))
        rows, device, ts, channel = rows[order], device[order], ts[order], channel[order]
        # A fix: the lower channel's row directly followed by the other's, same device and time.
        low, high = sorted((self.lat_channel, self.lon_channel))
        pair = ((device[:-1] == device[1:]) & (ts[:-1] == ts[1:])
                & (channel[:-1] == low) & (channel[1:] == high))
        a = np.flatnonzero(pair)
        device, ts = device[a].astype(np.int64), ts[a]
        first_value, second_value = batch.value[rows[a]], batch.value[rows[a + 1]]
        lat, lon = ((first_value, second_value) if low == self.lat_channel
                    else (second_value, first_value))
        # The same fix twice (a resend) counts once: the last copy.
        keep = np.r_[(device[1:] != device[:-1]) | (ts[1:] != ts[:-1]), True][: device.size]
        keep &= np.isfinite(lat) & np.isfinite(lon)
        device, ts, lat, lon = device[keep], ts[keep], lat[keep], lon[keep]

        self.newest = grown(self.newest, len(ctx.registry), NEVER)
        before = self.newest[device]
        new = ts > before
        device, ts, lat, lon, before = device[new], ts[new], lat[new], lon[new], before[new]
        first = np.r_[True, device[1:] != device[:-1]][: device.size]
        last = np.r_[device[1:] != device[:-1], True][: device.size]
        self.newest[device[last]] = ts[last]
        return Fixes(device, ts, lat, lon, first, last, before > NEVER,
                     self.lat_channel, self.lon_channel)


@dataclass(slots=True)
class Events:
    """Changes of a condition along fixes, ordered by fix then kind (ENTER, REACH, EXIT).

    For (fix f, slot z): ENTER, the condition starts holding at f; REACH, it has held since
    `since` for the required time at f; EXIT, it stopped holding at f after holding since
    `since`. `crossed`: the run began on a fix whose previous fix was seen not to hold."""

    kind: np.ndarray
    fix: np.ndarray
    slot: np.ndarray
    since: np.ndarray
    crossed: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.shape[0])


class Runs:
    """Per (device, slot) where a condition held at the device's newest fix: since when, and
    whether that run began with an observed crossing. A slot is a zone, or 0 for a condition
    with no slots. Kept as sorted keys (device * slots + slot) with aligned columns."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self.keys = np.zeros(0, np.int64)
        self.since = np.zeros(0, np.int64)
        self.crossed = np.zeros(0, bool)

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def step(self, fixes: Fixes, pf: np.ndarray, pz: np.ndarray, hold_us: np.ndarray | int,
             need_crossing: bool) -> Events:
        """Where the condition holds at fixes `pf` for slots `pz` (hold_us: per pair, how long
        it must have held to REACH), update the runs and return what changed."""
        width = self.slots
        device = fixes.device
        pf, pz = pf.astype(np.int64), pz.astype(np.int64)
        order = np.lexsort((pf, pz, device[pf]))
        pf, pz = pf[order], pz[order]
        hold_us = np.broadcast_to(np.asarray(hold_us, np.int64), order.shape)[order]
        held_now = np.sort(pf * width + pz)
        n = pf.size

        pdev = device[pf]
        first = fixes.first[pf]
        was = np.where(first, _member(pdev * width + pz, self.keys),
                       _member((pf - 1) * width + pz, held_now))
        enter = ~was
        crossed_at_enter = ~first | fixes.seen[pf]

        # Where each pair's run began: at an ENTER, or before this batch (then the first pair
        # of its device and slot carries it on).
        group_start = np.r_[True, (pdev[1:] != pdev[:-1]) | (pz[1:] != pz[:-1])][:n]
        start = np.maximum.accumulate(np.where(enter | group_start, np.arange(n), 0))
        carried = ~enter[start]
        at = np.searchsorted(self.keys, pdev[start] * width + pz[start])[carried]
        since = fixes.ts[pf[start]]
        since[carried] = self.since[at]
        crossed = crossed_at_enter[start]
        crossed[carried] = self.crossed[at]
        reached = fixes.ts[pf] - since >= hold_us
        if need_crossing:
            reached &= crossed
        _, first_reach = np.unique(start[reached], return_index=True)
        reach = np.flatnonzero(reached)[first_reach]

        ends = np.flatnonzero(~fixes.last[pf] & ~_member((pf + 1) * width + pz, held_now))
        # Runs from earlier batches not holding at their device's first fix here.
        firsts = np.flatnonzero(fixes.first)
        prior_dev, prior_slot = self.keys // width, self.keys % width
        if firsts.size:
            j = np.minimum(np.searchsorted(device[firsts], prior_dev), firsts.size - 1)
            first_fix = firsts[j]
            dropped = (device[first_fix] == prior_dev) & ~_member(
                first_fix * width + prior_slot, held_now)
        else:
            first_fix, dropped = np.zeros(len(self), np.int64), np.zeros(len(self), bool)

        e = np.flatnonzero(enter)
        kind = np.concatenate([np.full(e.size, ENTER), np.full(reach.size, REACH),
                               np.full(ends.size + int(dropped.sum()), EXIT)])
        fix = np.concatenate([pf[e], pf[reach], pf[ends] + 1, first_fix[dropped]])
        order = np.lexsort((kind, fix))
        events = Events(
            kind=kind[order], fix=fix[order],
            slot=np.concatenate([pz[e], pz[reach], pz[ends], prior_slot[dropped]])[order],
            since=np.concatenate([since[e], since[reach], since[ends],
                                  self.since[dropped]])[order],
            crossed=np.concatenate([crossed_at_enter[e], crossed[reach], crossed[ends],
                                    self.crossed[dropped]])[order],
        )
        self._apply(fixes, events)
        return events

    def _apply(self, fixes: Fixes, events: Events) -> None:
        """A pair holds after the batch when its last ENTER or EXIT was an ENTER."""
        change = events.kind != REACH
        if not change.any():
            return
        keys = fixes.device[events.fix[change]] * self.slots + events.slot[change]
        last = keys.size - 1 - np.unique(keys[::-1], return_index=True)[1]
        keys = keys[last]
        entered = events.kind[change][last] == ENTER
        keep = ~_member(self.keys, keys)
        self.keys = np.concatenate([self.keys[keep], keys[entered]])
        self.since = np.concatenate([self.since[keep], events.since[change][last][entered]])
        self.crossed = np.concatenate([self.crossed[keep],
                                       events.crossed[change][last][entered]])
        order = np.argsort(self.keys, kind="stable")
        self.keys, self.since, self.crossed = (self.keys[order], self.since[order],
                                               self.crossed[order])

    def since_of(self, device: int, slot: int = 0) -> int | None:
        """When the run holding at the device's newest fix began (None: it does not hold)."""
        key = device * self.slots + slot
        i = int(np.searchsorted(self.keys, key))
        return int(self.since[i]) if i < self.keys.size and self.keys[i] == key else None


def _member(keys: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Which of `keys` are in the sorted array `table`."""
    if table.size == 0:
        return np.zeros(keys.shape, bool)
    i = np.minimum(np.searchsorted(table, keys), table.size - 1)
    found: np.ndarray = table[i] == keys
    return found


class LocalMetres:
    """Degrees to metres on a plane touching the Earth at a city's centre (equirectangular):
    within some 50 km of the centre distances are good to a fraction of a percent."""

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0, self.lon0 = lat0, lon0
        self.ky = math.radians(1.0) * EARTH_RADIUS_M
        self.kx = self.ky * math.cos(math.radians(lat0))

    def xy(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(lon) - self.lon0) * self.kx, (np.asarray(lat) - self.lat0) * self.ky
