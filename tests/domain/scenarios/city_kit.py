"""A tiny city built in code for the rule-primitive tests: devices with chosen kinds, places
and meta, a context on a chosen clock, and batches written as rows."""

from __future__ import annotations

import datetime as dt

import numpy as np

from cityops.domain.calendar import LocalClock
from cityops.domain.city import AreaCodes, Device, WorkCalendar
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.readings import ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.domain.scenarios.context import STATE_CODES, Context, Places
from cityops.domain.scenarios.spec import Category, ScenarioPack

US = 1_000_000
DISTRICT = "310115"
# Villages: two in town 001, one in town 002.
V1, V2, V3 = f"{DISTRICT}001001", f"{DISTRICT}001002", f"{DISTRICT}002001"


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: float = 0,
       tz: str = "Asia/Shanghai") -> int:
    """Microseconds UTC of a local wall-clock time."""
    from zoneinfo import ZoneInfo

    whole = int(s)
    local = dt.datetime(y, mo, d, h, mi, whole, tzinfo=ZoneInfo(tz))
    return int(local.timestamp()) * US + int(round((s - whole) * US))


def device(i: int, kind: str = "noise", village: str = V1, cell: str | None = "cellA",
           **meta) -> Device:
    areas = AreaCodes(DISTRICT, village[:9], village) if village else None
    return Device(f"{kind}-{i:03d}", kind, 31.2 + i * 1e-3, 121.5, areas=areas, cell=cell,
                  meta=meta)


def active(d: Device, since_us: int) -> Device:
    """A device heard before: active in its lifecycle since `since_us`."""
    import msgspec

    from cityops.domain.lifecycle import Lifecycle

    return msgspec.structs.replace(d, lifecycle=Lifecycle.ACTIVE, lifecycle_at=since_us / US)


def context(devices: list[Device], *, tz: str = "Asia/Shanghai",
            calendar: WorkCalendar | None = None, now_us: int = 0) -> Context:
    registry = DeviceRegistry(BUILTIN_KINDS)
    registry.add(devices)
    places = Places.build(registry)
    return Context(registry, places, LocalClock(tz, calendar), now_us=now_us,
                   state=np.zeros(len(registry), np.int8))


def set_state(ctx: Context, state: str, devices: list[int] | None = None) -> None:
    if devices is None:
        ctx.state[:] = STATE_CODES[state]
    else:
        ctx.state[devices] = STATE_CODES[state]


def batch(*rows: tuple[int, int, int, float]) -> ReadingBatch:
    """Rows of (device index, channel, ts_us, value)."""
    if not rows:
        return ReadingBatch.empty()
    d, c, t, v = zip(*rows, strict=True)
    return ReadingBatch(np.array(d, np.int32), np.array(c, np.int8), np.array(t, np.int64),
                        np.array(v, np.float64))


def series(dev: int, t0: int, step_s: float, values, channel: int = 0) -> ReadingBatch:
    """One device's readings every `step_s` seconds from t0."""
    return batch(*[(dev, channel, t0 + int(i * step_s * US), v) for i, v in enumerate(values)])


def pack(*rules, name: str = "test") -> ScenarioPack:
    return ScenarioPack(name=name, version=1, title="Test pack",
                        category=Category("event.test", "event", "01", "0101", "Test"),
                        departments=["city_management"], rules=list(rules))


def raised(signals) -> list:
    return [s for s in signals if s.active]


def kinds_of(signals) -> list[tuple[str, bool]]:
    return [(s.subject, s.active) for s in signals]
