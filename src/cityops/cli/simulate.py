"""`cityops simulate`: send realistic readings for every device of a city pack to a node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cityops.cli.errors import fail

out = Console()


def simulate(
    city: Path = typer.Option(..., "--city", help="City pack folder."),
    target: str = typer.Option(
        "http://127.0.0.1:8080",
        "--target",
        help="http://HOST:PORT (a node), or mqtt://HOST:PORT (a broker; add ?mode=batch "
        "to send arrays to cityops/readings/batch instead of one message per reading).",
    ),
    key: str = typer.Option(
        None, "--key", envvar="CITYOPS_KEY", help="API key with the device role (HTTP only)."
    ),
    rate: int = typer.Option(1000, "--rate", min=1, help="Readings per second."),
    duration: float = typer.Option(
        60.0, "--duration", help="Seconds to run; 0 runs until Ctrl-C."
    ),
    batch: int = typer.Option(
        1000,
        "--batch",
        min=1,
        help="Readings per request at most; smaller at low rates so that no reading waits "
        "more than 0.1 s for its batch.",
    ),
    seed: int = typer.Option(0, "--seed", help="Same seed, same readings."),
    anomalies: bool = typer.Option(
        False, "--anomalies",
        help="Inject labelled anomalies for every scenario rule the city can exercise "
        "(noise at night, rising water, a blocked fire lane, a truck in a forbidden zone ...).",
    ),
    anomaly_rate: float = typer.Option(
        2.0, "--anomaly-rate", min=0.0, help="Anomalies started per minute, with --anomalies."
    ),
    labels: Path = typer.Option(
        None, "--labels",
        help="Write one JSON line per rule each injected anomaly sets off: "
        '{"rule": "pack.rule", "subject": ..., "start": ts, "end": ts, "anomaly": n}.',
    ),
    scenarios: list[Path] = typer.Option(
        None, "--scenarios", help="Extra scenario pack folders (besides the built-in packs)."
    ),
    state: str = typer.Option(
        "daily", "--state",
        help="Operating state the anomalies assume (daily, special, emergency): typhoon "
        "anomalies need special or emergency.",
    ),
    outages: int = typer.Option(
        0, "--outages", min=0,
        help="Villages whose gateways go down (chosen from the seed): every device behind "
        "them stops sending for --outage-for seconds, then comes back.",
    ),
    outage_at: float = typer.Option(
        60.0, "--outage-at", min=0.0, help="Seconds into the run the outages start."
    ),
    outage_for: float = typer.Option(
        210.0, "--outage-for", min=0.001, help="Seconds the outages last."
    ),
    flaky: float = typer.Option(
        0.0, "--flaky", min=0.0, max=1.0,
        help="Share of the fixed devices that drop out for 3.5 to 4.5 reporting periods now "
        "and then, and come back (e.g. 0.05).",
    ),
    repeaters: int = typer.Option(
        0, "--repeaters", min=0,
        help="Devices repeating one alarm (a tilted manhole cover, a smoke detector) for 20 s "
        "of every minute.",
    ),
    storm_labels: Path = typer.Option(
        None, "--storm-labels",
        help="Write one JSON line per outage, flaky device and repeater: "
        '{"type": "outage", "village": ..., "gateways": [...], "devices": [...], ...}.',
    ),
    leave_out_staff: bool = typer.Option(
        False, "--leave-out-staff",
        help="Send nothing for the field staff's trackers: something else drives them (the "
        "demo's field work, cityops.sim.fieldwork, moves them to their jobs)."),
) -> None:
    """Simulate the city's devices: noise, rain and flood gauges, bins, lamps, cameras, and
    field staff and muck trucks moving about, at a steady rate."""
    from cityops.packs.errors import PackError
    from cityops.packs.format import load_pack
    from cityops.sim.run import SimulationReport, simulate as run_simulation
    from cityops.sim.senders import TargetError, open_sender

    if not city.is_dir():
        raise fail(f"city pack {city} is not a folder; make one with "
                   "`cityops city generate --preset pudong --out DIR`")
    try:
        sender = open_sender(target, key)
    except TargetError as exc:
        raise fail(str(exc)) from None
    try:
        pack = load_pack(city)
    except PackError as exc:
        raise fail(str(exc)) from None
    if leave_out_staff:
        carried = {s.device_id for s in pack.staff}
        pack = msgspec.structs.replace(pack, devices=[d for d in pack.devices
                                                      if d.id not in carried])
    if not pack.devices:
        raise fail(f"city pack {city} has no devices to simulate")
    plan = None
    if labels is not None and not anomalies:
        raise fail("--labels needs --anomalies (there is nothing to label without them)")
    if anomalies:
        plan = _plan(pack, scenarios or [], seed, anomaly_rate, state, duration)
    from cityops.sim.storm import StormOptions

    storm = StormOptions(outages=outages, outage_at=outage_at, outage_for=outage_for,
                         flaky=flaky, repeaters=repeaters)
    problem = storm.problem()
    if problem:
        raise fail(problem)
    if storm_labels is not None and not storm.any:
        raise fail("--storm-labels needs --outages, --flaky or --repeaters "
                   "(there is nothing to label without them)")

    planned = round(rate * duration) if duration > 0 else None
    columns = [
        TextColumn("[bold]simulating[/]"),
        BarColumn() if planned else TextColumn(""),
        TextColumn("{task.fields[sent]:>12,} sent"),
        TextColumn("{task.fields[rate]:>9,.0f}/s"),
        TextColumn("[red]{task.fields[rejected]:,} rejected[/]"),
        TextColumn("{task.fields[retried]:,} retried"),
        TimeElapsedColumn(),
    ]
    last: list[SimulationReport] = []
    with Progress(*columns, console=out, transient=False) as bar:
        task = bar.add_task("sim", total=planned, sent=0, rate=0.0, rejected=0, retried=0)

        def show(report: SimulationReport) -> None:
            last[:] = [report]
            bar.update(
                task,
                completed=report.sent,
                sent=report.sent,
                rate=report.rate,
                rejected=report.rejected,
                retried=report.retried,
            )

        try:
            sink = labels.open("w", encoding="utf-8") if labels is not None else None
        except OSError as exc:
            raise fail(f"cannot write labels to {labels}: {exc.strerror}") from None
        try:
            storm_sink = (storm_labels.open("w", encoding="utf-8")
                          if storm_labels is not None else None)
        except OSError as exc:
            raise fail(f"cannot write storm labels to {storm_labels}: {exc.strerror}") from None

        def write(found) -> None:
            if sink is not None:
                sink.write("".join(msgspec.json.encode(x).decode() + "\n" for x in found))
                sink.flush()

        stormed: list = []

        def write_storm(found) -> None:
            stormed.extend(found)
            if storm_sink is not None:
                storm_sink.write("".join(msgspec.json.encode(x).decode() + "\n"
                                         for x in found))
                storm_sink.flush()

        try:
            report = asyncio.run(
                run_simulation(pack, sender, key, rate, duration, batch, seed, show,
                               plan=plan, on_labels=write,
                               storm=storm if storm.any else None, on_storm=write_storm)
            )
        except TargetError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            report = last[0] if last else None
            if report is None:
                raise typer.Exit(130) from None
        finally:
            if sink is not None:
                sink.close()
            if storm_sink is not None:
                storm_sink.close()
    _summary(report)
    if plan is not None:
        _anomaly_summary(report, plan, labels)
    if storm.any:
        _storm_summary(report, stormed, storm_labels)


def _plan(pack, folders: list[Path], seed: int, per_min: float, state: str, duration: float):
    import time

    from cityops.scenarios.loader import ScenarioError, load_scenarios
    from cityops.sim.anomalies import AnomalyPlan

    if state not in ("daily", "special", "emergency"):
        raise fail(f"--state {state!r} is not one of daily, special, emergency")
    try:
        packs = load_scenarios(folders, kinds=pack.kinds,
                               departments={d.code for d in pack.departments})
    except ScenarioError as exc:
        raise fail(str(exc)) from None
    start = time.time()
    return AnomalyPlan(pack, packs, seed, start, per_min, state=state,
                       end_ts=start + duration if duration > 0 else None)


def _anomaly_summary(report, plan, labels: Path | None) -> None:
    where = f", labels in {labels}" if labels is not None else ""
    out.print(f"injected {report.anomalies:,} anomalies ({report.labels:,} labels{where}); "
              f"{len(plan.injectable)} rules can be exercised in this city")
    for rule, why in sorted(plan.skipped.items()):
        out.print(f"  [yellow]not injected:[/] {rule}: {why}")


def _storm_summary(report, found: list, labels: Path | None) -> None:
    from cityops.sim.storm import Flaky, Outage, Repeater

    outages = [x for x in found if isinstance(x, Outage)]
    flaky = sum(isinstance(x, Flaky) for x in found)
    repeaters = sum(isinstance(x, Repeater) for x in found)
    where = f"; labels in {labels}" if labels is not None else ""
    villages = ", ".join(f"{o.village} ({o.count:,} devices)" for o in outages) or "none"
    out.print(f"storm: villages out: {villages}; {flaky:,} flaky devices, {repeaters:,} "
              f"repeaters; {report.withheld:,} readings withheld, {report.added:,} added{where}")
    for part, why in sorted(report.storm_skipped.items()):
        out.print(f"  [yellow]fewer {part}:[/] {why}")


def _summary(report) -> None:
    out.print(
        f"sent {report.sent:,} readings in {report.elapsed_s:.1f} s ({report.rate:,.0f}/s): "
        f"{report.accepted:,} accepted, {report.duplicates:,} duplicates, "
        f"{report.rejected:,} rejected, {report.retried:,} retried, {report.errors:,} errors"
    )
    for example in report.rejections:
        out.print(f"  [red]rejected:[/] {example}")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
