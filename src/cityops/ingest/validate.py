"""Semantic checks of decoded readings against the registry, column-wise.

Decoding already settled types; here a reading is refused for naming an unknown device or
channel, for a value outside the kind's physical range (or not finite), or for a timestamp
too far in the future (clock skew) or too old to be a late delivery.
"""

from __future__ import annotations

import datetime as dt
import math

import msgspec
import numpy as np

from cityops.domain.readings import (
    CHANNEL_DTYPE,
    DEVICE_DTYPE,
    TS_DTYPE,
    US,
    VALUE_DTYPE,
    ReadingBatch,
)
from cityops.domain.registry import DeviceRegistry
from cityops.ingest.decode import Reading, Rejection


class Limits(msgspec.Struct, frozen=True):
    max_future_s: float = 300.0  # clock skew allowed on a device
    max_age_s: float = 7 * 86400.0  # older readings are not late, they are wrong


def _ts_us(ts: dt.datetime | float) -> float:
    if isinstance(ts, float):
        return ts * US
    return ts.timestamp() * US


def to_batch(
    readings: list[tuple[int, Reading]],
    registry: DeviceRegistry,
    now_us: int,
    limits: Limits = Limits(),
    out_of_range: list[ReadingBatch] | None = None,
) -> tuple[ReadingBatch, list[Rejection], np.ndarray]:
    """Turn decoded readings into a batch of valid rows.

    Returns the batch, the rejections (by the reading's index in the body) and, per row of the
    batch, the index of the reading it came from. Rows of known devices refused only for their
    value are appended to `out_of_range` when given (device health watches such storms).
    """
    rejections: list[Rejection] = []
    get = registry.index.get
    # Plain single-value readings are the bulk of traffic: one comprehension each, no branches.
    plain = [(i, r) for i, r in readings if r.values is None]
    multi = [(i, r) for i, r in readings if r.values is not None] if len(plain) < len(readings) else []

    origin = [i for i, _ in plain]
    device = [get(r.device_id, -1) for _, r in plain]
    channel = [0] * len(plain)
    ts = [_ts_us(r.ts) for _, r in plain]
    value = [math.nan if r.value is None else r.value for _, r in plain]
    missing_value = [i for i, r in plain if r.value is None]

    for i, r in multi:
        if r.value is not None:
            rejections.append(Rejection(i, "give either `value` or `values`, not both"))
            continue
        d = get(r.device_id, -1)
        if d < 0:
            rejections.append(Rejection(i, f"unknown device {r.device_id!r}"))
            continue
        kind = registry.kinds[registry.kind_of[d]]
        names = [c.name for c in kind.channels]
        unknown = [name for name in r.values if name not in names]
        if unknown or not r.values:
            rejections.append(
                Rejection(
                    i,
                    f"device {r.device_id!r} of kind {kind.name!r} has channels "
                    f"{', '.join(names)}; got {', '.join(unknown) or 'none'}",
                )
            )
            continue
        t = _ts_us(r.ts)
        for name, v in r.values.items():
            origin.append(i)
            device.append(d)
            channel.append(names.index(name))
            ts.append(t)
            value.append(v)

    dev = np.asarray(device, dtype=DEVICE_DTYPE)
    ch = np.asarray(channel, dtype=CHANNEL_DTYPE)
    tsa = np.asarray(ts, dtype=np.float64)
    val = np.asarray(value, dtype=VALUE_DTYPE)
    org = np.asarray(origin, dtype=np.int64)

    known = dev >= 0
    kind = np.where(known, registry.kind_of[np.where(known, dev, 0)] if len(registry) else 0, 0)
    lo = registry.ch_min[kind, ch]
    hi = registry.ch_max[kind, ch]
    in_range = (val >= lo) & (val <= hi)  # NaN (missing value, absent channel) fails both
    ts_ok = (tsa <= now_us + limits.max_future_s * US) & (tsa >= now_us - limits.max_age_s * US)
    ok = known & in_range & ts_ok
    if out_of_range is not None:
        wild = np.flatnonzero(known & ts_ok & ~in_range)
        if len(wild):
            out_of_range.append(ReadingBatch(dev[wild], ch[wild], np.round(tsa[wild]).astype(
                TS_DTYPE), val[wild], source="rejections"))

    if not ok.all():
        missing = set(missing_value)
        by_index = dict(readings)
        for row in np.flatnonzero(~ok):
            i = int(org[row])
            reason = _reason(row, i, dev, ch, tsa, val, registry, by_index, missing, now_us, limits)
            rejections.append(Rejection(i, reason))
        # A multi-channel reading with one bad channel is refused whole: it is one reading.
        bad_origins = np.unique(org[~ok])
        ok &= ~np.isin(org, bad_origins)

    rejections.sort(key=lambda r: r.index)
    rejections = _one_per_index(rejections)
    keep = np.flatnonzero(ok)
    batch = ReadingBatch(
        dev[keep],
        ch[keep],
        np.round(tsa[keep]).astype(TS_DTYPE),
        val[keep],
    )
    return batch, rejections, org[keep]


def _reason(row, i, dev, ch, tsa, val, registry, by_index, missing, now_us, limits) -> str:
    if dev[row] < 0:
        return f"unknown device {by_index[i].device_id!r}"
    if i in missing:
        return "reading has neither `value` nor `values`"
    kind = registry.kinds[registry.kind_of[dev[row]]]
    spec = kind.channels[ch[row]]
    v = float(val[row])
    if not spec.min <= v <= spec.max:
        return (
            f"value {v:g} is outside the valid range {spec.min:g}..{spec.max:g} {spec.unit} "
            f"of a {kind.name} {spec.name}"
        )
    t = float(tsa[row]) / US
    now = now_us / US
    when = dt.datetime.fromtimestamp(t, dt.UTC).isoformat() if abs(t) < 1e11 else f"{t:g}"
    if t > now:
        return (
            f"timestamp {when} is {t - now:.0f} s in the future "
            f"(clock skew allowed: {limits.max_future_s:g} s; numbers are epoch seconds)"
        )
    return f"timestamp {when} is older than the {limits.max_age_s / 86400:g}-day late-delivery window"


def _one_per_index(rejections: list[Rejection]) -> list[Rejection]:
    seen: set[int] = set()
    out = []
    for r in rejections:
        if r.index not in seen:
            seen.add(r.index)
            out.append(r)
    return out
