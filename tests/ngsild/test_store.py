"""ContextStore: kept in the record store, read back at start and by another node sharing
the store, bounded, with listeners told of each change."""

from __future__ import annotations

import pytest

from cityops.ngsild.contexts import core
from cityops.ngsild.entity import expand_entity
from cityops.ngsild.errors import NgsiError
from tests.ngsild.ngsild_kit import building

T = core()


def _entity(n: int, **attrs):
    return expand_entity(building(n, **attrs), T)


async def test_saved_followed_by_another_node_and_told(tmp_path, grid_pack, live_node) -> None:
    url, key = f"sqlite:///{tmp_path}/shared.db", tmp_path / "data.key"
    async with live_node(grid_pack, tmp_path / "a", store_url=url, data_key_file=key) as live_a, \
            live_node(grid_pack, tmp_path / "b", store_url=url, data_key_file=key) as live_b:
        a, b = live_a.node, live_b.node
        told, told_a = [], []
        b.ngsild.entities.add_listener(
            lambda before, after, *, local: told.append((before, after, local)))
        a.ngsild.entities.add_listener(
            lambda before, after, *, local: told_a.append((before, after, local)))
        await a.ngsild.entities.create(_entity(1, floors=2))
        assert b.ngsild.entities.peek("urn:ngsi-ld:Building:1") is None
        assert await b.ngsild.entities.follow_once()
        assert b.ngsild.entities.peek("urn:ngsi-ld:Building:1") is not None
        assert told[-1][0] is None and told[-1][1]["id"] == "urn:ngsi-ld:Building:1"
        # Each node tells its own subscribers of its own writes; b read a's back (not local),
        # so b's subscriptions do not notify it a second time.
        assert told[-1][2] is False and told_a[-1][2] is True
        assert not await b.ngsild.entities.follow_once()  # nothing new
        await a.ngsild.entities.delete("urn:ngsi-ld:Building:1")
        assert await b.ngsild.entities.follow_once()
        assert told[-1][1] is None and b.ngsild.entities.peek("urn:ngsi-ld:Building:1") is None
        # Version-checked: b writes over a copy a changed meanwhile without losing a's change.
        await a.ngsild.entities.create(_entity(2, floors=1))

        def add_roof(e):
            e["https://uri.etsi.org/ngsi-ld/default-context/roof"] = [
                {"type": "Property", "value": "flat"}]
            return e

        await b.ngsild.entities.modify("urn:ngsi-ld:Building:2", add_roof)
        kept = b.ngsild.entities.peek("urn:ngsi-ld:Building:2")
        assert "https://uri.etsi.org/ngsi-ld/default-context/floors" in kept
    async with live_node(grid_pack, tmp_path / "c", store_url=url, data_key_file=key) as live_c:
        assert len(live_c.node.ngsild.entities) == 1  # read back at start


async def test_bounds_and_system_times(tmp_path, grid_pack, live_node) -> None:
    async with live_node(grid_pack, tmp_path / "a", ngsild_max_entities=2,
                         ngsild_max_entity_bytes=2000) as live:
        store = live.node.ngsild.entities
        first = await store.create(_entity(1))
        assert first["createdAt"].endswith("Z") and first["modifiedAt"] == first["createdAt"]
        await store.create(_entity(2))
        with pytest.raises(NgsiError) as caught:
            await store.create(_entity(3))
        assert caught.value.kind == "OperationNotSupported" and "at most 2" in caught.value.detail
        with pytest.raises(NgsiError) as caught:
            await store.modify("urn:ngsi-ld:Building:1", lambda e: _entity(1, text="x" * 3000))
        assert caught.value.status == 413
        with pytest.raises(NgsiError) as caught:
            await store.create(_entity(1))
        assert caught.value.kind == "AlreadyExists"
        assert store.types() == ["https://uri.etsi.org/ngsi-ld/default-context/Building"]
