"""What one detect worker of a cluster speaks for (`DetectShare`)."""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np

from cityops.bus.subjects import READINGS, REJECTIONS
from cityops.domain.readings import ReadingBatch
from cityops.history.state import SeriesState
from cityops.cluster.bus import BusView, prepare_group, replay_window
from cityops.cluster.roles import DETECT_GROUP
from cityops.cluster.routing import owned_devices, owns_alert, router_for

log = logging.getLogger(__name__)


class DetectShare:
    """What one detect worker of a cluster speaks for, handed to the same detection engine a
    single node runs (`detect.engine.Whole` is the single node's).

    - Its partitions (under the `Router`, built here before the node starts, and given to the
      node's bus and history reader so that what they publish and serve by partition agrees):
      signals about devices of other partitions (time-driven rules see every device of the
      registry) are dropped, and of the open alerts in the store it restores only its own.
    - The series it has evaluated, so that a batch a client sent twice is evaluated once; that
      memory starts empty, so what the stream hands a new worker again is evaluated again.
    - Its consumers made ready before it subscribes (`prepare_group`) and its rule memory
      rebuilt from the window before where it goes on (`replay_window`).
    - Alert events delivered until the bus and the store have them."""

    def __init__(self, node, scenarios, view: BusView) -> None:
        self.node = node
        self.view = view
        self.settings = node.settings
        self.router = router_for(node.registry, scenarios, node.settings)
        for part in (node.bus, getattr(node, "reader", None)):
            if hasattr(part, "route_with"):
                part.route_with(self.router)
        self.seen = SeriesState(0)
        self.owned = np.zeros(0, bool)
        self.floors: dict[int, int] = {}

    async def start(self, alerts: list) -> list:
        node, settings = self.node, self.settings
        self.seen = SeriesState(len(node.registry))
        self.grow(len(node.registry))
        alerts = [a for a in alerts
                  if owns_alert(a, node.registry, self.owned, self.router, settings)]
        self.floors = await prepare_group(node.bus, DETECT_GROUP, READINGS, self.view.partitions,
                                          from_start=True, rewind=True)
        await prepare_group(node.bus, DETECT_GROUP, REJECTIONS, self.view.partitions,
                            from_start=True, rewind=True)
        return alerts

    def grow(self, devices: int) -> None:
        self.owned = owned_devices(devices, self.settings, self.router)

    async def warm_up(self, engine) -> None:
        """Rules' memory from the readings just before where this worker goes on (see
        `replay_window`); episodes move in memory, nothing is published."""
        window = self.settings.detect_warmup_s
        started, rows = time.monotonic(), 0
        engine.warming = True
        try:
            for partition, floor in sorted(self.floors.items()):
                async for batch in replay_window(self.node.bus, READINGS, partition, floor,
                                                 window):
                    batch = await self.fresh(batch)
                    rows += len(batch)
                    await engine.evaluate(batch)
        finally:
            engine.warming = False
        engine.stats["warmup_rows"] = rows
        if rows:
            log.info("rule memory rebuilt from %d readings of the last %.0f s in %.1f s",
                     rows, window, time.monotonic() - started)

    async def fresh(self, batch: ReadingBatch) -> ReadingBatch:
        """The rows of `batch` this worker has not evaluated yet (a client's retry of a batch
        already taken is published again, whole)."""
        if not len(batch):
            return batch
        await self.node.ensure_devices(batch)
        seen = self.seen
        seen.reserve(max(len(self.node.registry), int(batch.device.max()) + 1))
        fresh, _ = seen.new_rows(batch)
        if not fresh.all():
            batch = batch.take(np.flatnonzero(fresh))
        seen.commit(batch)
        return batch

    def mine(self, signals: list) -> list:
        owned = self.owned
        return [s for s in signals
                if s.device < 0 or (s.device < owned.shape[0] and owned[s.device])]

    def latest(self) -> SeriesState:
        return self.seen

    def apply(self, episodes, signals: list, state_of) -> list:
        was_open = {o.alert.id for o in episodes.open.values()}
        return _raised_too(episodes.apply(signals, state_of), was_open)

    async def deliver(self, published: list, alerts: list) -> None:
        # The episodes have moved on in memory, so these events cannot be made again by
        # evaluating the batch again; they are retried until the bus and the store have them
        # (the stream keeps the readings waiting meanwhile).
        from cityops.bus.subjects import ALERTS

        await _until_done(lambda: self.node.bus.publish(ALERTS, published), "publish alerts")
        await _until_done(lambda: self.node.store.upsert_alerts(alerts), "store alerts")


def _raised_too(events: list, was_open: set[str]) -> list:
    """An episode that opened and closed within one evaluation comes out of the episodes as
    "cleared" alone, and the act side files only what was raised. A worker catching up on a
    backlog evaluates many messages at once, so short episodes would go unfiled: they are
    told as raised, then cleared."""
    from cityops.domain.alerts import AlertEvent

    out = []
    for event in events:
        if event.change == "cleared" and event.alert.id not in was_open:
            out.append(AlertEvent("raised", event.alert))
        out.append(event)
    return out


async def _until_done(call, what: str) -> None:
    from cityops.bus.nats import BusUnavailable
    from cityops.store.base import StoreBusy

    delay = 0.1
    while True:
        try:
            await call()
            return
        except (BusUnavailable, StoreBusy, ConnectionError, TimeoutError) as exc:
            log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
