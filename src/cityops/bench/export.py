"""`cityops bench export`: the incident list exported as CSV (`GET /api/v1/incidents?format=csv`)
over a year of cases, and how much memory the node takes to do it.

The cases are the incident benchmark's (`cityops.bench.incidents`: a year of the Pudong city,
1,000,000 by default, made from a seed and bulk-loaded into SQLite), kept in its work folder
and reused by either benchmark. A node serves that store from its own process; the benchmark
reads the whole export through over loopback as a client would (parsing every row with the
csv module) while a thread samples the node's resident memory. What it reports:

- rows, bytes, seconds, rows/s and MB/s of the export, and whether every case came out once;
- the node's RSS before the export (after a warm-up that has already served a JSON page and
  a small export) and at its peak during it (the sampled VmRSS, and VmHWM after resetting it
  through /proc/<pid>/clear_refs where the kernel lets us), against the bar: less than 100 MB
  of growth;
- a limit measured in the same run: the csv module alone writing the same number of rows (the
  export's first thousand, repeated) from a list of tuples in memory. The export cannot be
  faster than that; how far below it is what the store, the handler and HTTP cost.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec

from cityops.bench import incidents as cases_bench
from cityops.bench.server import ServerProcess
from cityops.domain.city import CityPack, Level
from cityops.packs.format import save_pack
from cityops.store.base import IncidentFilter, open_store

BAR_MB = 100.0
SAMPLE_S = 0.02
ROW_CHECK = 1000  # rows of the export kept for the csv-alone limit


# -- the node's memory -------------------------------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    """The memory lines of /proc/<pid>/status, in kB (empty once the process is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name.startswith(("Vm", "Rss")):
                    out[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def _status_kb(pid: int, field: str) -> int | None:
    return _status(pid).get(field)


def reset_peak(pid: int) -> bool:
    """Set VmHWM back to the present RSS (Linux 4.0 and later); False where not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def settle(pid: int, *, steady_s: float = 3.0, within_kb: int = 1024,
           most_s: float = 120.0) -> float:
    """Wait until the process's RSS has stayed within `within_kb` for `steady_s` (a node
    finishes work of its own after it answers: restoring state, first counts), at most
    `most_s`; the seconds waited. Measured before it, the growth of an export would count
    what the node was doing anyway."""
    started = time.monotonic()
    window: list[int] = []
    every = 0.25
    while time.monotonic() - started < most_s:
        kb = _status_kb(pid, "VmRSS")
        if kb is None:
            break
        window = [*window, kb][-int(steady_s / every):]
        if len(window) == int(steady_s / every) and max(window) - min(window) <= within_kb:
            break
        time.sleep(every)
    return time.monotonic() - started


class RssSampler:
    """The highest VmRSS of a process, sampled from a thread until stopped, and the split of
    the highest sample: anonymous memory (the heap) and file pages mapped (libraries, files)."""

    def __init__(self, pid: int, every_s: float = SAMPLE_S) -> None:
        self.pid = pid
        self.every_s = every_s
        self.peak_kb = 0
        self.peak_anon_kb = 0
        self.peak_file_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            found = _status(self.pid)
            kb = found.get("VmRSS")
            if kb is not None:
                if kb > self.peak_kb:
                    self.peak_kb = kb
                    self.peak_anon_kb = found.get("RssAnon", 0)
                    self.peak_file_kb = found.get("RssFile", 0)
                self.samples += 1
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- reading the export ------------------------------------------------------------------------


class RowReader:
    """CSV rows parsed out of a body as its chunks arrive. Only whole lines go to the parser,
    and a line whose quotes are unbalanced (a quoted field holding a newline) waits for the
    next chunk. The ids (first column) are checked to be unique by their hashes (8 bytes a
    row, not the ids themselves)."""

    def __init__(self, keep: int = ROW_CHECK) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.keep = keep
        self.rows = 0
        self.bytes = 0
        self.header: list[str] = []
        self.first: list[list[str]] = []  # the first rows, for the csv-alone limit
        self.unique = True
        self._seen: set[int] = set()
        self._pending = ""

    def feed(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        text = self._pending + self.decoder.decode(chunk)
        cut = text.rfind("\n") + 1
        body, self._pending = text[:cut], text[cut:]
        if body.count('"') % 2:
            self._pending, body = body + self._pending, ""
        for row in csv.reader(io.StringIO(body, newline="")):
            if not self.header:
                self.header = row
                continue
            self.rows += 1
            if len(self.first) < self.keep:
                self.first.append(row)
            key = hash(row[0])
            if key in self._seen:
                self.unique = False
            self._seen.add(key)

    def close(self) -> None:
        if (self._pending + self.decoder.decode(b"", final=True)).strip():
            raise RuntimeError("the export ended inside a row")


def read_export(url: str, headers: dict[str, str], path: str, *,
                progress: Callable[[int], None] = lambda n: None) -> tuple[RowReader, float]:
    """GET `path`, every CSV row parsed as it arrives; the reader and the seconds it took."""
    reader = RowReader()
    told = 0
    started = time.perf_counter()
    with httpx.Client(base_url=url, headers=headers, timeout=600.0) as client, \
            client.stream("GET", path) as r:
        if r.status_code != 200:
            raise RuntimeError(f"the export answered {r.status_code}: {r.read()[:500]!r}")
        for chunk in r.iter_raw(1 << 16):
            reader.feed(chunk)
            if reader.rows - told >= 10_000:
                progress(reader.rows - told)
                told = reader.rows
    reader.close()
    progress(reader.rows - told)
    return reader, time.perf_counter() - started


def csv_alone(header: list[str], sample: list[list[str]], rows: int) -> float:
    """Rows/s the csv module writes (to memory, UTF-8 encoded in 1,000-row chunks) from a
    list of tuples: the ceiling of any CSV export written with it."""
    if not sample:
        return 0.0
    tuples = [tuple(r) for r in sample]
    started = time.perf_counter()
    written = 0
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    while written < rows:
        chunk = tuples[:rows - written]
        writer.writerows(chunk)
        buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        written += len(chunk)
    return rows / (time.perf_counter() - started)


# -- the node ----------------------------------------------------------------------------------


async def _admin_key(url: str) -> str:
    from cityops.auth import new_key

    store = open_store(url)
    await store.open()
    try:
        secret, record = new_key("admin", None, "bench-export")
        await store.add_key(record)
    finally:
        await store.close()
    return secret


def _server(pack: CityPack, root: Path, url: str, note: Callable[[str], None]) -> ServerProcess:
    """A node on the benchmark's store, its clock at the data's "now" (see incidents.serve_node)."""
    city = root / f"city-{pack.info.generator.get('seed', 0)}"
    if not (city / "city.yaml").exists():
        note("saving the city pack for the node")
        save_pack(pack, city)
    data = root / "export-node"
    data.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(city, data, url)
    server.args = [sys.executable, "-c",
                   "import sys; from cityops.bench.incidents import serve_node; "
                   "serve_node(*sys.argv[1:])",
                   str(city), str(data), url, str(server.port), repr(cases_bench.NOW)]
    return server


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


def measure(server: ServerProcess, key: str, *, progress: Callable[[int], None],
            note: Callable[[str], None]) -> dict[str, object]:
    """Export every incident through the running node, sampling its memory meanwhile."""
    assert server.proc is not None
    pid = server.proc.pid
    headers = {"Authorization": f"Bearer {key}"}
    note("warming up the node (a JSON page, a small export)")
    with httpx.Client(base_url=server.url, headers=headers, timeout=120.0) as client:
        for path in ("/api/v1/incidents?limit=1000", "/api/v1/audit?format=csv",
                     "/api/v1/incidents?format=csv&overdue=true&open=true"):
            r = client.get(path)
            if r.status_code != 200:
                raise RuntimeError(f"warm-up {path} answered {r.status_code}: {r.text[:300]}")
    settle_s = settle(pid)
    before = _status(pid)
    before_kb = before.get("VmRSS")
    hwm_reset = reset_peak(pid)
    note("exporting every incident as CSV")
    with RssSampler(pid) as sampler:
        read, seconds = read_export(server.url, headers, "/api/v1/incidents?format=csv",
                                    progress=progress)
    hwm_kb = _status_kb(pid, "VmHWM") if hwm_reset else None
    peak_kb = max(sampler.peak_kb, hwm_kb or 0)
    growth_mb = None if before_kb is None else round((peak_kb - before_kb) / 1024, 1)
    note("the csv module alone, for the limit")
    alone = csv_alone(read.header, read.first, read.rows)
    rate = read.rows / seconds if seconds else 0.0
    return {
        "rows": read.rows, "columns": len(read.header), "ids_unique": read.unique,
        "bytes": read.bytes, "seconds": round(seconds, 1),
        "rows_per_s": round(rate), "mb_per_s": round(read.bytes / 1e6 / seconds, 1)
        if seconds else None,
        "rss_before_mb": _mb(before_kb), "rss_peak_mb": _mb(peak_kb),
        "rss_growth_mb": growth_mb, "rss_bar_mb": BAR_MB,
        "within_bar": growth_mb is not None and growth_mb < BAR_MB,
        "peak_from": "VmRSS samples and VmHWM" if hwm_reset else "VmRSS samples",
        "rss_samples": sampler.samples,
        "settle_s": round(settle_s, 1),
        "rss_hwm_at_start_mb": _mb(before.get("VmHWM")),  # the node's own start and warm-up
        # Where the highest sample's memory was: the heap, or file pages mapped.
        "rss_anon_before_mb": _mb(before.get("RssAnon")),
        "rss_anon_at_peak_mb": _mb(sampler.peak_anon_kb),
        "rss_file_before_mb": _mb(before.get("RssFile")),
        "rss_file_at_peak_mb": _mb(sampler.peak_file_kb),
        "csv_alone_rows_per_s": round(alone),
        "share_of_csv_alone": round(rate / alone, 3) if alone else None,
    }


def measure_xlsx(server: ServerProcess, key: str, area: str, rows: int, folder: Path, *,
                 note: Callable[[str], None]) -> dict[str, object]:
    """One town's cases exported as XLSX (the workbook is written whole to a temporary file
    before its first byte is sent): seconds, bytes and the node's RSS growth."""
    assert server.proc is not None
    pid = server.proc.pid
    note(f"exporting the {rows:,} cases of town {area} as XLSX")
    before_kb = _status_kb(pid, "VmRSS")
    hwm_reset = reset_peak(pid)
    size = 0
    head = b""
    started = time.perf_counter()
    with RssSampler(pid) as sampler, \
            httpx.Client(base_url=server.url, timeout=1800.0,
                         headers={"Authorization": f"Bearer {key}"}) as client, \
            client.stream("GET", f"/api/v1/incidents?format=xlsx&area={area}") as r:
        if r.status_code != 200:
            raise RuntimeError(f"the XLSX export answered {r.status_code}: {r.read()[:300]!r}")
        for chunk in r.iter_raw(1 << 16):
            head = head or chunk[:2]
            size += len(chunk)
    seconds = time.perf_counter() - started
    hwm_kb = _status_kb(pid, "VmHWM") if hwm_reset else None
    peak_kb = max(sampler.peak_kb, hwm_kb or 0)
    left = list(folder.glob("*.xlsx"))  # the node deletes each once it is sent
    return {"xlsx_town": area, "xlsx_rows": rows, "xlsx_is_zip": head == b"PK",
            "xlsx_bytes": size, "xlsx_seconds": round(seconds, 1),
            "xlsx_rows_per_s": round(rows / seconds) if seconds else None,
            "xlsx_rss_growth_mb": None if before_kb is None
            else round((peak_kb - before_kb) / 1024, 1),
            "xlsx_files_left": len(left)}


def run(*, count: int, store: str | None, workdir: Path | None, seed: int = 1,
        pack: CityPack | None = None, xlsx: bool = True,
        progress: Callable[[int], None] = lambda n: None,
        note: Callable[[str], None] = lambda s: None) -> dict[str, object]:
    """`pack`: another city than Pudong (a small one, for a quick check of the machinery)."""
    root = Path(workdir or "var/bench/incidents")
    root.mkdir(parents=True, exist_ok=True)
    url = cases_bench.bench_store_url(store, root)
    if pack is None:
        from cityops.packs.pudong import generate

        note("generating the Pudong city")
        pack = generate(seed)

    async def fill() -> tuple[float, bool]:
        fingerprint = cases_bench.city_fingerprint(pack)
        st, have = await cases_bench.prepare(url, count, seed, owned=cases_bench.owned(url, root),
                                             city=fingerprint)
        try:
            if have is not None:
                note(f"reusing the {have.count:,} incidents already loaded")
                return have.load_s, True
            note(f"generating and loading {count:,} incidents")
            city = cases_bench.city_tables(pack, seed)
            cases = cases_bench.make_cases(city, count, seed)
            load_s = await cases_bench.load(st, city, cases)
            await cases_bench.settle(url)
            await st.set_meta(cases_bench.META_KEY, msgspec.json.encode(cases_bench.Loaded(
                count, seed, cases_bench.NOW, round(load_s, 1), cases_bench.DATA_VERSION,
                fingerprint)).decode())
            return load_s, False
        finally:
            await st.close()

    town = next(a.code for a in pack.areas if a.level is Level.TOWN)

    async def town_cases() -> int:
        st = open_store(url)
        await st.open()
        try:
            return await st.count_incidents(IncidentFilter(area=town))
        finally:
            await st.close()

    load_before = os.getloadavg()[0]
    load_s, reused = asyncio.run(fill())
    key = asyncio.run(_admin_key(url))
    server = _server(pack, root, url, note)
    note("starting a node on the store")
    server.start()
    try:
        out = measure(server, key, progress=progress, note=note)
        if xlsx:
            out.update(measure_xlsx(server, key, town, asyncio.run(town_cases()),
                                    root / "export-node" / "exports", note=note))
    finally:
        server.stop()
    # The machine is shared: how busy it was says how far the figures can be trusted.
    return {"incidents": count, "backend": cases_bench.backend_of(url), "reused": reused,
            "load_s": round(load_s, 1), **out,
            "all_rows": out["rows"] == count and bool(out["ids_unique"]),
            "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
