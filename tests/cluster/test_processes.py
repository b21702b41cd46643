"""An ingest node, two detect workers and an act node, each a `cityops serve` process, over
the real JetStream and PostgreSQL: every reading acknowledged by ingest is detected by the
worker owning its device, every alert becomes exactly one incident, and a detect worker
killed with SIGKILL in the middle of the run and started again loses nothing and makes
nothing twice."""

from __future__ import annotations

import asyncio
import collections
import signal
import threading
import time

import httpx
import msgspec
import pytest

from cityops.store.base import open_store

from .conftest import client, consumer_backlog, start_all, wait_drained

pytestmark = pytest.mark.services

DEVICES = [f"noise-{i:06d}" for i in range(40)]
PER_BATCH = 25  # timestamps per request: 25 x 40 devices = 1,000 readings
SPELL = 7  # seconds of loud, then as many of quiet; each device starts at its own phase
BATCHES = 40


def loud(device: int, j: int) -> bool:
    return ((j + 3 * device) // SPELL) % 2 == 0


def spell_starts(device: int, sent: int) -> set[int]:
    """Seconds (from T0) at which a loud spell of `device` begins, among the first `sent`."""
    return {j for j in range(sent) if loud(device, j) and (j == 0 or not loud(device, j - 1))}


class Sender(threading.Thread):
    """Posts the batches in order, each again until ingest acknowledges it (202)."""

    def __init__(self, url: str, key: str, t0: float, batches: int) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.t0, self.batches = url, key, t0, batches
        self.sent = 0  # batches acknowledged
        self.refused = collections.Counter()
        self.error: str | None = None
        self.pause = threading.Event()
        self.pause.set()

    def run(self) -> None:
        with client(self.url, self.key) as c:
            for b in range(self.batches):
                self.pause.wait()
                rows = []
                for k in range(PER_BATCH):
                    j = b * PER_BATCH + k
                    for i, device in enumerate(DEVICES):
                        rows.append({"device_id": device, "ts": self.t0 + j,
                                     "value": 90.0 if loud(i, j) else 40.0 + i % 7})
                body = msgspec.json.encode(rows)
                while True:
                    try:
                        r = c.post("/api/v1/readings", content=body)
                    except httpx.HTTPError as exc:
                        self.refused[type(exc).__name__] += 1
                        time.sleep(0.2)
                        continue
                    if r.status_code == 202:
                        assert not r.json()["rejected"]
                        break
                    if r.status_code not in (429, 503):
                        self.error = f"{r.status_code} {r.text[:300]}"
                        return
                    self.refused[r.status_code] += 1
                    time.sleep(float(r.headers.get("Retry-After", "1")) / 4)
                self.sent = b + 1
                time.sleep(0.05)  # a steady flow, so that the kill lands in the middle of it


async def alerts_and_cases(store_url: str) -> tuple[list, dict[str, str | None], int]:
    store = open_store(store_url)
    await store.open()
    try:
        alerts = [a for a in await store.list_alerts(limit=100_000)
                  if a.rule == "loud.over_80"]
        cases = {a.id: await store.incident_of_report(f"alert:{a.id}") for a in alerts}
        async with store._connection() as conn:  # noqa: SLF001 — a plain count
            cur = await conn.execute(f"SELECT count(*) FROM {store._schema_quoted}.incidents")
            (incidents,) = await cur.fetchone()
        return alerts, cases, incidents
    finally:
        await store.close()


@pytest.mark.timeout(240)
def test_two_detect_workers_one_killed_and_restarted_lose_nothing_and_duplicate_nothing(cluster):
    ingest = cluster.process("ingest", "ingest")
    detect = [cluster.process(f"detect{w}", "detect", worker=w, workers=2) for w in (0, 1)]
    act = cluster.process("act", "act")
    start_all([ingest, *detect, act], timeout=120.0)

    t0 = float(int(time.time()) - 2 * 3600)
    sender = Sender(ingest.url, cluster.device_key, t0, BATCHES)
    sender.start()
    while sender.sent < BATCHES // 3 and sender.is_alive():
        time.sleep(0.01)
    detect[1].proc.send_signal(signal.SIGKILL)  # mid-run: no goodbye, no acks, no close
    detect[1].proc.wait()
    killed_at = sender.sent
    time.sleep(1.0)  # readings of its partitions pile up in the stream meanwhile
    detect[1].start()
    sender.join(120)
    assert not sender.is_alive() and sender.error is None, sender.error
    assert sender.sent == BATCHES and killed_at < BATCHES

    asyncio.run(wait_drained(cluster.bus_url, cluster.stream, "detect", "readings", 8, 60))
    sent = BATCHES * PER_BATCH
    expected = {(d, t0 + j) for i, d in enumerate(DEVICES) for j in spell_starts(i, sent)}
    deadline = time.monotonic() + 60
    while True:
        alerts, cases, incidents = asyncio.run(alerts_and_cases(cluster.store_url))
        if len(alerts) >= len(expected) and all(cases.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    got = collections.Counter((a.subject, round(a.first_seen, 3)) for a in alerts)
    want = {(d, round(t, 3)) for d, t in expected}
    lost = want - set(got)
    extra = {k: n for k, n in got.items() if k not in want or n > 1}
    around = sorted((a.subject, a.first_seen - t0, a.last_seen - t0, a.active) for a in alerts
                    if a.subject in {d for d, _ in lost})
    assert not lost, (f"{len(lost)} loud spells without an alert, e.g. "
                      f"{[(d, t - t0) for d, t in sorted(lost)[:5]]}; that device's alerts "
                      f"(first, last seen from T0): {around[:30]}")
    assert not extra, f"alerts that are not one per loud spell: {list(extra.items())[:5]}"
    # Every alert is exactly one case (its report key is unique; merging is off here).
    assert all(cases.values())
    assert len(set(cases.values())) == len(alerts) == incidents

    # Both workers evaluated their shares, and the restarted one picked up where the killed
    # one stopped: the group has nothing left undelivered or unacknowledged.
    pending, unacked = asyncio.run(consumer_backlog(cluster.bus_url, cluster.stream, "detect",
                                                    "readings", 8))
    assert (pending, unacked) == (0, 0)
    with client(detect[0].url, cluster.admin_key) as c0, \
            client(detect[1].url, cluster.admin_key) as c1:
        rows = [c.get("/api/v1/detect/stats").json()["rows"] for c in (c0, c1)]
    assert rows[0] > 0 and rows[1] > 0
