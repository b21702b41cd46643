"""`cityops demo`: a Pudong-scale city, alive, on the embedded defaults."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.panel import Panel

from cityops.cli.errors import fail

out = Console()


def _city_yaml(pack_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((pack_dir / "city.yaml").read_text(encoding="utf-8")) or {}


def _ensure_pack(pack_dir: Path, seed: int):
    from cityops.packs.format import load_pack, save_pack
    from cityops.packs.pudong import generate

    if (pack_dir / "city.yaml").exists():
        return load_pack(pack_dir)
    with out.status(f"Generating the Pudong-scale city (seed {seed}) into {pack_dir} ..."):
        pack = generate(seed)
        save_pack(pack, pack_dir)
    return pack


async def _keys(data: Path, store_url: str, field_person: str | None):
    from cityops.auth import new_key
    from cityops.store.base import open_store

    admin, admin_record = new_key("admin", None, "demo admin")
    device, device_record = new_key("device", None, "demo simulator")
    # The wall and the console sign in with an operator key, not the admin one.
    operator, operator_record = new_key("operator", None, "demo operator")
    records = [admin_record, device_record, operator_record]
    field = None
    if field_person:  # a field key is named by its person's staff id
        field, field_record = new_key("field", None, field_person)
        records.append(field_record)
    store = open_store(store_url)
    await store.open()
    try:
        for record in records:
            await store.add_key(record)
    finally:
        await store.close()
    return admin, device, operator, field


def _past_vital_signs(city, data: Path, weeks: int = 4) -> None:
    """Four weeks of the city's vital signs before now, stored as imported history (once a
    day: a restart the same day finds it done), so the screen's baselines and flags are there
    from the first minute instead of after weeks of running."""
    import time

    from cityops.domain.registry import DeviceRegistry
    from cityops.history.backfill import Backfill
    from cityops.history.imports import import_batch
    from cityops.sim.past import kpi_history

    registry = DeviceRegistry(city.kinds)
    registry.add(city.devices)
    now = time.time()
    with out.status(f"Making {weeks} weeks of vital-signs history"):
        past = kpi_history(city, registry, now, weeks=weeks, seed=0)
        journal = import_batch(past, Backfill(data / "history", registry),
                               key=f"demo-vital-signs:{city.info.name}:{int(now // 86400)}",
                               source=f"simulated vital signs, {weeks} weeks")
    out.print(f"Vital signs: {weeks} weeks of history ({journal.stored:,} readings) for the "
              "baselines")


async def _close_the_loop(node, seed: int, field: str | None) -> None:
    """The city's people at work (cityops.sim.fieldwork) on the node's clock, and the seed's
    joint-disposal case staged a minute in, under a key of this start (a restarted demo
    stages it again)."""
    import time

    from cityops.sim import jointcase
    from cityops.sim.fieldwork import Fieldwork

    # The demo's field page plays its person by hand: no simulated job for them.
    hands_off = [node.pack.staff[0].id] if field and node.pack.staff else []
    work = Fieldwork(node, seed=seed, hands_off=hands_off)
    running = asyncio.create_task(work.run(every_s=1.0), name="field work")
    try:
        await asyncio.sleep(60)
        await jointcase.stage(work, key=f"joint-disposal:{int(time.time())}")
        await running
    finally:
        running.cancel()


def demo_links(base: str, operator: str, field: str | None, admin: str,
               staff: str = "") -> list[str]:
    """What the demo prints after it starts: each link on a line of its own, whole, its label
    on the line before (the key rides in the fragment, which the browser never sends; the
    page moves it into sessionStorage and wipes it from the address bar)."""
    lines = ["", "Big screen:", f"{base}/screen#key={operator}", "Console:",
             f"{base}/console#key={operator}"]
    if field:
        lines += [f"Field page ({staff}):" if staff else "Field page:",
                  f"{base}/field#key={field}"]
    lines += ["Status page:", base, "Admin key:", admin, "Try:",
              f"curl -H 'Authorization: Bearer {admin}' '{base}/api/v1/devices?limit=2'", ""]
    return lines


def demo(
    pack: Path = typer.Option(Path("var/packs/pudong"), "--pack", help="City pack (generated "
                                                                       "when missing)."),
    data: Path = typer.Option(Path("var/demo"), "--data"),
    port: int = typer.Option(8080, "--port"),
    host: str = typer.Option("127.0.0.1", "--host"),
    rate: int = typer.Option(40_000, "--rate", help="Simulated readings per second."),
    seed: int = typer.Option(1, "--seed"),
    outages: int = typer.Option(
        0, "--outages", min=0,
        help="Villages whose gateways the simulator takes down a minute in (see `cityops "
        "simulate --outages`)."),
    flaky: float = typer.Option(
        0.0, "--flaky", min=0.0, max=1.0, help="Share of the devices dropping out now and then."),
    repeaters: int = typer.Option(
        0, "--repeaters", min=0, help="Devices repeating one alarm every minute."),
) -> None:
    """Generate (once) and serve the synthetic Pudong city, with the simulator feeding it."""
    import uvicorn

    from cityops.api.app import create_app
    from cityops.cli.config import remember, store_url_for
    from cityops.node import Node
    from cityops.settings import Settings

    if pack.exists() and not pack.is_dir():
        raise fail(f"--pack {pack} is a file, not a folder")
    city = _ensure_pack(pack, seed)
    from cityops.cli.map import ensure_map

    ensure_map(pack, data)  # the base map's tiles, built on the first run
    if outages and not any("gateway" in d.meta for d in city.devices):
        out.print(f"[yellow]{pack} has no gateways (generated before they were): an outage "
                  "takes a whole village down; delete the folder to generate it again.[/]")
    if city.info.generator.get("preset") == "pudong" and "language" not in _city_yaml(pack):
        out.print(f"[yellow]{pack} was generated before packs had a language: its SMS and "
                  "notifications are in English; add `language: zh-CN` to its city.yaml (or "
                  "delete the folder to generate it again).[/]")
    url = store_url_for(data, None)
    remember(data, url)
    _past_vital_signs(city, data)
    admin, device, operator, field = asyncio.run(
        _keys(data, url, city.staff[0].id if city.staff else None))
    base = f"http://{host}:{port}"
    # A demo on one's own machine publishes its status page and says where it is reached.
    node = Node(city, Settings(data_dir=data, store_url=url, open_status=True,
                               public_base_url=base))
    from cityops.api.live import graceful_server

    server = graceful_server(uvicorn.Config(create_app(node), host=host, port=port,
                                            log_level="warning", loop="uvloop",
                                            http="httptools", access_log=False,
                                            timeout_graceful_shutdown=3))

    async def main():
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving
                raise fail(f"the server could not start on {base} (is the port taken?)")
            await asyncio.sleep(0.2)
        # Four weeks of garbage-sorting inspections, once, so the ranking has something to
        # rank (cityops.analytics.sorting.seed_demo; a few seconds, beside the server).
        from cityops.analytics.sorting import seed_demo

        inspections = asyncio.create_task(seed_demo(node), name="demo inspections")
        loop = asyncio.create_task(_close_the_loop(node, seed, field), name="demo field work")
        # Popen only starts the simulator, which runs beside the server until the demo ends.
        sim = subprocess.Popen([  # noqa: ASYNC220
            sys.executable, "-m", "cityops", "simulate", "--city", str(pack), "--target", base,
            "--key", device, "--rate", str(rate), "--duration", str(10 * 365 * 86400),
            "--outages", str(outages), "--flaky", str(flaky), "--repeaters", str(repeaters),
            "--leave-out-staff",  # the field work below drives their trackers
        ], stdout=subprocess.DEVNULL)
        out.print(Panel.fit(
            f"[bold]{city.info.name}[/] is live: {len(city.devices):,} devices, "
            f"{len(city.areas):,} areas, simulator at {rate:,} readings/s. "
            "Ctrl-C stops the demo.", title="CityOps demo"))
        staff = city.staff[0].name if field else ""
        for line in demo_links(base, operator, field, admin, staff):
            # Plain print, never Rich's: a link wrapped at the terminal's width (in a panel,
            # it was) is copied with half a key.
            print(line, flush=True)
        try:
            await serving
        finally:
            inspections.cancel()
            loop.cancel()
            sim.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                sim.wait(10)

    # uvicorn answers SIGTERM (a service manager's stop, `kill`) with a graceful shutdown and
    # then raises the signal again, whose default action ended the process before `main`'s
    # `finally` could stop the simulator, which went on posting to nothing. Raised as Ctrl-C
    # instead, it unwinds through `finally` as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
