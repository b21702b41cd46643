"""`cityops silences add|list|expire`: silences made from the command line, in the node's store.

`add` checks the matchers against the city pack and the scenario packs the node runs (give it
the same `--city` and `--scenarios` as `cityops serve`) and the devices in the store, exactly as
the API does. Each change is audited under `--by` (default `cli:LOGIN`) and moves the store's
silences version, which running nodes follow within a few seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import cast

import typer
from rich.console import Console
from rich.table import Table

from cityops.cli.config import cli_actor, with_store
from cityops.cli.errors import fail
from cityops.detect import silences as records
from cityops.detect.silences import StateFilter
from cityops.domain.silences import Known, Matchers, Silence, SilenceEnded, SilenceError
from cityops.store.base import StaleVersion, Store

silences_app = typer.Typer(help="Silences: alerts still recorded, but opening no case and "
                                "notifying no one, for a while.", no_args_is_help=True)
out = Console()

DATA = typer.Option(Path("var/data"), "--data", help="The node's data directory.")
STORE = typer.Option(None, "--store", help="Store URL (default: the one the data dir uses).")
BY = typer.Option(None, "--by", help="Who does it, for the audit trail (default: cli:LOGIN).")


def _moment(text: str, option: str) -> float:
    """A time with a zone (2026-12-31T08:00+08:00), or without one taken as UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(f"{option} {text!r} is not a time like 2026-12-31T08:00+08:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _matchers_text(m: Matchers) -> str:
    return "; ".join(f"{name}={','.join(values)}" for name, values in m.given())


def _city_and_packs(city: Path, scenarios: list[Path]):
    from cityops.cli.serve import load_city
    from cityops.scenarios.loader import ScenarioError, load_scenarios

    pack = load_city(city)
    try:
        return pack, load_scenarios(list(scenarios), kinds=pack.kinds)
    except ScenarioError as exc:
        raise fail(str(exc)) from None


def _known(pack, packs, stored_devices) -> Known:
    from cityops.domain.geo import CityMap

    category_of = {p.name: p.category.code for p in packs}
    devices = {d.id for d in pack.devices} | {d.id for d in stored_devices}
    return Known(rules_of={p.name: [f"{p.name}.{r.id}" for r in p.rules] for p in packs},
                 category_of=category_of,
                 categories=set(category_of.values()) | {c.code for c in pack.categories},
                 kinds=pack.kinds, areas=CityMap.from_pack(pack), devices=devices)


@silences_app.command("add")
def add(
    comment: str = typer.Option(..., "--comment", help="Why (required; audited)."),
    city: Path = typer.Option(..., "--city", help="The node's city pack folder: areas, "
                              "kinds and categories are checked against it."),
    scenarios: list[Path] = typer.Option([], "--scenarios", help="The city's own scenario "
                                         "packs, as given to the node (repeatable)."),
    pack: list[str] = typer.Option([], "--pack", help="Scenario pack name (repeatable)."),
    rule: list[str] = typer.Option([], "--rule", help="Rule as pack.rule (repeatable)."),
    category: list[str] = typer.Option([], "--category", help="Category code (repeatable)."),
    device: list[str] = typer.Option([], "--device", help="Device id: alerts about that "
                                     "device (repeatable)."),
    kind: list[str] = typer.Option([], "--kind", help="Device kind (repeatable)."),
    area: list[str] = typer.Option([], "--area", help="Area code, any level (repeatable)."),
    for_: str = typer.Option(None, "--for", help="How long: 90m, 2h, 3d."),
    until: str = typer.Option(None, "--until", help="Or until when: 2026-12-31T08:00+08:00."),
    starts: str = typer.Option(None, "--starts", help="When it starts (default now)."),
    by: str = BY,
    data: Path = DATA,
    store: str = STORE,
) -> None:
    """Silence the alerts that match every option given (any value of a repeated one)."""
    from cityops.domain.silences import new_silence
    from cityops.settings import Settings

    matchers = Matchers(pack=pack, rule=rule, category=category, device=device, kind=kind,
                        area=area)
    starts_at = _moment(starts, "--starts") if starts else None
    ends_at = _moment(until, "--until") if until else None
    max_s = Settings(data_dir=data).silence_max_s
    city_pack, packs = _city_and_packs(city, scenarios)

    async def work(s: Store) -> Silence:
        known = _known(city_pack, packs, await s.load_devices())
        now = time.time()
        try:
            silence = new_silence(silence_id=records.new_id(), matchers=matchers,
                                  comment=comment, now=now, known=known,
                                  created_by=cli_actor(by), starts_at=starts_at, ends_at=ends_at,
                                  duration=for_, max_s=max_s)
        except SilenceError as exc:
            option = {"ends_at": "--until", "duration": "--for", "starts_at": "--starts",
                      "comment": "--comment"}.get(exc.field, "--" + exc.field.split(".")[-1])
            raise fail(f"{option}: {str(exc).split(': ', 1)[1]}") from None
        await records.sweep(s, now)
        return await records.create(s, silence, now=now)

    made = asyncio.run(with_store(data, store, work))
    out.print(f"Silence {made.id}: {_matchers_text(made.matchers)}, from "
              f"{_when(made.starts_at)} until {_when(made.ends_at)}; running nodes take it "
              "within a few seconds.", soft_wrap=True, highlight=False)


@silences_app.command("list")
def list_silences(
    state: str = typer.Option(None, "--state", help="active, pending or ended (default all)."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    data: Path = DATA,
    store: str = STORE,
) -> None:
    """Silences, newest first."""
    if state not in (None, "active", "pending", "ended"):
        raise fail(f"--state {state!r}: use active, pending or ended")
    now = time.time()

    async def work(s: Store) -> list[Silence]:
        found: list[Silence] = []
        before = None
        while len(found) < limit:
            items, before = await records.page(s, now=now, state=cast(StateFilter | None, state),
                                               limit=limit - len(found), before=before,
                                               visible=lambda _: True)
            found += items
            if before is None:
                break
        return found

    table = Table()
    table.add_column("id", no_wrap=True)  # copied into `expire`: never broken over lines
    for name in ("state", "matchers", "from", "until", "by", "why"):
        table.add_column(name)
    for s in asyncio.run(with_store(data, store, work)):
        table.add_row(s.id, s.state(now), _matchers_text(s.matchers), _when(s.starts_at),
                      _when(s.end), s.created_by, s.comment)
    out.print(table)


@silences_app.command("expire")
def expire(
    silence_id: str = typer.Argument(..., help="The silence's id (see `cityops silences list`)."),
    reason: str = typer.Option("", "--reason", help="Why it ends early (audited)."),
    by: str = BY,
    data: Path = DATA,
    store: str = STORE,
) -> None:
    """End a silence now: what it held and still fires is raised as new."""

    async def work(s: Store) -> Silence | None:
        try:
            return await records.expire(s, silence_id, by=cli_actor(by), reason=reason,
                                        now=time.time())
        except (SilenceEnded, SilenceError, StaleVersion) as exc:
            raise fail(str(exc)) from None

    done = asyncio.run(with_store(data, store, work))
    if done is None:
        raise fail(f"no silence {silence_id!r}")
    out.print(f"Expired {done.id}; running nodes let its alerts through within a few seconds.",
              highlight=False)
