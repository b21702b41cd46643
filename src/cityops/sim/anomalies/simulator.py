"""A simulator whose readings pass through an anomaly plan before they are encoded."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cityops.domain.city import CityPack
from cityops.sim.anomalies.plan import AnomalyPlan, KindRows, Label
from cityops.sim.simulator import Simulator, _Group, _wire_types
from cityops.sim.models import DECIMALS
from cityops.sim.storm import StormLabel, StormOptions


class AnomalousSimulator(Simulator):
    """`Simulator` with `plan` applied to every batch; labels of finished anomalies go to
    `on_labels` as they come (and stay in `plan.labels`)."""

    def __init__(self, pack: CityPack, seed: int = 0, start_ts: float | None = None, *,
                 plan: AnomalyPlan, on_labels: Callable[[list[Label]], None] | None = None,
                 storm: StormOptions | None = None,
                 on_storm: Callable[[list[StormLabel]], None] | None = None) -> None:
        # Calm: every alert is then the plan's (or the storm's, which labels its own).
        super().__init__(pack, seed, start_ts, calm=True, storm=storm, on_storm=on_storm)
        self.plan = plan
        self.on_labels = on_labels
        self._groups = {g.kind.name: g for g in self.groups}
        if self.storm is not None:
            # No anomaly on a device the storm silences or makes repeat itself: each stays
            # detectable through the storm, and each storm label stays the storm's.
            plan.env.busy.take(self.storm.device_ids)

    def _group(self, kind: str) -> _Group:
        group = self._groups.get(kind)
        if group is None:
            spec = self.plan.view.kinds[kind]
            group = _Group(spec, None, np.empty(0, dtype=object),
                           [DECIMALS.get(c.name, 3) for c in spec.channels],
                           tuple(c.name for c in spec.channels), *_wire_types(spec))
            self._groups[kind] = group
        return group

    def _columns(self, n: int, now_ts: float):
        columns = super()._columns(n, now_ts)
        rows = [KindRows(group.kind.name, ids, ts, values) for ids, ts, values, group in columns]
        labels = self.plan.inject(rows, float(now_ts))
        if labels and self.on_labels is not None:
            self.on_labels(labels)
        return [(r.ids, r.ts, r.values, self._group(r.kind)) for r in rows if len(r)]

    @property
    def withheld(self) -> int:
        return self.plan.withheld + super().withheld

    @property
    def added(self) -> int:
        return self.plan.added + super().added

    def finish(self, now_ts: float) -> list[Label]:
        """End the plan: labels of anomalies finished by `now_ts` (the rest are dropped)."""
        labels = self.plan.finish(float(now_ts))
        if labels and self.on_labels is not None:
            self.on_labels(labels)
        return labels
