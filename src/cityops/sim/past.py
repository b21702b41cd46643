"""The simulated city's past: weeks of its vital signs, made by the same model (and seed) as
the live simulator, so that a demo starts with baselines already learnt and the live values
are judged against a history they belong to.

Hourly KPI series get one value per local hour (the value the live simulator reports for that
hour); the daily garbage-sorting accuracy one value per local day, at noon.
"""

from __future__ import annotations

import numpy as np

from cityops.domain.city import CityPack
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.readings import US, ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.sim.models import model_for
from cityops.sim.places import LocalClock, city_bbox
from cityops.sim.weather import Weather

HOUR_S = 3600
DAY_S = 86400


def kpi_history(pack: CityPack, registry: DeviceRegistry, end_s: float, weeks: int = 4,
                seed: int = 0) -> ReadingBatch:
    """The KPI devices' readings over the `weeks` before `end_s` (epoch s), hour by hour."""
    kinds = {**BUILTIN_KINDS, **pack.kinds}
    devices = [d for d in pack.devices if d.kind == "kpi"]
    if not devices or "kpi" not in kinds:
        return ReadingBatch.empty()
    model = model_for(kinds["kpi"], devices, seed, Weather(seed, city_bbox(pack)))
    clock = LocalClock(pack.info.timezone, pack.info.center[1])
    last_hour = int(end_s // HOUR_S) * HOUR_S
    hours = np.arange(last_hour - weeks * 7 * 24 * HOUR_S, last_hour, HOUR_S, dtype=np.float64)
    daily = np.array([d.meta.get("kpi") == "sorting_accuracy" for d in devices])
    index = np.array([registry.index[d.id] for d in devices], np.int64)
    parts = []
    for members, stamps in ((np.flatnonzero(~daily), hours),
                            (np.flatnonzero(daily), _noons(hours, clock))):
        if not len(members) or not len(stamps):
            continue
        member = np.repeat(members, len(stamps))
        ts = np.tile(stamps, len(members))
        local = ts + np.array([clock.offset_s(float(t)) for t in stamps])[
            np.tile(np.arange(len(stamps)), len(members))]
        values = model.values(member, ts, local)[:, 0]
        parts.append(ReadingBatch(index[member].astype(np.int32), np.zeros(len(ts), np.int8),
                                  (ts * US).astype(np.int64), np.round(values, 2),
                                  source="simulated-past"))
    return ReadingBatch.concat(parts)


def _noons(hours: np.ndarray, clock: LocalClock) -> np.ndarray:
    """Of `hours`, those at local noon: one a day."""
    offsets = np.array([clock.offset_s(float(t)) for t in hours[:: 24]] or [0.0])
    offset = float(np.median(offsets))
    local = hours + offset
    return hours[(local % DAY_S) == 12 * HOUR_S]
