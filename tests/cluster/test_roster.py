"""A field person added and retired through the web node reaches an act node on the same
store: its staff board proposes them, then no longer does (cluster.compose._follow_store)."""

from __future__ import annotations

import pytest

from tests.cluster.test_nodes import asgi, nodes, until

pytestmark = pytest.mark.services

VILLAGE = "990001001001"


@pytest.mark.timeout(120)
async def test_a_roster_change_on_the_web_node_reaches_the_act_node(cluster):
    key = {"data_key_file": cluster.root / "data.key"}  # nodes sharing a store share it
    async with nodes(cluster, ("act", ["act"], key), ("web", ["web"], key)) as (act, web):
        board = act.act.staff
        async with asgi(web, cluster.admin_key) as w:
            r = await w.post("/api/v1/roster", json={
                "id": "env-01", "name": "Gu Ming", "department": "environment",
                "home_area": VILLAGE, "device_id": "gps-000000", "skills": ["noise"]})
            assert r.status_code == 201, r.text

            async def proposed():
                return "env-01" in board

            await until(proposed, 15, "the new person to reach the act node")
            assert act.roster.person("env-01").skills == ["noise"]
            r = await w.post("/api/v1/roster/env-01/retire", json={"version": 1})
            assert r.status_code == 200, r.text

            async def retired():
                return "env-01" not in board

            await until(retired, 15, "the retirement to reach the act node")
            assert act.roster.get("env-01").active is False
