"""The bench's loopback helpers."""

from __future__ import annotations

import pytest

from cityops.bench.server import asgi_body


def _receive(*chunks: bytes):
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]

    async def receive():
        return messages.pop(0)

    return receive


async def test_asgi_body_joins_the_chunks():
    assert await asgi_body(_receive(b'{"a"', b": 1", b"}"), 100) == b'{"a": 1}'
    assert await asgi_body(_receive(b""), 100) == b""


async def test_asgi_body_stops_past_its_limit():
    with pytest.raises(ValueError, match="over 4 bytes"):
        await asgi_body(_receive(b"abc", b"de", b"never read"), 4)
