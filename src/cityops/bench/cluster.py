"""`cityops bench cluster`: an ingest node, W detect workers and an act node, each a
`cityops serve` process, over the real NATS JetStream and PostgreSQL of this machine.

Two measurements:

1. Live. The benchmark posts every device's reading of every second (pre-encoded JSON arrays,
   a few requests in flight) to the ingest node; detection runs every shipped scenario pack
   plus a `bench.spike` rule, and some devices have loud spikes, each of which must become
   exactly one alert and one incident. `readings_per_s` is readings acknowledged and evaluated
   per second: from the first request to the detect group having nothing left to deliver or
   acknowledge. `alert_latency_p99_ms` is the workers' own figure (a batch's arrival at the
   ingest node to the alert's publication). With `--kill-one`, worker W-1 is killed with
   SIGKILL when 40% has been sent and started again at once.
   `lost` = spikes without an alert + readings the group never finished; `duplicates` =
   alerts beyond one per spike + cases beyond one per alert.

2. Drain. The stream is filled with readings first (published in batches straight onto the
   bus, so neither HTTP nor the ingest node is measured), then W workers are started and the
   rate at which the detect group works through it is read off the consumers, between 10% and
   90% done (worker start-up, which differs between processes, stays out). With W > 1 the
   same is done with one worker, for the speed-up; with `--history`, with one history-role
   process (WAL with fsync, Parquet), for its per-process figure.

Per-process figures (CPU seconds from /proc) give what one process of each role does with one
core: the basis of docs/deploy.md.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import msgspec
import numpy as np

from cityops.auth import new_key
from cityops.bench.server import ServerProcess
from cityops.packs.format import save_pack
from cityops.packs.grid import generate

PARTITIONS = 8
BATCH = 10_000
# Pre-fill publishes of 10,000 readings (8 messages of ~1,250, one per partition). Larger
# messages (5,000-10,000 readings) cost the broker less per reading, but the workers' local
# buffers (1,024 messages) then hold hundreds of MB, some outlive ack_wait and come twice,
# and one worker was seen idle half of the time: the drain measured that, not detection.
FILL_BATCH = BATCH
SPIKE_EVERY = 97  # every 97th device has loud spikes
SPIKE_S, SPIKE_PERIOD = 4, 20  # 4 s loud in every 20 s, each device at its own phase
SPIKE = """
name: bench
version: 1
title: Benchmark spike
category: {code: event.bench.spike, kind: event, major: bench, minor: spike, name: Spike}
departments: [environment]
urgency: high
rules:
  - id: spike
    type: threshold
    kind: noise
    above: 120
    clear_below: 100
    title: Noise spike
"""
DEFAULT_STORE = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_NATS = "nats://127.0.0.1:4222"
TICK = os.sysconf("SC_CLK_TCK")


# -- helpers ----------------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def pids_of(match) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if match(cmd):
                out.append(int(entry.name))
    return out


def server_cpu() -> dict[str, float]:
    """CPU seconds so far of the NATS server on 4222 and of PostgreSQL's processes (these are
    shared with anyone else using them on this machine)."""
    nats = sum(cpu_s(p) for p in pids_of(lambda c: "nats-server" in c and "4222" in c))
    pg = sum(cpu_s(p) for p in pids_of(lambda c: c.startswith("postgres")))
    return {"nats": nats, "postgres": pg}


def start_all(procs: list[ServerProcess], timeout: float = 180.0) -> None:
    errors: list[BaseException] = []

    def start(p: ServerProcess) -> None:
        try:
            p.start(timeout)
        except BaseException as exc:  # noqa: BLE001 — raised below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(p,)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class Deployment:
    """A city saved on disk, a schema and a stream of their own, and the processes."""

    def __init__(self, root: Path, pack, store: str, nats: str, label: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.root = root / label
        self.root.mkdir(parents=True, exist_ok=True)
        self.city = self.root / "city"
        save_pack(pack, self.city)
        self.packs = self.root / "packs"
        (self.packs / "bench").mkdir(parents=True, exist_ok=True)
        (self.packs / "bench" / "manifest.yaml").write_text(SPIKE)
        self.pack = pack
        self.schema = f"bench_cluster_{label}_{tag}"
        self.stream = f"BENCH_CLUSTER_{label.upper()}_{tag}"
        sep = "&" if "?" in store else "?"
        self.store_url = f"{store}{sep}schema={self.schema}"
        self.nats = nats
        self.bus_url = f"{nats}?stream={self.stream}&ack_wait=10&fetch_wait=2&max_age=3600"
        self.procs: list[ServerProcess] = []
        self.device_key = self.admin_key = ""

    def process(self, name: str, role: str, worker: int = 0, workers: int = 1) -> ServerProcess:
        data = self.root / name
        data.mkdir(parents=True, exist_ok=True)
        proc = ServerProcess(self.city, data, self.store_url, extra=[
            "--bus", self.bus_url, "--role", role, "--name", name, "--worker", str(worker),
            "--workers", str(workers), "--partitions", str(PARTITIONS), "--scenarios",
            str(self.packs), "--notify", "log:", "--log-level", "error"])
        self.procs.append(proc)
        return proc

    async def prepare(self, register: bool) -> None:
        """Keys (and, for a drain, the devices in pack order) in the store."""
        from cityops.domain.geo import CityMap
        from cityops.store.base import open_store

        store = open_store(self.store_url)
        await store.open()
        try:
            self.device_key, device = new_key("device", None, "bench")
            self.admin_key, admin = new_key("admin", None, "bench")
            await store.add_key(device)
            await store.add_key(admin)
            if register:
                resolved, errors = CityMap.from_pack(self.pack).resolve_devices(
                    self.pack.devices)
                if errors:
                    raise RuntimeError(f"bench city has unresolvable devices: {errors[:3]}")
                await store.upsert_devices(resolved)
        finally:
            await store.close()

    async def consumers(self, group: str = "detect", nc=None) -> tuple[int, int, int]:
        """(delivered and acknowledged, not yet delivered, unacknowledged) messages of a
        group over all partitions."""
        import nats
        import nats.js.errors

        own = nc is None
        if own:
            nc = await nats.connect(self.nats)
        try:
            jsm = nc.jsm()
            done = pending = unacked = 0
            for p in range(PARTITIONS):
                try:
                    info = await jsm.consumer_info(self.stream, f"{group}-readings-{p}")
                except nats.js.errors.NotFoundError:
                    continue
                pending += int(info.num_pending or 0)
                unacked += int(info.num_ack_pending or 0)
                done += int(info.delivered.consumer_seq or 0) - int(info.num_ack_pending or 0)
            return done, pending, unacked
        finally:
            if own:
                await nc.close()

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.stop(timeout=20)

    async def drop(self) -> None:
        import nats

        from cityops.store.base import open_store

        with contextlib.suppress(Exception):
            nc = await nats.connect(self.nats)
            try:
                await nc.jsm().delete_stream(self.stream)
            finally:
                await nc.close()
        store = open_store(self.store_url)
        await store.open()
        try:
            async with store._connection(write=True) as conn:  # noqa: SLF001
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        finally:
            await store.close()


def bench_pack(devices: int):
    from cityops.domain.incidents.categories import Category

    pack = generate(towns=6, villages=6, devices={"noise": devices})
    # Merging is off so that every alert is a case of its own (duplicates are countable).
    pack.categories.append(Category(code="event.bench.spike", name="Spike", kind="event",
                                    major="bench", minor="spike", departments=["environment"],
                                    merge_radius_m=0))
    return pack


def spiking(n_devices: int, seconds: int) -> np.ndarray:
    """(devices x seconds) bool: a spike device's loud seconds."""
    out = np.zeros((n_devices, seconds), bool)
    j = np.arange(seconds)
    for d in range(0, n_devices, SPIKE_EVERY):
        phase = (j + d) % SPIKE_PERIOD
        # Whole spikes only, ending two seconds before the run does: the threshold rule
        # ignores a reading older than one already seen for its device, and requests in
        # flight side by side may deliver a device's seconds out of order, so a spike of one
        # second could be passed over where a spike of several cannot.
        start = j - phase
        out[d] = (phase < SPIKE_S) & (start >= 0) & (start + SPIKE_S <= seconds - 2)
    return out


def spike_starts(loud: np.ndarray) -> list[tuple[int, int]]:
    start = loud.copy()
    start[:, 1:] &= ~loud[:, :-1]
    d, j = np.nonzero(start)
    return list(zip(d.tolist(), j.tolist(), strict=True))


class Row(msgspec.Struct, array_like=False):
    device_id: str
    ts: float
    value: float


def payloads(ids: list[str], seconds: int, t0: float, loud: np.ndarray) -> list[bytes]:
    rng = np.random.default_rng(11)
    encoder = msgspec.json.Encoder()
    out = []
    rows: list[Row] = []
    for j in range(seconds):
        values = np.round(rng.normal(45.0, 3.0, len(ids)).clip(30, 60), 1)
        values[loud[:, j]] = 130.0
        for d, v in zip(ids, values.tolist(), strict=True):
            rows.append(Row(d, t0 + j, v))
            if len(rows) == BATCH:
                out.append(encoder.encode(rows))
                rows = []
    if rows:
        out.append(encoder.encode(rows))
    return out


# -- 1. live ----------------------------------------------------------------------------------


GIVE_UP_S = 120.0  # one batch refused (or unanswered) this long: the node is not coming back


class Refused(RuntimeError):
    """A batch the node kept refusing past `GIVE_UP_S`: the benchmark stops with the reason
    rather than retrying for ever at a node that died."""


async def _post_all(url: str, key: str, bodies: list[bytes], concurrency: int, on_sent,
                    give_up_s: float = GIVE_UP_S) -> dict:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(bodies)):
        queue.put_nowait(i)
    refused = 0
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=120.0) as client:

        async def worker() -> None:
            nonlocal refused
            while not queue.empty():
                i = queue.get_nowait()
                deadline = time.monotonic() + give_up_s
                while True:
                    try:
                        r = await client.post("/api/v1/readings", content=bodies[i])
                    except httpx.HTTPError as error:
                        refused += 1
                        _give_up_after(deadline, i, f"{type(error).__name__}: {error}")
                        await asyncio.sleep(0.5)
                        continue
                    if r.status_code in (429, 503):
                        refused += 1
                        _give_up_after(deadline, i, f"HTTP {r.status_code}")
                        await asyncio.sleep(min(1.0, float(r.headers.get("Retry-After", 1))))
                        continue
                    r.raise_for_status()
                    on_sent(r.json()["accepted"])
                    break

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"refused": refused}


def _give_up_after(deadline: float, batch: int, last: str) -> None:
    """Raises `Refused` once `deadline` (monotonic) has passed for `batch`."""
    if time.monotonic() > deadline:
        raise Refused(f"batch {batch} still refused at its deadline (last: {last}); "
                      "is the ingest node still up? Its log is in the work folder")


async def _alerts_and_cases(store_url: str) -> tuple[list, int, int]:
    from cityops.store.base import open_store

    store = open_store(store_url)
    await store.open()
    try:
        alerts = [a for a in await store.list_alerts(limit=1_000_000)
                  if a.rule == "bench.spike"]
        async with store._connection() as conn:  # noqa: SLF001
            cur = await conn.execute(
                f"SELECT count(*), count(DISTINCT r.key) FROM {store._schema_quoted}.incidents i "  # noqa: SLF001
                f"LEFT JOIN {store._schema_quoted}.incident_reports r "  # noqa: SLF001
                "ON r.incident_id = i.id WHERE i.category = 'event.bench.spike'")
            incidents, reports = await cur.fetchone()
        return alerts, int(incidents), int(reports)
    finally:
        await store.close()


def live(root: Path, *, workers: int, kill_one: bool, devices: int, seconds: int,
         concurrency: int, store: str, nats: str, progress, note) -> dict:
    pack = bench_pack(devices)
    dep = Deployment(root, pack, store, nats, "live")
    note("encoding readings")
    ids = [d.id for d in pack.devices]
    loud = spiking(len(ids), seconds)
    t0 = float(int(time.time()) - seconds - 120)
    bodies = payloads(ids, seconds, t0, loud)
    total = len(ids) * seconds
    asyncio.run(dep.prepare(register=False))
    try:
        note(f"starting ingest, act and {workers} detect workers")
        ingest = dep.process("ingest", "ingest")
        act = dep.process("act", "act")
        detect = [dep.process(f"detect{w}", "detect", w, workers) for w in range(workers)]
        start_all([ingest, act, *detect])
        before = {p.proc.pid: cpu_s(p.proc.pid) for p in dep.procs}
        servers_before = server_cpu()
        sent = [0]
        killed = threading.Event()

        def on_sent(n: int) -> None:
            sent[0] += n
            progress(n)
            if kill_one and not killed.is_set() and sent[0] >= 0.4 * total:
                killed.set()

        def killer() -> None:
            if not kill_one:
                return
            killed.wait()
            victim = detect[-1]
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            victim.start()  # same --worker: takes its partitions back, rebuilds its memory

        note("sending" + (" (a worker is killed at 40%)" if kill_one else ""))
        keeper = threading.Thread(target=killer, daemon=True)
        keeper.start()
        started = time.perf_counter()
        sending = asyncio.run(_post_all(ingest.url, dep.device_key, bodies, concurrency,
                                        on_sent))
        sent_s = time.perf_counter() - started
        keeper.join(300)
        note("waiting for detection to finish")
        deadline = time.monotonic() + 600
        while True:
            done, pending, unacked = asyncio.run(dep.consumers())
            if (pending == 0 and unacked == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        cpu = {p.proc.pid: cpu_s(p.proc.pid) - before.get(p.proc.pid, 0.0) for p in dep.procs}
        servers = {k: v - servers_before[k] for k, v in server_cpu().items()}
        expected = spike_starts(loud)
        note("waiting for every alert to be filed")
        deadline = time.monotonic() + 120
        while True:
            alerts, incidents, reports = asyncio.run(_alerts_and_cases(dep.store_url))
            if (len(alerts) >= len(expected) and reports >= len(alerts)) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        admin = {"Authorization": f"Bearer {dep.admin_key}"}
        stats = [httpx.get(p.url + "/api/v1/detect/stats", headers=admin, timeout=30).json()
                 for p in detect]
        act_stats = httpx.get(act.url + "/api/v1/act/stats", headers=admin, timeout=30).json()
    finally:
        dep.stop()
        asyncio.run(dep.drop())
    # An alert belongs to the spike whose loud seconds hold its first reading (requests in
    # flight side by side can bring a device's second reading of a spike in before its first).
    spikes: dict[tuple[str, int], int] = {(ids[d], j): 0 for d, j in spike_starts(loud)}
    strays = []
    for a in alerts:
        j = int(round(a.first_seen - t0))
        owner = next(((a.subject, s) for s in range(j, j - SPIKE_S, -1)
                      if (a.subject, s) in spikes), None)
        if owner is None:
            strays.append((a.subject, j))
        else:
            spikes[owner] += 1
    lost_spikes = sum(1 for n in spikes.values() if n == 0)
    extra_alerts = len(strays) + sum(n - 1 for n in spikes.values() if n > 1)
    p99 = [s.get("alert_latency_p99_ms") for s in stats]
    rows = sum(s["rows"] for s in stats)
    return {
        "workers": workers,
        "readings_per_s": round(total / elapsed),
        "alert_latency_p99_ms": max((x for x in p99 if x is not None), default=None),
        "lost": lost_spikes + pending + unacked,
        "duplicates": extra_alerts + max(0, incidents - len(alerts)) + max(0, reports - incidents),
        "kill_one": kill_one,
        "readings": total,
        "sent_s": round(sent_s, 2),
        "drained_s": round(elapsed, 2),
        "refused_and_retried": sending["refused"],
        "spikes": len(spikes),
        "alerts": len(alerts),
        "incidents": incidents,
        "worker_rows": [s["rows"] for s in stats],
        "worker_p99_ms": p99,
        "rows_evaluated": rows,
        "act_filed": act_stats.get("filed"),
        "lost_examples": [k for k, n in spikes.items() if n == 0][:5],
        "extra_examples": (strays + [k for k, n in spikes.items() if n > 1])[:5],
        "cpu_s": {"ingest": round(cpu[ingest.proc.pid], 2), "act": round(cpu[act.proc.pid], 2),
                  "detect": [round(cpu[p.proc.pid], 2) for p in detect],
                  "nats_server": round(servers["nats"], 2),
                  "postgres": round(servers["postgres"], 2)},
        "ingest_readings_per_cpu_s": round(total / max(cpu[ingest.proc.pid], 1e-9)),
    }


# -- 2. drain ---------------------------------------------------------------------------------


async def _fill(dep: Deployment, devices: int, readings: int, progress) -> int:
    """Readings of every device, second by second, published in batches; returns messages."""
    from cityops.bus.subjects import READINGS
    from cityops.domain.readings import (
        CHANNEL_DTYPE,
        DEVICE_DTYPE,
        TS_DTYPE,
        VALUE_DTYPE,
        ReadingBatch,
    )

    from cityops import cluster
    from cityops.domain.registry import DeviceRegistry
    from cityops.scenarios.loader import load_scenarios
    from cityops.settings import Settings

    # Routed as ingest would route them (the devices are registered in pack order), so that
    # the workers find the readings of pinned kinds where they look for them.
    registry = DeviceRegistry(dep.pack.kinds)
    registry.add(dep.pack.devices)
    scenarios = load_scenarios([dep.packs], kinds=dep.pack.kinds)
    bus = cluster.routed_bus_class()(dep.nats, stream=dep.stream, partitions=PARTITIONS,
                                     max_age=3600.0, ack_wait=10.0, fetch_wait=2.0)
    bus.route_with(cluster.router_for(registry, scenarios, Settings(
        data_dir=dep.root, partitions=PARTITIONS)))
    await bus.start()
    rng = np.random.default_rng(5)
    t0_us = (int(time.time()) - readings // devices - 120) * 1_000_000
    try:
        for first in range(0, readings, FILL_BATCH):
            n = min(FILL_BATCH, readings - first)
            i = np.arange(first, first + n)
            batch = ReadingBatch((i % devices).astype(DEVICE_DTYPE), np.zeros(n, CHANNEL_DTYPE),
                                 (t0_us + (i // devices) * 1_000_000).astype(TS_DTYPE),
                                 np.round(rng.normal(45.0, 3.0, n), 1).astype(VALUE_DTYPE),
                                 time.monotonic_ns(), "bench")
            await bus.publish(READINGS, batch)
            progress(n)
        return await bus.stream_messages()
    finally:
        await bus.close()


async def _watch_drain(dep: Deployment, role: str, procs: list[ServerProcess],
                       messages: int, up: threading.Event) -> tuple[dict, tuple[float, int]]:
    """Marks (time, messages done, workers' CPU, servers' CPU) at 10% done, or when every
    worker is up if later (one loading the city takes a core the others would drain with),
    and at 90%; one connection, a look every 0.1 s, so that watching costs little."""
    import nats

    nc = await nats.connect(dep.nats)
    marks: dict[str, tuple] = {}
    # The same marks taken whether or not every worker is up yet: used when the first workers
    # up drain (almost) everything before the last one is (a cold start, a busy machine);
    # `workers_up_in_window` then says the window saw fewer workers.
    early: dict[str, tuple] = {}
    last = (0.0, 0)
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            done, pending, unacked = await dep.consumers(role, nc)
            now = time.perf_counter()
            for label, at in (("start", 0.1), ("end", 0.9)):
                for into, ready in ((marks, up.is_set()), (early, True)):
                    if label not in into and done / messages >= at and ready:
                        into[label] = (now, done, [cpu_s(p.proc.pid) if p.proc is not None
                                                   else 0.0 for p in procs], server_cpu())
            last = (now, done)
            if pending == 0 and unacked == 0 and done >= messages:
                break
            await asyncio.sleep(0.1)
    finally:
        await nc.close()
    if "start" in marks and "end" in marks:
        return {**marks, "all_up": True}, last
    return {**early, "all_up": False}, last


def drain(root: Path, *, workers: int, devices: int, readings: int, store: str, nats: str,
          progress, note, role: str = "detect") -> dict:
    pack = bench_pack(devices)
    dep = Deployment(root, pack, store, nats, f"drain{role}{workers}")
    asyncio.run(dep.prepare(register=True))
    try:
        note(f"filling the stream with {readings:,} readings")
        messages = asyncio.run(_fill(dep, devices, readings, progress))
        per_message = readings / messages
        note(f"draining it with {workers} {role} worker(s)")
        detect = [dep.process(f"{role}{w}", role, w, workers) for w in range(workers)]
        launched = time.perf_counter()
        up = threading.Event()
        starting = [threading.Thread(target=p.start, daemon=True) for p in detect]
        for t in starting:  # side by side; each reads as soon as it is up
            t.start()

        def all_up() -> None:
            for t in starting:
                t.join()
            up.set()

        threading.Thread(target=all_up, daemon=True).start()
        marks, last = asyncio.run(_watch_drain(dep, role, detect, messages, up))
        ready = [p.proc is not None and p.proc.poll() is None for p in detect]
    finally:
        dep.stop()
        asyncio.run(dep.drop())
    (t1, d1, c1, s1), (t2, d2, c2, s2) = marks["start"], marks["end"]
    if t2 <= t1:  # a drain too short to see between two looks: the whole run's figure
        t1, d1, c1, s1 = launched, 0, [0.0] * len(c2), s1
    rows = (d2 - d1) * per_message
    rate = rows / (t2 - t1)
    worker_cpu = sum(b - a for a, b in zip(c1, c2, strict=True))
    return {
        "role": role,
        "workers": workers,
        "drain_readings_per_s": round(rate),
        "readings": readings,
        "messages": messages,
        "total_s": round(last[0] - launched, 2),
        "window_s": round(t2 - t1, 2),
        "window_from": round(d1 / messages, 2),
        "rows_per_cpu_s": round(rows / max(worker_cpu, 1e-9)),
        # Cores the workers got between the marks: on a shared machine the speed-up of two
        # workers is bounded by this, whatever the per-row cost.
        "worker_cores": round(worker_cpu / (t2 - t1), 2),
        # The server delivering to this one group (and serving whoever else uses it).
        "nats_cpu_s_per_million": round((s2["nats"] - s1["nats"]) / rows * 1e6, 3),
        "workers_alive": all(ready),
        "workers_up_in_window": marks["all_up"],
    }


# -- the command ------------------------------------------------------------------------------


def run(*, workers: int, kill_one: bool, devices: int, seconds: int, drain_readings: int,
        concurrency: int, baseline: bool, store: str | None, nats: str | None,
        workdir: Path | None, history: bool = False, progress=lambda n: None,
        note=lambda s: None) -> dict:
    root = Path(workdir or tempfile.mkdtemp(prefix="cityops-bench-cluster-"))
    store = store or DEFAULT_STORE
    nats = nats or DEFAULT_NATS
    result = live(root, workers=workers, kill_one=kill_one, devices=devices, seconds=seconds,
                  concurrency=concurrency, store=store, nats=nats, progress=progress, note=note)
    if drain_readings:
        d = drain(root, workers=workers, devices=devices, readings=drain_readings, store=store,
                  nats=nats, progress=progress, note=note)
        result["drain_readings_per_s"] = d["drain_readings_per_s"]
        result["drain"] = d
        if baseline and workers > 1:
            one = drain(root, workers=1, devices=devices, readings=drain_readings, store=store,
                        nats=nats, progress=progress, note=note)
            result["drain_one_worker"] = one
            result["drain_speedup"] = round(d["drain_readings_per_s"]
                                            / max(one["drain_readings_per_s"], 1), 2)
        if history:
            h = drain(root, workers=1, devices=devices, readings=drain_readings, store=store,
                      nats=nats, progress=progress, note=note, role="history")
            result["drain_history"] = h
    result["cores"] = os.cpu_count()
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return result


# -- 3. compare: one labelled input, one node against 1, 2 and 4 workers -------------------------

# Rules whose groups span devices, next to one that does not: windows per village and per
# town, a composite of two kinds within a time and a distance, and a per-device threshold.
# The shipped packs (smoke alarms per cell, waterlogging) run alongside.
SPAN = """
name: span
version: 1
title: Rules across devices
category: {code: event.bench.span, kind: event, major: bench, minor: span, name: Span}
departments: [environment]
urgency: high
rules:
  - id: alarms_in_village
    type: window
    title: Two smoke alarms in one village within 10 minutes
    kind: smoke
    agg: count
    per: village
    over: 10m
    value_above: 5
    above: 1
  - id: deep_in_town
    type: window
    title: Deepest water of a town over 20 cm
    kind: water_depth
    agg: max
    per: town
    over: 5m
    above: 20
  - id: wet
    type: threshold
    kind: rainfall
    above: 30
    clear_below: 20
  - id: deep
    type: threshold
    kind: water_depth
    above: 15
    clear_below: 10
  - id: rain_and_water
    type: composite
    title: Rain and deep water within 20 minutes and 3 km
    all_of: [wet, deep]
    within: 20m
    distance_m: 3000
  - id: loud
    type: threshold
    kind: noise
    above: 80
    clear_below: 70
"""
COMPARE_STEP_S = 20  # seconds between two readings of one device


def compare_pack(devices: int):
    """A small city whose devices sit close together, so that groups and composites form."""
    from cityops.domain.incidents.categories import Category

    per_kind = max(4, devices // 4)
    pack = generate(towns=2, villages=2, size_deg=0.04, seed=7,
                    devices={"noise": per_kind, "smoke": per_kind, "rainfall": per_kind,
                             "water_depth": per_kind})
    pack.categories.append(Category(code="event.bench.span", name="Span", kind="event",
                                    major="bench", minor="span", departments=["environment"],
                                    merge_radius_m=0))
    # Five detectors in one building (metres apart, so one grid cell): the smoke pack's
    # cluster counts detectors, and the city's scattered ones rarely share a cell.
    smoke = [i for i, d in enumerate(pack.devices) if d.kind == "smoke"][:5]
    first = pack.devices[smoke[0]]
    for k, i in enumerate(smoke[1:], start=1):
        pack.devices[i] = msgspec.structs.replace(pack.devices[i], lat=first.lat + k * 1e-5,
                                                  lon=first.lon)
    return pack


def compare_bodies(pack, seconds: int, t0: float) -> list[bytes]:
    """JSON bodies, one per time step, every device's reading of that step; each kind has
    spells of alarm (a seeded, labelled input: the same bytes for every run)."""
    rng = np.random.default_rng(13)
    encoder = msgspec.json.Encoder()
    loud = {"noise": (90.0, 50.0), "smoke": (12.0, 0.5), "rainfall": (40.0, 2.0),
            "water_depth": (30.0, 3.0)}
    steps = seconds // COMPARE_STEP_S
    # Per device: alarm spells of 2-6 steps starting at random steps.
    alarm = np.zeros((len(pack.devices), steps), bool)
    for d in range(len(pack.devices)):
        for start in rng.choice(steps, size=max(1, steps // 15), replace=False):
            alarm[d, start:start + int(rng.integers(2, 7))] = True
    # Now and then every smoke detector at once (a fire in the building of compare_pack): the
    # smoke pack's cluster counts detectors, so scattered spells alone would hardly make one.
    smoke = [d for d, device in enumerate(pack.devices) if device.kind == "smoke"]
    for start in range(5, steps, 40):
        alarm[smoke, start:start + 3] = True
    out = []
    for j in range(steps):
        rows = []
        for d, device in enumerate(pack.devices):
            high, low = loud[device.kind]
            value = high if alarm[d, j] else low * float(rng.uniform(0.8, 1.2))
            rows.append(Row(device.id, t0 + j * COMPARE_STEP_S, round(value, 1)))
        out.append(encoder.encode(rows))
    return out


def alert_key(alert) -> tuple:
    return (alert.rule, alert.subject, round(alert.first_seen, 3), round(alert.last_seen, 3),
            alert.active)


async def _post_in_order(node, key: str, bodies: list[bytes], settle) -> None:
    """Each body once ingest took it and detection has evaluated it (`settle`): rules
    evaluate a batch as a whole (a window at its group's newest reading, one update per
    batch), so one node's alerts, too, depend on how many posts its bus hands over at once;
    one post per evaluation makes the input the same for every run."""
    from cityops.api.app import create_app

    transport = httpx.ASGITransport(app=create_app(node, manage_node=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://cityops.bench",
                                 headers={"Authorization": f"Bearer {key}"}) as c:
        for i, body in enumerate(bodies):
            deadline = time.monotonic() + GIVE_UP_S
            while True:
                r = await c.post("/api/v1/readings", content=body)
                if r.status_code in (429, 503):
                    _give_up_after(deadline, i, f"HTTP {r.status_code}")
                    await asyncio.sleep(0.1)
                    continue
                r.raise_for_status()
                break
            await settle()


def _compare_settings(root: Path, packs: Path, name: str, **more):
    from cityops.settings import Settings

    # No ticks while the input is replayed: the clock is fixed, and a tick lands at another
    # point of the input in every run; time-driven rules are per device (see docs).
    return Settings(data_dir=root / name, scenario_dirs=[packs], node_name=name,
                    detect_tick_s=3600.0, **more)


async def _single_node_alerts(pack, root: Path, packs: Path, bodies: list[bytes],
                              clock) -> list:
    from cityops.node import Node

    node = Node(pack, _compare_settings(root, packs, "single"), clock=clock)
    await node.start()
    try:
        key, record = new_key("device", None, "bench")
        await node.store.add_key(record)

        async def settle() -> None:
            if not await node.detect.caught_up(timeout=120):
                raise RuntimeError("the single node did not catch up")

        await _post_in_order(node, key, bodies, settle)
        return await node.store.list_alerts(limit=1_000_000)
    finally:
        await node.stop()


async def _cluster_alerts(pack, root: Path, packs: Path, bodies: list[bytes], clock,
                          workers: int, store: str, nats: str,
                          restart_at: int | None = None) -> dict:
    """The same input through an ingest node and `workers` detect nodes (in this process,
    each with its own bus connection and store pool). With `restart_at`, worker 0 (which
    holds partition 0) is stopped after that many posts and a new one takes its place: it
    restores its open alerts and rebuilds its rules' memory from the stream."""
    from cityops.node import Node

    tag = uuid.uuid4().hex[:8]
    dep = Deployment.__new__(Deployment)  # only its stream and schema helpers are needed
    dep.schema = f"bench_compare_{workers}_{tag}"
    dep.stream = f"BENCH_COMPARE_{workers}_{tag}"
    sep = "&" if "?" in store else "?"
    dep.store_url = f"{store}{sep}schema={dep.schema}"
    dep.nats = nats
    bus_url = f"{nats}?stream={dep.stream}&ack_wait=10&fetch_wait=1&max_age=3600"
    more = {"store_url": dep.store_url, "bus_url": bus_url, "partitions": PARTITIONS}
    started = []
    try:
        ingest = Node(pack, _compare_settings(root, packs, f"ingest{workers}", roles=["ingest"],
                                              **more), clock=clock)
        await ingest.start()
        started.append(ingest)

        async def worker(w: int, name: str):
            node = Node(pack, _compare_settings(root, packs, name, roles=["detect"], worker=w,
                                                workers=workers, **more), clock=clock)
            await node.start()
            started.append(node)
            return node

        detect = [await worker(w, f"detect{workers}-{w}") for w in range(workers)]
        key, record = new_key("device", None, "bench")
        await ingest.store.add_key(record)
        import nats as nats_client

        nc = await nats_client.connect(nats)

        async def settle() -> None:
            # Acknowledged means evaluated: a worker acknowledges a batch when it comes back
            # for the next one.
            deadline = time.monotonic() + 120
            while True:
                _, pending, unacked = await dep.consumers(nc=nc)
                if pending == 0 and unacked == 0:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{workers} workers: {pending} pending, "
                                       f"{unacked} unacknowledged")
                await asyncio.sleep(0.002)

        posted = [0]

        async def settle_or_restart() -> None:
            await settle()
            posted[0] += 1
            if posted[0] == restart_at:
                await detect[0].stop()
                started.remove(detect[0])
                detect[0] = await worker(0, f"detect{workers}-0-again")

        try:
            await _post_in_order(ingest, key, bodies, settle_or_restart)
        finally:
            await nc.close()
        alerts = await ingest.store.list_alerts(limit=1_000_000)
        rows = [node.detect.stats["rows"] for node in detect]
        return {"alerts": alerts, "worker_rows": rows}
    finally:
        for node in reversed(started):
            with contextlib.suppress(Exception):
                await node.stop()
        with contextlib.suppress(Exception):
            await dep.drop()


def differential(root: Path, *, devices: int, seconds: int, workers: tuple[int, ...],
                 store: str, nats: str, note) -> dict:
    """Alerts of one node and of each worker count on the same input; `alerts_differing`
    counts, over the worker counts, the alerts found on one side only. "2+restart" is two
    workers with worker 0 (the one holding partition 0) stopped half-way and started
    again."""
    pack = compare_pack(devices)
    city = root / "compare"
    packs = city / "packs"
    (packs / "span").mkdir(parents=True, exist_ok=True)
    (packs / "span" / "manifest.yaml").write_text(SPAN)
    t0 = float(int(time.time()) - seconds - 600)
    bodies = compare_bodies(pack, seconds, t0)
    now = t0 + seconds + 1

    def clock() -> float:
        return now

    note("the input through one node")
    single = asyncio.run(_single_node_alerts(pack, city, packs, bodies, clock))
    want = collections.Counter(alert_key(a) for a in single)
    out: dict = {"alerts_single": sum(want.values()),
                 "alerts_single_by_rule": dict(collections.Counter(a.rule for a in single)),
                 "readings": len(bodies) * len(pack.devices), "workers": {}}
    differing = 0
    runs = [(str(w), w, None) for w in workers] + [("2+restart", 2, len(bodies) // 2)]
    for label, w, restart_at in runs:
        note(f"the input through {label} detect worker(s)")
        got = asyncio.run(_cluster_alerts(pack, city, packs, bodies, clock, w, store, nats,
                                          restart_at))
        have = collections.Counter(alert_key(a) for a in got["alerts"])
        only_single = want - have
        only_cluster = have - want
        n = sum(only_single.values()) + sum(only_cluster.values())
        differing += n
        out["workers"][label] = {
            "alerts": sum(have.values()), "differing": n, "worker_rows": got["worker_rows"],
            "missing_examples": [list(k) for k in list(only_single)[:3]],
            "extra_examples": [list(k) for k in list(only_cluster)[:3]]}
    out["alerts_differing"] = differing
    return out


def compare(*, devices: int, seconds: int, drain_devices: int, drain_readings: int,
            kill_devices: int, kill_seconds: int, store: str | None, nats: str | None,
            workdir: Path | None, workers: tuple[int, ...] = (1, 2, 4),
            progress=lambda n: None, note=lambda s: None) -> dict:
    """`cityops bench cluster --compare`: the differential check, the drain speed-up of two
    workers over one (measured back to back in this run) and a live run with a worker
    killed."""
    root = Path(workdir or tempfile.mkdtemp(prefix="cityops-bench-compare-"))
    store = store or DEFAULT_STORE
    nats = nats or DEFAULT_NATS
    result = differential(root, devices=devices, seconds=seconds, workers=workers,
                          store=store, nats=nats, note=note)
    if drain_readings:
        one = drain(root, workers=1, devices=drain_devices, readings=drain_readings,
                    store=store, nats=nats, progress=progress, note=note)
        two = drain(root, workers=2, devices=drain_devices, readings=drain_readings,
                    store=store, nats=nats, progress=progress, note=note)
        result["drain_one_worker"] = one
        result["drain_two_workers"] = two
        result["drain_speedup"] = round(two["drain_readings_per_s"]
                                        / max(one["drain_readings_per_s"], 1), 2)
    if kill_seconds:
        killed = live(root, workers=2, kill_one=True, devices=kill_devices,
                      seconds=kill_seconds, concurrency=2, store=store, nats=nats,
                      progress=progress, note=note)
        result["kill_one"] = killed
        result["lost"] = killed["lost"]
        result["duplicates"] = killed["duplicates"]
    result["cores"] = os.cpu_count()
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return result
