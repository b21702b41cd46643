"""The simulator: readings for every device of a city pack, in the wire format, at any rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import numpy as np

from cityops.domain.city import CityPack, Device, DeviceKind
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.ingest.decode import Reading
from cityops.sim.models import CIRCULAR, DECIMALS, Model, model_for
from cityops.sim.movers import Movers
from cityops.sim.places import LocalClock, city_bbox
from cityops.sim.schedule import RoundRobin
from cityops.sim.storm import Storm, StormLabel, StormOptions
from cityops.sim.weather import Weather

# Timestamps of one batch are spread over the time since the previous batch, but never further
# back than this: a simulator left idle does not backfill the gap.
MAX_SPREAD_S = 1.0
TS_DECIMALS = 6  # microseconds, the resolution history keeps


@dataclass(slots=True)
class _Group:
    kind: DeviceKind
    model: Model | Movers
    ids: np.ndarray  # object array of device ids
    decimals: list[int]
    names: tuple[str, ...]
    wire: type  # a Struct that encodes exactly like `Reading` for this kind, but faster
    values: type | None  # the Struct of its `values` for multi-channel kinds


def _round(group: _Group, values: np.ndarray) -> None:
    for c, places in enumerate(group.decimals):
        values[:, c] = np.round(values[:, c], places)
        if group.names[c] in CIRCULAR:
            values[:, c] %= 360.0


def _wire_types(kind: DeviceKind) -> tuple[type, type | None]:
    """Structs encoding to the same JSON as `Reading`; building them from positional fields is
    several times cheaper than building a `values` dict per reading."""
    if len(kind.channels) == 1:
        wire = msgspec.defstruct(
            f"Wire_{kind.name}", [("device_id", str), ("ts", float), ("value", float)]
        )
        return wire, None
    values = msgspec.defstruct(f"Values_{kind.name}", [(c.name, float) for c in kind.channels])
    wire = msgspec.defstruct(
        f"Wire_{kind.name}", [("device_id", str), ("ts", float), ("values", values)]
    )
    return wire, values


class Simulator:
    """Readings for a city pack, deterministic for a seed.

    Call `next_batch(n, now_ts)` (or `next_readings` / `next_messages`) with a clock that moves
    forward; devices are taken round robin, each at its kind's share of the rate.
    """

    def __init__(self, pack: CityPack, seed: int = 0, start_ts: float | None = None, *,
                 calm: bool = False, storm: StormOptions | None = None,
                 on_storm: Callable[[list[StormLabel]], None] | None = None) -> None:
        """`calm`: the models make no incidents of their own (see `Model.calm`). `storm`:
        outages, flaky devices and repeaters on top (see `cityops.sim.storm`); the label of
        each outage goes to `on_storm` once it has ended, the rest at `finish_storm`."""
        self.pack = pack
        self.seed = seed
        self.start_ts = time.time() if start_ts is None else float(start_ts)
        self.clock = LocalClock(pack.info.timezone, pack.info.center[1])
        bbox = city_bbox(pack)
        weather = Weather(seed, bbox)
        kinds: dict[str, DeviceKind] = {**BUILTIN_KINDS, **pack.kinds}

        by_kind: dict[str, list[Device]] = {}
        self.skipped: list[str] = []  # devices of kinds nobody defined
        for device in pack.devices:
            if device.kind in kinds:
                by_kind.setdefault(device.kind, []).append(device)
            else:
                self.skipped.append(device.id)

        self.groups: list[_Group] = []
        ordered: list[Device] = []  # every device, in the order of the schedule's indices
        group_of: list[np.ndarray] = []
        member_of: list[np.ndarray] = []
        periods: list[np.ndarray] = []
        for g, (name, devices) in enumerate(by_kind.items()):
            kind = kinds[name]
            if kind.mobile:
                model: Model | Movers = Movers(
                    pack, kind, devices, seed, self.start_ts, self.clock, bbox
                )
            else:
                model = model_for(kind, devices, seed, weather)
                model.calm = calm
            self.groups.append(
                _Group(
                    kind,
                    model,
                    np.array([d.id for d in devices], dtype=object),
                    [DECIMALS.get(c.name, 3) for c in kind.channels],
                    tuple(c.name for c in kind.channels),
                    *_wire_types(kind),
                )
            )
            ordered += devices
            group_of.append(np.full(len(devices), g, dtype=np.int64))
            member_of.append(np.arange(len(devices), dtype=np.int64))
            periods.append(np.full(len(devices), kind.period_s, dtype=np.float64))
        cat = lambda parts: np.concatenate(parts) if parts else np.empty(0, np.int64)  # noqa: E731
        self._group_of = cat(group_of)
        self._member_of = cat(member_of)
        self._schedule = RoundRobin(cat(periods) if periods else np.empty(0), seed)
        self._last_ts = self.start_ts
        self._encoder = msgspec.json.Encoder()
        self.storm: Storm | None = None
        problem = storm.problem() if storm is not None else None
        if problem:
            raise ValueError(problem)
        if storm is not None and storm.any:
            self.storm = Storm(pack, seed, self.start_ts, storm, ordered, kinds)
        self.on_storm = on_storm
        # Readings really made: an anomaly plan may withhold some of the `n` asked for, or
        # add some, so senders count these, not `n`.
        self.made = 0

    @property
    def device_count(self) -> int:
        return len(self._group_of)

    def _timestamps(self, n: int, now_ts: float) -> np.ndarray:
        # Readings of one batch get distinct, increasing times, so a device that appears twice
        # in a batch never sends the same (device, ts) twice.
        step = 10.0 ** -TS_DECIMALS
        now = max(float(now_ts), self._last_ts + n * step)
        low = max(self._last_ts, now - MAX_SPREAD_S)
        ts = np.round(low + (now - low) * (np.arange(1, n + 1) / n), TS_DECIMALS)
        self._last_ts = now
        return ts

    def _columns(self, n: int, now_ts: float):
        """Per kind group: (ids, ts, values rounded, group) for the next `n` readings."""
        order = self._schedule.take(n)
        if not len(order):
            return []
        ts = self._timestamps(len(order), now_ts)
        newest = float(ts[-1])
        storm = self.storm
        if storm is not None:
            keep = storm.keep(order, ts)
            if keep is not None:
                order, ts = order[keep], ts[keep]
        offset = self.clock.offset_s(newest)
        local = ts + offset
        groups = self._group_of[order]
        members = self._member_of[order]
        out = []
        for g in np.unique(groups):
            pick = np.flatnonzero(groups == g)
            group = self.groups[int(g)]
            member = members[pick]
            values = group.model.values(member, ts[pick], local[pick])
            if storm is not None and storm.repeats:
                storm.alarm(order[pick], ts[pick], values)
            _round(group, values)
            out.append((group.ids[member], ts[pick], values, group))
        if storm is not None:
            if storm.repeats:
                self._repeat(out, newest, offset)
            if self.on_storm is not None:
                ended = storm.ended(newest)
                if ended:
                    self.on_storm(ended)
        return out

    def _repeat(self, out: list, now: float, offset: float) -> None:
        """A reading now for each repeater that has shown none in its current alarm or quiet
        spell, added to its kind's rows."""
        storm = self.storm
        assert storm is not None
        late, alarming = storm.due(now)
        if not late.size:
            return
        index = storm.repeater_index(late)
        groups = self._group_of[index]
        at = {id(entry[3]): k for k, entry in enumerate(out)}
        for g in np.unique(groups).tolist():
            pick = np.flatnonzero(groups == g)
            group = self.groups[g]
            member = self._member_of[index[pick]]
            ts = np.full(len(pick), now)
            values = group.model.values(member, ts, ts + offset)
            on = np.flatnonzero(alarming[pick])
            if on.size:
                r = late[pick][on]
                values[on, storm.channel_of(r)] = storm.level_at(r, ts[on])
            _round(group, values)
            ids = group.ids[member]
            k = at.get(id(group))
            if k is None:
                out.append((ids, ts, values, group))
            else:
                old_ids, old_ts, old_values, _ = out[k]
                out[k] = (np.concatenate([old_ids, ids]), np.concatenate([old_ts, ts]),
                          np.concatenate([old_values, values]), group)

    def finish_storm(self, now_ts: float) -> list[StormLabel]:
        """End the storm: the labels not handed out yet (see `Storm.finish`), also to
        `on_storm`."""
        if self.storm is None:
            return []
        labels = self.storm.finish(float(now_ts))
        if labels and self.on_storm is not None:
            self.on_storm(labels)
        return labels

    @property
    def withheld(self) -> int:
        """Readings asked for that were not made: devices down in the storm."""
        return self.storm.withheld if self.storm is not None else 0

    @property
    def added(self) -> int:
        """Readings made beyond those asked for: a repeater's alarm or quiet spell shown."""
        return self.storm.added if self.storm is not None else 0

    def next_readings(self, n: int, now_ts: float) -> list[Reading]:
        """The next `n` readings as wire `Reading`s (for in-process ingest)."""
        out: list[Reading] = []
        for ids, ts, values, group in self._columns(n, now_ts):
            idl, tsl = ids.tolist(), ts.tolist()
            if len(group.names) == 1:
                out.extend(map(Reading, idl, tsl, values[:, 0].tolist()))
            else:
                names = group.names
                out.extend(
                    Reading(i, t, None, dict(zip(names, row)))
                    for i, t, row in zip(idl, tsl, values.tolist())
                )
        self.made += len(out)
        return out

    def _wire(self, n: int, now_ts: float) -> list:
        out: list = []
        for ids, ts, values, group in self._columns(n, now_ts):
            idl, tsl = ids.tolist(), ts.tolist()
            wire = group.wire
            if len(group.names) == 1:
                out.extend(map(wire, idl, tsl, values[:, 0].tolist()))
            else:
                vals = group.values
                out.extend(map(wire, idl, tsl, [vals(*row) for row in values.tolist()]))
        self.made += len(out)
        return out

    def next_batch(self, n: int, now_ts: float) -> bytes:
        """The next `n` readings as one JSON array (the HTTP body, or an MQTT batch message)."""
        return self._encoder.encode(self._wire(n, now_ts))

    def next_messages(self, n: int, now_ts: float) -> list[tuple[str, bytes]]:
        """The next `n` readings as (device id, JSON object), one MQTT message each."""
        encode = self._encoder.encode
        return [(w.device_id, encode(w)) for w in self._wire(n, now_ts)]

