"""Fair share between keys: a token bucket and an in-flight cap per key, and a brake on failed
authentication per address. Driven by a hand-set clock; nothing here waits on time."""

from __future__ import annotations

import pytest

from cityops.api.errors import ApiError
from cityops.api.fairshare import FairShare, Limits
from tests.clock_kit import Clock


def test_a_key_over_its_rate_waits_and_others_do_not() -> None:
    clock = Clock(1000.0)
    share = FairShare(Limits(rate=10, burst=5), clock=clock)
    for _ in range(5):
        share.take("key:a", 10, 5)
    with pytest.raises(ApiError) as refused:
        share.take("key:a", 10, 5)
    assert refused.value.status == 429
    assert refused.value.headers["Retry-After"] == "1"
    share.take("key:b", 10, 5)  # another key keeps its share
    clock.now += 0.1  # one token back at 10 a second
    share.take("key:a", 10, 5)
    with pytest.raises(ApiError):
        share.take("key:a", 10, 5)


def test_in_flight_cap_is_per_key_and_released() -> None:
    share = FairShare(Limits(in_flight=2))
    with share.hold("a"), share.hold("a"):
        with pytest.raises(ApiError) as refused, share.hold("a"):
            pass
        assert refused.value.status == 429
        with share.hold("b"):
            pass
    with share.hold("a"), share.hold("a"):
        pass


def test_failed_authentication_is_braked_per_address() -> None:
    clock = Clock(50.0)
    share = FairShare(Limits(auth_failures=3, auth_window_s=60), clock=clock)
    for _ in range(3):
        share.check_source("10.0.0.1")
        share.failed("10.0.0.1")
    with pytest.raises(ApiError) as refused:
        share.check_source("10.0.0.1")
    assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) == 60
    share.check_source("10.0.0.2")
    clock.now += 61
    share.check_source("10.0.0.1")


async def test_node_brakes_key_guessing_but_not_good_keys(tmp_path, grid_pack, live_node) -> None:
    async with live_node(grid_pack, tmp_path / "d", auth_failures_per_min=5) as live:
        good = await live.key("operator")
        async with live.client("co_guess") as guesser:
            codes = [(await guesser.get("/api/v1/areas")).status_code for _ in range(7)]
        assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
        metrics_reader = live.client(good)
        # The same address with a good key is braked too: the brake is per address, taken
        # before the key is looked at, so guessing cannot be interleaved with good calls.
        assert (await metrics_reader.get("/api/v1/me")).status_code == 429


async def test_one_key_at_its_rate_does_not_starve_another(tmp_path, grid_pack,
                                                           live_node) -> None:
    async with live_node(grid_pack, tmp_path / "d", rate_per_key=0.001,
                         burst_per_key=3) as live:
        busy, quiet = await live.key("operator"), await live.key("operator")
        async with live.client(busy) as c:
            codes = [(await c.get("/api/v1/me")).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        async with live.client(quiet) as c:
            assert (await c.get("/api/v1/me")).status_code == 200
        text = live.node.metrics.render().decode()
        assert 'cityops_requests_refused_total{reason="rate"} 2.0' in text


async def test_in_flight_cap_through_the_app(tmp_path, grid_pack, live_node) -> None:
    """A request of a key whose cap is taken by requests still being handled is refused."""
    async with live_node(grid_pack, tmp_path / "d", in_flight_per_key=1) as live:
        key = await live.key("admin")
        key_id = (await live.node.keys.resolve(key)).key_id
        share = live.app.state.fairshare
        async with live.client(key) as c:
            with share.hold(key_id):  # as a request in progress holds it
                r = await c.get("/api/v1/me")
            assert r.status_code == 429 and r.headers["Retry-After"] == "1"
            assert (await c.get("/api/v1/me")).status_code == 200
