"""The status page, its figures and the web pages: what they show without a key, the
Content-Security-Policy and framing rules they carry, and the static files behind them."""

from __future__ import annotations

import pytest

PAGES = ["/", "/screen", "/console", "/field", "/citizen"]


async def test_status_figures_need_a_key_unless_published(tmp_path, grid_pack, live_node):
    """Found in issue 12: /status.json answered anyone. The node's figures are city-wide:
    a key with no scope reads them, or anyone where the city publishes them (open_status)."""
    async with live_node(grid_pack, tmp_path / "a") as live:
        town = live.node.pack.areas[1].code
        async with live.client() as c:
            anonymous = await c.get("/status.json")
            page = await c.get("/")
        async with live.client(await live.key("operator", town)) as c:
            scoped = await c.get("/status.json")
        async with live.client(await live.key("citizen")) as c:
            citizen = await c.get("/status.json")
        async with live.client(await live.key("operator")) as c:
            operator = await c.get("/status.json")
    assert anonymous.status_code == 401
    assert scoped.status_code == 403 and citizen.status_code == 403
    assert operator.status_code == 200
    assert set(operator.json()) == {"rate", "stored", "rejected", "dead"}
    # The page stays public and says what the node is, but not the figures.
    assert page.status_code == 200 and "Grid City" in page.text
    assert 'data-open="0"' in page.text and "for operators" in page.text
    async with live_node(grid_pack, tmp_path / "b", open_status=True) as live, \
            live.client() as c:
        published = await c.get("/status.json")
        page = await c.get("/")
    assert published.status_code == 200 and published.json()["stored"] == 0
    assert 'data-open="1"' in page.text


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_carries_the_pages_csp_and_no_framing(live, path):
    """Found in issue 12: / had no CSP; the pages allowed framing by their own origin."""
    async with live.client() as c:
        r = await c.get(path)
    assert r.status_code == 200, r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "frame-ancestors 'self'" not in csp
    assert "<script>" not in r.text  # no inline code: script-src 'self' would block it


async def test_static_files_are_served_and_nothing_outside_them(live):
    async with live.client() as c:
        script = await c.get("/static/status.js")
        style = await c.get("/static/common.css")
        again = await c.get("/static/common.css", headers={"If-None-Match": style.headers["etag"]})
        escapes = [await c.get(p) for p in (
            "/static/../api/pages.py", "/static/%2e%2e/api/pages.py",
            "/static/..%2f..%2fsettings.py", "/static//etc/passwd", "/static/vendor/../../x",
            "/static/nothing.js", "/static/", "/static/a%00b")]
        posted = await c.post("/static/status.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript",
                                                      "application/javascript"))
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert again.status_code == 304
    assert [r.status_code for r in escapes] == [404] * len(escapes), [r.text for r in escapes]
    assert all(r.headers["content-type"].startswith("application/json") for r in escapes)
    assert posted.status_code == 405
