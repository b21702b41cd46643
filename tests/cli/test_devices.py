"""`cityops devices lifecycle|never-reported` on a data folder's store: moves all or nothing,
audited, mistakes in one readable line."""

from __future__ import annotations

import asyncio
import time

from typer.testing import CliRunner

from cityops.cli.main import app
from cityops.domain.city import AreaCodes, Device
from cityops.domain.lifecycle import Lifecycle
from cityops.store.base import open_store

runner = CliRunner()
DAY = 86400.0


def _devices(now):
    def at(village):
        return AreaCodes("990001", village[:9], village)

    return [
        Device("n0", "noise", 31.2, 121.5, areas=at("990001001001"), lifecycle_at=now - 9 * DAY),
        Device("n1", "noise", 31.2, 121.5, areas=at("990001001002"), lifecycle_at=now - DAY),
        Device("n2", "noise", 31.2, 121.5, areas=at("990001002001"),
               lifecycle=Lifecycle.ACTIVE, lifecycle_at=now - 9 * DAY),
        Device("w0", "water_depth", 31.2, 121.5, areas=at("990001002001"),
               lifecycle_at=now - 30 * DAY),
    ]


def _store(tmp_path):
    return open_store(f"sqlite:///{tmp_path / 'state.db'}")


def _seed(tmp_path):
    async def seed():
        store = _store(tmp_path)
        await store.open()
        try:
            await store.upsert_devices(_devices(time.time()))
        finally:
            await store.close()

    asyncio.run(seed())


def _stored(tmp_path):
    async def read():
        store = _store(tmp_path)
        await store.open()
        try:
            devices = {d.id: d.lifecycle.value for d in await store.load_devices()}
            return devices, await store.list_audit(limit=100), \
                await store.get_meta("devices.version")
        finally:
            await store.close()

    return asyncio.run(read())


def _run(tmp_path, *args):
    return runner.invoke(app, ["devices", *args, "--data", str(tmp_path)])


def test_lifecycle_by_area_and_kind_is_audited(tmp_path):
    _seed(tmp_path)
    r = _run(tmp_path, "lifecycle", "--to", "maintenance", "--area", "990001001",
             "--kind", "noise", "--reason", "lamp posts repainted")
    assert r.exit_code == 0, r.output
    assert "Moved 2 devices to maintenance" in r.output and "maintenance" in r.output
    devices, audit, version = _stored(tmp_path)
    assert devices == {"n0": "maintenance", "n1": "maintenance", "n2": "active",
                       "w0": "commissioning"}
    assert sorted((a.subject, a.before, a.after) for a in audit) == [
        ("device:n0", "commissioning", "maintenance"), ("device:n1", "commissioning",
                                                        "maintenance")]
    assert all(a.actor.startswith("cli") and a.reason == "lamp posts repainted" for a in audit)
    assert version  # running nodes follow the store's device version


def test_lifecycle_by_ids_all_or_nothing(tmp_path):
    _seed(tmp_path)
    r = _run(tmp_path, "lifecycle", "--to", "decommissioned", "--device", "n2",
             "--reason", "stolen")
    assert r.exit_code == 0, r.output
    r = _run(tmp_path, "lifecycle", "--to", "maintenance", "--device", "n1", "--device", "n2",
             "--reason", "check")
    assert r.exit_code == 2 and "device 'n2'" in r.output and "nothing was changed" in r.output
    assert "Traceback" not in r.output
    devices, _, _ = _stored(tmp_path)
    assert devices["n1"] == "commissioning" and devices["n2"] == "decommissioned"


def test_mistakes_are_one_line(tmp_path):
    _seed(tmp_path)
    for args, message in [
        (["--to", "broken", "--device", "n0"], "--to: unknown lifecycle state 'broken'"),
        (["--to", "maintenance"], "name the devices to change"),
        (["--to", "maintenance", "--device", "ghost"], "no device 'ghost'"),
        (["--to", "maintenance", "--kind", "lava"], "--kind: no device of kind 'lava'"),
        (["--to", "maintenance", "--area", "990009"], "no device in area 990009"),
        (["--to", "maintenance", "--device", "n0", "--area", "990001"], "not both"),
        (["--to", "active", "--device", "n0"], "becomes active by itself"),
    ]:
        r = _run(tmp_path, "lifecycle", *args, "--reason", "x")
        assert r.exit_code == 2, (args, r.output)
        assert message in r.output and "Traceback" not in r.output, (args, r.output)
    devices, audit, _ = _stored(tmp_path)
    assert audit == [] and devices["n0"] == "commissioning"


def test_never_reported_lists_commissioning_devices_past_the_window(tmp_path):
    _seed(tmp_path)
    r = _run(tmp_path, "never-reported")
    assert r.exit_code == 0, r.output
    assert "2 devices never reported within 7d" in r.output
    assert "w0" in r.output and "n0" in r.output and "n1" not in r.output
    assert r.output.index("w0") < r.output.index("n0")  # longest waiting first
    r = _run(tmp_path, "never-reported", "--window", "12h", "--kind", "noise")
    assert "n1" in r.output and "w0" not in r.output and "n2" not in r.output
    bad = _run(tmp_path, "never-reported", "--window", "soon")
    assert bad.exit_code == 2 and "is not a duration" in bad.output
