"""Fair share of a node between keys: a token bucket and an in-flight cap per key, and a brake
on failed authentication per source address. One key, however busy or hostile, can slow only
itself; the others keep their share.

Refusals are 429 with Retry-After, counted in /metrics by reason. The clock is injectable so
tests drive the buckets without sleeping.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from cityops.api.errors import ApiError
from cityops.domain.access import Principal

if TYPE_CHECKING:
    from cityops.api.route import Endpoint


@dataclass(frozen=True)
class Limits:
    rate: float = 200.0  # requests a second per key, sustained
    burst: float = 400.0  # requests a key may send at once after a quiet spell
    in_flight: int = 32  # requests of one key being handled at once
    public_rate: float = 50.0  # per source address, on routes that take no key
    public_burst: float = 100.0
    auth_failures: int = 20  # failed authentications per source address ...
    auth_window_s: float = 60.0  # ... within this long before it must wait
    tracked: int = 50_000  # keys and addresses remembered (least recently seen go first)


class _Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class _Lru(OrderedDict[str, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def touch(self, key: str, make: Callable[[], Any]) -> Any:
        found = self.get(key)
        if found is None:
            found = self[key] = make()
            if len(self) > self.size:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return found


def _too_many(what: str, wait: float) -> ApiError:
    return ApiError(429, f"too many requests: {what}",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))})


class FairShare:
    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic,
                 count: Callable[[str], None] | None = None) -> None:
        self.limits = limits or Limits()
        self.clock = clock
        self.count = count or (lambda reason: None)
        self._buckets = _Lru(self.limits.tracked)
        self._in_flight: dict[str, int] = {}
        self._failures = _Lru(self.limits.tracked)

    # -- per key (or per address on public routes) ------------------------------------------

    def take(self, who: str, rate: float, burst: float) -> None:
        now = self.clock()
        bucket = self._buckets.touch(who, lambda: _Bucket(burst, now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            self.count("rate")
            raise _too_many(f"{who.split(':')[0]} over {rate:g} a second",
                            (1.0 - bucket.tokens) / rate)
        bucket.tokens -= 1.0

    @contextlib.contextmanager
    def hold(self, who: str) -> Iterator[None]:
        held = self._in_flight.get(who, 0)
        if held >= self.limits.in_flight:
            self.count("in_flight")
            raise _too_many(f"this key has {held} requests in progress", 1.0)
        self._in_flight[who] = held + 1
        try:
            yield
        finally:
            left = self._in_flight[who] - 1
            if left:
                self._in_flight[who] = left
            else:
                del self._in_flight[who]

    # -- failed authentication per address ---------------------------------------------------

    def check_source(self, source: str) -> None:
        """429 while `source` has failed authentication too often within the window."""
        seen = self._failures.get(source)
        if seen is None:
            return
        now = self.clock()
        window = self.limits.auth_window_s
        recent = [t for t in seen if now - t < window]
        self._failures[source] = recent
        if len(recent) >= self.limits.auth_failures:
            self.count("auth")
            raise _too_many("too many failed authentications from this address",
                            window - (now - recent[0]))

    def failed(self, source: str) -> None:
        seen = self._failures.touch(source, list)
        seen.append(self.clock())
        del seen[:-self.limits.auth_failures]


def charge_key(request: Request, who: Principal) -> None:
    """Charge a key found by a handler itself (see `Endpoint.own_key`) to its bucket."""
    share = share_of(request)
    if share is not None:
        share.take("key:" + who.key_id, share.limits.rate, share.limits.burst)


def source_of(request: Request) -> str:
    return request.client.host if request.client else "?"


def share_of(request: Request) -> FairShare | None:
    return getattr(request.app.state, "fairshare", None)


@contextlib.asynccontextmanager
async def admit(request: Request, who: Principal | None, endpoint: Endpoint
                ) -> AsyncIterator[None]:
    share = share_of(request)
    if share is None:
        yield
        return
    limits = share.limits
    if who is None:
        if not endpoint.own_key:
            share.take("addr:" + source_of(request), limits.public_rate, limits.public_burst)
        yield
        return
    share.take("key:" + who.key_id, limits.rate, limits.burst)
    with share.hold(who.key_id):
        yield
