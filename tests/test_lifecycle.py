"""A node's own lifecycle changes against moves made elsewhere: a first reading saved by a
node never writes over a move another process (the CLI, another cluster node) made after the
node last read the store's devices, on every store."""

from __future__ import annotations

import msgspec
import pytest

from cityops import lifecycle
from cityops.domain.lifecycle import Lifecycle
from cityops.services import DEVICES_VERSION
from cityops.store.base import open_store
from tests.clock_kit import Clock

T0 = 1_780_000_000.0  # the node's clock, not the wall's
MOVED, UNTOUCHED = "noise-000004", "noise-000005"


async def _read(live, device_id, ts):
    key = await live.key("device")
    async with live.client(key) as c:
        r = await c.post("/api/v1/readings", content=msgspec.json.encode(
            [{"device_id": device_id, "ts": ts, "value": 50.0}]))
    assert r.status_code == 202, r.text
    await live.node.detect.caught_up()


@pytest.fixture
async def elsewhere(each_store_url):
    """The store as another process sees it: its own connection to the same database (a
    memory store has no other process: then the node's own store object)."""
    if each_store_url.startswith("memory"):
        yield None
        return
    store = open_store(each_store_url)
    await store.open()
    yield store
    await store.close()


async def test_a_move_made_elsewhere_after_the_node_read_the_store_wins_over_a_first_reading(
        tmp_path, grid_pack, live_node, each_store_url, elsewhere, monkeypatch):
    clock = Clock(T0)
    # Saves only when the test says (the background loop would race the interleaving below).
    async with live_node(grid_pack, tmp_path / "d", clock=clock, store_url=each_store_url,
                         snapshot_every_s=3600.0, detect_tick_s=3600.0,
                         notify_url="memory:") as live:
        node = live.node
        other = elsewhere or node.store
        await _read(live, MOVED, T0 - 2)
        await _read(live, UNTOUCHED, T0 - 1)
        registry = node.registry
        assert [registry.get(i).lifecycle for i in (MOVED, UNTOUCHED)] == [Lifecycle.ACTIVE] * 2

        read_the_store = lifecycle.follow_store

        async def then_an_operator_moves_it(n):
            # The node has read the store's devices; now, before it writes, an operator puts
            # the device into maintenance with the CLI (the same plan and apply).
            await read_the_store(n)
            stored = {d.id: d for d in await other.load_devices()}
            moves = lifecycle.plan([stored[MOVED]], Lifecycle.MAINTENANCE, T0 + 5)
            await lifecycle.apply(other, moves, actor="cli:ops", reason="pole repainted",
                                  at=T0 + 5)

        monkeypatch.setattr(lifecycle, "follow_store", then_an_operator_moves_it)
        saved = await lifecycle.save_unsaved(node)
        monkeypatch.undo()

        stored = {d.id: d for d in await other.load_devices()}
        assert (stored[MOVED].lifecycle, stored[MOVED].lifecycle_at) == (
            Lifecycle.MAINTENANCE, T0 + 5)
        assert stored[UNTOUCHED].lifecycle is Lifecycle.ACTIVE
        assert saved == 1
        # The node took the store's word at once: rules no longer read the moved device.
        assert registry.get(MOVED) == stored[MOVED]
        assert not registry.evaluated(len(registry))[registry.index[MOVED]]
        assert registry.get(UNTOUCHED) == stored[UNTOUCHED]
        assert not registry.unsaved
        # The operator's move is audited as made.
        audit = await other.list_audit(subject=f"device:{MOVED}")
        assert [(a.actor, a.before, a.after) for a in audit] == [
            ("cli:ops", "commissioning", "maintenance")]
        version = await other.get_meta(DEVICES_VERSION)

        # Nothing left to save; a later first reading is saved as before.
        assert await lifecycle.save_unsaved(node) == 0
        await _read(live, "noise-000006", T0)
        assert await lifecycle.save_unsaved(node) == 1
        assert await other.get_meta(DEVICES_VERSION) != version  # other nodes follow it
        stored = {d.id: d for d in await other.load_devices()}
        assert stored["noise-000006"].lifecycle is Lifecycle.ACTIVE
        assert stored[MOVED].lifecycle is Lifecycle.MAINTENANCE
