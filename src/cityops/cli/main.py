"""The `cityops` command."""

from __future__ import annotations

from pathlib import Path

import typer

from cityops.cli.citizens import citizens_app
from cityops.cli.devices import devices_app
from cityops.cli.keys import keys_app
from cityops.cli.serve import serve
from cityops.cli.silences import silences_app
from cityops.logsafe import install_safe_logging

app = typer.Typer(
    help="CityOps: sense, detect, act, see and serve a city.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")
app.add_typer(citizens_app, name="citizens")
app.add_typer(silences_app, name="silences")
app.add_typer(devices_app, name="devices")


@app.callback()
def _every_command() -> None:
    # Before any command logs: no line it writes can be forged or carry a phone number.
    install_safe_logging()


def _mount_optional() -> None:
    from cityops.cli.bench import bench_app
    from cityops.cli.city import city_app
    from cityops.cli.demo import demo
    from cityops.cli.history import history_app
    from cityops.cli.map import map_app
    from cityops.cli.replay import replay_app
    from cityops.cli.simulate import register

    app.add_typer(city_app, name="city")
    bench_app.command("incidents")(bench_incidents)
    app.add_typer(bench_app, name="bench")
    app.add_typer(replay_app, name="replay")
    app.add_typer(history_app, name="history")
    app.add_typer(map_app, name="map")
    app.command("demo")(demo)
    register(app)


def bench_incidents(
    count: int = typer.Option(1_000_000, "--count", min=100, help="Incidents stored."),
    store: str = typer.Option(None, "--store", help="Store URL; default SQLite in the work dir."),
    workdir: Path = typer.Option(Path("var/bench/incidents"), "--workdir",
                                 help="Keeps the loaded data for the next run."),
    rounds: int = typer.Option(50, "--rounds", min=1, help="Rounds of the query mix."),
    http: bool = typer.Option(True, "--http/--no-http", help="Also query over HTTP on a node."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on stdout."),
) -> None:
    """Incident list queries (filters, pages) over COUNT stored incidents, p50/p99."""
    from cityops.bench import incidents as bench
    from cityops.cli.bench import _report

    _report("incident query benchmark", count, as_json, lambda progress, note: bench.run(
        count=count, store=store, workdir=workdir, rounds=rounds, http=http, progress=progress,
        note=note))


_mount_optional()


def run() -> None:
    app()
