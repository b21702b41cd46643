"""The route layer's bounds, for every route alike: a body over its limit (declared or
streamed), a body that stalls, JSON nested too deeply, a field too long, a query number out of
range. Each answers 4xx naming what was wrong; nothing answers 5xx and nothing is stored."""

from __future__ import annotations

import asyncio

import pytest

from cityops.api.limits import DEFAULT_BODY
from cityops.api.route import errors_map

CITIZEN = {"id": "c-1", "name": "Li", "area": "990001001001"}


async def test_body_over_the_limit_declared_or_streamed(live) -> None:
    op = await live.key("operator")
    async with live.client(op) as c:
        big = b'{"id": "c-1", "name": "' + b"x" * DEFAULT_BODY + b'"}'
        r = await c.post("/api/v1/citizens", content=big,
                         headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["error"]

        async def chunks():  # no Content-Length: the cap applies while it streams in
            yield b'{"id": "c-1", "name": "'
            for _ in range(20):
                yield b"x" * 65536
            yield b'"}'

        r = await c.post("/api/v1/citizens", content=chunks(),
                         headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert (await c.get("/api/v1/citizens/c-1")).status_code == 404


async def test_a_stalled_body_is_cut(tmp_path, grid_pack, live_node) -> None:
    async with live_node(grid_pack, tmp_path / "d", body_timeout_s=0.2) as live:
        stall = asyncio.Event()

        async def trickle():
            yield b'{"id": "c-1", '
            await stall.wait()  # never set: the sender stops sending
            yield b"}"

        async with live.client(await live.key("operator")) as c:
            r = await c.post("/api/v1/citizens", content=trickle(),
                             headers={"content-type": "application/json"})
        assert r.status_code == 408 and "did not arrive" in r.json()["error"]


async def test_nesting_and_lengths_name_the_field(live) -> None:
    async with live.client(await live.key("operator")) as c:
        deep: dict = {}
        inner = deep
        for _ in range(100):
            inner["a"] = {}
            inner = inner["a"]
        r = await c.post("/api/v1/citizens", json={**CITIZEN, "attributes": deep})
        assert r.status_code == 400 and "deeper than 32" in r.json()["error"]
        r = await c.post("/api/v1/citizens",
                         content=b"[" * 100_000 + b"]" * 100_000,
                         headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = await c.post("/api/v1/citizens", json={**CITIZEN, "name": "x" * 101})
        assert r.status_code == 400 and "$.name" in r.json()["error"]
        r = await c.post("/api/v1/citizens", json={**CITIZEN, "nickname": "x"})
        assert r.status_code == 400 and "nickname" in r.json()["error"]
        assert (await c.get("/api/v1/citizens/c-1")).status_code == 404


async def test_query_numbers_are_checked(live) -> None:
    async with live.client(await live.key("admin")) as c:
        for query in ("limit=0", "limit=1001", "limit=ten", "cursor=-1", "cursor=1e400",
                      "limit=1&limit=2"):
            r = await c.get(f"/api/v1/dead-letters?{query}")
            assert r.status_code == 400, query
        r = await c.get("/api/v1/dead-letters?limit=1001")
        assert "limit" in r.json()["error"]
        assert (await c.get("/api/v1/dead-letters?limit=5")).status_code == 200


async def test_wrong_method_and_scoped_keys_on_city_wide_data(live) -> None:
    async with live.client(await live.key("operator", "990001001")) as c:
        assert (await c.get("/api/v1/dead-letters")).status_code == 403
        assert (await c.delete("/api/v1/citizens/me")).status_code == 405


async def test_bad_input_never_answers_5xx(live) -> None:
    async with live.client(await live.key("admin")) as c:
        for body in (b"", b"null", b"[]", b"\xff\xfe", b'{"id": 1}', b"1e999",
                     b'{"id": "c", "name": "n", "birth_date": "1999-99-99"}'):
            r = await c.post("/api/v1/citizens", content=body,
                             headers={"content-type": "application/json"})
            assert 400 <= r.status_code < 500, (body, r.status_code)


def test_one_domain_error_answers_one_status() -> None:
    class Busy(Exception):
        retry_after = 2.5

    errors_map({Busy: 429})
    errors_map({Busy: 429})  # the same again is harmless
    with pytest.raises(TypeError, match="already answers 429"):
        errors_map({Busy: 409})
    with pytest.raises(TypeError, match="builtin"):
        errors_map({ValueError: 400})
