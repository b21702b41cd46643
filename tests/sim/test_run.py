"""A whole simulation run: pacing with an injected clock, counts, failures; then for real
against an HTTP endpoint and through Mosquitto into the MQTT intake; and the CLI's errors."""

from __future__ import annotations

import asyncio
import time
import uuid

import msgspec
import pytest
from typer.testing import CliRunner

from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.readings import US
from cityops.domain.registry import DeviceRegistry
from cityops.ingest.deadletters import DeadLetterSink
from cityops.ingest.mqtt import MqttIntake
from cityops.ingest.pipeline import IngestResult
from cityops.ingest.validate import to_batch
from cityops.packs.format import save_pack
from cityops.sim.pacing import batch_for_rate
from cityops.sim.run import SimulationReport, simulate
from cityops.sim.senders import Outcome, TargetRefused
from cityops.store.memory import MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class RecordingSender:
    """A target that keeps what it is sent; it can refuse after a number of batches."""

    url = "test://"

    def __init__(self, concurrency: int = 2, refuse_after: int | None = None) -> None:
        self.concurrency = concurrency
        self.refuse_after = refuse_after
        self.batches: list[int] = []
        self.released: list[float] = []  # clock time each batch was made
        self.in_flight = 0
        self.most_in_flight = 0
        self.opened = self.closed = False
        self.clock: FakeClock | None = None

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.closed = True

    def payload(self, sim, n, now_ts):
        self.released.append(self.clock.now if self.clock else 0.0)
        return sim.next_batch(n, now_ts)

    async def send(self, payload, n):
        if self.refuse_after is not None and len(self.batches) >= self.refuse_after:
            raise TargetRefused("the node refused the key (401)")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        rows = msgspec.json.decode(payload)
        assert len(rows) == n
        self.batches.append(n)
        return Outcome(sent=n, accepted=n)


async def test_a_run_sends_rate_times_duration_in_paced_batches(make_pack):
    clock = FakeClock()
    sender = RecordingSender()
    sender.clock = clock
    reports: list[SimulationReport] = []
    report = await simulate(
        make_pack(), sender, rate=2000, duration=3.0, batch_size=500, seed=1,
        progress_cb=reports.append,
        clock=clock, sleep=clock.sleep, wall=lambda: 1.7e9 + clock.now,
    )
    assert report.planned == report.made == report.sent == report.accepted == 6000
    assert sender.batches == [200] * 30  # 0.1 s of readings per batch at 2,000/s
    assert sender.released == pytest.approx([500.0 + 0.1 * i for i in range(30)])
    assert sender.opened and sender.closed
    assert reports and reports[-1].sent == 6000
    assert report.rate == pytest.approx(6000 / 2.9)


async def test_the_last_batch_is_cut_to_the_plan(make_pack):
    clock = FakeClock()
    sender = RecordingSender()
    report = await simulate(make_pack(), sender, rate=1000, duration=1.05, batch_size=100,
                            clock=clock, sleep=clock.sleep)
    assert report.made == 1050
    assert sender.batches[-1] == 50


async def test_no_more_batches_in_flight_than_the_sender_allows(make_pack):
    clock = FakeClock()
    sender = RecordingSender(concurrency=3)
    await simulate(make_pack(), sender, rate=100_000, duration=0.5, batch_size=1000,
                   clock=clock, sleep=clock.sleep)
    assert 1 <= sender.most_in_flight <= 3


async def test_a_refusing_target_ends_the_run_with_its_error(make_pack):
    clock = FakeClock()
    sender = RecordingSender(refuse_after=3)
    with pytest.raises(TargetRefused, match="refused the key"):
        await simulate(make_pack(), sender, rate=1000, duration=10.0, batch_size=100,
                       clock=clock, sleep=clock.sleep)
    assert len(sender.batches) == 3 and sender.closed


async def test_a_run_against_a_real_http_endpoint(make_pack, node):
    report = await simulate(make_pack(), node.url, "device-key", rate=4000, duration=0.5,
                            batch_size=500, seed=2)
    assert report.sent == report.accepted == 2000
    assert report.rejected == report.errors == 0
    assert sum(len(msgspec.json.decode(b)) for b in node.bodies) == 2000
    assert set(node.auth) == {"Bearer device-key"}


@pytest.mark.services
async def test_simulated_devices_through_mosquitto_into_the_intake(make_pack, mqtt_url):
    pack = make_pack()
    registry = DeviceRegistry(pack.kinds)
    registry.add(pack.devices)
    taken: list = []
    rejections: list = []

    async def ingest(readings, *, source):
        _, rejected, _ = to_batch(readings, registry, int(time.time() * US))
        taken.extend(readings)
        rejections.extend(rejected)
        return IngestResult(len(readings) - len(rejected), 0, rejected)

    prefix = f"test-{uuid.uuid4().hex}/readings"
    store = MemoryStore()
    sink = DeadLetterSink(store)
    intake = MqttIntake(mqtt_url, ingest, sink, topic_prefix=prefix, batch_ms=20)
    await intake.start()
    try:
        await intake.wait_ready(5.0)
        for mode in ("", "?mode=batch"):
            report = await simulate(pack, f"{mqtt_url}/{prefix}{mode}", None, rate=2000,
                                    duration=0.25, batch_size=250, seed=4)
            assert report.sent == 500
        deadline = time.monotonic() + 10
        while len(taken) < 1000 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await intake.stop()
    assert len(taken) == 1000
    assert rejections == [] and sink.stats.added == 0


runner = CliRunner()


def cli(*args: str):
    from cityops.cli.main import app

    return runner.invoke(app, ["simulate", *args])


def test_cli_refuses_a_missing_city_folder(tmp_path):
    result = cli("--city", str(tmp_path / "nowhere"), "--duration", "1")
    assert result.exit_code == 2
    assert "is not a folder" in result.output
    assert "Traceback" not in result.output


def test_cli_refuses_a_bad_target(tmp_path, make_pack):
    save_pack(make_pack(), tmp_path / "city")
    result = cli("--city", str(tmp_path / "city"), "--target", "ftp://x", "--duration", "1")
    assert result.exit_code == 2
    assert "use http://HOST:PORT" in result.output and "Traceback" not in result.output


def test_cli_reports_an_unreachable_server_in_one_line(tmp_path, make_pack):
    import socket

    save_pack(make_pack(), tmp_path / "city")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("--city", str(tmp_path / "city"), "--target", f"http://127.0.0.1:{port}",
                 "--key", "k", "--duration", "1", "--rate", "100")
    assert result.exit_code == 2
    assert f"cannot reach http://127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


# -- the report adds up: every reading made is accepted, rejected, failed or unsent ----------


def _balanced(report: SimulationReport) -> None:
    assert report.sent == report.accepted + report.rejected, report
    assert report.made == report.sent + report.failed + report.unsent, report
    assert report.made == report.accepted + report.rejected + report.failed + report.unsent


class CountingSender(RecordingSender):
    """Counts the readings really in each payload, and answers for them as a node would."""

    def __init__(self, concurrency: int = 2, refuse_after: int | None = None) -> None:
        super().__init__(concurrency, refuse_after)
        self.delivered = 0
        self.wild = 0
        self.kinds = BUILTIN_KINDS

    async def send(self, payload, n):
        if self.refuse_after is not None and len(self.batches) >= self.refuse_after:
            raise TargetRefused("the node refused the key (401)")
        rows = msgspec.json.decode(payload)
        assert len(rows) == n  # what the run says it sends is what it sends
        await asyncio.sleep(0)
        self.batches.append(n)
        self.delivered += n
        # Out-of-range readings (the plan's garbage) are refused by a node.
        wild = sum(1 for r in rows if r.get("value") is not None
                   and r["value"] > self.kinds[r["device_id"].rsplit("-", 1)[0]].primary.max)
        self.wild += wild
        return Outcome(sent=n, accepted=n - wild, rejected=wild)


async def test_readings_an_anomaly_withholds_or_adds_are_not_counted_as_sent(make_pack):
    """A silent device sends nothing and a broken one sends extra readings: the run counts the
    readings that went out, and says how many the plan withheld and added."""
    from cityops.scenarios.loader import load_scenarios
    from cityops.sim.anomalies import AnomalyPlan

    pack = make_pack()
    clock = FakeClock()
    wall = lambda: 1.7e9 + clock.now  # noqa: E731
    plan = AnomalyPlan(pack, load_scenarios(kinds=pack.kinds), 3, wall(), 0.0)
    plan.start("device_health.offline_noise", wall())
    plan.start("device_health.out_of_range", wall())
    sender = CountingSender()
    # Ten simulated minutes: both anomalies run throughout (225 readings withheld, 9 wild
    # ones added with this seed); 25 minutes showed nothing more and took 14 s of CPU.
    report = await simulate(pack, sender, rate=50, duration=600, batch_size=50, seed=3,
                            clock=clock, sleep=clock.sleep, wall=wall, plan=plan)
    assert report.planned == 30_000
    assert report.withheld > 0 and report.added > 0
    assert report.made == report.planned - report.withheld + report.added
    assert report.sent == sender.delivered == report.made
    assert report.rejected == sender.wild > 5
    _balanced(report)


async def test_batches_given_up_or_refused_whole_are_counted(make_pack, node):
    """Five server errors give a batch up (failed); a 400 refuses one whole (sent, rejected);
    429 and 503 are waited out and sent again (retried, then accepted)."""
    from cityops.sim.senders import HttpSender

    node.script = ([(500, {})] * 5 + [(400, {})] + [(429, {"Retry-After": "0"}),
                                                    (503, {"Retry-After": "0"})])

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    sender = HttpSender(node.url, "device-key", concurrency=1, sleep=no_wait)
    report = await simulate(make_pack(), sender, rate=4000, duration=0.5, batch_size=500,
                            seed=2)
    batch = batch_for_rate(4000, 500)
    assert report.made == 2000
    assert report.failed == batch and report.rejected == batch
    assert report.accepted == 2000 - 2 * batch
    assert report.retried == 4 + 2 and report.errors == 5
    _balanced(report)


async def test_a_batch_the_target_refuses_is_counted_failed(make_pack):
    clock = FakeClock()
    sender = CountingSender(concurrency=4, refuse_after=3)
    reports: list[SimulationReport] = []
    with pytest.raises(TargetRefused):
        await simulate(make_pack(), sender, rate=1000, duration=10.0, batch_size=100,
                       clock=clock, sleep=clock.sleep, progress_cb=reports.append)
    report = reports[-1]
    assert report.accepted == 300 and report.failed >= 100
    _balanced(report)


class StallingSender(CountingSender):
    """Answers two batches, then never answers again."""

    def __init__(self) -> None:
        super().__init__(concurrency=3)
        self.waiting = 0

    async def send(self, payload, n):
        if len(self.batches) >= 2:
            self.waiting += 1
            await asyncio.Event().wait()
        return await super().send(payload, n)


async def test_batches_in_flight_when_a_run_is_stopped_are_counted_unsent(make_pack):
    sender = StallingSender()
    reports: list[SimulationReport] = []
    run = asyncio.create_task(simulate(make_pack(), sender, rate=1000, duration=10.0,
                                       batch_size=100, progress_cb=reports.append))
    while sender.waiting < 3:
        await asyncio.sleep(0.01)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    report = reports[-1]
    assert report.accepted == 200 and report.unsent == 300
    _balanced(report)
