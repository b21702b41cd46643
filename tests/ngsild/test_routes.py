"""What every NGSI-LD route does before its own work (ngsild/routes.py)."""

from __future__ import annotations

import pytest

from tests.ngsild.ngsild_kit import building, ngsi_client, problem_type


@pytest.mark.parametrize("method, path", [
    ("GET", "/ngsi-ld/v1/entities?type=Building"),
    ("POST", "/ngsi-ld/v1/entities"),
    ("GET", "/ngsi-ld/v1/subscriptions"),
    ("GET", "/ngsi-ld/v1/temporal/entities?type=Building&timerel=after"
            "&timeAt=2026-01-01T00:00:00Z"),
])
async def test_a_tenant_is_refused_not_served_from_the_default_one(live, method, path):
    # A client naming a tenant expects its data kept apart; serving it the city's own
    # entities (or writing its entities among them) would break that silently.
    async with await ngsi_client(live, headers={"NGSILD-Tenant": "district-b"}) as c:
        body = building(1) if method == "POST" else None
        r = await c.request(method, path, json=body)
        assert r.status_code == 501, r.text
        assert problem_type(r) == "NoMultiTenantSupport"
        assert "district-b" in r.json()["detail"]
    async with await ngsi_client(live) as c:
        assert (await c.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Building:1")).status_code == 404
