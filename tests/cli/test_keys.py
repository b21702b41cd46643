import asyncio
import re
import time

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


def _keys(tmp_path):
    async def read():
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        await store.open()
        try:
            return {k.id: k for k in await store.list_keys()}
        finally:
            await store.close()

    return asyncio.run(read())


def _made(output: str) -> tuple[str, str]:
    """The new key's id and secret from the last line of `create` or `rotate`."""
    last = output.strip().splitlines()[-1]
    key_id = re.findall(r"\bk_[0-9a-f]{12}\b", last)[-1]
    return key_id, last.split()[-1]


def test_create_with_an_expiry_as_a_duration_or_a_time_and_list_shows_it(tmp_path):
    before = time.time()
    r = runner.invoke(app, ["keys", "create", "--role", "operator", "--expires", "30d",
                            "--data", str(tmp_path)])
    assert r.exit_code == 0, r.output
    in_30_days, _ = _made(r.output)
    r = runner.invoke(app, ["keys", "create", "--role", "device", "--expires",
                            "2099-12-31T00:00Z", "--data", str(tmp_path)])
    assert r.exit_code == 0, r.output
    fixed, _ = _made(r.output)
    keys = _keys(tmp_path)
    assert before + 30 * 86400 <= keys[in_30_days].expires_at <= time.time() + 30 * 86400
    assert keys[fixed].expires_at == 4102358400.0  # 2099-12-31T00:00:00Z
    listed = runner.invoke(app, ["keys", "list", "--data", str(tmp_path)])
    assert "2099-12-31 00:00 UTC" in listed.output


def test_rotate_at_once_revokes_the_old_key_and_keeps_role_scope_and_name(tmp_path):
    r = runner.invoke(app, ["keys", "create", "--role", "field", "--scope", "310115001001",
                            "--name", "san-01", "--data", str(tmp_path)])
    old_id, old_secret = _made(r.output)
    r = runner.invoke(app, ["keys", "rotate", old_id, "--data", str(tmp_path)])
    assert r.exit_code == 0, r.output
    new_id, new_secret = _made(r.output)
    assert new_id != old_id and new_secret.startswith("co_") and new_secret != old_secret
    keys = _keys(tmp_path)
    old, new = keys[old_id], keys[new_id]
    assert old.revoked and not new.revoked and new.expires_at is None
    assert (new.role, new.scope, new.name) == ("field", "310115001001", "san-01")
    assert new.hash == hash_secret(new_secret)


def test_rotate_with_grace_lets_the_old_key_work_a_while(tmp_path):
    r = runner.invoke(app, ["keys", "create", "--role", "operator", "--data", str(tmp_path)])
    old_id, _ = _made(r.output)
    before = time.time()
    r = runner.invoke(app, ["keys", "rotate", old_id, "--grace", "1h", "--data", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "keeps working until" in r.output
    old = _keys(tmp_path)[old_id]
    assert not old.revoked and before + 3600 <= old.expires_at <= time.time() + 3600
    # A grace never stretches a key past the expiry it already had.
    r = runner.invoke(app, ["keys", "rotate", old_id, "--grace", "2w", "--data", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert _keys(tmp_path)[old_id].expires_at == old.expires_at


def test_key_mistakes_are_one_line_without_traceback(tmp_path):
    r = runner.invoke(app, ["keys", "create", "--role", "operator", "--data", str(tmp_path)])
    key_id, _ = _made(r.output)
    runner.invoke(app, ["keys", "revoke", key_id, "--data", str(tmp_path)])
    for args, message in [
        (["create", "--role", "operator", "--expires", "soon"], "neither a duration"),
        (["create", "--role", "operator", "--expires", "2001-01-01T00:00Z"], "already passed"),
        (["rotate", "k_000000000000"], "no key 'k_000000000000'"),
        (["rotate", key_id], "is revoked"),
        (["rotate", key_id, "--grace", "a while"], "is not a duration"),
    ]:
        r = runner.invoke(app, ["keys", *args, "--data", str(tmp_path)])
        assert r.exit_code == 2, r.output
        assert message in r.output and "Traceback" not in r.output
