"""A silence made through one cluster node holds alerts on the others: each node's book
follows the store's silences version (cluster.compose._follow_store)."""

from __future__ import annotations

import time

import pytest

from cityops.domain.alerts import Alert
from tests.cluster.test_nodes import asgi, nodes, until

pytestmark = pytest.mark.services


@pytest.mark.timeout(120)
async def test_a_silence_made_on_the_web_node_reaches_another_node(cluster):
    # Nodes sharing a store share the data key (docs/deploy.md).
    key = {"data_key_file": cluster.root / "data.key"}
    async with nodes(cluster, ("hist", ["history"], key), ("web", ["web"], key)) as (hist, web):
        device = cluster.pack.devices[0]
        areas = web.registry.get(device.id).areas
        now = time.time()
        loud = Alert(id="a", scenario="x", rule="x.y", category="c", severity="minor",
                     urgency="normal", departments=[], subject=device.id, title="t",
                     areas=areas, first_seen=now, last_seen=now)
        book = hist.services.silences
        async with asgi(web, cluster.admin_key) as w:
            r = await w.post("/api/v1/silences", json={
                "matchers": {"area": [areas.town]}, "duration": "1h", "comment": "test"})
            assert r.status_code == 201, r.text
            sid = r.json()["id"]

            async def held():
                return book.match(loud) == sid

            await until(held, 15, "the silence to reach the other node")
            assert (await w.delete(f"/api/v1/silences/{sid}")).status_code == 200

            async def ended():
                return book.match(loud) is None and book.take_ended() == [sid]

            await until(ended, 15, "the end to reach the other node")
