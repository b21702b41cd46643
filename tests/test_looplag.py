"""The event-loop lag monitor: a held loop shows in its figures and, with a stall threshold,
in the log with the stack of what held it."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry, Histogram

from cityops.looplag import LoopLag


def _hold(seconds: float) -> None:
    """Busy, holding the loop (not sleeping in it)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_a_held_loop_shows_in_the_figures_and_the_histogram():
    histogram = Histogram("lag", "lag", registry=CollectorRegistry(),
                          buckets=(0.01, 0.05, 0.1, 1))
    lag = LoopLag(histogram, interval_s=0.005)
    lag.start()
    try:
        await asyncio.sleep(0.05)
        quiet = lag.summary()
        _hold(0.15)
        await asyncio.sleep(0.03)
    finally:
        await lag.stop()
    held = lag.summary()
    assert quiet["loop_lag_max_ms"] < 100
    assert 140 <= held["loop_lag_max_ms"] < 1000
    assert histogram.collect()[0].samples  # observed
    counts = {s.labels.get("le"): s.value for s in histogram.collect()[0].samples
              if s.name.endswith("_bucket")}
    assert counts["0.1"] < counts["1.0"]  # the held one is over 100 ms


async def test_no_figures_before_the_first_look():
    assert LoopLag().summary() == {"loop_lag_p99_ms": None, "loop_lag_max_ms": None}


async def test_a_stall_is_logged_with_the_stack_that_held_it(caplog):
    caplog.set_level(logging.WARNING, logger="cityops.looplag")
    lag = LoopLag(interval_s=0.005)
    lag.start(stall_ms=40)
    try:
        await asyncio.sleep(0.03)
        _hold(0.2)
        await asyncio.sleep(0.1)  # the watchdog reports once the loop is free
    finally:
        await lag.stop()
    stalls = [r.getMessage() for r in caplog.records if "event loop held" in r.getMessage()]
    assert len(stalls) == 1, stalls
    held_ms = int(stalls[0].split("held for ")[1].split(" ms")[0])
    assert 190 <= held_ms < 1000
    assert "in _hold" in stalls[0]  # the stack names what held it


async def test_a_free_loop_logs_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="cityops.looplag")
    lag = LoopLag(interval_s=0.005)
    lag.start(stall_ms=200)
    try:
        await asyncio.sleep(0.1)
    finally:
        await lag.stop()
    assert not [r for r in caplog.records if "event loop held" in r.getMessage()]
