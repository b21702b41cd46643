"""What every rule primitive needs: which rows of a batch a rule reads, its parameters in the
operating state of each device, rows in device-and-time order, evidence and words for people.

Selection is precomputed per device (kind, channel and `where`) so that choosing a rule's rows
from a batch is one gather and one comparison, whatever the filters say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios.context import Context
from cityops.domain.scenarios.signals import MAX_EVIDENCE
from cityops.domain.scenarios.spec import STATES, Rule, Where, param, seconds

US = 1_000_000
# A reading this far ahead of the engine's clock is not trusted: taken at its word it would
# make every later, honest reading of the device look late. (Intake refuses beyond 300 s too.)
FUTURE_LIMIT_US = 300 * US
NEVER = np.iinfo(np.int64).min  # "no time yet" in int64 timestamp arrays


def grown(array: np.ndarray, n: int, fill: Any) -> np.ndarray:
    """`array` with at least `n` entries along its first axis, new ones set to `fill`."""
    if array.shape[0] >= n:
        return array
    out = np.full((max(n, 2 * array.shape[0]), *array.shape[1:]), fill, array.dtype)
    out[: array.shape[0]] = array
    return out


# -- selection ------------------------------------------------------------------------------


class Selection:
    """The devices a rule reads and, per device, the channel it reads (-1: none).

    Rebuilt when the registry grows or the context gets new places; `version` counts rebuilds
    so that evaluators can grow their per-device state with it.
    """

    def __init__(self, rule: Rule, ctx: Context, *, kind: str | None = None,
                 channel: str | None = None, any_channel: bool = False) -> None:
        self.rule = rule
        self.kind = rule.kind or kind  # None: every kind
        self.channel = rule.channel or channel  # None: each kind's primary channel
        self.any_channel = any_channel  # every channel of the selected devices
        registry = ctx.registry
        if self.kind is not None:
            spec = registry.kind(self.kind)
            if self.channel is not None and self.channel not in [c.name for c in spec.channels]:
                names = ", ".join(c.name for c in spec.channels)
                raise ValueError(f"rule {rule.id!r}: kind {self.kind!r} has no channel "
                                 f"{self.channel!r} (channels: {names})")
        self.version = 0
        self.channel_of = np.full(1, -1, np.int8)  # one more than devices: see rows()
        self._key: tuple[int, int, int] | None = None
        self.refresh(ctx)

    @property
    def mask(self) -> np.ndarray:
        return self.channel_of[:-1] >= 0

    def refresh(self, ctx: Context) -> bool:
        places = ctx.places
        key = (len(ctx.registry), id(places), len(places.roles))
        if key == self._key:
            return False
        self._key = key
        registry = ctx.registry
        n = len(registry)
        by_kind = np.full(max(len(registry.kinds), 1), -1, np.int8)
        for k, spec in enumerate(registry.kinds):
            if self.kind is not None and spec.name != self.kind:
                continue
            names = [c.name for c in spec.channels]
            if self.channel is None or self.any_channel:
                by_kind[k] = 0
            elif self.channel in names:
                by_kind[k] = names.index(self.channel)
        channel = by_kind[registry.kind_of] if n else np.zeros(0, np.int8)
        where = self.rule.where
        if where is not None:
            channel = np.where(self._where(where, ctx, channel >= 0), channel, -1).astype(np.int8)
        self.channel_of = np.append(channel, np.int8(-1))
        self.version += 1
        return True

    def _where(self, where: Where, ctx: Context, keep: np.ndarray) -> np.ndarray:
        keep = keep.copy()
        n = keep.shape[0]
        places = ctx.places
        known = min(n, places.roles.shape[0])  # places may lag a growing registry
        if where.role is not None:
            roles = np.zeros(n, bool)
            roles[:known] = places.roles[:known] == where.role
            keep &= roles
        if where.areas:
            # A village code starts with its town's and district's codes.
            inside = np.array([any(v.startswith(a) for a in where.areas)
                               for v in places.villages] + [False], bool)
            village = np.full(n, -1, np.int64)
            village[:known] = places.village[:known]
            keep &= inside[village]  # -1 (unresolved) picks the trailing False
        if where.meta:
            devices = ctx.registry.devices
            for i in np.flatnonzero(keep).tolist():
                keep[i] = _meta_matches(devices[i].meta, where.meta)
        return keep

    def rows(self, batch: ReadingBatch, ctx: Context) -> np.ndarray:
        """Indices of the batch rows this rule reads, in batch order."""
        self.refresh(ctx)
        # Devices beyond the registry (clipped to the trailing -1) are not read.
        channel = np.take(self.channel_of, batch.device, mode="clip")
        keep = channel >= 0 if self.any_channel else channel == batch.channel
        if ctx.now_us:
            keep &= batch.ts <= ctx.now_us + FUTURE_LIMIT_US
        return np.flatnonzero(keep)


def _meta_matches(meta: dict[str, Any], wanted: dict[str, str | list[str]]) -> bool:
    for key, allowed in wanted.items():
        if key not in meta:
            return False
        value = str(meta[key])
        choices = [allowed] if isinstance(allowed, str) else allowed
        if value not in choices:
            return False
    return True


class Groups:
    """Dense ids for what a rule aggregates over (devices, cells, villages ...), stable while
    the registry grows: an id, once given to a device or an area code, stays its id."""

    def __init__(self, per: str = "device") -> None:
        self.per = per
        self.names: list[int | str] = []  # per id: device index, or cell / area code
        self._ids: dict[int | str, int] = {}
        self.of = np.zeros(0, np.int64)  # per device: its group id, -1 when not read
        self.version = -1

    def __len__(self) -> int:
        return len(self.names)

    def refresh(self, sel: Selection, ctx: Context) -> bool:
        """Follow the selection's devices; True when they changed."""
        sel.refresh(ctx)
        if self.version == sel.version:
            return False
        self.version = sel.version
        mask = sel.mask
        n = mask.shape[0]
        if self.per == "device":
            key, table = np.arange(n), None
        else:
            ids, table = ctx.places.group(self.per)
            key = np.full(n, -1, np.int64)
            key[: min(n, ids.shape[0])] = ids[:n]
        members = np.flatnonzero(mask & (key >= 0))
        uniq, inverse = np.unique(key[members], return_inverse=True)
        names = uniq.tolist() if table is None else [table[k] for k in uniq.tolist()]
        ids = np.array([self._ids.setdefault(name, len(self._ids)) for name in names], np.int64)
        self.names = list(self._ids)
        self.of = np.full(n, -1, np.int64)
        if members.size:
            self.of[members] = ids[inverse]
        return True

    def capacity(self, ctx: Context, span_us: int) -> int:
        """Readings a group's window of `span_us` holds at its kinds' nominal reporting rates,
        with some room (a RecentRows table grows past it when a group needs more)."""
        members = np.flatnonzero(self.of >= 0)
        if not members.size:
            return 4
        registry = ctx.registry
        period = np.array([k.period_s for k in registry.kinds])[registry.kind_of[members]]
        per_group = np.bincount(self.of[members], weights=span_us / US / period)
        return int(per_group.max() * 1.1) + 2


# -- parameters per operating state ---------------------------------------------------------


def number(value: Any) -> float:
    """A numeric parameter; None (not given) as NaN, which every comparison finds false."""
    return math.nan if value is None else float(value)


def duration_us(value: Any) -> int:
    return int(round(seconds(value) * US))


class PerState:
    """A rule parameter in each operating state (daily, special, emergency)."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.array = np.array(values)
        first = values[0]
        self.uniform = all(v == first or (v != v and first != first) for v in values)

    @classmethod
    def of(cls, rule: Rule, name: str, convert: Callable[[Any], Any] = number) -> PerState:
        try:
            return cls([convert(param(rule, name, state)) for state in STATES])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"rule {rule.id!r}: parameter {name!r}: {exc}") from None

    def at(self, ctx: Context, devices: np.ndarray) -> Any:
        """Per device, the value in the state in force there (a scalar when all agree)."""
        if self.uniform:
            return self.values[0]
        return self.array[states_of(ctx, devices)]

    def one(self, ctx: Context, device: int) -> Any:
        """The value in force at one device."""
        if self.uniform:
            return self.values[0]
        return self.values[int(states_of(ctx, np.array([device]))[0])]


def states_of(ctx: Context, devices: np.ndarray) -> np.ndarray:
    """Operating state codes of devices; daily for devices the state array does not cover."""
    state = ctx.state
    if devices.size == 0 or int(devices.max()) < state.shape[0]:
        codes: np.ndarray = state[devices].astype(np.intp)
        return codes
    out = np.zeros(devices.shape, np.intp)
    inside = devices < state.shape[0]
    out[inside] = state[devices[inside]]
    return out


# -- order ----------------------------------------------------------------------------------


def in_time_order(keys: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The order that sorts rows by key (device, group), then by time."""
    return np.lexsort((ts, keys))


def runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop index of each run of equal keys in a sorted array."""
    if sorted_keys.size == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return starts, np.r_[starts[1:], sorted_keys.size]


# -- signals --------------------------------------------------------------------------------


def evidence(rows: Iterable[tuple[int, int, int, float]]) -> list[tuple[int, int, int, float]]:
    """(device, channel, ts_us, value) rows as plain numbers, the newest MAX_EVIDENCE of them."""
    out = [(int(d), int(c), int(t), float(v)) for d, c, t, v in rows]
    out.sort(key=lambda row: row[2])
    return out[-MAX_EVIDENCE:]


def subject(ctx: Context, per: str, key: int | str) -> str:
    """What an episode is about: a device id, "cell:<h3>" or "area:<code>"."""
    if per == "device":
        return ctx.device_id(int(key))
    if per == "cell":
        return f"cell:{key}"
    return f"area:{key}"


def unit(ctx: Context, device: int, channel: int) -> str:
    registry = ctx.registry
    channels = registry.kinds[registry.kind_of[device]].channels
    return channels[channel].unit if 0 <= channel < len(channels) else ""


def fmt_value(value: float, unit: str = "") -> str:
    """61.2 dB(A), 0.004 cm, 3: short numbers with their unit."""
    if value != value:
        return "no value"
    if value == int(value) and abs(value) < 1e15:
        text = str(int(value))
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def fmt_duration(s: float) -> str:
    """45 s, 12 min, 2 h 5 min, 3 d 4 h."""
    s = max(0.0, s)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172_800:
        h, m = divmod(round(s / 60), 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(round(s / 3600), 24)
    return f"{d} d {h} h" if h else f"{d} d"


# -- recent rows per group ------------------------------------------------------------------


class RecentRows:
    """Per group (device, cell, area), every row still inside a sliding span, exactly.

    A table of groups x capacity, unordered within a group: a new row takes the slot of a row
    no evaluation can need any more, and the capacity doubles when a group has none left, so no
    row inside anyone's window is ever lost."""

    def __init__(self, capacity: int = 4) -> None:
        capacity = max(2, capacity)
        self.ts = np.full((0, capacity), NEVER, np.int64)
        self.value = np.zeros((0, capacity))
        self.device = np.full((0, capacity), -1, np.int32)

    @property
    def capacity(self) -> int:
        return self.ts.shape[1]

    def add(self, group: np.ndarray, ts: np.ndarray, value: np.ndarray, device: np.ndarray,
            keep_from: np.ndarray, limit: int | None = None) -> bool:
        """Rows sorted by group; `keep_from` per row (equal within a group): the earliest time
        any evaluation from now on may look at in that group. False, with nothing added, when
        the capacity would have to grow past `limit`."""
        if group.size == 0:
            return True
        starts, stops = runs(group)
        groups, new = group[starts], stops - starts
        oldest = keep_from[starts][:, None]
        if int(groups.max()) >= self.ts.shape[0]:
            n = int(groups.max()) + 1
            self.ts, self.value = grown(self.ts, n, NEVER), grown(self.value, n, 0.0)
            self.device = grown(self.device, n, -1)
        table = self.ts[groups]
        if int(new.max()) == 1:
            # The usual case, one new row per group: it takes the group's oldest slot.
            slot = table.argmin(axis=1)
            if (table[np.arange(groups.size), slot] < oldest[:, 0]).all():
                self.ts[groups, slot], self.value[groups, slot] = ts, value
                self.device[groups, slot] = device
                return True
        free = table < oldest
        needed = int((self.capacity - free.sum(axis=1) + new).max())
        if needed > self.capacity:
            if limit is not None and needed > limit:
                return False
            self._widen(1 << (needed - 1).bit_length())
            free = self.ts[groups] < oldest
        # The first `new` free slots of each group, in group order: the rows' own order.
        take = free & (np.cumsum(free, axis=1) <= new[:, None])
        r, c = np.nonzero(take)
        g = groups[r]
        self.ts[g, c], self.value[g, c], self.device[g, c] = ts, value, device
        return True

    def _widen(self, capacity: int) -> None:
        extra = capacity - self.capacity
        n = self.ts.shape[0]
        self.ts = np.hstack([self.ts, np.full((n, extra), NEVER, np.int64)])
        self.value = np.hstack([self.value, np.zeros((n, extra))])
        self.device = np.hstack([self.device, np.full((n, extra), -1, np.int32)])

    def stats(self, group: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, total: bool = True,
              extremes: bool = True, distinct: bool = False) -> tuple[np.ndarray, ...]:
        """Per query: count, sum, min and max of the group's values with lo <= ts <= hi
        (min +inf and max -inf when nothing is inside; sum and extremes only if asked).
        `distinct`: the count is of the devices with a row inside, not of rows."""
        n = group.size
        count = np.zeros(n, np.int64)
        sums, low, high = np.zeros(n), np.full(n, np.inf), np.full(n, -np.inf)
        known = self.ts.shape[0]
        step = max(1, (1 << 15) // self.capacity)  # temporaries that stay in the CPU's cache
        for a in range(0, n, step):
            b = min(n, a + step)
            g = group[a:b]
            if int(g.max()) >= known:
                g = np.where(g < known, g, 0)  # unknown groups: made empty by the bounds below
                lo_, hi_ = np.where(group[a:b] < known, lo[a:b], 1), np.where(
                    group[a:b] < known, hi[a:b], 0)
            else:
                lo_, hi_ = lo[a:b], hi[a:b]
            t = self.ts[g]
            inside = (t >= lo_[:, None]) & (t <= hi_[:, None])
            if distinct:
                # Devices inside, sorted per query (-1 for the slots outside): each device
                # counts at its first slot.
                d = np.sort(np.where(inside, self.device[g], -1), axis=1)
                first = np.ones(d.shape, bool)
                first[:, 1:] = d[:, 1:] != d[:, :-1]
                count[a:b] = (first & (d >= 0)).sum(axis=1)
            else:
                count[a:b] = inside.sum(axis=1)
            if total or extremes:
                v = self.value[g]
                if total:
                    sums[a:b] = np.where(inside, v, 0.0).sum(axis=1)
                if extremes:
                    low[a:b] = np.where(inside, v, np.inf).min(axis=1)
                    high[a:b] = np.where(inside, v, -np.inf).max(axis=1)
        return count, sums, low, high

    def drop_repeats(self, groups: np.ndarray) -> None:
        """Keep only the newest row of each device in these groups: what a count of distinct
        devices needs once no window can end before the newest row (the window holds a device
        if and only if it holds that device's newest row)."""
        groups = np.unique(groups)
        groups = groups[groups < self.ts.shape[0]]
        if groups.size == 0:
            return
        ts = self.ts[groups]
        r, c = np.nonzero(ts != NEVER)
        if r.size < 2:
            return
        d = self.device[groups][r, c]
        order = np.lexsort((ts[r, c], d, r))
        r, c, d = r[order], c[order], d[order]
        older = np.flatnonzero((r[1:] == r[:-1]) & (d[1:] == d[:-1]))
        self.ts[groups[r[older]], c[older]] = NEVER

    def rows(self, group: int, lo: int, hi: int) -> list[tuple[int, int, float]]:
        """(device, ts, value) of one group's rows with lo <= ts <= hi, oldest first."""
        if group >= self.ts.shape[0]:
            return []
        t = self.ts[group]
        idx = np.flatnonzero((t >= lo) & (t <= hi))
        idx = idx[np.argsort(t[idx], kind="stable")]
        return list(zip(self.device[group, idx].tolist(), t[idx].tolist(),
                        self.value[group, idx].tolist(), strict=True))


class Panes:
    """Per group, count, sum, min and max of the readings in each pane of time (a 60th of the
    span), for the last 64 panes: memory and work per window that do not grow with the rate."""

    SLOTS = 64
    DENSE_FROM = 4  # rows x this >= slots: update every slot in one pass instead of sorting

    def __init__(self, span_us: int) -> None:
        # Whole seconds, a 60th of the span or more: a window covers at most 61 panes, and the
        # rows of one batch are added two panes at a time (WindowStore.add_and_query).
        self.width = max(1, -(-span_us // ((self.SLOTS - 4) * US))) * US
        self.pane = np.full((0, self.SLOTS), NEVER, np.int64)
        self.count = np.zeros((0, self.SLOTS), np.int64)
        self.sum = np.zeros((0, self.SLOTS))
        self.low = np.full((0, self.SLOTS), np.inf)
        self.high = np.full((0, self.SLOTS), -np.inf)

    def add(self, group: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        if group.size == 0:
            return
        n = int(group.max()) + 1
        if n > self.pane.shape[0]:
            self.pane, self.count = grown(self.pane, n, NEVER), grown(self.count, n, 0)
            self.sum, self.low = grown(self.sum, n, 0.0), grown(self.low, n, np.inf)
            self.high = grown(self.high, n, -np.inf)
        pane = ts // self.width
        flat = group * self.SLOTS + pane % self.SLOTS
        # A slot holds one pane: the newest one that maps to it wins, older rows there are lost
        # (they are more than 64 panes older than a reading of their group).
        dense = flat.size * self.DENSE_FROM >= self.pane.size
        if dense:
            # Many rows (a switch-over from exact rows holds every group's last 128): one pass
            # over all slots beats sorting the rows, by 3-4 times, and a switch-over holds
            # the event loop while it runs.
            row_slot = flat
            newest = np.full(self.pane.size, NEVER, np.int64)
            np.maximum.at(newest, flat, pane)
            held = self.pane.ravel()
            fresh = newest > held
        else:
            slots, row_slot = np.unique(flat, return_inverse=True)
            newest = np.full(slots.size, NEVER, np.int64)
            np.maximum.at(newest, row_slot, pane)
            held = self.pane.ravel()[slots]
            fresh = slots[newest > held]
        for table, empty in ((self.count, 0), (self.sum, 0.0), (self.low, np.inf),
                             (self.high, -np.inf)):
            table.ravel()[fresh] = empty
        newest = np.maximum(newest, held)
        if dense:
            self.pane.ravel()[:] = newest
        else:
            self.pane.ravel()[slots] = newest
        keep = pane == newest[row_slot]
        flat, value = flat[keep], value[keep]
        np.add.at(self.count.ravel(), flat, 1)
        np.add.at(self.sum.ravel(), flat, value)
        np.minimum.at(self.low.ravel(), flat, value)
        np.maximum.at(self.high.ravel(), flat, value)

    def stats(self, group: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: bool = True,
              extremes: bool = True) -> tuple[np.ndarray, ...]:
        """As RecentRows.stats, over the panes that overlap [lo, hi]."""
        n = group.size
        count = np.zeros(n, np.int64)
        sums, low, high = np.zeros(n), np.full(n, np.inf), np.full(n, -np.inf)
        step = 1 << 10
        for a in range(0, n, step):
            b = min(n, a + step)
            known = group[a:b] < self.pane.shape[0]
            g = np.where(known, group[a:b], 0)
            pane = self.pane[g]
            inside = ((pane >= (lo[a:b] // self.width)[:, None])
                      & (pane <= (hi[a:b] // self.width)[:, None]) & known[:, None])
            count[a:b] = np.where(inside, self.count[g], 0).sum(axis=1)
            if total:
                sums[a:b] = np.where(inside, self.sum[g], 0.0).sum(axis=1)
            if extremes:
                low[a:b] = np.where(inside, self.low[g], np.inf).min(axis=1)
                high[a:b] = np.where(inside, self.high[g], -np.inf).max(axis=1)
        return count, sums, low, high


class WindowStore:
    """What sliding windows of up to `span_us` per group need to know.

    Every reading, exactly, while no group holds more than `exact_limit` readings in a span (the
    nominal rates of most kinds); past that, for the whole rule, counts, sums and extremes per
    pane of span/60 (whole seconds), so that a window's ends are then exact to a pane or two
    (the panes holding its start and its end count whole). Readings themselves (`rows`) are
    only known while exact.

    `distinct`: counts are of devices. Every window asked for from now on ends at or after
    the newest row already held (windows never end earlier than one already evaluated), so a
    window holds a device exactly when it holds that device's newest row: older rows of a
    device are dropped when its group next takes rows, and a group holds at most one row per
    device plus one batch's. That bounds memory by devices rather than rate, so the store
    stays exact and never turns to panes (which could not tell devices apart).
    """

    def __init__(self, span_us: int, capacity: int, exact_limit: int = 128,
                 distinct: bool = False) -> None:
        self.span_us = span_us
        self.exact_limit = exact_limit
        self.distinct = distinct
        self.table: RecentRows | None = RecentRows(min(capacity, exact_limit))
        self.panes: Panes | None = None

    @property
    def exact(self) -> bool:
        return self.table is not None

    def add_and_query(self, rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                      keep_from: np.ndarray, ask: tuple[np.ndarray, np.ndarray, np.ndarray], *,
                      total: bool = True, extremes: bool = True) -> tuple[np.ndarray, ...]:
        """Add `rows` (group, ts, value, device; sorted by group) and answer window queries
        `ask` (group, lo, hi) as RecentRows.stats does, each seeing the rows up to its end."""
        group, ts, value, device = rows
        if self.distinct:
            assert self.table is not None  # a distinct count never turns to panes
            self.table.drop_repeats(group)
            self.table.add(group, ts, value, device, keep_from)
            return self.table.stats(*ask, total=total, extremes=extremes, distinct=True)
        if self.table is not None:
            if self.table.add(group, ts, value, device, keep_from, limit=self.exact_limit):
                return self.table.stats(*ask, total=total, extremes=extremes)
            self._to_panes(self.table)
        panes = self.panes
        assert panes is not None  # no exact table: the panes hold the window
        # Panes hold 64 slots: add and ask in time order, two panes at a time, so that a
        # batch spanning hours (a replay) never laps the ring before its queries are answered.
        ask_group, lo, hi = ask
        width = 2 * panes.width
        row_slice, ask_slice = ts // width, hi // width
        n = ask_group.size
        out = (np.zeros(n, np.int64), np.zeros(n), np.full(n, np.inf), np.full(n, -np.inf))
        for k in np.union1d(row_slice, ask_slice).tolist():
            r = np.flatnonzero(row_slice == k)
            panes.add(group[r], ts[r], value[r])
            q = np.flatnonzero(ask_slice == k)
            if q.size:
                part = panes.stats(ask_group[q], lo[q], hi[q], total, extremes)
                for whole, piece in zip(out, part, strict=True):
                    whole[q] = piece
        return out

    def _to_panes(self, table: RecentRows) -> None:
        self.panes = Panes(self.span_us)
        held = np.flatnonzero(table.ts.ravel() != NEVER)
        self.panes.add(held // table.capacity, table.ts.ravel()[held], table.value.ravel()[held])
        self.table = None

    def stats(self, group: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, total: bool = True,
              extremes: bool = True) -> tuple[np.ndarray, ...]:
        if self.table is not None:
            return self.table.stats(group, lo, hi, total=total, extremes=extremes,
                                    distinct=self.distinct)
        assert self.panes is not None  # no exact table: the panes hold the window
        return self.panes.stats(group, lo, hi, total=total, extremes=extremes)

    def rows(self, group: int, lo: int, hi: int) -> list[tuple[int, int, float]]:
        return self.table.rows(group, lo, hi) if self.table is not None else []
