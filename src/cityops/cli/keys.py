"""`cityops keys create|list|revoke`."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cityops.auth import new_key
from cityops.cli.config import store_url_for
from cityops.cli.errors import fail
from cityops.store.base import open_store

keys_app = typer.Typer(help="API keys: each has a role and a scope (an area code or a department).",
                       no_args_is_help=True)
out = Console()

DATA = typer.Option(Path("var/data"), "--data", help="The node's data directory.")
STORE = typer.Option(None, "--store", help="Store URL (default: the one the data dir uses).")


async def _with_store(data: Path, store: str | None, work):
    try:
        url = store_url_for(data, store)
        s = open_store(url)
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        await s.open()
    except Exception as exc:  # an unreachable server is a user-facing condition here
        raise fail(f"cannot open the store {url.split('@')[-1]}: {exc}") from None
    try:
        return await work(s)
    finally:
        await s.close()


@keys_app.command("create")
def create(
    role: str = typer.Option(..., "--role", help="admin, operator, department, station, "
                                                 "field, device or citizen"),
    scope: str = typer.Option(None, "--scope", help="Area code (6/9/12 digits) or department "
                                                    "code; default: the whole city"),
    name: str = typer.Option("", "--name", help="Who or what the key is for (a field key: "
                                                "the person's staff id)."),
    data: Path = DATA,
    store: str = STORE,
) -> None:
    """Make a key; the secret is the last word of the last line and is shown only once."""
    try:
        secret, record = new_key(role, scope, name)
    except ValueError as exc:
        raise fail(str(exc)) from None
    asyncio.run(_with_store(data, store, lambda s: s.add_key(record)))
    out.print(f"Created key {record.id} (role {record.role}, scope {record.scope}): {secret}",
              soft_wrap=True, highlight=False)


@keys_app.command("list")
def list_keys(data: Path = DATA, store: str = STORE) -> None:
    records = asyncio.run(_with_store(data, store, lambda s: s.list_keys()))
    table = Table("id", "role", "scope", "name", "created", "revoked")
    for r in records:
        created = dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M")
        table.add_row(r.id, r.role, r.scope, r.name, created, "yes" if r.revoked else "")
    out.print(table)


@keys_app.command("revoke")
def revoke(key_id: str, data: Path = DATA, store: str = STORE) -> None:
    done = asyncio.run(_with_store(data, store, lambda s: s.revoke_key(key_id)))
    if not done:
        raise fail(f"no key {key_id!r}")
    out.print(f"Revoked {key_id}; it stops working within 10 s.")
