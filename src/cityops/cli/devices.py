"""`cityops devices lifecycle|never-reported`: device lifecycles, on the store a data folder
uses (like `cityops keys`). A running node picks a change up within a few seconds: a single
node and every cluster node follow the store's device version."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cityops import lifecycle
from cityops.cli.config import cli_actor, with_store
from cityops.cli.errors import fail
from cityops.cli.keys import DATA, STORE, parse_duration
from cityops.domain.city import Device
from cityops.domain.lifecycle import Lifecycle, RefusedMove, parse
from cityops.store.base import Store

devices_app = typer.Typer(help="Devices: their lifecycle (commissioning, active, maintenance, "
                               "decommissioned) and those never heard.", no_args_is_help=True)
out = Console()


def _chosen(devices: list[Device], ids: list[str], area: str | None,
            kind: str | None) -> list[Device]:
    if ids and (area or kind):
        raise fail("--device: give devices by id, or --area and/or --kind, not both")
    if not ids and not area and not kind:
        raise fail("name the devices to change: --device ID (repeatable), --area CODE "
                   "and/or --kind KIND")
    if kind and all(d.kind != kind for d in devices):
        known = ", ".join(sorted({d.kind for d in devices})) or "none registered"
        raise fail(f"--kind: no device of kind {kind!r} (kinds: {known})")
    if area and not area.isdigit():
        raise fail(f"--area: {area!r} is not an area code (6, 9 or 12 digits)")
    try:
        chosen = lifecycle.select(devices, ids=ids or None, area=area, kind=kind)
    except lifecycle.UnknownSelector as exc:
        raise fail(str(exc).replace("devices[", "--device [")) from None
    if not chosen:
        raise fail(f"no device in area {area}" + (f" of kind {kind}" if kind else ""))
    return chosen


@devices_app.command("lifecycle")
def change(
    to: str = typer.Option(..., "--to", help="commissioning, active, maintenance or "
                                            "decommissioned"),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit trail)."),
    device: list[str] = typer.Option([], "--device", help="A device id (repeatable)."),
    area: str = typer.Option(None, "--area", help="Every device in this area (any level)."),
    kind: str = typer.Option(None, "--kind", help="Every device of this kind (with --area: "
                                                  "of this kind in the area)."),
    data: Path = DATA,
    store: str = STORE,
) -> None:
    """Move devices to a lifecycle state: all of them or, if any move is not allowed, none."""
    try:
        target = parse(to)
    except RefusedMove as exc:
        raise fail(f"--to: {exc}") from None
    if not reason.strip():
        raise fail("--reason: say why (it is kept in the audit trail)")

    async def work(s: Store) -> tuple[list[Device], int]:
        chosen = _chosen(await s.load_devices(), device, area, kind)
        at = time.time()
        try:
            moves = lifecycle.plan(chosen, target, at)
        except RefusedMove as exc:
            raise fail(f"{exc}; nothing was changed") from None
        await lifecycle.apply(s, moves, actor=cli_actor(), reason=reason, at=at)
        return chosen, len(moves)

    chosen, moved = asyncio.run(with_store(data, store, work))
    before = lifecycle.counts(chosen)
    table = Table("state", "before", "after", title=f"{len(chosen)} devices -> {target.value}")
    for state in Lifecycle:
        table.add_row(state.value, str(before[state.value]),
                      str(len(chosen) if state is target else 0))
    out.print(table)
    out.print(f"Moved {moved} devices to {target.value} ({len(chosen) - moved} already there); "
              "audited.", highlight=False)


@devices_app.command("never-reported")
def never_reported(
    kind: str = typer.Option(None, "--kind", help="Only devices of this kind."),
    area: str = typer.Option(None, "--area", help="Only devices in this area (any level)."),
    window: str = typer.Option("7d", "--window", help="The commissioning window: devices "
                               "registered longer ago than this and never heard are listed."),
    limit: int = typer.Option(100, "--limit", min=1, help="Show at most this many."),
    data: Path = DATA,
    store: str = STORE,
) -> None:
    """Commissioning devices not heard within their commissioning window, longest first."""
    try:
        window_s = parse_duration(window, "--window")
    except ValueError as exc:
        raise fail(str(exc)) from None

    async def work(s: Store) -> list[Device]:
        return await s.load_devices()

    devices = lifecycle.select(asyncio.run(with_store(data, store, work)), area=area,
                               kind=kind)
    now = time.time()
    late = lifecycle.waiting(devices, now, window_s)
    table = Table("id", "kind", "village", "commissioning since", "waiting",
                  title=f"{len(late)} devices never reported within {window}")
    for d in late[:limit]:
        since = dt.datetime.fromtimestamp(d.lifecycle_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        table.add_row(d.id, d.kind, d.areas.village if d.areas else "", since,
                      f"{(now - d.lifecycle_at) / 86400:.1f} d")
    out.print(table)
    if len(late) > limit:
        out.print(f"... and {len(late) - limit} more (--limit)", highlight=False)
