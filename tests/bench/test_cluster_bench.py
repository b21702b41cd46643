"""`cityops bench cluster` stops with the reason when its ingest node keeps refusing (or is
gone) instead of retrying one batch for ever."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from cityops.bench.cluster import Refused, _post_all
from tests.http_kit import dead_url, served


async def test_a_batch_refused_past_its_deadline_stops_the_run() -> None:
    asked = []

    async def readings(request):
        asked.append(await request.body())
        return JSONResponse({"error": "busy"}, status_code=503, headers={"Retry-After": "0"})

    app = Starlette(routes=[Route("/api/v1/readings", readings, methods=["POST"])])
    async with served(app) as url:
        with pytest.raises(Refused, match=r"batch 0 .*HTTP 503"):
            await _post_all(url, "k", [b"[]"], 1, lambda n: None, give_up_s=0.3)
    assert len(asked) >= 1  # it did try, and kept trying until the deadline


async def test_a_node_that_is_gone_stops_the_run() -> None:
    url = dead_url("")
    with pytest.raises(Refused, match=r"batch 0 .*(ConnectError|Error)"):
        await _post_all(url, "k", [b"[]"], 1, lambda n: None, give_up_s=0.3)


async def test_taken_batches_are_counted() -> None:
    async def readings(request):
        return JSONResponse({"accepted": 2, "duplicates": 0, "rejected": []}, status_code=202)

    app = Starlette(routes=[Route("/api/v1/readings", readings, methods=["POST"])])
    sent = []
    async with served(app) as url:
        result = await _post_all(url, "k", [b"[]", b"[]"], 2, sent.append, give_up_s=5)
    assert sent == [2, 2] and result == {"refused": 0}
