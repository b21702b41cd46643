"""A simulation run: generate readings for a city pack and send them to a target at a rate."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cityops.domain.city import CityPack
from cityops.sim.anomalies import AnomalousSimulator, AnomalyPlan, Label
from cityops.sim.pacing import Clock, Pacer, Sleep, batch_for_rate
from cityops.sim.senders import Outcome, Sender, TargetError, open_sender
from cityops.sim.simulator import Simulator


@dataclass(slots=True)
class SimulationReport:
    planned: int | None  # readings the run was asked for (None: until cancelled)
    made: int = 0  # generated and handed to the sender
    sent: int = 0  # delivered (HTTP 2xx, or acknowledged by the MQTT broker)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    retried: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    rejections: list[str] = field(default_factory=list)  # a few examples
    anomalies: int = 0  # injected anomalies that ran to their end (and were labelled)
    labels: int = 0  # labels written for them: one per rule each sets off

    @property
    def rate(self) -> float:
        """Readings delivered per second so far."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def absorb(self, outcome: Outcome) -> None:
        self.sent = outcome.sent
        self.accepted = outcome.accepted
        self.duplicates = outcome.duplicates
        self.rejected = outcome.rejected
        self.retried = outcome.retried
        self.errors = outcome.errors
        self.rejections = list(outcome.rejections)


ProgressCallback = Callable[[SimulationReport], None]


async def simulate(
    pack: CityPack,
    target: str | Sender,
    key: str | None = None,
    rate: float = 1000,
    duration: float = 60.0,
    batch_size: int = 1000,
    seed: int = 0,
    progress_cb: ProgressCallback | None = None,
    *,
    concurrency: int = 4,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    wall: Callable[[], float] = time.time,
    progress_every_s: float = 0.25,
    plan: AnomalyPlan | None = None,
    on_labels: Callable[[list[Label]], None] | None = None,
) -> SimulationReport:
    """Send `rate` readings/s for `duration` seconds (0 or less: until cancelled).

    `target` is a URL (see `cityops.sim.senders`) or a ready `Sender`. Batches go out as they
    fall due, up to the sender's concurrency in flight; a `TargetError` (unreachable, refused)
    ends the run and is raised. The counts come back in the report, and `progress_cb` sees the
    report as it grows.

    With a `plan`, the readings carry its anomalies; the labels of each anomaly go to
    `on_labels` once it has ended (anomalies still running when the run ends are dropped).
    """
    if isinstance(target, str):
        sender = open_sender(target, key, concurrency=concurrency)
    else:
        sender = target
    planned = round(rate * duration) if duration > 0 else None
    batch = batch_for_rate(rate, batch_size)
    pacer = Pacer(rate, clock=clock, sleep=sleep)
    report = SimulationReport(planned)
    totals = Outcome()
    slots = asyncio.Semaphore(max(1, sender.concurrency))
    in_flight: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []
    started = clock()
    last_progress = -1e9

    def progress(force: bool = False) -> None:
        nonlocal last_progress
        now = clock()
        report.elapsed_s = now - started
        report.absorb(totals)
        if progress_cb is not None and (force or now - last_progress >= progress_every_s):
            last_progress = now
            progress_cb(report)

    async def deliver(payload, n: int) -> None:
        try:
            totals.add(await sender.send(payload, n))
        except TargetError as exc:
            failures.append(exc)
        finally:
            slots.release()
            progress()

    def labelled(labels: list[Label]) -> None:
        report.labels += len(labels)
        report.anomalies += len({label.anomaly for label in labels})
        if on_labels is not None:
            on_labels(labels)

    if plan is None:
        simulator: Simulator = Simulator(pack, seed, wall())
    else:
        simulator = AnomalousSimulator(pack, seed, wall(), plan=plan, on_labels=labelled)
    await sender.open()
    try:
        while not failures and (planned is None or report.made < planned):
            n = batch if planned is None else min(batch, planned - report.made)
            await pacer.take(n)
            await slots.acquire()
            if failures:
                slots.release()
                break
            payload = sender.payload(simulator, n, wall())
            report.made += n
            task = asyncio.create_task(deliver(payload, n))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.gather(*in_flight)
        if failures:
            raise failures[0]
    finally:
        for task in in_flight:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*in_flight, return_exceptions=True)
        await sender.close()
        if isinstance(simulator, AnomalousSimulator):
            simulator.finish(wall())
        progress(force=True)
    return report
