"""`cityops bench ingest`: readings per second stored durably by one node over loopback.

The limit in the same run is msgspec decoding + validating the very same batches in-process:
what the node could do if HTTP, the WAL and fsync cost nothing.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import msgspec
import numpy as np

from cityops.bench.server import BenchNode
from cityops.domain.registry import DeviceRegistry
from cityops.ingest.decode import decode_array
from cityops.ingest.validate import to_batch
from cityops.packs.grid import generate


class Payload(msgspec.Struct):
    device_id: str
    ts: float
    value: float


def make_batches(devices: list[str], readings: int, batch: int, start: float) -> list[bytes]:
    """Each device reports once a second; batches hold consecutive readings of many devices."""
    rng = np.random.default_rng(7)
    encoder = msgspec.json.Encoder()
    values = np.round(rng.normal(55.0, 8.0, readings).clip(20, 120), 1).tolist()
    n = len(devices)
    out = []
    for first in range(0, readings, batch):
        rows = range(first, min(first + batch, readings))
        out.append(encoder.encode([Payload(devices[i % n], start + i // n, values[i])
                                   for i in rows]))
    return out


def decode_limit(payloads: list[bytes], registry: DeviceRegistry, now_us: int) -> float:
    started = time.perf_counter()
    count = 0
    for body in payloads:
        good, _ = decode_array(body)
        batch, _, _ = to_batch(good, registry, now_us)
        count += len(batch)
    return count / (time.perf_counter() - started)


async def _send(url: str, key: str, payloads: list[bytes], concurrency: int, progress):
    latencies: list[float] = []
    rejected = 0
    retried = 0
    accepted = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=120.0) as client:

        async def worker():
            nonlocal rejected, retried, accepted
            while not queue.empty():
                body = queue.get_nowait()
                while True:
                    started = time.perf_counter()
                    r = await client.post("/api/v1/readings", content=body)
                    if r.status_code in (429, 503):
                        retried += 1
                        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                        continue
                    r.raise_for_status()
                    latencies.append(time.perf_counter() - started)
                    result = r.json()
                    rejected += len(result["rejected"])
                    accepted += result["accepted"]
                    progress(result["accepted"])
                    break

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, rejected, retried, accepted


def run(*, readings: int, batch: int, concurrency: int, devices: int, store: str | None,
        workdir: Path | None, progress=lambda n: None, note=lambda s: None) -> dict:
    root = Path(workdir or tempfile.mkdtemp(prefix="cityops-bench-"))
    pack = generate(towns=6, villages=6, devices={"noise": devices})
    node = BenchNode(root, pack, store)
    start_ts = float(int(time.time()) - readings // devices - 60)
    note("encoding batches")
    payloads = make_batches([d.id for d in pack.devices], readings, batch, start_ts)
    note("measuring the in-process decode + validate limit")
    registry = DeviceRegistry(pack.kinds)
    registry.add(pack.devices)
    limit = decode_limit(payloads, registry, int(time.time() * 1e6))
    note("starting the node")
    server = node.server
    server.start()
    try:
        note("sending")
        elapsed, latencies, rejected, retried, accepted = asyncio.run(
            _send(server.url, node.device_key, payloads, concurrency, progress))
        note("counting back from the store")
        admin = node.admin
        count = httpx.get(server.url + "/api/v1/history/count", timeout=600,
                          headers=admin).json()
        detect = detect_stats(server.url, admin)
    finally:
        server.stop()
    lat = np.array(latencies) * 1000
    rate = accepted / elapsed
    return {
        "readings_per_s": round(rate),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "decode_limit_per_s": round(limit),
        "ratio_to_limit": round(rate / limit, 3),
        "rejected": rejected,
        "stored": count["readings"],
        "sent": readings,
        "retried": retried,
        "batch": batch,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "store": node.store_url.split(":")[0],
        # Detection ran on the same node: every stored row went through every active pack.
        "detect_rules": detect.get("rules"),
        "detect_rows": detect.get("rows"),
    }


def detect_stats(url: str, headers: dict, timeout: float = 60.0) -> dict:
    """The engine's counters once it has caught up with what was stored."""
    deadline = time.monotonic() + timeout
    stats: dict = {}
    while time.monotonic() < deadline:
        r = httpx.get(url + "/api/v1/detect/stats", headers=headers, timeout=30)
        if r.status_code != 200:
            return {}
        stats = r.json()
        if stats.get("backlog", 0) == 0:
            break
        time.sleep(0.2)
    return stats
