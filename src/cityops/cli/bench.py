"""`cityops bench ...`: benchmarks, each ending with one JSON object on its last line."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

bench_app = typer.Typer(help="Benchmarks (each prints one JSON object on its last line).",
                        no_args_is_help=True)
err = Console(stderr=True)


def _report(title: str, total: int, as_json: bool, run) -> None:
    """Run `run(progress, note)` under a progress bar; print a table (unless --json) and the
    result as one JSON object on the last line."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task("preparing", total=total)
        result = run(lambda n: progress.advance(task, n),
                     lambda s: progress.update(task, description=s))
    if not as_json:
        table = Table("figure", "value", title=title)
        for k, v in result.items():
            table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
        err.print(table)
    print(json.dumps(result))


@bench_app.command("ingest")
def ingest(
    readings: int = typer.Option(3_000_000, "--readings", min=1000),
    batch: int = typer.Option(10_000, "--batch", min=1, max=200_000),
    concurrency: int = typer.Option(8, "--concurrency", min=1, max=256),
    devices: int = typer.Option(40_000, "--devices", min=1),
    store: str = typer.Option(None, "--store", help="Store URL; default SQLite in the work dir."),
    workdir: Path = typer.Option(None, "--workdir", help="Keep files here (default: a temp dir)."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on stdout."),
) -> None:
    """Readings/s ingested, validated and durably stored by one node, over loopback."""
    from cityops.bench import ingest as bench

    _report("ingest benchmark", readings, as_json, lambda progress, note: bench.run(
        readings=readings, batch=batch, concurrency=concurrency, devices=devices, store=store,
        workdir=workdir, progress=progress, note=note))


@bench_app.command("import")
def import_(
    rows: int = typer.Option(5_000_000, "--rows", min=1000, help="Readings in the file."),
    devices: int = typer.Option(20_000, "--devices", min=1),
    formats: str = typer.Option("parquet,csv,ndjson", "--formats"),
    workdir: Path = typer.Option(None, "--workdir", help="Keep files here (default: a temp dir)."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on stdout."),
) -> None:
    """History import rows/s per format, against reading the same file with pyarrow alone."""
    from cityops.bench import imports as bench

    count = len([f for f in formats.split(",") if f.strip()])
    _report("History import", count, as_json,
            lambda progress, note: bench.run(rows, devices, formats, workdir, progress, note))


@bench_app.command("pipeline")
def pipeline(
    duration: float = typer.Option(300.0, "--duration", min=30.0, help="Seconds of simulation."),
    rate: int = typer.Option(40_000, "--rate", min=100, help="Readings per second sent."),
    seed: int = typer.Option(1, "--seed"),
    anomalies: float = typer.Option(20.0, "--anomalies-per-min", min=0.1),
    store: str = typer.Option(None, "--store", help="Store URL; default SQLite in the work dir."),
    workdir: Path = typer.Option(None, "--workdir", help="Keep files here (default: a temp dir)."),
    incidents: str = typer.Option(None, "--incidents-store", help="A store holding the cases "
                                  "of `cityops bench incidents` (e.g. sqlite:///var/bench/"
                                  "incidents/incidents.db): its list queries are timed under "
                                  "this load."),
    loop_stall_ms: float = typer.Option(None, "--loop-stall-ms", min=5, help="The node logs "
                                        "what held its event loop this long (server log in "
                                        "the work dir)."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on stdout."),
) -> None:
    """Reading -> alert latency and detection of injected anomalies, Pudong at 40,000/s."""
    from cityops.bench import pipeline as bench

    _report("pipeline benchmark", int(duration * rate), as_json, lambda progress, note: bench.run(
        duration=duration, rate=rate, seed=seed, anomalies_per_min=anomalies, store=store,
        workdir=workdir, progress=progress, note=note, incidents_store=incidents,
        loop_stall_ms=loop_stall_ms))


@bench_app.command("storm")
def storm(
    duration: float = typer.Option(300.0, "--duration", min=60.0, help="Seconds of simulation."),
    rate: int = typer.Option(40_000, "--rate", min=100, help="Readings per second sent."),
    seed: int = typer.Option(1, "--seed"),
    anomalies: float = typer.Option(20.0, "--anomalies-per-min", min=0.1),
    outages: int = typer.Option(3, "--outages", min=0, help="Villages whose gateways go down."),
    flaky: float = typer.Option(0.05, "--flaky", min=0.0, max=0.5,
                                help="Share of fixed devices dropping in and out."),
    repeaters: int = typer.Option(20, "--repeaters", min=0,
                                  help="Detectors repeating one alarm."),
    unreported: int = typer.Option(1000, "--unreported", min=0,
                                   help="Devices registered that never report."),
    store: str = typer.Option(None, "--store", help="Store URL; default SQLite in the work dir."),
    workdir: Path = typer.Option(None, "--workdir", help="Keep files here (default: a temp dir)."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on stdout."),
) -> None:
    """A first day: outages, flaky devices, repeaters and never-heard devices on top of the
    labelled anomalies; one case per outage, every anomaly still dispatched under 100 ms."""
    from cityops.bench import storm as bench

    _report("storm benchmark", int(duration * rate), as_json, lambda progress, note: bench.run(
        duration=duration, rate=rate, seed=seed, anomalies_per_min=anomalies, outages=outages,
        flaky=flaky, repeaters=repeaters, unreported=unreported, store=store, workdir=workdir,
        progress=progress, note=note))


@bench_app.command("overload")
def overload(
    duration: float = typer.Option(60.0, "--duration", min=1.0, help="Seconds of overload."),
    factor: float = typer.Option(3.0, "--factor", min=1.0, help="Offered / sustainable rate."),
    devices: int = typer.Option(40_000, "--devices", min=1),
    batch: int = typer.Option(10_000, "--batch", min=1, max=200_000),
    store: str = typer.Option(None, "--store", help="Store URL; default SQLite in the work dir."),
    workdir: Path = typer.Option(None, "--workdir", help="Keep files here (default: a temp dir)."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on stdout."),
) -> None:
    """factor x the sustainable rate, open loop: refusals, memory (RSS) and recovery."""
    from cityops.bench import overload as bench

    _report("overload benchmark", int(duration) + 60, as_json, lambda progress, note: bench.run(
        duration=duration, factor=factor, devices=devices, batch=batch, store=store,
        workdir=workdir, progress=progress, note=note))


@bench_app.command("ngsild")
def ngsild(
    entities: int = typer.Option(40_000, "--entities", min=10, help="NoiseLevelObserved "
                                 "entities (one noise meter each)."),
    rounds: int = typer.Option(5, "--rounds", min=1, help="Rounds of updates at full speed."),
    paced_rounds: int = typer.Option(3, "--paced-rounds", min=1, help="Rounds at a steady "
                                     "pace, for the notification latency."),
    pace: float = typer.Option(10_000.0, "--pace", min=10.0, help="Entity updates/s of the "
                               "paced rounds."),
    batch: int = typer.Option(1_000, "--batch", min=1, max=10_000, help="Entities per upsert."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, max=256),
    subscriptions: int = typer.Option(1_000, "--subscriptions", min=1),
    queries: int = typer.Option(50, "--queries", min=2, help="Queries of each kind."),
    store: str = typer.Option(None, "--store", help="Store URL; default SQLite in the work dir."),
    workdir: Path = typer.Option(None, "--workdir", help="Keep files here (default: a temp dir)."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on stdout."),
) -> None:
    """NGSI-LD: entity updates/s by batch upsert, query p99, notification latency p99."""
    from cityops.bench import ngsild as bench

    _report("NGSI-LD benchmark", entities * (rounds + paced_rounds), as_json,
            lambda progress, note: bench.run(
                entities=entities, rounds=rounds, paced_rounds=paced_rounds, pace_per_s=pace,
                batch=batch, concurrency=concurrency, subscriptions=subscriptions,
                queries=queries, store=store, workdir=workdir, progress=progress, note=note))


@bench_app.command("screen")
def screen(
    objects: int = typer.Option(10_000, "--objects", min=1, help="Moving objects on the map."),
    duration: float = typer.Option(30.0, "--duration", min=5.0, help="Seconds measured."),
    workdir: Path = typer.Option(None, "--workdir", help="Keep files here (default: a temp dir)."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on stdout."),
    feed: str = typer.Option(None, "--feed", help="How objects move: intake (readings over "
                             "HTTP) or node (the node moves them); default intake up to "
                             "100,000 objects, node past that."),
) -> None:
    """The big screen in headless Chromium with N objects moving at 1 Hz, measured in the page."""
    from cityops.bench import screen as bench

    if feed not in (None, "intake", "node"):
        raise typer.BadParameter("--feed must be intake or node")
    _report("screen benchmark", int(duration), as_json, lambda progress, note: bench.run(
        objects=objects, duration=duration, workdir=workdir, progress=progress, note=note,
        feed=feed))


@bench_app.command("cluster")
def cluster(
    workers: int = typer.Option(2, "--workers", min=1, max=8, help="Detect worker processes."),
    kill_one: bool = typer.Option(False, "--kill-one", help="SIGKILL one worker at 40% and "
                                  "start it again."),
    devices: int = typer.Option(40_000, "--devices", min=100),
    seconds: int = typer.Option(30, "--seconds", min=10, help="Seconds of readings (every "
                                "device once a second) in the live run."),
    drain: int = typer.Option(4_000_000, "--drain", min=0, help="Readings pre-filled for the "
                              "drain measurement (0: skip it)."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="With W > 1, drain "
                                  "with one worker too, for the speed-up."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64),
    history: bool = typer.Option(False, "--history", help="Also drain the stream with one "
                                 "history-role process (WAL + Parquet)."),
    store: str = typer.Option(None, "--store", help="PostgreSQL URL (a schema of its own is "
                              "made and dropped); default the local test database."),
    nats: str = typer.Option(None, "--nats", help="NATS server; default nats://127.0.0.1:4222."),
    workdir: Path = typer.Option(None, "--workdir", help="Keep files here (default: a temp dir)."),
    compare: bool = typer.Option(False, "--compare", help="The differential check instead: "
                                 "one labelled input through one node and through 1, 2 and 4 "
                                 "detect workers (alerts_differing), the drain speed-up of 2 "
                                 "workers over 1, and lost/duplicates with a worker killed "
                                 "(--devices and --seconds size that run)."),
    compare_devices: int = typer.Option(160, "--compare-devices", min=8, help="Devices of "
                                        "the differential city (--compare)."),
    compare_seconds: int = typer.Option(3 * 3600, "--compare-seconds", min=600, help="Seconds "
                                        "of labelled input, a reading every 20 s (--compare)."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on stdout."),
) -> None:
    """Ingest + W detect workers + act as processes over JetStream and PostgreSQL: throughput,
    alert latency, lost and duplicates (optionally with a worker killed), and drain rate."""
    from cityops.bench import cluster as bench

    if compare:
        total = drain * 2 + devices * seconds
        _report("cluster differential check", total, as_json, lambda progress, note:
                bench.compare(devices=compare_devices, seconds=compare_seconds,
                              drain_devices=devices, drain_readings=drain,
                              kill_devices=devices, kill_seconds=seconds, store=store,
                              nats=nats, workdir=workdir, progress=progress, note=note))
        return
    total = devices * seconds + drain * (1 + (baseline and workers > 1) + history)
    _report("cluster benchmark", total, as_json, lambda progress, note: bench.run(
        workers=workers, kill_one=kill_one, devices=devices, seconds=seconds,
        drain_readings=drain, concurrency=concurrency, baseline=baseline, store=store,
        nats=nats, workdir=workdir, history=history, progress=progress, note=note))


@bench_app.command("export")
def export(
    incidents: int = typer.Option(1_000_000, "--incidents", min=100, help="Cases in the store "
                                  "(the incident benchmark's, reused when already loaded)."),
    seed: int = typer.Option(1, "--seed"),
    store: str = typer.Option(None, "--store", help="Store URL; default SQLite in the work dir."),
    workdir: Path = typer.Option(Path("var/bench/incidents"), "--workdir",
                                 help="Shared with `cityops bench incidents`, so one load of "
                                      "the cases serves both."),
    xlsx: bool = typer.Option(True, "--xlsx/--no-xlsx", help="Also one town's cases as XLSX."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on stdout."),
) -> None:
    """Every incident exported as CSV over loopback: rows/s, bytes and the node's RSS growth
    (bar: under 100 MB), beside the csv module alone writing the same rows."""
    from cityops.bench import export as bench

    _report("export benchmark", incidents, as_json, lambda progress, note: bench.run(
        count=incidents, store=store, workdir=workdir, seed=seed, xlsx=xlsx,
        progress=progress, note=note))
