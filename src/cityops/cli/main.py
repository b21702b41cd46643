"""The `cityops` command."""

from __future__ import annotations

import typer

from cityops.cli.keys import keys_app
from cityops.cli.serve import serve

app = typer.Typer(
    help="CityOps: sense, detect, act, see and serve a city.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")


def _mount_optional() -> None:
    from cityops.cli.bench import bench_app
    from cityops.cli.city import city_app
    from cityops.cli.demo import demo
    from cityops.cli.replay import replay_app
    from cityops.cli.simulate import register

    app.add_typer(city_app, name="city")
    app.add_typer(bench_app, name="bench")
    app.add_typer(replay_app, name="replay")
    app.command("demo")(demo)
    register(app)


_mount_optional()


def run() -> None:
    app()
