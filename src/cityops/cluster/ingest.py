"""Ingest in a cluster: refusing while detection lags, and a node that takes no readings."""

from __future__ import annotations

import asyncio
import logging
import time


from cityops.background import Background
from cityops.bus.subjects import READINGS
from cityops.ingest.pipeline import Overloaded
from cityops.cluster.bus import BusView
from cityops.cluster.roles import DETECT_GROUP, not_here

log = logging.getLogger(__name__)


class StreamLag:
    """How far detection is behind: messages of `readings` its consumer group has not yet been
    handed, summed over the partitions, looked up every `every_s` (an ingest node has no
    subscription whose depth would say it)."""

    def __init__(self, bus, group: str = DETECT_GROUP, every_s: float = 1.0) -> None:
        self.bus = bus
        self.group = group
        self.every_s = every_s
        self.messages = 0
        self.known = False  # False until the group's consumers exist
        self.checked_at = 0.0
        self._loop = Background("stream-lag", self._run)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def check(self) -> int:
        import nats.js.errors

        bus = self.bus
        total, known = 0, False
        for p in range(bus.partitions_of(READINGS)):
            try:
                info = await bus._jsm.consumer_info(  # noqa: SLF001
                    bus.stream, bus.durable_name(self.group, READINGS, p), timeout=2.0)
            except nats.js.errors.NotFoundError:
                continue
            known = True
            total += int(info.num_pending or 0)
        self.messages, self.known, self.checked_at = total, known, time.time()
        return total

    async def _run(self) -> None:
        while True:
            try:
                if self.bus.connected:
                    await self.check()
            except Exception as exc:  # the bus reports its own health; keep the last figure
                log.debug("stream lag look-up failed: %s", exc)
            await asyncio.sleep(self.every_s)


class IngestBus(BusView):
    """The bus as ingest sees it: also full while detection is `max_lag` messages behind, so
    that the client is told 503 (and comes back) rather than the stream's retention limits
    dropping readings detection has not seen."""

    def __init__(self, bus, lag: StreamLag, max_lag: int) -> None:
        super().__init__(bus)
        self.lag = lag
        self.max_lag = max_lag

    def has_room(self, subject: str) -> bool:
        if subject == READINGS and self.lag.messages > self.max_lag:
            return False
        return self.bus.has_room(subject)


def bus_unavailable_as_overload(ingest):
    """For the MQTT intake: JetStream not answering is a reason to wait and retry the batch
    (the broker keeps it unacknowledged), not to dead-letter it."""
    from cityops.bus.nats import BusUnavailable

    async def call(*args, **kwargs):
        try:
            return await ingest(*args, **kwargs)
        except BusUnavailable as exc:
            raise Overloaded(f"the bus is unavailable: {exc}", retry_after=2.0) from exc

    return call


class NoIngest:
    """Readings posted to a node that takes none (a detect, act or history worker)."""

    in_flight = 0
    rejections_dropped = 0

    def admit(self) -> None:
        raise not_here("take readings", "send them to an ingest or web node")

    def reserve(self, size: int = 0):
        self.admit()

    async def ingest(self, *args, **kwargs):
        self.admit()
