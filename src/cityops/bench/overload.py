"""`cityops bench overload`: a node offered more than it can take, and afterwards.

Three phases against one `cityops serve` process:

1. *sustainable*: closed loop (each connection sends its next batch when the last is answered,
   waiting out Retry-After) to find what the node takes;
2. *overload*: `factor` x that rate **open loop**: batches leave on a fixed schedule whatever
   the answers, as a crowd of senders that ignore backpressure would send them. Every answer is
   recorded, and the node's RSS is sampled from /proc every 0.5 s;
3. *recovery*: closed loop again, to see the node back at its sustainable rate.

Every reading is distinct (device, timestamp), so the history count read back at the end must
equal the readings acknowledged with a 202: nothing may be lost, overload or not.

The client is deliberately cheap (hand-written HTTP/1.1 over asyncio streams; bodies are one
template per group of devices with the timestamp spliced in) because it shares the machine's
cores with the node.
"""

from __future__ import annotations

import asyncio
import collections
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import numpy as np

from cityops.bench.server import BenchNode
from cityops.packs.grid import generate

TS = b"@TS@"
REQUEST_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 512  # the open-loop client's own ceiling; batches beyond it are counted
WARMUP_READINGS = 150  # per device, see _phases
KEEP_ALIVE_S = 4.0  # uvicorn closes a connection idle for 5 s; never reuse one that old
RECOVERED_FRACTION = 0.9


class Bodies:
    """Distinct batches on demand: the i-th batch is one group of devices at one second.

    Templates are encoded up front; a batch costs one `bytes.replace` of the timestamp (about
    0.5 ms for 10,000 readings), far less than encoding it would. Each group has `variants`
    templates with other values, taken in turn second by second: a meter repeating one value
    is what `device_health.stuck_noise` exists to catch, and 40,000 stuck meters would be an
    alert storm, not the overload this measures."""

    def __init__(self, devices: list[str], batch: int, first_ts: int, variants: int = 16,
                 seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.templates: list[list[bytes]] = []
        self.sizes: list[int] = []
        for lo in range(0, len(devices), batch):
            ids = [d.encode() for d in devices[lo:lo + batch]]
            variant = []
            for _ in range(variants):
                values = np.round(rng.normal(55.0, 8.0, len(ids)).clip(20, 120), 1)
                rows = [b'{"device_id":"%s","ts":@TS@,"value":%.1f}' % pair
                        for pair in zip(ids, values.tolist())]
                variant.append(b"[" + b",".join(rows) + b"]")
            self.templates.append(variant)
            self.sizes.append(len(ids))
        self.first_ts = first_ts
        self.taken = 0

    def next(self) -> tuple[bytes, int]:
        second, group = divmod(self.taken, len(self.templates))
        self.taken += 1
        ts = self.first_ts + second
        if ts > time.time() - 60:
            raise RuntimeError("ran out of past timestamps; start further back")
        variants = self.templates[group]
        return variants[second % len(variants)].replace(TS, b"%d" % ts), self.sizes[group]


class Connection:
    """One keep-alive HTTP/1.1 connection posting readings; just enough HTTP for uvicorn."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self.head = (f"POST /api/v1/readings HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reusable = False
        self.idle_since = 0.0

    async def post(self, body: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port,
                                                                     limit=1 << 20)
        self.writer.write(self.head % len(body))
        self.writer.write(body)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            data = await self.reader.readexactly(int(headers[b"content-length"]))
            self.reusable = headers.get(b"connection", b"").lower() != b"close"
        else:  # no length: the body runs to the end of the connection
            data = await self.reader.read()
            self.reusable = False
        return status, headers, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
        self.reusable = False


class _Answer(msgspec.Struct):
    accepted: int
    duplicates: int = 0
    rejected: list = []


_answer = msgspec.json.Decoder(_Answer)


@dataclass
class Tally:
    """What one phase sent and what came back."""

    answers: collections.Counter = field(default_factory=collections.Counter)
    retry_after_missing: int = 0
    connection_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    requests: int = 0
    sent_readings: int = 0
    acked: int = 0  # readings in 202 answers (accepted: stored or already stored)
    duplicates: int = 0
    rejected: int = 0
    acked_at: list[tuple[float, int]] = field(default_factory=list)
    events: list[tuple[float, float, int]] = field(default_factory=list)  # sent, answered, status
    retried: int = 0
    not_sent: int = 0  # open loop: the client's own connection ceiling was reached
    late_max: float = 0.0  # open loop: how far behind its schedule the client fell (its CPU)

    def wait_ms(self, statuses: tuple[int, ...], q: float) -> float | None:
        """Percentile `q` of the time from sending a batch to its answer, for these statuses."""
        waits = [at - sent for sent, at, status in self.events if status in statuses]
        return round(float(np.percentile(waits, q)) * 1000, 1) if waits else None

    @property
    def errors(self) -> int:
        """5xx other than 503, and connection errors or timeouts."""
        server = sum(n for status, n in self.answers.items()
                     if status >= 500 and status != 503)
        return server + self.connection_errors

    def record(self, status: int, headers: dict[bytes, bytes], data: bytes, readings: int,
               at: float, sent: float) -> None:
        self.answers[status] += 1
        self.events.append((sent, at, status))
        if status == 202:
            answer = _answer.decode(data)
            self.acked += answer.accepted
            self.duplicates += answer.duplicates
            self.rejected += len(answer.rejected)
            self.acked_at.append((at, answer.accepted))
        elif status in (429, 503):
            if b"retry-after" not in headers:
                self.retry_after_missing += 1
        elif len(self.error_samples) < 5:
            self.error_samples.append(f"{status} {data[:200].decode(errors='replace')}")

    def failed(self, exc: BaseException, sent: float, waited: float) -> None:
        self.connection_errors += 1
        self.events.append((sent, sent + waited, -1))
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{type(exc).__name__}: {exc}"[:200])


CONNECTION_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                     TimeoutError, ValueError, IndexError)


async def closed_loop(host: str, port: int, key: str, bodies: Bodies, seconds: float,
                      concurrency: int, tally: Tally, until_batch: int | None = None) -> float:
    """Each connection sends its next batch once the last is answered; a refused batch is sent
    again after its Retry-After. Stops after `seconds` or once batch `until_batch` has gone.
    Returns the phase's length in seconds (until the last answer)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop_at = started + seconds

    async def worker() -> None:
        conn = Connection(host, port, key)
        try:
            while loop.time() < stop_at and (until_batch is None or bodies.taken < until_batch):
                body, n = bodies.next()
                tally.requests += 1
                tally.sent_readings += n
                while True:
                    sent = loop.time()
                    try:
                        status, headers, data = await asyncio.wait_for(conn.post(body),
                                                                       REQUEST_TIMEOUT_S)
                    except CONNECTION_ERRORS as exc:
                        tally.failed(exc, sent, loop.time() - sent)
                        conn.close()
                        break  # its fate is unknown; the count back shows it if stored
                    tally.record(status, headers, data, n, loop.time(), sent)
                    if not conn.reusable:
                        conn.close()
                    if status in (429, 503):
                        tally.retried += 1
                        await asyncio.sleep(float(headers.get(b"retry-after", b"1")))
                        continue
                    break
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return loop.time() - started


async def open_loop(host: str, port: int, key: str, bodies: Bodies, seconds: float,
                    batches_per_s: float, tally: Tally) -> float:
    """Batches leave every 1/batches_per_s seconds whatever the answers (a late scheduler
    catches up at once); a batch goes on an idle connection or a new one. Returns the phase's
    length in seconds, until the last answer."""
    loop = asyncio.get_running_loop()
    idle: list[Connection] = []
    pending: set[asyncio.Task] = set()
    opened = 0

    async def one(conn: Connection, body: bytes, n: int) -> None:
        nonlocal opened
        sent = loop.time()
        try:
            status, headers, data = await asyncio.wait_for(conn.post(body), REQUEST_TIMEOUT_S)
        except CONNECTION_ERRORS as exc:
            tally.failed(exc, sent, loop.time() - sent)
            conn.close()
            opened -= 1
            return
        tally.record(status, headers, data, n, loop.time(), sent)
        if conn.reusable:
            conn.idle_since = loop.time()
            idle.append(conn)
        else:
            conn.close()
            opened -= 1

    started = loop.time()
    interval = 1.0 / batches_per_s
    i = 0
    while True:
        at = started + i * interval
        if at >= started + seconds:
            break
        i += 1
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            tally.late_max = max(tally.late_max, -delay)
        while idle and loop.time() - idle[0].idle_since > KEEP_ALIVE_S:
            idle.pop(0).close()  # the node may close it any moment now; not a node error
            opened -= 1
        if idle:
            conn = idle.pop()  # the most recently used
        elif opened < MAX_CONNECTIONS:
            conn = Connection(host, port, key)
            opened += 1
        else:
            tally.not_sent += 1
            continue
        body, n = bodies.next()
        tally.requests += 1
        tally.sent_readings += n
        task = asyncio.create_task(one(conn, body, n))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(set(pending))
    for conn in idle:
        conn.close()
    return loop.time() - started


class RssSampler(threading.Thread):
    """VmRSS of one process every `every` seconds, from /proc/<pid>/status."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []  # (monotonic s, MB)
        self._halt = threading.Event()

    def rss_mb(self) -> float | None:
        try:
            with open(f"/proc/{self.pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def run(self) -> None:
        while not self._halt.is_set():
            mb = self.rss_mb()
            if mb is not None:
                self.samples.append((time.monotonic(), mb))
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()



def log_errors(path: Path) -> int:
    """Errors and tracebacks the node logged (its log goes to a file beside its data)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines()
               if " ERROR " in line or line.startswith("Traceback"))


def slow_seconds(tally: Tally, start: float, slower_than: float) -> dict[str, int]:
    """{second of sending: how many batches sent then waited longer than `slower_than`}."""
    out = collections.Counter(int(sent - start) for sent, at, _ in tally.events
                              if at - sent > slower_than)
    return {str(k): n for k, n in sorted(out.items())}


def per_second(tally: Tally, start: float, seconds: float) -> list[int]:
    buckets = [0] * max(1, int(np.ceil(seconds)))
    for at, n in tally.acked_at:
        k = int(at - start)
        if 0 <= k < len(buckets):
            buckets[k] += n
    return buckets


async def _phases(host: str, port: int, key: str, bodies: Bodies, *, warmup: float,
                  measure: float, duration: float, factor: float, recover: float,
                  concurrency: int, note, progress) -> dict:
    loop = asyncio.get_running_loop()
    tallies = {name: Tally() for name in ("warmup", "sustainable", "overload", "recovery")}
    note("warming up")
    # Until every device has sent WARMUP_READINGS: detection's windows turn from exact rows to
    # panes at 128 readings, all devices at once (a one-off pause of seconds), and that
    # belongs to no phase measured here.
    warm_s = await closed_loop(host, port, key, bodies, warmup, concurrency, tallies["warmup"],
                               until_batch=WARMUP_READINGS * len(bodies.sizes))
    progress(int(warm_s))
    note("measuring the sustainable rate (closed loop)")
    sustain_s = await closed_loop(host, port, key, bodies, measure, concurrency,
                                  tallies["sustainable"])
    progress(int(measure))
    sustainable = tallies["sustainable"].acked / sustain_s
    batch = sum(bodies.sizes) / len(bodies.sizes)
    target = factor * sustainable
    note(f"overload: {target:,.0f} readings/s open loop")
    overload_start = time.monotonic()  # the RSS sampler's clock
    overload_loop_start = loop.time()
    overload_s = await open_loop(host, port, key, bodies, duration, target / batch,
                                 tallies["overload"])
    progress(int(duration))
    note("recovery (closed loop)")
    recovery_start = loop.time()
    recovery_s = await closed_loop(host, port, key, bodies, recover, concurrency,
                                   tallies["recovery"])
    progress(int(recover))
    return {"tallies": tallies, "sustainable": sustainable, "target": target,
            "overload_s": overload_s, "overload_start": overload_start,
            "overload_loop_start": overload_loop_start,
            "recovery_s": recovery_s, "recovery_start": recovery_start, "warmup_s": warm_s,
            "end": time.monotonic()}


def run(*, duration: float = 60.0, factor: float = 3.0, store: str | None = None,
        workdir: Path | None = None, devices: int = 40_000, batch: int = 10_000,
        warmup: float = 90.0, measure: float = 15.0, recover: float = 15.0, concurrency: int = 8,
        serve_options: list[str] | None = None, progress=lambda n: None,
        note=lambda s: None) -> dict:
    import uvloop

    load_before = os.getloadavg()[0]  # others' work on the machine, reported with the result
    root = Path(workdir or tempfile.mkdtemp(prefix="cityops-overload-"))
    pack = generate(towns=6, villages=6, devices={"noise": devices})
    node = BenchNode(root, pack, store)
    node.server.args += list(serve_options or [])
    # Far enough back for every batch of the run to be a new second of its group.
    bodies = Bodies([d.id for d in pack.devices], batch, int(time.time()) - 2 * 86400)
    note("starting the node")
    server = node.server
    server.start()
    sampler = RssSampler(server.proc.pid)
    rss_idle = sampler.rss_mb()
    sampler.start()
    try:
        host, port = "127.0.0.1", server.port
        phases = uvloop.run(_phases(
            host, port, node.device_key, bodies, warmup=warmup, measure=measure,
            duration=duration, factor=factor, recover=recover, concurrency=concurrency,
            note=note, progress=progress))
        rss_after = sampler.rss_mb()
        note("counting back from the store")
        count = httpx.get(server.url + "/api/v1/history/count", headers=node.admin,
                          timeout=600).json()
        ready = httpx.get(server.url + "/readyz", timeout=30)
    finally:
        sampler.stop()
        server.stop()
    tallies: dict[str, Tally] = phases["tallies"]
    over, rec = tallies["overload"], tallies["recovery"]
    start = phases["overload_start"]
    before = [mb for t, mb in sampler.samples if t < start]
    # Overload, then recovery; not the count at the end (DuckDB's own memory).
    during = [mb for t, mb in sampler.samples if start <= t <= phases["end"]]
    sustainable = phases["sustainable"]
    recovered_rate = rec.acked / phases["recovery_s"]
    seconds = per_second(rec, phases["recovery_start"], phases["recovery_s"])
    back_after = next((k for k, n in enumerate(seconds) if n >= RECOVERED_FRACTION * sustainable),
                      None)
    acknowledged = sum(t.acked for t in tallies.values())
    all_answers: collections.Counter = collections.Counter()
    for t in tallies.values():
        all_answers.update(t.answers)
    errors = sum(t.errors for t in tallies.values())
    return {
        "sustainable_readings_per_s": round(sustainable),
        "target_readings_per_s": round(phases["target"]),
        "offered_readings_per_s": round(over.sent_readings / duration),
        "accepted_readings_per_s_under_overload": round(over.acked / phases["overload_s"]),
        "answers": {str(k): v for k, v in sorted(over.answers.items())},
        # From sending a batch to its answer, under overload: refusals should come at once.
        "overload_wait_ms": {f"{kind}_p{q}": over.wait_ms(statuses, q)
                             for kind, statuses in (("accepted", (202,)),
                                                    ("refused", (429, 503)))
                             for q in (50, 99)},
        # When, from the start of the overload (s), the batches answered after more than 3 s
        # were sent: where the long waits come from.
        "overload_slow_sent_at_s": slow_seconds(over, phases["overload_loop_start"], 3.0),
        "client_late_max_s": round(over.late_max, 3),
        "retry_after_missing": sum(t.retry_after_missing for t in tallies.values()),
        "not_sent_client_ceiling": over.not_sent,
        "rss_mb_idle": round(rss_idle or 0, 1),
        "rss_mb_before": round(before[-1] if before else rss_idle or 0, 1),
        "rss_mb_max": round(max(during, default=0), 1),
        "rss_mb_after": round(rss_after or 0, 1),
        "rss_mb_timeline": [round(mb) for mb in during],  # every 0.5 s from the overload on
        "recovered_readings_per_s": round(recovered_rate),
        "recovered_after_s": back_after,
        "recovered": bool(recovered_rate >= RECOVERED_FRACTION * sustainable
                          and rec.errors == 0 and ready.status_code == 200),
        "recovery_answers": {str(k): v for k, v in sorted(rec.answers.items())},
        "recovery_batches": rec.requests,
        "recovery_retried": rec.retried,
        "ready_after": ready.status_code == 200,
        "errors": errors,
        "error_samples": [s for t in tallies.values() for s in t.error_samples][:5],
        "all_answers": {str(k): v for k, v in sorted(all_answers.items())},
        "acknowledged": acknowledged,
        "stored": count["readings"],
        "lost": max(0, acknowledged - count["readings"]),
        "rejected": sum(t.rejected for t in tallies.values()),
        "duplicates": sum(t.duplicates for t in tallies.values()),
        "node_log_errors": log_errors(server.log_path),
        "duration_s": duration,
        "warmup_s": round(phases["warmup_s"], 1),
        "factor": factor,
        "devices": devices,
        "batch": batch,
        "concurrency": concurrency,
        "store": node.store_url.split(":")[0],
        "cores": os.cpu_count(),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "client_note": (f"the client runs on the same {os.cpu_count()} cores as the node: "
                        "what it spends sending is taken from the node"),
    }
