"""`cityops keys create|list|revoke|rotate`.

With `--mqtt-admin` (or CITYOPS_MQTT_ADMIN) a device key also gets its broker client, made
here because only here is the secret at hand (ingest/broker_accounts.py says why); revoking
or rotating removes it. Without it, keys are made in the store alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cityops.auth import new_key
from cityops.cli.config import with_store
from cityops.cli.errors import err, fail
from cityops.store.base import ApiKeyRecord, DuplicateKey, Store

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

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, option: str) -> float:
    """`90m`, `12h`, `30d`, `2w` (or `0`) in seconds."""
    text = text.strip().lower()
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{option} {text!r} is not a duration: use e.g. 90m, 12h, 30d or 2w")
    return float(match[1]) * _UNIT_S[match[2]]


def parse_expiry(text: str, now: float) -> float:
    """A duration from now (`30d`) or a moment (`2026-12-31T00:00Z`; without a zone: UTC)."""
    if _DURATION.fullmatch(text.strip().lower()):
        return now + parse_duration(text, "--expires")
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--expires {text!r} is neither a duration (30d, 12h) nor a time "
                         "(2026-12-31T00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    at = moment.timestamp()
    if at <= now:
        raise ValueError(f"--expires {text!r} has already passed")
    return at


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")



def _broker(mqtt_admin: str, mqtt_topic: str):
    from cityops.ingest.broker_accounts import BrokerAccounts, topic_prefix

    try:
        return BrokerAccounts(mqtt_admin, topic_prefix(mqtt_topic))
    except ValueError as exc:
        raise fail(str(exc)) from None


async def _add_with_broker(s: Store, record: ApiKeyRecord, secret: str, mqtt_admin: str | None,
                           mqtt_topic: str) -> list[str] | None:
    """Store the key, and give a device key its broker client first: a key whose devices
    cannot publish is not handed out. The topics it may publish to, when it got a client."""
    from cityops.ingest.broker_accounts import BrokerError

    if record.role != "device" or not mqtt_admin:
        await s.add_key(record)
        return None
    devices = await s.load_devices()
    try:
        async with _broker(mqtt_admin, mqtt_topic) as broker:
            topics = await broker.add_device_key(record, secret, devices)
            try:
                await s.add_key(record)
            except BaseException:
                await broker.remove_key(record.id)
                raise
    except BrokerError as exc:
        raise fail(f"{exc}; no key was made") from None
    return topics


async def _remove_from_broker(key_id: str, mqtt_admin: str | None, mqtt_topic: str) -> None:
    from cityops.ingest.broker_accounts import BrokerError

    if not mqtt_admin:
        return
    try:
        async with _broker(mqtt_admin, mqtt_topic) as broker:
            await broker.remove_key(key_id)
    except BrokerError as exc:
        err.print(f"[bold yellow]warning:[/] the key is off in the store, but its MQTT client "
                  f"is still on the broker ({exc}); a node with --mqtt-admin removes it once it "
                  f"reaches the broker", soft_wrap=True, highlight=False)


def _say_broker(record: ApiKeyRecord, topics: list[str] | None) -> None:
    if topics is None:
        return
    shown = ", ".join(topics[:3]) + (f" and {len(topics) - 3} more" if len(topics) > 3 else "")
    out.print(f"MQTT: user {record.id}, password the key; may publish to "
              f"{shown or 'no topic yet (no device in its scope)'}", soft_wrap=True,
              highlight=False)


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
        secret, record = new_key(role, scope, name, expires_at=expires_at, now=now)
    except ValueError as exc:
        raise fail(str(exc)) from None
    topics = asyncio.run(with_store(data, store, lambda s: _add_with_broker(
        s, record, secret, mqtt_admin, mqtt_topic)))
    _say_broker(record, topics)
    until = f", expires {_when(record.expires_at)}" if record.expires_at else ""
    out.print(f"Created key {record.id} (role {record.role}, scope {record.scope}{until}): "
              f"{secret}", soft_wrap=True, highlight=False)


@keys_app.command("list")
def list_keys(data: Path = DATA, store: str = STORE) -> None:
    records = asyncio.run(with_store(data, store, lambda s: s.list_keys()))
    now = time.time()
    table = Table("id", "role", "scope", "name", "created", "expires", "revoked")
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
    done = asyncio.run(with_store(data, store, lambda s: s.revoke_key(key_id)))
    if not done:
        raise fail(f"no key {key_id!r}")
    asyncio.run(_remove_from_broker(key_id, mqtt_admin, mqtt_topic))
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

    async def work(s: Store):
        old = next((k for k in await s.list_keys() if k.id == key_id), None)
        if old is None:
            raise fail(f"no key {key_id!r}")
        if old.revoked:
            raise fail(f"key {key_id} is revoked: make a new one with `cityops keys create`")
        if not old.active_at(now):
            raise fail(f"key {key_id} expired at {_when(old.expires_at or now)}: make a new "
                       "one with `cityops keys create`")
        try:
            secret, record = new_key(old.role, old.scope, old.name, expires_at=expires_at,
                                     now=now)
        except ValueError as exc:
            raise fail(str(exc)) from None
        try:
            topics = await _add_with_broker(s, record, secret, mqtt_admin, mqtt_topic)
        except DuplicateKey as exc:  # a clash of fresh random ids: astronomically rare
            raise fail(str(exc)) from None
        if grace_s <= 0:
            await s.revoke_key(old.id)
            ends = None
        else:
            ends = now + grace_s
            if old.expires_at is not None:
                ends = min(ends, old.expires_at)
            await s.set_key_expiry(old.id, ends)
        return secret, record, topics, ends

    secret, record, topics, ends = asyncio.run(with_store(data, store, work))
    if ends is None:
        asyncio.run(_remove_from_broker(key_id, mqtt_admin, mqtt_topic))
        old_fate = "revoked: it stops working within 10 s"
    else:
        # Its broker client goes at the expiry, removed by the nodes' broker sync.
        old_fate = f"it keeps working until {_when(ends)}"
    _say_broker(record, topics)
    out.print(f"Rotated {key_id} ({old_fate}). New key {record.id} (role {record.role}, scope "
              f"{record.scope}): {secret}", soft_wrap=True, highlight=False)
