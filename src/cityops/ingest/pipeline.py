"""The ingest pipeline: validate -> durable append to history -> publish on the bus.

Every source (HTTP, MQTT) goes through `Ingestor.ingest`. Admission is checked before any work:
a node that cannot take a batch says so at once (429/503 with Retry-After) instead of queueing
without bound.
"""

from __future__ import annotations

import logging
import time

import msgspec
import numpy as np

from cityops.domain.readings import ReadingBatch
from cityops.ingest.decode import Reading, Rejection

log = logging.getLogger(__name__)


class IngestResult(msgspec.Struct):
    accepted: int  # stored (durably) or already stored (duplicates)
    duplicates: int  # readings already stored: every value of theirs was there
    rejected: list[Rejection]


class Overloaded(Exception):
    """The node cannot take more now; answer 429/503 with Retry-After."""

    def __init__(self, reason: str, retry_after: float = 1.0, status: int = 503) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status


READINGS = "readings"
REJECTIONS = "rejections"  # readings of known devices refused for their value


class Ingestor:
    def __init__(self, registry, history, bus, metrics, limits=None,
                 max_in_flight: int = 64, clock=time.time) -> None:
        from cityops.ingest.validate import Limits

        self.registry = registry
        self.history = history
        self.bus = bus
        self.metrics = metrics
        self.limits = limits or Limits()
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.clock = clock
        # Out-of-range rows not handed to detection because its queue was full. The queue
        # stays bounded; what it could not take is counted here and shown in detect stats.
        self.rejections_dropped = 0

    def admit(self) -> None:
        """Raise Overloaded if this node should not take another batch now."""
        if self.in_flight >= self.max_in_flight:
            self.metrics.overloaded.labels("in_flight").inc()
            raise Overloaded(
                f"{self.in_flight} ingest batches in progress (limit {self.max_in_flight})",
                retry_after=1.0, status=429,
            )
        if not self.bus.has_room(READINGS):
            self.metrics.overloaded.labels("bus").inc()
            raise Overloaded("detection is behind: the readings bus is full", retry_after=2.0)

    async def ingest(self, readings: list[tuple[int, Reading]], *, source: str,
                     rejected: list[Rejection] | None = None) -> IngestResult:
        from cityops.ingest.validate import to_batch

        self.admit()
        started = time.monotonic_ns()
        self.in_flight += 1
        try:
            wild: list = []
            batch, invalid, origin = to_batch(readings, self.registry,
                                              int(self.clock() * 1e6), self.limits, wild)
            refused = sorted((rejected or []) + invalid, key=lambda r: r.index)
            batch.received_ns = started
            batch.source = source
            duplicates = 0
            stored = 0
            if len(batch):
                try:
                    appended = await self.history.append(batch)
                except Overloaded:
                    self.metrics.overloaded.labels("history").inc()
                    raise
                # A reading of several channels is new if any of its values is new.
                taken = len(np.unique(origin))
                stored = len(np.unique(origin[appended.fresh]))
                duplicates = taken - stored
                if len(appended.stored):
                    await self.bus.publish(READINGS, appended.stored)
                self.metrics.values.labels(source).inc(len(appended.stored))
            if wild:
                # Only once the batch is taken: a batch answered 503 comes again, and its
                # refused rows must not be counted twice by the rules that count them.
                await self._publish_rejections(ReadingBatch.concat(wild))
            self.metrics.accepted.labels(source).inc(stored)
            self.metrics.duplicates.labels(source).inc(duplicates)
            self.metrics.rejected.labels(source).inc(len(refused))
            self.metrics.rate.add(stored)
            self.metrics.ingest_seconds.observe((time.monotonic_ns() - started) / 1e9)
            accepted = len(readings) - len(invalid)
            return IngestResult(accepted=accepted, duplicates=duplicates, rejected=refused)
        finally:
            self.in_flight -= 1

    async def _publish_rejections(self, rows: ReadingBatch) -> None:
        """Never waits: a full queue means detection is behind, and intake must not stall for
        a health signal. Rows that find no room are dropped and counted."""
        if self.bus.has_room(REJECTIONS):
            await self.bus.publish(REJECTIONS, rows)
            return
        if not self.rejections_dropped:
            log.warning("detection is behind: out-of-range readings are being dropped "
                        "(counted in rejections_dropped)")
        self.rejections_dropped += len(rows)
