"""Histories of cluster nodes: the stream as the durable log, the `history` role writing
it down, the latest values of web and act nodes, and history reads by partition."""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from cityops.background import Background
from cityops.bus.subjects import READINGS
from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.readings import ReadingBatch
from cityops.history.log import Appended
from cityops.history.state import SeriesState
from cityops.ingest.pipeline import Overloaded
from cityops.cluster.bus import BusView
from cityops.cluster.roles import not_here
from cityops.cluster.routing import Router

log = logging.getLogger(__name__)


class StreamHistory:
    """The history of a node that writes none: ingest publishes to the stream, which is the
    durable log, and the `history` role writes the WAL and Parquet files from it. What remains
    here are the latest values (`state`), for the parts that read them (positions on the live
    screen, field staff for proposals, a device's latest values), fed by a `LatestFollower`
    or by detection."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self.state = SeriesState(len(registry))
        self.stats = {"rows": 0, "duplicates": 0, "groups": 0, "fsync_s": 0.0, "compacted": 0}

    def open(self, snapshot=None) -> None:
        self.state.reserve(len(self.registry))
        if snapshot is not None and len(snapshot):
            series = _series_of(self.registry, snapshot)
            known = series >= 0
            self.state.restore_latest(series[known],
                                      np.asarray(snapshot.ts_us, np.int64)[known],
                                      np.asarray(snapshot.value, np.float64)[known])

    def close(self) -> None:
        pass

    async def append(self, batch: ReadingBatch) -> Appended:
        # Durable only once the ingestor's publish is acknowledged by JetStream, which it
        # awaits before answering; nothing is deduplicated here (detection and the history
        # role drop repeats of a retried batch).
        return Appended(stored=batch, duplicates=0, fresh=np.ones(len(batch), bool))

    def note(self, batch: ReadingBatch) -> None:
        if len(batch):
            self.state.reserve(max(len(self.registry), int(batch.device.max()) + 1))
            self.state.commit(batch)

    def queue_depth(self) -> int:
        return 0

    def take_dirty_latest(self):
        from cityops.store.base import LatestRows

        return LatestRows([], [], [], []), -1

    def recent_frames(self) -> list[ReadingBatch]:
        return []


def _series_of(registry, rows) -> np.ndarray:
    names = registry.channel_names()
    kind_of = registry.kind_of
    out = np.full(len(rows), -1, np.int64)
    for i, (device_id, channel) in enumerate(zip(rows.device_id, rows.channel)):
        d = registry.index.get(device_id)
        if d is None:
            continue
        try:
            out[i] = d * MAX_CHANNELS + names[kind_of[d]].index(channel)
        except ValueError:
            continue
    return out


class _Consumer:
    """A loop taking reading batches from a subscription; a batch is acknowledged when the
    loop comes back for the next one, i.e. after `take` returned."""

    def __init__(self, name: str, view: BusView, maxsize: int) -> None:
        self.view = view
        self.maxsize = maxsize
        self.sub = None
        self._loop = Background(name, self._run)
        self.stats = {"batches": 0, "rows": 0, "failures": 0}

    async def start(self) -> None:
        self.sub = self.view.subscribe(READINGS, maxsize=self.maxsize)
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self.sub is not None:
            await self.sub.close()

    def depth(self) -> int:
        return self.sub.depth() if self.sub is not None else 0

    async def take(self, batch: ReadingBatch) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            batches = await self.sub.get_batch(64)
            if not batches:
                continue
            batch = ReadingBatch.concat(batches)
            # Not acknowledged until taken (the next get_batch acknowledges): a store that is
            # away is waited for; a batch that fails again and again is logged and passed
            # over rather than stopping the history (or the latest values) for good.
            for attempt in range(1, 6):
                try:
                    await self.take(batch)
                    break
                except Exception:
                    self.stats["failures"] += 1
                    log.exception("%s: a batch of %d readings failed (attempt %d of 5)",
                                  self._loop.name, len(batch), attempt)
                    await asyncio.sleep(min(2.0 ** attempt, 10.0))
            self.stats["batches"] += 1
            self.stats["rows"] += len(batch)


class HistoryFeeder(_Consumer):
    """The `history` role: readings from the stream into the history log (WAL, fsync,
    Parquet), the only place the raw history is written in cluster mode. A batch is taken
    from the stream only once durable here; a redelivered one is dropped as a repeat."""

    def __init__(self, node, view: BusView) -> None:
        super().__init__("history-feeder", view, node.settings.bus_queue)
        self.node = node

    async def take(self, batch: ReadingBatch) -> None:
        delay = 0.05
        while True:
            await self.node.ensure_devices(batch)
            try:
                appended = await self.node.history.append(batch)
            except Overloaded:
                # The writer is full: wait; the stream holds the rest meanwhile.
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self.node.metrics.accepted.labels("stream").inc(len(appended.stored))
            self.node.metrics.rate.add(len(appended.stored))
            return


class LatestFollower(_Consumer):
    """A web or act node's latest values (vehicles on the screen, staff for proposals, a
    device's latest reading), from every partition of the stream in a group of the node's
    own: every such node sees every reading."""

    def __init__(self, node, view: BusView) -> None:
        super().__init__("latest-follower", view, node.settings.bus_queue)
        self.node = node

    async def take(self, batch: ReadingBatch) -> None:
        self.node.history.note(batch)


class NoReader:
    """History reads on a node without the `history` role."""

    def device_readings(self, *args, **kwargs):
        raise not_here("hold the reading history",
                        "ask a node with the history role (cityops serve --role history)")

    def count(self, *args, **kwargs):
        return self.device_readings()


class ShardReader:
    """History reads on one of several history workers: a device whose partition another
    worker holds is answered with that worker's number, not with an empty history."""

    def __init__(self, reader, settings) -> None:
        self._reader = reader
        self._settings = settings
        self._router: Router | None = None

    def route_with(self, router: Router) -> None:
        self._router = router

    def __getattr__(self, name: str):
        return getattr(self._reader, name)

    def device_readings(self, index: int, *args, **kwargs):
        from cityops.bus.nats import partition_of

        s = self._settings
        if self._router is not None:
            partition = int(self._router.of(np.array([int(index)]))[0])
        else:
            partition = int(partition_of(int(index), s.partitions))
        # The same rule as `nats.share`: partition p is worker p % workers's.
        worker = partition % s.workers
        if worker != s.worker:
            raise not_here("hold this device's history",
                            f"history worker {worker} of {s.workers} does (--worker {worker})")
        return self._reader.device_readings(index, *args, **kwargs)
