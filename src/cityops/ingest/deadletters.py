"""The dead-letter sink: input that could not be taken, kept with the reason, written in batches.

Intake paths must never block on, or die of, bad input; they hand dead letters here and move
on. Memory is bounded: past `max_pending` letters waiting for the store, new ones are counted
as dropped (and reported) rather than kept.

The store is bounded too. A dead letter is there for a person to see why a sender's input
was refused, and the first `per_source` letters of a window say that as well as twenty
thousand would: past that, a source's letters are counted (`capped`, and in /metrics) but
not kept until its next window. A source is where the letter came from: for MQTT its topic,
which with authenticated MQTT belongs to one device key (broker_accounts.py), so one flooding
sender cannot crowd out the letters of another. The sources followed at once are bounded as
well (`max_sources`); past that, new ones share one allowance. Letters older than
`retention_s` are deleted by a sweep every `sweep_every_s`, a bounded piece per write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import msgspec

from cityops.background import Background

from cityops.store.base import DeadLetter, Store

log = logging.getLogger(__name__)


class DeadLetterStats(msgspec.Struct):
    added: int  # handed to the sink, including dropped and capped ones
    written: int  # stored
    dropped: int  # refused for overload: the store was not keeping up
    pending: int  # waiting to be written
    write_errors: int  # failed store writes (the letters stay pending and are retried)
    capped: int = 0  # not kept: their source had used its allowance for the window
    expired: int = 0  # deleted by the retention sweep


OVERFLOW = "(other sources)"  # the shared allowance once `max_sources` are followed
SWEEP_PIECE = 5000  # letters deleted per store write by the retention sweep


def source_of(letter: DeadLetter) -> str:
    """Whose letter this is, for the cap: the intake and its topic (or request path)."""
    return f"{letter.source}:{letter.where}"


class DeadLetterSink:
    def __init__(
        self,
        store: Store,
        max_pending: int = 10_000,
        *,
        batch_size: int = 500,
        interval_s: float = 0.2,
        per_source: int = 100,
        window_s: float = 600.0,
        max_sources: int = 10_000,
        retention_s: float | None = 7 * 86400.0,
        sweep_every_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
        on_capped: Callable[[DeadLetter], None] | None = None,
    ) -> None:
        self.store = store
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.per_source = per_source
        self.window_s = window_s
        self.max_sources = max_sources
        self.retention_s = retention_s
        self.sweep_every_s = sweep_every_s
        self.clock = clock
        self.on_capped = on_capped
        self._windows: dict[str, list[float]] = {}  # source -> [window start, letters kept]
        self._capped = 0
        self._expired = 0
        self._next_sweep = 0.0
        self._last_cap_log = 0.0
        self._pending: list[DeadLetter] = []
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._worker = Background("dead-letter-sink", self._run)
        self._added = 0
        self._written = 0
        self._dropped = 0
        self._write_errors = 0
        self._last_drop_log = 0.0

    @property
    def stats(self) -> DeadLetterStats:
        return DeadLetterStats(
            self._added, self._written, self._dropped, len(self._pending), self._write_errors,
            self._capped, self._expired,
        )

    def _allowed(self, letter: DeadLetter) -> bool:
        """Count the letter against its source's window; False when the allowance is used."""
        now = self.clock()
        source = source_of(letter)
        window = self._windows.get(source)
        if window is None and len(self._windows) >= self.max_sources:
            self._windows = {k: w for k, w in self._windows.items()
                             if now - w[0] < self.window_s}
            if len(self._windows) >= self.max_sources:
                source = OVERFLOW
                window = self._windows.get(source)
        if window is None or now - window[0] >= self.window_s:
            window = self._windows[source] = [now, 0]
        if window[1] < self.per_source:
            window[1] += 1
            return True
        self._capped += 1
        if self.on_capped is not None:
            self.on_capped(letter)
        if time.monotonic() - self._last_cap_log > 10.0:
            self._last_cap_log = time.monotonic()
            log.warning(
                "dead letters from %s are over %d in %.0f s: the rest of this window is only "
                "counted (%d so far, all sources)",
                source, self.per_source, self.window_s, self._capped,
            )
        return False

    def add_nowait(self, letter: DeadLetter) -> bool:
        """Queue a letter; False when it was dropped for overload or over its source's cap."""
        self._added += 1
        if not self._allowed(letter):
            return False
        if len(self._pending) >= self.max_pending:
            self._dropped += 1
            now = time.monotonic()
            if now - self._last_drop_log > 10.0:
                self._last_drop_log = now
                log.warning(
                    "dead letters are arriving faster than the store takes them: %d dropped so "
                    "far (latest from %s %s: %s)",
                    self._dropped, letter.source, letter.where, letter.reason,
                )
            return False
        self._pending.append(letter)
        if len(self._pending) >= self.batch_size:
            self._wake.set()
        return True

    async def add(self, letter: DeadLetter) -> bool:
        kept = self.add_nowait(letter)
        if kept and not self._worker.running and len(self._pending) >= self.batch_size:
            # Nobody flushes in the background: do it here. A failure is logged and counted,
            # and the letters stay pending; the sender of a bad message is not to blame.
            with contextlib.suppress(Exception):
                await self.flush()
        return kept

    async def flush(self) -> None:
        """Write everything pending. A failed write keeps the letters for the next attempt."""
        async with self._write_lock:
            while self._pending:
                batch = self._pending[: self.batch_size]
                try:
                    await self.store.add_dead_letters(batch)
                except Exception:
                    self._write_errors += 1
                    log.exception("could not store %d dead letters; will retry", len(batch))
                    raise
                # Letters added while the write was in flight sit after `batch`: keep them.
                del self._pending[: len(batch)]
                self._written += len(batch)

    async def start(self) -> None:
        self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()
        with contextlib.suppress(Exception):
            await self.flush()

    async def sweep(self) -> int:
        """Delete the letters past the retention period; returns how many went."""
        if not self.retention_s or self.retention_s <= 0:
            return 0
        cutoff = self.clock() - self.retention_s
        gone = 0
        while True:
            n = await self.store.delete_dead_letters(cutoff, limit=SWEEP_PIECE)
            gone += n
            self._expired += n
            if n < SWEEP_PIECE:
                return gone
            await asyncio.sleep(0)  # other writes get their turn between pieces

    async def _run(self) -> None:
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            try:
                await self.flush()
                if self.clock() >= self._next_sweep:
                    self._next_sweep = self.clock() + self.sweep_every_s
                    await self.sweep()
                failures = 0
            except Exception:
                # Back off so a broken store is not hammered once per added letter.
                failures += 1
                await asyncio.sleep(min(self.interval_s * 2**failures, 10.0))
