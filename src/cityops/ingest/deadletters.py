"""The dead-letter sink: input that could not be taken, kept with the reason, written in batches.

Intake paths must never block on, or die of, bad input; they hand dead letters here and move
on. Memory is bounded: past `max_pending` letters waiting for the store, new ones are counted
as dropped (and reported) rather than kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import msgspec

from cityops.background import Background

from cityops.store.base import DeadLetter, Store

log = logging.getLogger(__name__)


class DeadLetterStats(msgspec.Struct):
    added: int  # handed to the sink, including dropped ones
    written: int  # stored
    dropped: int  # refused for overload: the store was not keeping up
    pending: int  # waiting to be written
    write_errors: int  # failed store writes (the letters stay pending and are retried)


class DeadLetterSink:
    def __init__(
        self,
        store: Store,
        max_pending: int = 10_000,
        *,
        batch_size: int = 500,
        interval_s: float = 0.2,
    ) -> None:
        self.store = store
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.interval_s = interval_s
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
            self._added, self._written, self._dropped, len(self._pending), self._write_errors
        )

    def add_nowait(self, letter: DeadLetter) -> bool:
        """Queue a letter; False when it was dropped for overload."""
        self._added += 1
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

    async def _run(self) -> None:
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            try:
                await self.flush()
                failures = 0
            except Exception:
                # Back off so a broken store is not hammered once per added letter.
                failures += 1
                await asyncio.sleep(min(self.interval_s * 2**failures, 10.0))
