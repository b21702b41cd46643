"""Pacing with an injected clock: when batches are released, never how fast anything runs."""

from __future__ import annotations

import pytest

from cityops.sim.pacing import Pacer, batch_for_rate


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_batches_are_released_at_the_rate():
    clock = FakeClock()
    pacer = Pacer(1000, clock=clock, sleep=clock.sleep)
    released = []
    for _ in range(10):
        await pacer.take(100)
        released.append(clock.now - 1000.0)
    assert released == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert pacer.granted == 1000


async def test_time_spent_sending_counts_towards_the_wait():
    clock = FakeClock()
    pacer = Pacer(100, clock=clock, sleep=clock.sleep)
    await pacer.take(10)
    clock.now += 0.06  # generating and sending took 60 ms of the 100 ms slot
    await pacer.take(10)
    assert clock.sleeps == pytest.approx([0.04])


async def test_a_slow_target_gets_a_limited_catch_up_burst():
    clock = FakeClock()
    pacer = Pacer(1000, clock=clock, sleep=clock.sleep, max_debt_s=1.0)
    await pacer.take(100)
    clock.now += 10.0  # the target stalled for ten seconds
    bursts = 0
    while True:
        before = clock.now
        await pacer.take(100)
        if clock.now > before:
            break
        bursts += 1
    # One second of debt is 1,000 readings: ten batches go at once, then pacing resumes.
    assert bursts == 11
    assert pacer.behind_s == 0.0


async def test_batch_sizes_follow_the_rate():
    assert batch_for_rate(100_000, 5000) == 5000
    assert batch_for_rate(1000, 5000) == 100  # never hold a reading back more than 0.1 s
    assert batch_for_rate(5, 5000) == 1
    with pytest.raises(ValueError):
        Pacer(0)
