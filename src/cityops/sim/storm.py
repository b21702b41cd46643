"""Labelled trouble on top of the simulated city: gateway outages, flaky devices and detectors
that repeat themselves, the first day of a real city as the storm benchmark and the demo need it.

- An *outage* takes a village's gateways down: every device behind them (`meta["gateway"]`)
  sends nothing from `outage_at` seconds into the run for `outage_for` seconds, then they all
  come back. In a pack without gateways a village's fixed devices go down together, as if
  each village had one.
- A *flaky* device drops out now and then for 3.5 to 4.5 of its reporting periods, long enough
  for an absence rule of 3 periods to fire, and comes back 1.5 to 4.5 periods later: raised,
  cleared, raised again (flapping).
- A *repeater* sends the same alarm again and again: a tilted manhole cover or a smoke
  detector in alarm for `repeat_burst` seconds of every `repeat_every`, with at least one
  reading in every alarm and in every quiet spell whatever the rate (readings are added where
  the round robin would not reach the device in time).

Which villages and devices is decided once, from the seed, among the pack's fixed devices
(trackers ride on the mobile network, KPI series are no radios). The three sets never share a
device, and an anomaly plan run beside the storm never picks one of them (see
`AnomalousSimulator`), so every labelled anomaly stays detectable during the storm.

Dropping readings is one numpy mask over the batch; whether a flaky device is down at a time
is a pure function of the seed, the device and the time (as the models are), so a run is
reproducible at any rate and batch size.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from cityops.domain.city import AreaCodes, CityPack, Device, DeviceKind
from cityops.sim.randomness import normal, stream_key, uniform

if TYPE_CHECKING:
    from cityops.domain.geo import CityMap

OUTAGE_AT_S = 60.0
# Longer than three periods of the 60 s kinds (noise, smoke, cameras ...), so their absence
# rules see the outage within a five-minute run, and short enough that everything comes back.
OUTAGE_FOR_S = 210.0
MIN_OUTAGE_DEVICES = 10  # a village with fewer devices behind its gateways is not taken down
FLAKY_DOWN = (3.5, 4.5)  # periods silent per spell
FLAKY_CYCLE = (6.0, 8.0)  # periods from one spell to the next (so 1.5 to 4.5 periods up)
FIRST_UP = 1.0  # periods a flaky device reports before its first spell, at the least
REPEAT_EVERY_S = 60.0
REPEAT_BURST_S = 20.0
# What a repeater repeats, by kind: the channel and the range of its alarm level. A tilted
# cover passes the displaced line (10 deg) and falls back under the clearing one (5 deg) in
# between; a smoke detector reads far past the 5 %/m an alarm counts from.
REPEATS: dict[str, tuple[str, float, float]] = {
    "manhole_tilt": ("tilt", 25.0, 35.0),
    "smoke": ("obscuration", 12.0, 20.0),
}
REPEAT_JITTER = 0.5  # a detector's alarm wavers a little, so no rule reads it as frozen


class StormOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How much trouble: `outages` villages out (all at `outage_at` seconds into the run, or
    one every `outage_stagger` seconds, each for `outage_for`), a `flaky` share of the fixed
    devices, and `repeaters` devices repeating an alarm."""

    outages: int = 0
    outage_at: float = OUTAGE_AT_S
    outage_for: float = OUTAGE_FOR_S
    outage_stagger: float = 0.0
    min_outage_devices: int = MIN_OUTAGE_DEVICES
    flaky: float = 0.0
    repeaters: int = 0
    repeat_every: float = REPEAT_EVERY_S
    repeat_burst: float = REPEAT_BURST_S

    @property
    def any(self) -> bool:
        return self.outages > 0 or self.flaky > 0 or self.repeaters > 0

    def problem(self) -> str | None:
        """What is wrong with these options, in one line (None: nothing)."""
        if self.outages < 0 or self.repeaters < 0:
            return "outages and repeaters are counts, 0 or more"
        if not 0.0 <= self.flaky <= 1.0:
            return f"flaky is a share of the devices, from 0 to 1 (not {self.flaky:g})"
        if self.outage_at < 0 or self.outage_stagger < 0:
            return "outage_at and outage_stagger are seconds into the run, 0 or more"
        if self.outage_for <= 0:
            return "outage_for must be more than 0 seconds"
        if not 0 < self.repeat_burst < self.repeat_every:
            return "repeat_burst must be more than 0 and shorter than repeat_every"
        return None


class Outage(msgspec.Struct, frozen=True, tag="outage", tag_field="type"):
    """A village's gateways down: `devices` (`count` of them) sent nothing from `start` to
    `end` (Unix seconds). `gateways` is empty in a pack without gateways."""

    village: str
    town: str
    gateways: list[str]
    devices: list[str]
    count: int
    start: float
    end: float


class Flaky(msgspec.Struct, frozen=True, tag="flaky", tag_field="type"):
    """A device that dropped out now and then: each spell is (from, to), Unix seconds, the
    device silent in between. Spells are listed up to the time the label was written (the
    last may end after it)."""

    device: str
    kind: str
    village: str | None
    period_s: float
    spells: list[tuple[float, float]]


class Repeater(msgspec.Struct, frozen=True, tag="repeater", tag_field="type"):
    """A device repeating one alarm: `channel` at about `level` for `burst_s` of every
    `every_s`, from `start` to `end`; `bursts` alarms started in that time."""

    device: str
    kind: str
    village: str | None
    channel: str
    level: float
    every_s: float
    burst_s: float
    start: float
    end: float
    bursts: int


StormLabel = Outage | Flaky | Repeater


def _keys(ids: Sequence[str]) -> np.ndarray:
    return np.array([zlib.crc32(i.encode()) for i in ids], dtype=np.int64)


def _fixed(kinds: dict[str, DeviceKind], device: Device) -> bool:
    kind = kinds.get(device.kind)
    return kind is not None and not kind.mobile and device.kind != "kpi"


class Storm:
    """The trouble decided for a pack, a seed and a start, over the simulator's devices
    (`devices`, in the simulator's order: `keep` and `alarm` take indices into it)."""

    def __init__(self, pack: CityPack, seed: int, start_ts: float, options: StormOptions,
                 devices: Sequence[Device], kinds: dict[str, DeviceKind]) -> None:
        why = options.problem()
        if why:
            raise ValueError(why)
        self.options = options
        self.seed = seed
        self.t0 = float(start_ts)
        self.devices = list(devices)
        self.kinds = kinds
        self.skipped: dict[str, str] = {}  # part of the storm -> why it fell short
        n = len(self.devices)
        self.withheld = 0  # readings dropped (outages, flaky devices)
        self.added = 0  # readings added so that every alarm and quiet spell of a repeater shows
        fixed = np.array([_fixed(kinds, d) for d in self.devices], bool)
        self._place = self._places(pack, fixed)
        self._village = [p.village if p is not None else None for p in self._place]
        self.outages: list[Outage] = []
        self._outage_of = np.full(n, -1, np.int64)
        self._out_start = np.empty(0)
        self._out_end = np.empty(0)
        self._reported = 0  # outages whose labels have gone out
        if options.outages:
            self._plan_outages(fixed)
        taken = self._outage_of >= 0
        self._flaky_of = np.full(n, -1, np.int64)
        self.flaky: list[int] = []
        if options.flaky > 0:
            self._plan_flaky(fixed & ~taken)
            taken |= self._flaky_of >= 0
        self._repeater_of = np.full(n, -1, np.int64)
        self.repeaters: list[int] = []
        if options.repeaters:
            self._plan_repeaters(fixed & ~taken)

    # -- which devices ------------------------------------------------------------------

    def _places(self, pack: CityPack, fixed: np.ndarray) -> list[AreaCodes | None]:
        out = [d.areas for d in self.devices]
        need = [i for i in np.flatnonzero(fixed).tolist() if out[i] is None]
        if need and pack.areas:
            city = self._city(pack)
            if city is not None and city.villages:
                found = city.resolve_many([self.devices[i].lat for i in need],
                                          [self.devices[i].lon for i in need])
                for i, place in zip(need, found, strict=True):
                    out[i] = place
        return out

    @staticmethod
    def _city(pack: CityPack) -> CityMap | None:
        from cityops.domain.geo import CityMap

        try:
            return CityMap.from_pack(pack)
        except ValueError:
            return None

    def _plan_outages(self, fixed: np.ndarray) -> None:
        options = self.options
        gateway_of = [str(d.meta["gateway"]) if fixed[i] and d.meta.get("gateway") else None
                      for i, d in enumerate(self.devices)]
        by_village: dict[str, list[int]] = {}
        if any(g is not None for g in gateway_of):
            # A village's gateways are those its devices use; down, they cut off every device
            # behind them (a device on a wire, with no gateway, keeps sending).
            gateways: dict[str, set[str]] = {}
            for i, g in enumerate(gateway_of):
                village = self._village[i]
                if g is not None and village is not None:
                    gateways.setdefault(village, set()).add(g)
            behind: dict[str, list[int]] = {}
            for i, g in enumerate(gateway_of):
                if g is not None:
                    behind.setdefault(g, []).append(i)
            for village, gws in gateways.items():
                by_village[village] = sorted(i for g in gws for i in behind[g])
        else:
            for i in np.flatnonzero(fixed).tolist():
                village = self._village[i]
                if village is not None:
                    by_village.setdefault(village, []).append(i)
        eligible = sorted(v for v, members in by_village.items()
                          if len(members) >= options.min_outage_devices)
        draw = uniform(stream_key(self.seed, "storm.outages"), _keys(eligible))
        chosen: list[str] = []
        taken: set[int] = set()
        for i in np.argsort(draw, kind="stable").tolist():
            members = by_village[eligible[i]]
            # A gateway that serves two villages is down in one outage, not two.
            if len(chosen) < options.outages and not taken.intersection(members):
                chosen.append(eligible[i])
                taken.update(members)
        if len(chosen) < options.outages:
            self.skipped["outages"] = (
                f"{options.outages} asked, {len(chosen)} villages have "
                f"{options.min_outage_devices} or more devices behind gateways of their own")
        starts, ends = [], []
        for number, village in enumerate(chosen):
            members = by_village[village]
            start = self.t0 + options.outage_at + number * options.outage_stagger
            self._outage_of[members] = number
            ids = [self.devices[i].id for i in members]
            cut = sorted({g for i in members if (g := gateway_of[i]) is not None})
            place = self._place[members[0]]
            town = place.town if place is not None else ""
            self.outages.append(Outage(village, town, cut, ids, len(ids), round(start, 3),
                                       round(start + options.outage_for, 3)))
            starts.append(start)
            ends.append(start + options.outage_for)
        self._out_start = np.array(starts, np.float64)
        self._out_end = np.array(ends, np.float64)

    def _plan_flaky(self, free: np.ndarray) -> None:
        candidates = np.flatnonzero(free)
        want = round(self.options.flaky * len(candidates))
        ids = [self.devices[i].id for i in candidates.tolist()]
        draw = uniform(stream_key(self.seed, "storm.flaky"), _keys(ids))
        chosen = np.sort(candidates[np.argsort(draw, kind="stable")[:want]])
        self.flaky = chosen.tolist()
        self._flaky_of[chosen] = np.arange(len(chosen))
        keys = _keys([self.devices[i].id for i in self.flaky])
        self._fl_key = keys
        self._fl_period = np.array([self.kinds[self.devices[i].kind].period_s
                                    for i in self.flaky], np.float64)
        lo, hi = FLAKY_CYCLE
        cycle = lo + (hi - lo) * uniform(stream_key(self.seed, "storm.flaky.cycle"), keys)
        self._fl_cycle = cycle * self._fl_period
        # Devices start at different points of their cycles, so their spells do not line up
        # into something that looks like an outage; each reports a while before its first.
        room = np.maximum(cycle - FLAKY_DOWN[1] - FIRST_UP, 0.0)
        shift = room * uniform(stream_key(self.seed, "storm.flaky.shift"), keys)
        self._fl_shift = shift * self._fl_period
        self._down_key = stream_key(self.seed, "storm.flaky.down")

    def _plan_repeaters(self, free: np.ndarray) -> None:
        options = self.options
        pools: list[list[int]] = []
        for kind in REPEATS:
            spec = self.kinds.get(kind)
            channel = REPEATS[kind][0]
            if spec is None or channel not in [c.name for c in spec.channels]:
                continue
            pool = [i for i in np.flatnonzero(free).tolist() if self.devices[i].kind == kind]
            if pool:
                draw = uniform(stream_key(self.seed, f"storm.repeaters.{kind}"),
                               _keys([self.devices[i].id for i in pool]))
                pools.append([pool[j] for j in np.argsort(draw, kind="stable").tolist()])
        chosen: list[int] = []
        # Taken in turn from each kind that can repeat, so a few repeaters are of every kind.
        while len(chosen) < options.repeaters and any(pools):
            for pool in pools:
                if pool and len(chosen) < options.repeaters:
                    chosen.append(pool.pop(0))
        if len(chosen) < options.repeaters:
            self.skipped["repeaters"] = (
                f"{options.repeaters} asked, {len(chosen)} free devices of the kinds that "
                f"repeat here ({', '.join(REPEATS)})")
        self.repeaters = chosen
        self._repeater_of[chosen] = np.arange(len(chosen))
        keys = _keys([self.devices[i].id for i in chosen])
        self._rp_key = keys
        self._rp_channel = np.array([
            [c.name for c in self.kinds[self.devices[i].kind].channels].index(
                REPEATS[self.devices[i].kind][0]) for i in chosen], np.int64)
        lo = np.array([REPEATS[self.devices[i].kind][1] for i in chosen])
        hi = np.array([REPEATS[self.devices[i].kind][2] for i in chosen])
        self._rp_level = lo + (hi - lo) * uniform(stream_key(self.seed, "storm.repeat.level"),
                                                  keys)
        self._rp_phase = options.repeat_every * uniform(
            stream_key(self.seed, "storm.repeat.phase"), keys)
        self._rp_jitter = stream_key(self.seed, "storm.repeat.jitter")
        self._rp_last = np.full(len(chosen), -1, np.int64)  # newest phase a reading showed

    @property
    def device_ids(self) -> set[str]:
        """Every device the storm touches (an anomaly plan leaves these alone)."""
        index = np.flatnonzero((self._outage_of >= 0) | (self._flaky_of >= 0)
                               | (self._repeater_of >= 0))
        return {self.devices[i].id for i in index.tolist()}

    @property
    def repeats(self) -> bool:
        return bool(self.repeaters)

    # -- the readings -------------------------------------------------------------------

    def keep(self, order: np.ndarray, ts: np.ndarray) -> np.ndarray | None:
        """Which of the readings of devices `order` at times `ts` are sent (None: all)."""
        drop: np.ndarray | None = None
        if self.outages:
            o = self._outage_of[order]
            hit = np.flatnonzero(o >= 0)
            if hit.size:
                oi = o[hit]
                down = (ts[hit] >= self._out_start[oi]) & (ts[hit] < self._out_end[oi])
                if down.any():
                    drop = np.zeros(len(order), bool)
                    drop[hit[down]] = True
        if self.flaky:
            f = self._flaky_of[order]
            hit = np.flatnonzero(f >= 0)
            if hit.size:
                down = self.flaky_down(f[hit], ts[hit])
                if down.any():
                    if drop is None:
                        drop = np.zeros(len(order), bool)
                    drop[hit[down]] = True
        if drop is None:
            return None
        self.withheld += int(drop.sum())
        return ~drop

    def _flaky_cycle(self, f: np.ndarray, ts: np.ndarray):
        rel = ts - self.t0 + self._fl_shift[f]
        k = np.floor(rel / self._fl_cycle[f])
        lo, hi = FLAKY_DOWN
        down = self._fl_period[f] * (lo + (hi - lo) * uniform(self._down_key, self._fl_key[f],
                                                              k))
        return rel, k, down

    def flaky_down(self, f: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Whether flaky devices number `f` are silent at `ts`."""
        rel, k, down = self._flaky_cycle(f, ts)
        pos = rel - k * self._fl_cycle[f]
        return (rel >= 0) & (pos >= self._fl_cycle[f] - down)

    def spells(self, number: int, until: float) -> list[tuple[float, float]]:
        """The silent spells of flaky device `number` that started by `until`."""
        cycle, shift = float(self._fl_cycle[number]), float(self._fl_shift[number])
        count = max(0, math.ceil((until - self.t0 + shift) / cycle) + 1)
        k = np.arange(count, dtype=np.float64)
        f = np.full(count, number)
        lo, hi = FLAKY_DOWN
        down = self._fl_period[f] * (lo + (hi - lo) * uniform(self._down_key, self._fl_key[f],
                                                              k))
        end = self.t0 - shift + (k + 1) * cycle
        start = end - down
        return [(round(a, 3), round(b, 3)) for a, b in zip(start.tolist(), end.tolist(),
                                                          strict=True) if a <= until]

    def _phase(self, r: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """2k for the quiet part of a repeater's k-th cycle, 2k + 1 for its alarm; -1 before
        its first cycle."""
        every, burst = self.options.repeat_every, self.options.repeat_burst
        rel = ts - self.t0 - self._rp_phase[r]
        k = np.floor(rel / every)
        on = rel - k * every >= every - burst
        return np.where(rel < 0, -1, 2 * k.astype(np.int64) + on)

    def alarm(self, index: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        """Put the alarm into the rows of repeaters among devices `index` (in place)."""
        r = self._repeater_of[index]
        hit = np.flatnonzero(r >= 0)
        if not hit.size:
            return
        rr = r[hit]
        phase = self._phase(rr, ts[hit])
        np.maximum.at(self._rp_last, rr, phase)
        on = np.flatnonzero((phase >= 0) & (phase % 2 == 1))
        if on.size:
            rows, rs = hit[on], rr[on]
            values[rows, self._rp_channel[rs]] = self._level(rs, ts[rows])

    def _level(self, r: np.ndarray, ts: np.ndarray) -> np.ndarray:
        jitter = np.clip(normal(self._rp_jitter, self._rp_key[r], np.floor(ts * 10.0)), -3, 3)
        return self._rp_level[r] + REPEAT_JITTER * jitter

    def due(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Repeaters that have shown no reading in their current phase at `now`: their
        numbers, and whether each is in alarm. They are counted as shown."""
        if not self.repeaters:
            return np.empty(0, np.int64), np.empty(0, bool)
        r = np.arange(len(self.repeaters))
        phase = self._phase(r, np.full(len(r), float(now)))
        late = np.flatnonzero((phase >= 0) & (phase > self._rp_last))
        self._rp_last[late] = phase[late]
        self.added += int(late.size)
        return late, phase[late] % 2 == 1

    def repeater_index(self, r: np.ndarray) -> np.ndarray:
        return np.array(self.repeaters, np.int64)[r]

    def channel_of(self, r: np.ndarray) -> np.ndarray:
        return self._rp_channel[r]

    def level_at(self, r: np.ndarray, ts: np.ndarray) -> np.ndarray:
        return self._level(r, ts)

    # -- labels -------------------------------------------------------------------------

    def ended(self, now: float) -> list[StormLabel]:
        """Outages that ended by `now` and have not been returned before."""
        out: list[StormLabel] = []
        while self._reported < len(self.outages) and self._out_end[self._reported] <= now:
            out.append(self.outages[self._reported])
            self._reported += 1
        return out

    def finish(self, now: float) -> list[StormLabel]:
        """The labels not returned yet: outages that started by `now` (one still running
        keeps its planned end), every flaky device and every repeater, up to `now`."""
        out: list[StormLabel] = []
        while self._reported < len(self.outages) and self._out_start[self._reported] <= now:
            out.append(self.outages[self._reported])
            self._reported += 1
        self._reported = len(self.outages)
        out += self.labels(now, outages=False)
        return out

    def labels(self, until: float, *, outages: bool = True) -> list[StormLabel]:
        """Every label as of `until`: the planned outages, flaky devices with their spells
        so far, repeaters with their bursts so far."""
        out: list[StormLabel] = list(self.outages) if outages else []
        for number, i in enumerate(self.flaky):
            device = self.devices[i]
            out.append(Flaky(device.id, device.kind, self._village[i],
                             float(self._fl_period[number]), self.spells(number, until)))
        every, burst = self.options.repeat_every, self.options.repeat_burst
        for number, i in enumerate(self.repeaters):
            device = self.devices[i]
            first = self.t0 + float(self._rp_phase[number]) + every - burst
            bursts = max(0, math.floor((until - first) / every) + 1)
            out.append(Repeater(device.id, device.kind, self._village[i],
                                REPEATS[device.kind][0], round(float(self._rp_level[number]), 2),
                                every, burst, round(first, 3), round(until, 3), bursts))
        return out


LabelSink = Callable[[list[StormLabel]], None]
