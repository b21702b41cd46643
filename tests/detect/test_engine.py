"""The detect engine shares the event loop: rules yield it between them, so that a batch
through every rule does not hold an incident's filing or a request behind it; batches and ticks
still take turns, never seeing each other half-way."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from cityops.detect import engine as engine_module
from cityops.detect.engine import _PackRules
from cityops.domain.readings import ReadingBatch
from cityops.packs.grid import generate


class _Slow:
    """A rule that takes `seconds` of CPU for each batch and tick, and notes when it ran."""

    source = "readings"

    def __init__(self, name: str, seconds: float, log: list) -> None:
        self.rule, self.seconds, self.log = name, seconds, log

    def _work(self, what: str, ctx) -> list:
        self.log.append((what, self.rule, ctx.now_us))
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end:
            pass
        return []

    def on_batch(self, rows, ctx) -> list:
        return self._work("batch", ctx)

    def on_tick(self, ctx) -> list:
        return self._work("tick", ctx)


def _batch(node) -> ReadingBatch:
    n = 10
    return ReadingBatch(np.arange(n, dtype=np.int32), np.zeros(n, np.int8),
                        np.full(n, int(time.time() * 1e6), np.int64), np.full(n, 50.0),
                        time.monotonic_ns(), "test")


async def _slow_engine(live, rules: int, seconds: float, log: list):
    engine = live.node.detect
    await engine._ticker.stop()  # ticks only when the test asks
    pack = engine.packs[0].pack
    slow = _PackRules(pack, [_Slow(f"slow{i}", seconds, log) for i in range(rules)])
    slow.active = np.ones(len(live.node.registry), bool)
    engine.packs = [slow]
    return engine


async def test_other_work_runs_between_rules(live_node, tmp_path):
    async with live_node(generate(devices={"noise": 10}), tmp_path / "d") as live:
        log: list = []
        engine = await _slow_engine(live, rules=8, seconds=0.01, log=log)
        beats: list[int] = []

        async def beat() -> None:
            while True:
                beats.append(len(log))  # how many rules had run when this one got the loop
                await asyncio.sleep(0)

        other = asyncio.create_task(beat())
        await asyncio.sleep(0)
        beats.clear()
        await engine.evaluate(_batch(live.node))
        other.cancel()
        assert len(log) == 8
        # 80 ms of rules in all, yielding each 5 ms: the other task ran between them.
        inside = {b for b in beats if 0 < b < 8}
        assert len(inside) >= 4, beats


async def test_a_quick_batch_does_not_yield(live_node, tmp_path, monkeypatch):
    async with live_node(generate(devices={"noise": 10}), tmp_path / "d") as live:
        log: list = []
        engine = await _slow_engine(live, rules=8, seconds=0.0, log=log)
        monkeypatch.setattr(engine_module, "YIELD_S", 10.0)
        engine._yielded = time.perf_counter()
        ran = []

        async def other() -> None:
            ran.append(len(log))

        task = asyncio.create_task(other())
        await engine.evaluate(_batch(live.node))
        await task
        assert ran == [8]  # the batch went through every rule before the other task ran


async def test_a_tick_waits_for_the_batch_it_meets_half_way(live_node, tmp_path):
    async with live_node(generate(devices={"noise": 10}), tmp_path / "d") as live:
        log: list = []
        engine = await _slow_engine(live, rules=6, seconds=0.01, log=log)
        clock = iter(range(1_000, 10_000))
        engine.clock = lambda: float(next(clock))
        batch = asyncio.create_task(engine.evaluate(_batch(live.node)))
        await asyncio.sleep(0.015)  # the batch is between rules now
        assert 0 < len(log) < 6
        await asyncio.gather(batch, engine.tick())
        kinds = [what for what, _, _ in log]
        assert kinds == ["batch"] * 6 + ["tick"] * 6
        # each saw one clock from its first rule to its last
        assert len({t for what, _, t in log if what == "batch"}) == 1
        assert len({t for what, _, t in log if what == "tick"}) == 1
