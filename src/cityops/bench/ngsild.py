"""`cityops bench ngsild`: a city's noise meters as NGSI-LD `NoiseLevelObserved` entities.

A node serves a city of N noise meters (40,000 by default) from its own process. Its
subscribers are M subscriptions (1,000), each on its own slice of the entities, notifying a
receiver this benchmark runs in a second process. Then:

1. throughput: R rounds in which every entity gets a new `LAeq` through
   `POST /ngsi-ld/v1/entityOperations/upsert`, sent as fast as the node takes them (detection
   on: each update is a reading through validation, the WAL and the scenario rules);
2. notification latency: rounds sent at a steady pace well under that rate, so that what is
   timed is the path from an upsert to its notification rather than a queue the sender
   filled; each notified (entity, observedAt) is matched with the send time of the upsert
   that carried it (both processes read CLOCK_MONOTONIC, which is system-wide);
3. queries by type, by q and by georel on the updated entities, timed one at a time.

The limit measured in the same run is decoding and expanding the same upsert bodies
in-process (`expand_limit_per_s`): what the node could do if HTTP, the WAL and detection cost
nothing. The bars are the issue's: at least 50,000 entity updates/s, notification p99 under
100 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np

from cityops.bench.ingest import detect_stats
from cityops.bench.server import BenchNode, asgi_body, free_port
from cityops.ngsild import PREFIX
from cityops.packs.grid import generate

TYPE = "NoiseLevelObserved"
ATTR = "LAeq"
UPDATES_BAR_PER_S = 50_000
NOTIFY_P99_BAR_MS = 100.0
QUERY_KINDS = ("type", "q", "georel")


def entity_id(device_id: str) -> str:
    return f"urn:ngsi-ld:{TYPE}:{device_id}"


def iso(seconds: float) -> str:
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + "Z"


def make_round(ids: list[str], values: np.ndarray, observed_at: str, batch: int
               ) -> list[tuple[list[str], bytes]]:
    """One round's upsert bodies: (the entity ids each carries, the body)."""
    encoder = msgspec.json.Encoder()
    out = []
    for first in range(0, len(ids), batch):
        chunk = ids[first:first + batch]
        body = [{"id": i, "type": TYPE,
                 ATTR: {"type": "Property", "value": v, "observedAt": observed_at}}
                for i, v in zip(chunk, values[first:first + batch].tolist())]
        out.append((chunk, encoder.encode(body)))
    return out


def expand_limit(bodies: list[bytes], context_url: str) -> float:
    """Entities per second decoded and expanded in-process: the node's own cost of reading an
    upsert, without HTTP, the WAL or detection."""
    from cityops.ngsild.contexts import resolve
    from cityops.ngsild.entity import expand_entity

    terms = resolve(context_url)
    started = time.perf_counter()
    count = 0
    for body in bodies:
        for doc in msgspec.json.decode(body):
            expand_entity(doc, terms)
            count += 1
    return count / (time.perf_counter() - started)


# -- the receiver (its own process) ---------------------------------------------------------


RECEIVED_BODY = 16 << 20  # a notification's body; the node sends far smaller ones


class _Received(msgspec.Struct):
    at_ns: list[int]
    ids: list[str]
    observed: list[str]


def _receiver_main(port: int, ready: Any) -> None:
    """A bare ASGI app under uvicorn: each notification's entities are noted with the time it
    arrived; `GET /count` and `GET /received` let the benchmark read them back."""
    import uvicorn

    got = _Received([], [], [])
    decoder = msgspec.json.Decoder()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                    ready.set()
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = await asgi_body(receive, RECEIVED_BODY)
        at = time.monotonic_ns()
        answer = b""
        if scope["method"] == "POST":
            with contextlib.suppress(msgspec.DecodeError):
                _note(decoder.decode(body), at, got)
        elif scope["path"] == "/count":
            answer = str(len(got.ids)).encode()
        elif scope["path"] == "/received":
            answer = msgspec.json.encode(got)
        await send({"type": "http.response.start", "status": 200 if answer else 204,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                lifespan="on")


def _note(notification: Any, at: int, got: _Received) -> None:
    if not isinstance(notification, dict):
        return
    for entity in notification.get("data") or ():
        if not isinstance(entity, dict):
            continue
        observed = _observed_at(entity)
        if observed is not None:
            got.at_ns.append(at)
            got.ids.append(str(entity.get("id")))
            got.observed.append(observed)


def _observed_at(entity: dict[str, Any]) -> str | None:
    """The notified LAeq's observedAt, under whichever name the context compacted it to."""
    for key, value in entity.items():
        if key in ("id", "type", "@context"):
            continue
        for instance in value if isinstance(value, list) else [value]:
            if isinstance(instance, dict) and isinstance(instance.get("observedAt"), str):
                return str(instance["observedAt"])
    return None


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        context = multiprocessing.get_context("spawn")
        self._ready = context.Event()
        self._proc = context.Process(target=_receiver_main, args=(self.port, self._ready),
                                     daemon=True)

    def start(self) -> None:
        self._proc.start()
        if not self._ready.wait(60):
            raise RuntimeError("the notification receiver did not start")

    def count(self) -> int:
        return int(httpx.get(self.url + "/count", timeout=30).text or 0)

    def received(self) -> _Received:
        return msgspec.json.decode(httpx.get(self.url + "/received", timeout=300).content,
                                   type=_Received)

    def stop(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(30)


# -- the run ---------------------------------------------------------------------------------


class Sender:
    """Upserts over a pool of connections; notes when each body was sent."""

    def __init__(self, url: str, key: str, context_url: str, concurrency: int) -> None:
        link = f'<{context_url}>; rel="http://www.w3.org/ns/json-ld#context"; ' \
               'type="application/ld+json"'
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                        "Link": link}
        self.url = url
        self.concurrency = concurrency
        self.sent_ns: dict[tuple[str, str], int] = {}
        self.failed: dict[str, int] = {}
        self.errors: list[str] = []
        self.retried = 0
        self.started_ns = 0  # when the last `send` began (CLOCK_MONOTONIC, as the receiver's)

    async def send(self, bodies: list[tuple[list[str], bytes, str]], progress,
                   pace_per_s: float | None = None) -> tuple[int, float]:
        """Send every body; with `pace_per_s`, body k leaves no sooner than its entities'
        share of the pace says. Answers (entities upserted, seconds)."""
        queue: asyncio.Queue[tuple[int, list[str], bytes, str]] = asyncio.Queue()
        for k, (ids, body, observed) in enumerate(bodies):
            queue.put_nowait((k, ids, body, observed))
        per_body = len(bodies[0][0]) if bodies else 1
        limits = httpx.Limits(max_connections=self.concurrency,
                              max_keepalive_connections=self.concurrency)
        done = 0
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, limits=limits,
                                     timeout=300.0) as client:
            started = time.monotonic()
            self.started_ns = time.monotonic_ns()

            async def worker() -> None:
                nonlocal done
                while not queue.empty():
                    k, ids, body, observed = queue.get_nowait()
                    if pace_per_s:
                        wait = started + k * per_body / pace_per_s - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                    while True:
                        at = time.monotonic_ns()
                        r = await client.post(f"{PREFIX}/entityOperations/upsert",
                                              content=body)
                        if r.status_code in (429, 503):
                            self.retried += 1
                            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                            continue
                        break
                    for i in ids:
                        self.sent_ns[(i, observed)] = at
                    ok = len(ids)
                    if r.status_code == 207:
                        errors = r.json().get("errors") or []
                        ok -= len(errors)
                        for e in errors[:3]:
                            self._fail(str(e))
                    elif r.status_code not in (200, 201, 204):
                        ok = 0
                        self._fail(f"{r.status_code} {r.text[:300]}")
                    done += ok
                    progress(len(ids))

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
            elapsed = time.monotonic() - started
        return done, elapsed

    def _fail(self, what: str) -> None:
        self.failed[what[:80]] = self.failed.get(what[:80], 0) + 1
        if len(self.errors) < 5:
            self.errors.append(what)


def _subscription(n: int, ids: list[str], endpoint: str) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Subscription:bench-{n}", "type": "Subscription",
            "entities": [{"id": i, "type": TYPE} for i in ids],
            "watchedAttributes": [ATTR],
            "notification": {"attributes": [ATTR], "format": "normalized",
                             "endpoint": {"uri": endpoint, "accept": "application/json"}}}


async def _subscribe(url: str, headers: dict[str, str], subs: list[dict[str, Any]]) -> int:
    made = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        sem = asyncio.Semaphore(8)

        async def one(body: dict[str, Any]) -> None:
            nonlocal made
            async with sem:
                r = await client.post(f"{PREFIX}/subscriptions", json=body)
                if r.status_code == 201:
                    made += 1
                else:
                    raise RuntimeError(f"subscription refused: {r.status_code} {r.text[:300]}")

        await asyncio.gather(*(one(s) for s in subs))
    return made


async def _queries(url: str, headers: dict[str, str], points: list[tuple[float, float]],
                   per_kind: int, rng: np.random.Generator) -> dict[str, list[float]]:
    """Each kind of query `per_kind` times, one at a time, in milliseconds."""
    times: dict[str, list[float]] = {k: [] for k in QUERY_KINDS}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        for i in range(per_kind):
            for kind in QUERY_KINDS:
                params: dict[str, Any] = {"type": TYPE, "limit": 100}
                if kind == "q":
                    params["q"] = f"{ATTR}>{int(rng.integers(60, 80))}"
                elif kind == "georel":
                    lat, lon = points[int(rng.integers(len(points)))]
                    params.update(georel="near;maxDistance==500", geometry="Point",
                                  coordinates=f"[{lon},{lat}]")
                else:
                    params["offset"] = int(rng.integers(0, 100)) * 100
                started = time.perf_counter()
                r = await client.get(f"{PREFIX}/entities", params=params)
                took = (time.perf_counter() - started) * 1000
                if r.status_code != 200:
                    raise RuntimeError(f"query {kind} answered {r.status_code}: {r.text[:300]}")
                if i:  # the first of each kind warms caches (contexts, DuckDB, page cache)
                    times[kind].append(took)
    return times


def _latencies(sender: Sender, got: _Received, since: set[str]) -> tuple[np.ndarray, int]:
    """Milliseconds from each upsert to the notification of each of its entities, for the
    rounds stamped `since`; and how many notified updates were not matched."""
    out = []
    unmatched = 0
    for at, i, observed in zip(got.at_ns, got.ids, got.observed):
        if observed not in since:
            continue
        sent = sender.sent_ns.get((i, observed))
        if sent is None:
            unmatched += 1
        else:
            out.append((at - sent) / 1e6)
    return np.asarray(out, float), unmatched


def _drain(receiver: Receiver, expected: int, settle_s: float) -> int:
    """Wait until `expected` notices are in, or none has come for 5 s (superseded notices
    never come), or `settle_s` has passed; answer how many came."""
    deadline = time.monotonic() + settle_s
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = receiver.count()
        if count >= expected:
            return count
        if count != last:
            last, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since > 5.0:
            break
        time.sleep(0.2)
    return max(last, 0)


def _p(values: np.ndarray | list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def run(*, entities: int = 40_000, rounds: int = 5, paced_rounds: int = 3,
        pace_per_s: float = 10_000.0, batch: int = 1_000, concurrency: int = 8,
        subscriptions: int = 1_000, queries: int = 50, store: str | None = None,
        workdir: Path | None = None, settle_s: float = 60.0,
        progress: Callable[[int], None] = lambda n: None,
        note: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    root = Path(workdir or tempfile.mkdtemp(prefix="cityops-bench-ngsild-"))
    try:
        out = _run(root, entities=entities, rounds=rounds, paced_rounds=paced_rounds,
                   pace_per_s=pace_per_s, batch=batch, concurrency=concurrency,
                   subscriptions=subscriptions, queries=queries, store=store,
                   settle_s=settle_s, progress=progress, note=note)
    except BaseException:
        if workdir is None:
            print(f"the run's files are kept in {root}", file=sys.stderr)
        raise
    if workdir is None:  # a run's WAL and store are tens of megabytes
        shutil.rmtree(root, ignore_errors=True)
    return out


def _run(root: Path, *, entities: int, rounds: int, paced_rounds: int, pace_per_s: float,
         batch: int, concurrency: int, subscriptions: int, queries: int, store: str | None,
         settle_s: float, progress: Callable[[int], None], note: Callable[[str], None]
         ) -> dict[str, Any]:
    from cityops.ngsild.contexts import DEFAULT_CONTEXT_URL

    pack = generate(towns=6, villages=6, devices={"noise": entities})
    devices = [d for d in pack.devices if d.kind == "noise"]
    ids = [entity_id(d.id) for d in devices]
    points = [(d.lat, d.lon) for d in devices]
    node = BenchNode(root, pack, store)
    rng = np.random.default_rng(11)
    # Rounds are stamped a second apart, ending a little before now: readings from the future
    # are refused, and each round's observedAt tells its notifications apart.
    total = rounds + paced_rounds
    first_s = float(int(time.time()) - total - 30)
    stamps = [iso(first_s + r) for r in range(total)]
    note("encoding the upserts")
    encoded = []
    for r in range(total):
        values = np.round(rng.normal(55.0, 8.0, len(ids)).clip(30, 110), 1)
        encoded.append([(chunk, body, stamps[r])
                        for chunk, body in make_round(ids, values, stamps[r], batch)])
    server = node.server
    receiver = Receiver()
    note("starting the receiver and the node")
    receiver.start()
    server.start()
    try:
        context_url = server.url + DEFAULT_CONTEXT_URL
        note("measuring the in-process expand limit")
        limit = expand_limit([body for _, body, _ in encoded[0][:20]], context_url)
        note(f"making {subscriptions:,} subscriptions")
        per_sub = max(1, len(ids) // max(1, subscriptions))
        subs = [_subscription(n, ids[n * per_sub:(n + 1) * per_sub], receiver.url + "/notify")
                for n in range(subscriptions)]
        admin = {**node.admin, "Link": f'<{context_url}>; rel="http://www.w3.org/ns/json-ld'
                                      '#context"; type="application/ld+json"'}
        made = asyncio.run(_subscribe(server.url, admin, subs))
        sender = Sender(server.url, node.device_key, context_url, concurrency)
        note("upserting at full speed")
        flat = [b for r in range(rounds) for b in encoded[r]]
        updated, elapsed = asyncio.run(sender.send(flat, progress))
        full_started_ns = sender.started_ns
        # The paced rounds time the path from an upsert to its notice, not the backlog the
        # full-speed rounds left: they start once the notifier has caught up.
        note("waiting for the notifier to catch up")
        _drain(receiver, per_sub * min(subscriptions, len(ids)) * rounds, settle_s)
        note("upserting at a steady pace")
        paced = [b for r in range(rounds, total) for b in encoded[r]]
        paced_updated, paced_elapsed = asyncio.run(sender.send(paced, progress, pace_per_s))
        note("waiting for the last notifications")
        covered = per_sub * min(subscriptions, len(ids))
        expected = covered * total
        _drain(receiver, expected, settle_s)
        got = receiver.received()
        note("querying")
        query_ms = asyncio.run(_queries(server.url, admin, points, queries, rng))
        detect = detect_stats(server.url, node.admin)
        stored = httpx.get(server.url + "/api/v1/history/count", timeout=600,
                           headers=node.admin).json().get("readings")
    finally:
        server.stop()
        receiver.stop()
    saturated, _ = _latencies(sender, got, set(stamps[:rounds]))
    full_stamps = set(stamps[:rounds])
    full_speed = sum(1 for o in got.observed if o in full_stamps)
    # The upserts are acknowledged once stored and detected; matching and notifying follow.
    # Until the last notice of the full-speed rounds is out, the node is still working on them.
    last_notice_ns = max((at for at, o in zip(got.at_ns, got.observed) if o in full_stamps),
                         default=None)
    drained_s = (last_notice_ns - full_started_ns) / 1e9 if last_notice_ns else None
    steady, unmatched = _latencies(sender, got, set(stamps[rounds:]))
    all_queries = [t for kind in QUERY_KINDS for t in query_ms[kind]]
    rate = updated / elapsed if elapsed else 0.0
    notify_p99 = _p(steady, 99)
    bars = {
        "entity_updates_per_s_at_least_50000": rate >= UPDATES_BAR_PER_S,
        "notification_p99_under_100_ms": notify_p99 is not None
        and notify_p99 < NOTIFY_P99_BAR_MS,
    }
    return {
        "entity_updates_per_s": round(rate),
        "query_p99_ms": _p(all_queries, 99),
        "notification_latency_p99_ms": notify_p99,
        "notification_latency_p50_ms": _p(steady, 50),
        "notification_latency_p99_ms_at_full_speed": _p(saturated, 99),
        "expand_limit_per_s": round(limit),
        "ratio_to_limit": round(rate / limit, 3) if limit else None,
        **{f"query_{kind}_p50_ms": _p(query_ms[kind], 50) for kind in QUERY_KINDS},
        **{f"query_{kind}_p99_ms": _p(query_ms[kind], 99) for kind in QUERY_KINDS},
        "entities": len(ids),
        "rounds": rounds,
        "updated": updated,
        "seconds": round(elapsed, 2),
        # Updates per second counted up to the last notification of the full-speed rounds.
        "entity_updates_per_s_notified": round(updated / drained_s) if drained_s else None,
        "seconds_to_last_notification": round(drained_s, 2) if drained_s else None,
        "paced_rounds": paced_rounds,
        "paced_per_s": pace_per_s,
        "paced_updated": paced_updated,
        "paced_seconds": round(paced_elapsed, 2),
        "subscriptions": made,
        "notified_expected": expected,
        "notified": len(got.ids),
        # At full speed a subscription's pending notice of an entity is replaced by a newer
        # one (the notifier keeps the newest state per entity): fewer notices, none stale.
        "notified_at_full_speed": full_speed,
        "superseded_at_full_speed": covered * rounds - full_speed,
        "notified_steady_matched": len(steady),
        "notified_unmatched": unmatched,
        "failed": sum(sender.failed.values()),
        "failures": sender.errors,
        "retried": sender.retried,
        "stored": stored,
        "detect_rules": detect.get("rules"),
        "detect_rows": detect.get("rows"),
        "batch": batch,
        "concurrency": concurrency,
        "store": node.store_url.split(":")[0],
        "bars": {"entity_updates_per_s": UPDATES_BAR_PER_S,
                 "notification_latency_p99_ms": NOTIFY_P99_BAR_MS},
        "met": bars,
        "ok": all(bars.values()),
    }
