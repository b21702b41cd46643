"""How late the node's event loop runs what is due: a timer asks to wake every `interval_s` and
the overshoot is the time something else held the loop (a long evaluation, a big commit, the
garbage collector). Every latency the node reports has this in its tail, so it is measured
apart from them, as a Prometheus histogram and as recent figures for the stats endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections import deque

import numpy as np
from prometheus_client import Histogram

from cityops.background import Background

log = logging.getLogger(__name__)


class LoopLag:
    def __init__(self, histogram: Histogram | None = None, *, interval_s: float = 0.02,
                 keep: int = 30_000) -> None:
        self.interval_s = interval_s
        self.histogram = histogram
        self.lags: deque[float] = deque(maxlen=keep)  # seconds; about ten minutes at 20 ms
        self._task = Background("loop-lag", self._run)
        self._beat = time.perf_counter()
        # The last beats' (start, lag), so the watchdog finds the figure of the beat it saw
        # stalled even when the loop has beaten again before the watchdog looks.
        self._recent: deque[tuple[float, float]] = deque(maxlen=256)
        self._watchdog: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self, stall_ms: float | None = None) -> None:
        """With `stall_ms`, a thread logs what the loop was running whenever it is held that
        long (its stack, sampled through the stall), to find what makes a latency tail."""
        self._task.start()
        if stall_ms and self._watchdog is None:
            self._stopping.clear()
            loop_thread = threading.get_ident()
            self._watchdog = threading.Thread(target=self._watch, name="loop-stall-watchdog",
                                              args=(loop_thread, stall_ms / 1000), daemon=True)
            self._watchdog.start()

    async def stop(self) -> None:
        await self._task.stop()
        if self._watchdog is not None:
            self._stopping.set()
            self._watchdog.join(timeout=1)
            self._watchdog = None

    def _watch(self, loop_thread: int, stall_s: float) -> None:
        """Samples the loop thread's stack every quarter of `stall_s` while the loop is held
        past it, and logs them all, with the stall's length, once the loop is free again."""
        stall_of, samples, held = 0.0, [], 0.0
        while not self._stopping.wait(stall_s / 4):
            beat = self._beat
            if samples and beat != stall_of:
                # The timer's own figure once it has woken; the last look if it never had
                # (a stall before the timer first ran, at start-up).
                held = next((lag for asked, lag in reversed(list(self._recent))
                             if asked == stall_of), held)
                log.warning("event loop held for %.0f ms; its stack every %.0f ms:\n%s",
                            held * 1000, stall_s * 250, "\n--\n".join(samples))
                samples = []
            late = time.perf_counter() - beat - self.interval_s
            if late > stall_s:
                stall_of, held = beat, late
                frame = sys._current_frames().get(loop_thread)
                samples.append("".join(traceback.format_stack(frame, limit=8)) if frame
                               else "?")

    async def _run(self) -> None:
        while True:
            asked = self._beat = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            lag = max(0.0, time.perf_counter() - asked - self.interval_s)
            self.lags.append(lag)
            self._recent.append((asked, lag))
            if self.histogram is not None:
                self.histogram.observe(lag)

    def summary(self) -> dict:
        if not self.lags:
            return {"loop_lag_p99_ms": None, "loop_lag_max_ms": None}
        lags = np.fromiter(self.lags, float, len(self.lags)) * 1000
        return {"loop_lag_p99_ms": round(float(np.percentile(lags, 99)), 2),
                "loop_lag_max_ms": round(float(lags.max()), 2)}
