"""`cityops history import FILE...`: a city's existing readings into the node's history.

Runs beside the node (or with it stopped): the imported chunks are new files the node's
history reads at its next query, and baselines learn from them at the node's next start.
Give it the node's `--city` and `--data` (and `--scenarios` when replaying detection).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cityops.cli.errors import fail

history_app = typer.Typer(help="The readings history: import a city's past.",
                          no_args_is_help=True)
out = Console()


def parse_map(items: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new.strip():
            raise fail(f"--map {item!r} is not OLD=NEW (a file column and the name it stands "
                       "for: ts, device_id, value, a channel or a device id)")
        mapping[old] = new.strip()
    return mapping


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@history_app.command("import")
def import_(
    files: list[Path] = typer.Argument(..., help="CSV (.csv, .tsv), NDJSON (.ndjson, .jsonl) "
                                                "or Parquet files."),
    city: Path = typer.Option(..., "--city", help="The node's city pack folder."),
    data: Path = typer.Option(Path("var/data"), "--data", help="The node's data directory."),
    store: str | None = typer.Option(None, "--store", help="Store URL (default: the one the "
                                                           "data dir uses)."),
    mapping: list[str] = typer.Option([], "--map", help="Rename a column: OLD=NEW (repeat)."),
    timezone: str | None = typer.Option(None, "--tz", help="Zone of timestamps written "
                                                           "without one (default: the city's)."),
    fmt: str | None = typer.Option(None, "--format", help="csv, ndjson or parquet (default: "
                                                          "from the suffix)."),
    rejects: Path | None = typer.Option(None, "--rejects", help="Where refused rows go (default:"
                                                                " FILE.rejects.csv)."),
    replay: bool = typer.Option(False, "--replay", help="Run detection over what was imported, "
                                                        "in time order, recording what it finds "
                                                        "as historical alerts."),
    scenarios: list[Path] = typer.Option([], "--scenarios", help="The node's own scenario "
                                                                "packs (as for serve)."),
    chunk_rows: int = typer.Option(1_000_000, "--chunk-rows", min=1000, hidden=True,
                                   help="Source rows per chunk, the unit a resumed import "
                                        "starts again from."),
) -> None:
    """Import readings of any age; idempotent, resumable, with a rejects file."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from cityops.cli.serve import load_city
    from cityops.history.imports import FORMATS, Options

    if fmt is not None and fmt not in FORMATS:
        raise fail(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if rejects is not None and len(files) > 1:
        raise fail("--rejects names one file; with several inputs each gets FILE.rejects.csv")
    pack = load_city(city)
    zone = timezone or pack.info.timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"--tz {zone!r} is not a time zone (like Asia/Shanghai or UTC)") from None
    options = Options(mapping=parse_map(mapping), timezone=zone, fmt=fmt, chunk_rows=chunk_rows)
    registry = asyncio.run(_registry(pack, data, store))
    from cityops.history.backfill import Backfill

    backfill = Backfill(data / "history", registry)
    summaries = []
    for path in files:
        summaries.append(_one(path, backfill, options, rejects))
    if replay:
        from cityops.cli.config import with_store
        from cityops.detect.past import detect_past

        packs = _scenario_packs(pack, scenarios)
        digests = [s.digest for s in summaries if s.stored and not s.already_imported]
        total = sum(s.stored for s in summaries if s.digest in digests)

        with Progress(TextColumn("[bold]replaying detection"), BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(), console=out,
                      transient=True) as bar:
            task = bar.add_task("replay", total=max(total, 1))

            async def run(opened):
                return await detect_past(pack, packs, registry, backfill, opened, digests,
                                         progress=lambda done: bar.update(task, completed=done))

            found = asyncio.run(with_store(data, store, run))
        out.print(f"replayed detection: {found.readings:,} readings, {found.alerts:,} "
                  f"historical alerts recorded ({found.raised_by_rule_text()})")


def _one(path: Path, backfill, options, rejects: Path | None):
    from cityops.history.imports import ImportRefused, import_file

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=out, transient=True) as bar:
        task = bar.add_task(path.name, total=max(path.stat().st_size if path.exists() else 1, 1))
        try:
            summary = import_file(path, backfill, options, rejects_path=rejects,
                                  progress=lambda done, total: bar.update(task, completed=done,
                                                                          total=total))
        except ImportRefused as exc:
            raise fail(str(exc)) from None
    table = Table(title=f"{path.name}", show_header=False, box=None)
    if summary.already_imported:
        table.add_row("already imported", f"nothing stored again ({summary.stored:,} readings "
                                          "stored the first time)")
    else:
        if summary.resumed_at_chunk:
            table.add_row("resumed", f"at chunk {summary.resumed_at_chunk}")
        table.add_row("rows read", f"{summary.rows:,}")
        table.add_row("readings stored", f"{summary.stored:,}")
        table.add_row("already stored", f"{summary.duplicates:,}")
        table.add_row("rejected", f"{summary.rejected:,}"
                      + (f" (see {summary.rejects_path})" if summary.rejects_path else ""))
        table.add_row("from", _when(summary.first_ts))
        table.add_row("to", _when(summary.last_ts))
        if summary.ignored_columns:
            table.add_row("ignored columns", ", ".join(summary.ignored_columns))
        rate = summary.rows / summary.seconds if summary.seconds else 0
        table.add_row("took", f"{summary.seconds:.1f} s ({rate:,.0f} rows/s)")
    out.print(table)
    return summary


async def _registry(pack, data: Path, store: str | None):
    """The devices the node knows: the pack's and those registered since, in the store."""
    from cityops.cli.config import FILE, with_store
    from cityops.domain.registry import DeviceRegistry

    registry = DeviceRegistry(pack.kinds)
    registry.add(pack.devices)

    async def stored(opened):
        return await opened.load_devices()

    if (data / FILE).exists() or store is not None:
        known = {d.id for d in pack.devices}
        registry.add([d for d in await with_store(data, store, stored) if d.id not in known])
    return registry


def _scenario_packs(pack, folders: list[Path]):
    from cityops.scenarios.loader import ScenarioError, load_scenarios

    try:
        return load_scenarios(list(folders), kinds=pack.kinds)
    except ScenarioError as exc:
        raise fail(str(exc)) from None
