"""`cityops citizens export|erase`: a citizen's data on request, from the node's data directory.

Both read the store the node uses (its data dir remembers the URL) with the node's data key,
and write an entry in the audit trail naming who ran them (`--by`, default the login name).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cityops.cli.config import cli_actor, with_store
from cityops.cli.errors import fail
from cityops.serve.citizen_data import CitizenData, NotFound
from cityops.serve.pii import META_KEY_ID, KeyFileError, Pii, WrongKey, key_path

citizens_app = typer.Typer(help="A citizen's data on request: export it, or erase it (PIPL).",
                           no_args_is_help=True)
out = Console()

DATA = typer.Option(Path("var/data"), "--data", help="The node's data directory.")
STORE = typer.Option(None, "--store", help="Store URL (default: the one the data dir uses).")
KEY = typer.Option(None, "--data-key", envvar="CITYOPS_DATA_KEY",
                   help="The node's data key file (default DATA/data.key).")
BY = typer.Option(None, "--by", help="Who asks, for the audit trail (default: cli:LOGIN).")


async def _with_service(data: Path, store: str | None, key: Path | None, work):
    async def sealed(s):
        try:
            path = key_path(data, key)
            # A key is made here only for a store that has never been sealed with one; a
            # store that has been needs its node's key, and a new one would read none of it.
            sealed_before = await s.get_meta(META_KEY_ID) is not None
            pii = Pii.from_file(path, create=not sealed_before)
            await pii.check_store(s)
            s.sealer = pii
            return await work(CitizenData(s, data_dir=data))
        except KeyFileError as exc:
            raise fail(f"{exc}: pass the node's key file with --data-key") from None
        except (WrongKey, NotFound) as exc:
            raise fail(str(exc)) from None

    return await with_store(data, store, sealed)


@citizens_app.command("export")
def export(
    citizen_id: str = typer.Argument(..., help="The citizen's account id."),
    output: Path = typer.Option(None, "--out", help="Write the JSON here (mode 0600) instead "
                                                     "of to standard output."),
    reason: str = typer.Option("", "--reason", help="The request this answers (audited)."),
    data: Path = DATA,
    store: str = STORE,
    data_key: Path = KEY,
    by: str = BY,
) -> None:
    """Everything CityOps holds about a citizen, as JSON, whole (it is for the person)."""
    found = asyncio.run(_with_service(
        data, store, data_key, lambda svc: svc.export(citizen_id, cli_actor(by), reason)))
    text = msgspec.json.format(msgspec.json.encode(found), indent=2) + b"\n"
    if output is None:
        sys.stdout.buffer.write(text)
        sys.stdout.flush()
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(text)
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    records = sum(len(v) for v in found["records"].values())
    Console(stderr=True).print(f"Exported citizen {citizen_id} ({records} records) to {output}",
                               highlight=False)


@citizens_app.command("erase")
def erase(
    citizen_id: str = typer.Argument(..., help="The citizen's account id."),
    reason: str = typer.Option(..., "--reason", help="The request this answers (audited)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    data: Path = DATA,
    store: str = STORE,
    data_key: Path = KEY,
    by: str = BY,
) -> None:
    """Erase a citizen: registry entry deleted, keys revoked, kept records anonymised.

    Records a case's history needs stay, with nothing left in them that identifies the person.
    """
    if not reason.strip():
        raise fail("--reason must say which request this erasure answers")
    if not yes and not typer.confirm(f"Erase everything identifying citizen {citizen_id}? "
                                     "This cannot be undone", default=False):
        raise fail("nothing erased", code=1)
    summary = asyncio.run(_with_service(
        data, store, data_key, lambda svc: svc.erase(citizen_id, cli_actor(by), reason)))
    table = Table("what", "records", title=f"Erased citizen {citizen_id}")
    for bucket in ("deleted", "anonymised", "kept", "moved"):
        for section, count in summary.get(bucket, {}).items():
            table.add_row(section if bucket == "moved" else f"{section} {bucket}", str(count))
    table.add_row("keys revoked", str(summary["keys_revoked"]))
    out.print(table)
    # The command line has no SMS gateway: a bed the erasure let go was offered to the next
    # in line, and the home's staff must tell them (the home's page shows the offer too).
    for notice in summary.get("care_offers_untold", []):
        out.print(f"[bold]Tell[/bold] citizen {escape(notice['citizen'])} (home "
                  f"{escape(notice['home'])}): {escape(notice['text'])}", highlight=False)
