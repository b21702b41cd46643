"""The ingest pipeline: validate -> durable append to history -> publish on the bus.

Every source (HTTP, MQTT) goes through `Ingestor.ingest`. Admission is checked before any work:
a node that cannot take a batch says so at once (429/503 with Retry-After) instead of queueing
without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import msgspec
import numpy as np

from cityops.bus.subjects import READINGS, REJECTIONS
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


class LoopLag:
    """How late the event loop runs: a heartbeat every `every` seconds notes how late it woke.

    A node whose loop is behind cannot even read the requests waiting for it: they queue in
    the kernel (the accept backlog, socket buffers), in front of every bound the node counts,
    and wait there until their senders time out. The lag is what says so."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._last = 0.0

    def _beat(self) -> None:
        now = self._loop.time()
        self._last = max(0.0, now - self._due)
        self._due = now + self.every
        self._loop.call_at(self._due, self._beat)

    def seconds(self) -> float:
        """The lag now: that of the last heartbeat, or more if the next one is overdue."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new loop (tests): start beating there
            self._loop, self._last = loop, 0.0
            self._due = loop.time() + self.every
            loop.call_at(self._due, self._beat)
        return max(self._last, loop.time() - self._due)


class Slot:
    """One admitted batch's place among the ingestor's `max_in_flight`; release it once."""

    __slots__ = ("_ingestor", "size", "holder")

    def __init__(self, ingestor: Ingestor, size: int, holder: str | None) -> None:
        self._ingestor: Ingestor | None = ingestor
        self.size = size
        self.holder = holder

    def grow(self, size: int) -> None:
        """A body of undeclared length turned out `size` bytes: count it from now on."""
        if self._ingestor is not None and size > self.size:
            self._ingestor._count(self.holder, 0, size - self.size)
            self.size = size

    def release(self) -> None:
        if self._ingestor is not None:
            self._ingestor._count(self.holder, -1, -self.size)
            self._ingestor = None

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class Ingestor:
    def __init__(self, registry, history, bus, metrics, limits=None,
                 max_in_flight: int = 64, clock=time.time,
                 max_in_flight_bytes: int = 32 << 20, max_lag_s: float = 0.25) -> None:
        from cityops.ingest.validate import Limits

        self.registry = registry
        self.history = history
        self.bus = bus
        self.metrics = metrics
        self.limits = limits or Limits()
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        # Batches differ a thousandfold in size; their bytes are what costs memory and time.
        self.max_in_flight_bytes = max_in_flight_bytes
        self.in_flight_bytes = 0
        # What each holder (an API key) has in progress: [batches, bytes]. A holder gets at
        # most half of the slots and three quarters of the bytes, so one sender, however
        # many connections it opens or however slowly it sends, leaves room for the others.
        self.held: dict[str, list[int]] = {}
        self.clock = clock
        self.max_lag_s = max_lag_s
        self.lag = LoopLag()
        # Out-of-range rows not handed to detection because its queue was full. The queue
        # stays bounded; what it could not take is counted here and shown in detect stats.
        self.rejections_dropped = 0
        # Told of every stored batch (the rows new to the history), after the durable append
        # and before the answer: NGSI-LD subscriptions hear of readings this way. A listener
        # only notes the batch for later (it must not block); one that raises is logged and
        # ingest goes on.
        self.listeners: list[Callable[[ReadingBatch], None]] = []

    def admit(self, size: int = 0) -> None:
        """Raise Overloaded if this node should not take another batch (of `size` bytes, when
        known) now."""
        if self.in_flight >= self.max_in_flight:
            self.metrics.overloaded.labels("in_flight").inc()
            raise Overloaded(
                f"{self.in_flight} ingest batches in progress (limit {self.max_in_flight})",
                retry_after=1.0, status=429,
            )
        if self.in_flight_bytes and self.in_flight_bytes + size > self.max_in_flight_bytes:
            # One batch is always let in, however big: the body limit bounds that one.
            self.metrics.overloaded.labels("in_flight_bytes").inc()
            raise Overloaded(
                f"{self.in_flight_bytes / 2**20:.1f} MiB of ingest batches in progress "
                f"(limit {self.max_in_flight_bytes / 2**20:g} MiB)", retry_after=1.0, status=429)
        lag = self.lag.seconds()
        if lag > self.max_lag_s:
            # Refusing costs next to nothing, so the loop catches up and reads what waits.
            self.metrics.overloaded.labels("loop").inc()
            raise Overloaded(f"the node is behind: its event loop runs {lag:.2f} s late "
                             f"(limit {self.max_lag_s:g} s)", retry_after=1.0)
        self._check_bus()

    def _check_bus(self) -> None:
        if not self.bus.has_room(READINGS):
            self.metrics.overloaded.labels("bus").inc()
            raise Overloaded("detection is behind: the readings bus is full", retry_after=2.0)

    def reserve(self, size: int = 0, holder: str | None = None) -> Slot:
        """Admit one batch and hold its place among `max_in_flight` until the slot is released.

        An HTTP batch takes its slot before its body is read: a request that has passed
        admission but is still reading or decoding its body holds a body and its decoded
        readings, so it must count. Otherwise every open connection passes admission while
        the slots are briefly free, reads and decodes its body, and is refused only then:
        memory grows with the number of connections and the work is thrown away. `holder`
        (the sender's key) is held to its share of the slots and bytes."""
        if holder is not None:
            self._check_share(holder, size)
        self.admit(size)
        self._count(holder, 1, size)
        return Slot(self, size, holder)

    def _check_share(self, holder: str, size: int) -> None:
        slots, held_bytes = self.held.get(holder) or (0, 0)
        if slots >= max(1, self.max_in_flight // 2):
            self.metrics.overloaded.labels("key_share").inc()
            raise Overloaded(f"this key has {slots} ingest batches in progress, its share of "
                             f"the node's {self.max_in_flight}", retry_after=1.0, status=429)
        if slots and held_bytes + size > self.max_in_flight_bytes * 3 // 4:
            # A key's first batch goes in whatever its size, as the node's own budget lets.
            self.metrics.overloaded.labels("key_share").inc()
            raise Overloaded(f"this key has {held_bytes / 2**20:.1f} MiB of ingest batches "
                             f"in progress, its share of the node's "
                             f"{self.max_in_flight_bytes / 2**20:g} MiB",
                             retry_after=1.0, status=429)

    def _count(self, holder: str | None, batches: int, size: int) -> None:
        self.in_flight += batches
        self.in_flight_bytes += size
        if holder is None:
            return
        mine = self.held.setdefault(holder, [0, 0])
        mine[0] += batches
        mine[1] += size
        if not mine[0]:
            del self.held[holder]

    async def ingest(self, readings: list[tuple[int, Reading]], *, source: str,
                     rejected: list[Rejection] | None = None,
                     slot: Slot | None = None) -> IngestResult:
        """Store a batch; `slot` is the place `reserve` gave it (else it is admitted here)."""
        if slot is None:
            with self.reserve():
                return await self._ingest(readings, source, rejected)
        self._check_bus()  # it may have filled while the body was read
        return await self._ingest(readings, source, rejected)

    async def _ingest(self, readings: list[tuple[int, Reading]], source: str,
                      rejected: list[Rejection] | None) -> IngestResult:
        from cityops.ingest.validate import to_batch

        started = time.monotonic_ns()
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
            # A commissioning device's first accepted reading makes it active; the registry
            # keeps the change and cityops.lifecycle saves it with others, not per reading.
            self.registry.activate(batch.device, self.clock())
            if len(appended.stored):
                await self.bus.publish(READINGS, appended.stored)
                for listener in self.listeners:
                    try:
                        listener(appended.stored)
                    except Exception:
                        log.exception("ingest listener %r failed; the batch is stored",
                                      listener)
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
