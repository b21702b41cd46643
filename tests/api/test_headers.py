"""Headers on every answer: no sniffing, no framing, no referrer, a CSP floor for anything a
browser could render (pages carry their own fuller policy)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/me", "/api/v1/no-such-route",
                                  "/openapi.json"])
async def test_every_answer_carries_the_headers(live, path) -> None:
    async with live.client() as c:
        r = await c.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


async def test_errors_are_json_not_pages(live) -> None:
    async with live.client() as c:
        r = await c.get("/api/v1/citizens/<script>alert(1)</script>",
                        headers={"Authorization": "Bearer nope"})
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
