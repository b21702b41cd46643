import asyncio

from typer.testing import CliRunner

from cityops.auth import hash_secret
from cityops.cli.main import app
from cityops.store.base import open_store

runner = CliRunner()


def test_create_prints_the_key_as_last_word_and_stores_only_its_hash(tmp_path):
    r = runner.invoke(app, ["keys", "create", "--role", "operator", "--scope", "310115001",
                            "--data", str(tmp_path)])
    assert r.exit_code == 0, r.output
    secret = r.output.strip().splitlines()[-1].split()[-1]
    assert secret.startswith("co_")

    async def lookup():
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        await store.open()
        try:
            return await store.find_key(hash_secret(secret)), await store.list_keys()
        finally:
            await store.close()

    found, listed = asyncio.run(lookup())
    assert found.role == "operator" and found.scope == "310115001"
    assert all(secret not in repr(k) for k in listed)
    assert (tmp_path / "state.db").read_bytes().find(secret.encode()) == -1


def test_list_and_revoke(tmp_path):
    runner.invoke(app, ["keys", "create", "--role", "device", "--data", str(tmp_path)])
    listed = runner.invoke(app, ["keys", "list", "--data", str(tmp_path)])
    key_id = next(w for w in listed.output.split() if w.startswith("k_"))
    assert runner.invoke(app, ["keys", "revoke", key_id, "--data", str(tmp_path)]).exit_code == 0
    again = runner.invoke(app, ["keys", "revoke", "k_nothere", "--data", str(tmp_path)])
    assert again.exit_code == 2 and "no key 'k_nothere'" in again.output


def test_user_mistakes_are_one_line_without_traceback(tmp_path):
    for args, message in [
        (["--role", "mayor"], "role 'mayor' is not one of"),
        (["--role", "station", "--scope", "12345"], "6, 9 or 12 digit"),
        (["--role", "station", "--scope", "Not A Scope!"], "neither an area code"),
        (["--role", "admin", "--store", "oracle://x"], "is not understood"),
    ]:
        r = runner.invoke(app, ["keys", "create", *args, "--data", str(tmp_path)])
        assert r.exit_code == 2, r.output
        assert message in r.output and "Traceback" not in r.output
