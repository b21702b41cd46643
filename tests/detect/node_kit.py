"""A live node fed by hand, a step of the test's clock at a time: every device reporting
(or all but some), detection ticked after each step, and the alerts filed before looking."""

from __future__ import annotations


import msgspec

STEP_S = 30.0


async def post_all(live, client, clock, but: set[str] = frozenset()) -> None:
    # Levels that move (a meter frozen on one value is a fault of its own: stuck_noise).
    rows = [{"device_id": d.id, "ts": clock.now, "value": 45.0 + (i + clock.now / STEP_S) % 5}
            for i, d in enumerate(live.node.registry.devices) if d.id not in but]
    answer = await client.post("/api/v1/readings", content=msgspec.json.encode(rows))
    assert answer.status_code == 202, answer.text
    assert await live.node.detect.caught_up()
    await live.node.detect.tick()


async def settled(live) -> None:
    """Until the alerts published so far are filed (the in-process bus delivers them to the
    intake in the background)."""
    assert await live.node.act.intake.caught_up()


async def listing(client, path: str, **params) -> list[dict]:
    answer = await client.get(path, params={"limit": 1000, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]
