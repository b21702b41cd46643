"""`cityops map build`: the offline base map (one PMTiles archive) from the city pack and,
for a real city, an OpenStreetMap extract."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cityops.cli.errors import fail

out = Console()
map_app = typer.Typer(help="The offline base map: vector tiles the node serves itself.",
                      no_args_is_help=True)


def build_map(pack_dir: Path, target: Path, osm: Path | None = None, minzoom: int = 8,
              maxzoom: int = 14, buildings: bool = True, console: Console = out) -> None:
    """Build the archive with a progress bar; a user's mistake ends in `fail`, no traceback
    (also used by `cityops demo` on its first run)."""
    from cityops.maps.build import NothingToDraw, build_archive
    from cityops.maps.osm import OsmError, read_osm
    from cityops.maps.pack import pack_features
    from cityops.packs.errors import PackError
    from cityops.packs.format import load_pack

    if osm is not None and not osm.is_file():
        raise fail(f"--osm {osm}: no such file (an OpenStreetMap extract, .osm.pbf)")
    try:
        pack = load_pack(pack_dir)
    except (PackError, OSError) as error:
        raise fail(f"--city {pack_dir}: {error}") from None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("Reading the city pack", total=None)
        # With a real extract the pack's synthetic street grid would only cover real streets.
        features = pack_features(pack, streets=osm is None)
        if osm is not None:
            progress.update(task, description=f"Reading {osm.name}")
            try:
                features += read_osm(osm, buildings=buildings, progress=lambda n: progress.update(
                    task, description=f"Reading {osm.name}: {n:,} objects"))
            except OsmError as error:
                raise fail(str(error)) from None
        progress.update(task, description="Making tiles", completed=0)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        attribution = "© OpenStreetMap contributors" if osm is not None else ""
        try:
            built = build_archive(features, target, minzoom=minzoom, maxzoom=maxzoom,
                                  name=pack.info.name, attribution=attribution, progress=step)
        except (NothingToDraw, ValueError) as error:
            raise fail(f"no base map made: {error}") from None
    layers = ", ".join(f"{k} {v:,}" for k, v in built.features.items())
    console.print(f"Base map: {target} ({built.bytes / 1e6:.1f} MB, {built.tiles:,} tiles, "
                  f"zooms {minzoom}-{maxzoom}) in {built.seconds:.1f} s; features: {layers}")


@map_app.command("build")
def build(
    city: Path = typer.Option(..., "--city", help="The city pack folder."),
    data: Path = typer.Option(None, "--data", help="The node's data folder: writes "
                                                   "DATA/map.pmtiles, which the node serves."),
    out_file: Path = typer.Option(None, "--out", help="Write the archive here instead."),
    osm: Path = typer.Option(None, "--osm", help="An OpenStreetMap extract (.osm.pbf): roads, "
                                                 "water, places and buildings of a real city."),
    minzoom: int = typer.Option(8, "--minzoom", min=0, max=18),
    maxzoom: int = typer.Option(14, "--maxzoom", min=0, max=18,
                                help="The deepest tiles; the map zooms further on them."),
    buildings: bool = typer.Option(True, "--buildings/--no-buildings",
                                   help="Building footprints from --osm (at the top zoom)."),
) -> None:
    """Make the base map's vector tiles (one PMTiles archive) from the pack and --osm."""
    from cityops.maps.archive import archive_path

    if out_file is None and data is None:
        raise fail("say where the archive goes: --data DATA (the node's) or --out FILE")
    if minzoom > maxzoom:
        raise fail(f"--minzoom {minzoom} is above --maxzoom {maxzoom}")
    target = out_file if out_file is not None else archive_path(data)
    build_map(city, target, osm, minzoom, maxzoom, buildings)


def ensure_map(pack_dir: Path, data: Path, console: Console = out) -> None:
    """The demo's base map, built on its first run (about half a minute for Pudong) and
    kept in the data folder from then on; delete DATA/map.pmtiles to build it again."""
    from cityops.maps.archive import archive_path

    target = archive_path(data)
    if target.exists():
        return
    console.print("Building the base map once (streets, names) into "
                  f"{target}; `cityops map build --osm` makes one from OpenStreetMap")
    build_map(pack_dir, target, console=console)
