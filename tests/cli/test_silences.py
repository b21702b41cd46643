"""`cityops silences add|list|expire`: checked as the API checks, audited, readable errors."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from cityops.cli.main import app
from cityops.detect import silences as records
from cityops.detect.silences import VERSION_KEY
from cityops.packs.format import save_pack
from cityops.store.base import open_store

runner = CliRunner()
TOWN = "990001001"


def _store_state(tmp_path):
    async def read():
        store = open_store(f"sqlite:///{tmp_path / 'data' / 'state.db'}")
        await store.open()
        try:
            audit = [(e.action, e.actor, e.reason) for e in await store.list_audit()]
            return (await records.load_live(store), audit, await store.get_meta(VERSION_KEY))
        finally:
            await store.close()

    return asyncio.run(read())


def _cli(tmp_path, *args: str):
    return runner.invoke(app, ["silences", *args, "--data", str(tmp_path / "data")])


def _add(tmp_path, *args: str):
    return _cli(tmp_path, "add", "--city", str(tmp_path / "city"), *args)


def test_add_list_expire(tmp_path, grid_pack) -> None:
    save_pack(grid_pack, tmp_path / "city")
    r = _add(tmp_path, "--area", TOWN, "--rule", "noise.night_residential", "--for", "2h",
             "--comment", "roadworks at night", "--by", "duty-officer")
    assert r.exit_code == 0, r.output
    sid = r.output.split()[1].rstrip(":")
    live, audit, version = _store_state(tmp_path)
    assert [s.id for s in live] == [sid] and version
    assert live[0].ends_at - live[0].starts_at == 7200
    assert live[0].matchers.area == [TOWN] and live[0].created_by == "duty-officer"
    assert audit == [("silence.create", "duty-officer", "roadworks at night")]

    listed = _cli(tmp_path, "list", "--state", "active")
    assert listed.exit_code == 0 and sid in listed.output
    assert sid not in _cli(tmp_path, "list", "--state", "ended").output

    gone = _cli(tmp_path, "expire", sid, "--reason", "works finished", "--by", "duty-officer")
    assert gone.exit_code == 0, gone.output
    live, audit, _ = _store_state(tmp_path)
    assert live == [] and audit[0] == ("silence.expire", "duty-officer", "works finished")
    assert sid in _cli(tmp_path, "list", "--state", "ended").output
    again = _cli(tmp_path, "expire", sid)
    assert again.exit_code == 2 and "already ended" in again.output


def test_mistakes_are_one_line_naming_the_option_and_nothing_is_stored(tmp_path,
                                                                       grid_pack) -> None:
    save_pack(grid_pack, tmp_path / "city")
    for args, message in [
        (["--for", "2h"], "--comment"),  # the option is required
        (["--comment", "x", "--for", "2h"], "at least one of"),
        (["--area", "990009", "--comment", "x", "--for", "2h"], "--area: unknown area"),
        (["--rule", "noise.nope", "--comment", "x", "--for", "2h"], "--rule: unknown rule"),
        (["--kind", "volcano", "--comment", "x", "--for", "2h"], "--kind: unknown"),
        (["--area", TOWN, "--comment", "x"], "--until"),
        (["--area", TOWN, "--comment", "x", "--for", "soon"], "--for"),
        (["--area", TOWN, "--comment", "x", "--until", "2001-01-01T00:00Z"],
         "--until: has already passed"),
        (["--area", TOWN, "--comment", "x", "--until", "next week"], "--until"),
        (["--area", TOWN, "--comment", "  ", "--for", "1h"], "--comment"),
        (["--area", TOWN, "--comment", "x", "--for", "90d"], "at most 30 days"),
    ]:
        r = _add(tmp_path, *args)
        assert r.exit_code == 2, (args, r.output)
        assert message in r.output and "Traceback" not in r.output, (args, r.output)
    missing = runner.invoke(app, ["silences", "add", "--city", str(tmp_path / "nowhere"),
                                  "--area", TOWN, "--comment", "x", "--for", "1h",
                                  "--data", str(tmp_path / "data")])
    assert missing.exit_code == 2 and "not a folder" in missing.output
    assert _cli(tmp_path, "expire", "sil-nothere").exit_code == 2
    if (tmp_path / "data" / "state.db").exists():
        live, audit, _ = _store_state(tmp_path)
        assert live == [] and audit == []
