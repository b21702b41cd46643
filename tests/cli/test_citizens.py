"""`cityops citizens export|erase` on a node's data directory: the export in JSON, the erasure
said in a table, both audited; mistakes in one readable line."""

from __future__ import annotations

import asyncio
import json
import os
import stat

from typer.testing import CliRunner

from cityops.auth import new_key
from cityops.cli.main import app
from cityops.domain.citizens import Citizen
from cityops.serve.citizens import CitizenRegistry
from cityops.serve.pii import Pii
from cityops.store.base import open_store

runner = CliRunner()
PHONE, ID = "13812345678", "310115198001011234"


def _node_data(data) -> None:
    """What a node leaves in its data dir: a store with Li registered, and its data key."""

    async def fill() -> None:
        store = open_store(f"sqlite:///{data / 'state.db'}")
        await store.open()
        try:
            pii = Pii.from_file(data / "data.key")
            await pii.check_store(store)
            store.sealer = pii
            await CitizenRegistry(store, pii).register(
                Citizen(id="c-1", name="Li Wei", phone=PHONE, id_number=ID))
            await store.add_key(new_key("citizen", None, "c-1")[1])
        finally:
            await store.close()

    data.mkdir(parents=True, exist_ok=True)
    asyncio.run(fill())


def _audit(data) -> list:
    async def read():
        store = open_store(f"sqlite:///{data / 'state.db'}")
        await store.open()
        try:
            return await store.list_audit(subject="citizen:c-1")
        finally:
            await store.close()

    return asyncio.run(read())


def test_export_then_erase(tmp_path) -> None:
    data = tmp_path / "data"
    _node_data(data)
    r = runner.invoke(app, ["citizens", "export", "c-1", "--data", str(data), "--by", "dpo"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["citizen"]["phone"] == PHONE and out["citizen"]["id_number"] == ID

    saved = tmp_path / "li.json"
    r = runner.invoke(app, ["citizens", "export", "c-1", "--data", str(data), "--out",
                            str(saved)])
    assert r.exit_code == 0, r.output
    assert json.loads(saved.read_text())["citizen"]["id"] == "c-1"
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600

    r = runner.invoke(app, ["citizens", "erase", "c-1", "--data", str(data), "--yes",
                            "--reason", "request 2026-18", "--by", "dpo"])
    assert r.exit_code == 0, r.output
    assert "Erased citizen c-1" in r.output and "keys revoked" in r.output
    trail = list(reversed(_audit(data)))  # oldest first
    assert [e.action for e in trail] == ["citizen.export", "citizen.export", "citizen.erase"]
    assert trail[0].actor == "dpo" and trail[1].actor.startswith("cli")
    assert trail[2].actor == "dpo" and trail[2].reason == "request 2026-18"
    r = runner.invoke(app, ["citizens", "export", "c-1", "--data", str(data)])
    assert r.exit_code == 2 and "nothing is held about citizen 'c-1'" in r.output


def test_mistakes_are_one_line_without_traceback(tmp_path) -> None:
    data = tmp_path / "data"
    _node_data(data)
    (tmp_path / "other.key").write_text("not a key")
    for args, message in [
        (["export", "c-404"], "nothing is held about citizen 'c-404'"),
        (["export", "c-1", "--data-key", str(tmp_path / "missing.key")], "does not exist"),
        (["export", "c-1", "--data-key", str(tmp_path / "other.key")],
         "not a CityOps data key file"),
        (["erase", "c-1", "--yes", "--reason", " "], "--reason must say"),
        (["erase", "c-1", "--yes", "--reason", "x", "--store", "oracle://x"],
         "is not understood"),
    ]:
        r = runner.invoke(app, ["citizens", *args, "--data", str(data)])
        assert r.exit_code == 2, (args, r.output)
        assert message in r.output and "Traceback" not in r.output, (args, r.output)
    # Another node's key reads none of it, and says why.
    Pii.from_file(tmp_path / "fresh.key")
    r = runner.invoke(app, ["citizens", "export", "c-1", "--data", str(data), "--data-key",
                            str(tmp_path / "fresh.key")])
    assert r.exit_code == 2 and "another data key" in r.output
    # Asked to confirm, and refused: nothing erased.
    r = runner.invoke(app, ["citizens", "erase", "c-1", "--data", str(data), "--reason", "x"],
                      input="n\n")
    assert r.exit_code == 1 and "nothing erased" in r.output
    assert runner.invoke(app, ["citizens", "export", "c-1", "--data", str(data)]).exit_code == 0
