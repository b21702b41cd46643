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
from cityops.sim.storm import StormLabel, StormOptions


@dataclass(slots=True)
class SimulationReport:
    """What a run did with its readings. Every reading made ends up in exactly one of
    accepted, rejected, failed and unsent: `made == sent + failed + unsent` and
    `sent == accepted + rejected` (as far as the target's answers add up)."""

    planned: int | None  # readings the run was asked for (None: until cancelled)
    made: int = 0  # put in payloads and handed to the sender
    sent: int = 0  # delivered and answered for (HTTP 2xx or 4xx, or acknowledged by MQTT)
    accepted: int = 0  # duplicates included
    duplicates: int = 0
    rejected: int = 0  # refused one by one, or in a batch refused whole
    failed: int = 0  # in batches given up: server errors, or the target lost
    unsent: int = 0  # made but still in flight when the run was stopped
    retried: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    rejections: list[str] = field(default_factory=list)  # a few examples
    anomalies: int = 0  # injected anomalies that ran to their end (and were labelled)
    labels: int = 0  # labels written for them: one per rule each sets off
    # With an anomaly plan or a storm, made = planned - withheld + added (for a run that ran
    # its course).
    withheld: int = 0  # readings of devices an anomaly or the storm silenced
    added: int = 0  # readings an anomaly or a repeater added
    storm_labels: int = 0  # outages, flaky devices and repeaters labelled
    storm_skipped: dict[str, str] = field(default_factory=dict)  # storm parts cut short, why

    @property
    def rate(self) -> float:
        """Readings delivered per second so far."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def absorb(self, outcome: Outcome) -> None:
        self.sent = outcome.sent
        self.accepted = outcome.accepted
        self.duplicates = outcome.duplicates
        self.rejected = outcome.rejected
        self.failed = outcome.failed
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
    storm: StormOptions | None = None,
    on_storm: Callable[[list[StormLabel]], None] | None = None,
) -> SimulationReport:
    """Send `rate` readings/s for `duration` seconds (0 or less: until cancelled).

    `target` is a URL (see `cityops.sim.senders`) or a ready `Sender`. Batches go out as they
    fall due, up to the sender's concurrency in flight; a `TargetError` (unreachable, refused)
    ends the run and is raised. The counts come back in the report, and `progress_cb` sees the
    report as it grows.

    With a `plan`, the readings carry its anomalies; the labels of each anomaly go to
    `on_labels` once it has ended (anomalies still running when the run ends are dropped).
    With a `storm` (outages, flaky devices, repeaters: `cityops.sim.storm`), its labels go to
    `on_storm`: each outage once it has ended, the rest (and an outage still running) when the
    run ends. No anomaly of the plan is put on a device the storm touches.
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
    unsent = 0

    def progress(force: bool = False) -> None:
        nonlocal last_progress
        now = clock()
        report.elapsed_s = now - started
        report.absorb(totals)
        report.unsent = unsent
        report.withheld, report.added = simulator.withheld, simulator.added
        if progress_cb is not None and (force or now - last_progress >= progress_every_s):
            last_progress = now
            progress_cb(report)

    async def deliver(payload, n: int) -> None:
        nonlocal unsent
        try:
            totals.add(await sender.send(payload, n))
        except TargetError as exc:
            totals.add(exc.outcome or Outcome())
            totals.failed += n
            failures.append(exc)
        except asyncio.CancelledError:
            unsent += n  # the run was stopped with this batch unanswered
            raise
        finally:
            slots.release()
            progress()

    def labelled(labels: list[Label]) -> None:
        report.labels += len(labels)
        report.anomalies += len({label.anomaly for label in labels})
        if on_labels is not None:
            on_labels(labels)

    def stormy(labels: list[StormLabel]) -> None:
        report.storm_labels += len(labels)
        if on_storm is not None:
            on_storm(labels)

    if plan is None:
        simulator: Simulator = Simulator(pack, seed, wall(), storm=storm, on_storm=stormy)
    else:
        simulator = AnomalousSimulator(pack, seed, wall(), plan=plan, on_labels=labelled,
                                       storm=storm, on_storm=stormy)
    if simulator.storm is not None:
        report.storm_skipped = dict(simulator.storm.skipped)
    await sender.open()
    taken = 0  # readings asked of the simulator; a plan makes a few more or fewer
    try:
        while not failures and (planned is None or taken < planned):
            n = batch if planned is None else min(batch, planned - taken)
            await pacer.take(n)
            await slots.acquire()
            if failures:
                slots.release()
                break
            before = simulator.made
            payload = sender.payload(simulator, n, wall())
            taken += n
            made = simulator.made - before
            report.made += made
            if not made:
                slots.release()
                continue
            task = asyncio.create_task(deliver(payload, made))
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
        simulator.finish_storm(wall())
        progress(force=True)
    return report
