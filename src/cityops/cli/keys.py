"""`cityops keys create|list|revoke|rotate`: the commands around cityops.keyadmin, which the
browser's key pages use too (api/admin.py). Every change is audited as `cli:<login>`.

With `--mqtt-admin` (or CITYOPS_MQTT_ADMIN) a device key also gets its broker client, made
here because only here is the secret at hand (ingest/broker_accounts.py says why); revoking
or rotating removes it. Without it, keys are made in the store alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Column, Table

from cityops import keyadmin
from cityops.cli.config import cli_actor, with_store
from cityops.cli.errors import err, fail
from cityops.keyadmin import parse_duration, parse_expiry
from cityops.keyadmin import when as _when
from cityops.store.base import ApiKeyRecord, DuplicateKey, Store

__all__ = ["DATA", "STORE", "keys_app", "parse_duration", "parse_expiry"]

keys_app = typer.Typer(help="API keys: each has a role and a scope (an area code or a department).",
                       no_args_is_help=True)
out = Console()

DATA = typer.Option(Path("var/data"), "--data", help="The node's data directory.")
STORE = typer.Option(None, "--store", help="Store URL (default: the one the data dir uses).")
MQTT_ADMIN = typer.Option(None, "--mqtt-admin", envvar="CITYOPS_MQTT_ADMIN",
                          help="The MQTT broker's dynamic-security admin, mqtt://ADMIN:PASSWORD@"
                               "HOST:PORT: a device key gets a broker client of its own.")
MQTT_TOPIC = typer.Option("cityops/readings/+", "--mqtt-topic", envvar="CITYOPS_MQTT_TOPIC",
                          help="The readings topic filter the nodes subscribe to.")


def _broker(mqtt_admin: str | None, mqtt_topic: str) -> keyadmin.Broker | None:
    return keyadmin.Broker(mqtt_admin, mqtt_topic) if mqtt_admin else None


def _say_broker(record: ApiKeyRecord, topics: list[str] | None) -> None:
    if topics is None:
        return
    shown = ", ".join(topics[:3]) + (f" and {len(topics) - 3} more" if len(topics) > 3 else "")
    out.print(f"MQTT: user {record.id}, password the key; may publish to "
              f"{shown or 'no topic yet (no device in its scope)'}", soft_wrap=True,
              highlight=False)


def _warn(note: str | None) -> None:
    if note:
        err.print(f"[bold yellow]warning:[/] {note}", soft_wrap=True, highlight=False)


async def _run(data: Path, store: str, work):
    """`work(store)` with the shared module's refusals said as the CLI says errors."""
    async def guarded(s: Store):
        try:
            return await work(s)
        except (ValueError, keyadmin.NoSuchKey, keyadmin.KeyNotActive,
                keyadmin.BrokerFailed, DuplicateKey) as exc:
            raise fail(getattr(exc, "reason", None) or str(exc)) from None

    return await with_store(data, store, guarded)


@keys_app.command("create")
def create(
    role: str = typer.Option(..., "--role", help="admin, operator, department, station, "
                                                 "field, device or citizen"),
    scope: str = typer.Option(None, "--scope", help="Area code (6/9/12 digits) or department "
                                                    "code; default: the whole city"),
    name: str = typer.Option("", "--name", help="Who or what the key is for (a field key: "
                                                "the person's staff id)."),
    expires: str = typer.Option(None, "--expires", help="When the key stops working: a "
                                "duration (30d, 12h) or a time (2026-12-31T00:00Z); default "
                                "never."),
    data: Path = DATA,
    store: str = STORE,
    mqtt_admin: str = MQTT_ADMIN,
    mqtt_topic: str = MQTT_TOPIC,
) -> None:
    """Make a key; the secret is the last word of the last line and is shown only once."""
    now = time.time()
    try:
        expires_at = parse_expiry(expires, now) if expires else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    made = asyncio.run(_run(data, store, lambda s: keyadmin.create(
        s, role=role, scope=scope, name=name, expires_at=expires_at, actor=cli_actor(),
        broker=_broker(mqtt_admin, mqtt_topic), now=now)))
    record = made.record
    _say_broker(record, made.topics)
    until = f", expires {_when(record.expires_at)}" if record.expires_at else ""
    out.print(f"Created key {record.id} (role {record.role}, scope {record.scope}{until}): "
              f"{made.secret}", soft_wrap=True, highlight=False)


@keys_app.command("list")
def list_keys(data: Path = DATA, store: str = STORE) -> None:
    records = asyncio.run(with_store(data, store, lambda s: s.list_keys()))
    now = time.time()
    # An id or a date split over two lines cannot be copied or searched for: on a narrow
    # terminal (80 columns, as in a pipe) the other columns wrap instead.
    table = Table(Column("id", no_wrap=True), "role", "scope", "name",
                  Column("created", no_wrap=True), Column("expires", no_wrap=True), "revoked")
    for r in records:
        created = dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M")
        expires = ""
        if r.expires_at is not None:
            expires = _when(r.expires_at) + (" (expired)" if r.expires_at <= now else "")
        table.add_row(r.id, r.role, r.scope, r.name, created, expires,
                      "yes" if r.revoked else "")
    out.print(table)


@keys_app.command("revoke")
def revoke(key_id: str, data: Path = DATA, store: str = STORE,
           mqtt_admin: str = MQTT_ADMIN, mqtt_topic: str = MQTT_TOPIC) -> None:
    asyncio.run(_run(data, store, lambda s: keyadmin.revoke(s, key_id, actor=cli_actor())))
    _warn(asyncio.run(keyadmin.remove_from_broker(key_id, _broker(mqtt_admin, mqtt_topic))))
    out.print(f"Revoked {key_id}; it stops working within 10 s.")


@keys_app.command("rotate")
def rotate(
    key_id: str,
    grace: str = typer.Option("0", "--grace", help="How long the old key keeps working "
                              "beside the new one (e.g. 1h); default: it stops at once."),
    expires: str = typer.Option(None, "--expires", help="When the new key stops working; "
                                "default never."),
    data: Path = DATA,
    store: str = STORE,
    mqtt_admin: str = MQTT_ADMIN,
    mqtt_topic: str = MQTT_TOPIC,
) -> None:
    """Replace a key by a new one with the same role, scope and name; the new secret is the
    last word of the last line and is shown only once."""
    now = time.time()
    try:
        grace_s = parse_duration(grace, "--grace")
        expires_at = parse_expiry(expires, now) if expires else None
    except ValueError as exc:
        raise fail(str(exc)) from None

    rotated = asyncio.run(_run(data, store, lambda s: keyadmin.rotate(
        s, key_id, actor=cli_actor(), grace_s=grace_s, expires_at=expires_at,
        broker=_broker(mqtt_admin, mqtt_topic), now=now)))
    if rotated.old_ends is None:
        _warn(asyncio.run(keyadmin.remove_from_broker(key_id, _broker(mqtt_admin, mqtt_topic))))
        old_fate = "revoked: it stops working within 10 s"
    else:
        # Its broker client goes at the expiry, removed by the nodes' broker sync.
        old_fate = f"it keeps working until {_when(rotated.old_ends)}"
    record = rotated.made.record
    _say_broker(record, rotated.made.topics)
    out.print(f"Rotated {key_id} ({old_fate}). New key {record.id} (role {record.role}, scope "
              f"{record.scope}): {rotated.made.secret}", soft_wrap=True, highlight=False)
