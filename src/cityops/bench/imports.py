"""`cityops bench import`: history import throughput per format, against the file's own read.

One synthetic history (noise meters' one-minute LAeq, long layout: device_id, ts, value) is
written as Parquet, CSV and NDJSON. For each format the limit is reading the same file with
pyarrow alone (no checks, nothing stored); the figure is the whole import: read, every cell
checked, nothing already stored, written as zstd Parquet and fsync'd, journal included. Each
runs against an empty history, so both measure the same rows from the same page cache.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from cityops.domain.city import Device
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.registry import DeviceRegistry
from cityops.history.backfill import Backfill
from cityops.history.imports import Options, import_file

BARS = {"parquet": 2_000_000, "csv": 500_000}  # rows/s stored durably (issue 16)


def _history(rows: int, devices: int) -> pa.Table:
    rng = np.random.default_rng(7)
    per_device = -(-rows // devices)
    device = np.repeat(np.arange(devices), per_device)[:rows]
    minute = np.tile(np.arange(per_device), devices)[:rows]
    start = 1_420_070_400  # 2015-01-01: history, far outside the live window
    ts = (start + minute * 60) * 1_000_000
    value = np.round(45 + 10 * rng.standard_normal(rows), 1).clip(20, 120)
    ids = pa.array([f"noise-{i:06d}" for i in range(devices)])
    return pa.table({
        "device_id": pa.DictionaryArray.from_arrays(pa.array(device, pa.int32()), ids),
        "ts": pa.array(ts, pa.timestamp("us", "UTC")),
        "value": value,
    })


def _write(table: pa.Table, folder: Path, formats: list[str]) -> dict[str, Path]:
    paths = {}
    if "parquet" in formats:
        paths["parquet"] = folder / "history.parquet"
        pq.write_table(table, paths["parquet"], compression="zstd", row_group_size=1 << 20)
    plain = table.set_column(0, "device_id", table["device_id"].cast(pa.string()))
    if "csv" in formats:
        paths["csv"] = folder / "history.csv"
        pacsv.write_csv(plain, paths["csv"])
    if "ndjson" in formats:
        paths["ndjson"] = folder / "history.ndjson"
        with open(paths["ndjson"], "w") as f:
            for batch in plain.to_batches(max_chunksize=100_000):
                d = batch.column(0).to_pylist()
                t = batch.column(1).cast(pa.int64()).to_numpy() / 1e6
                v = batch.column(2).to_numpy()
                f.writelines(json.dumps({"device_id": a, "ts": b, "value": c}) + "\n"
                             for a, b, c in zip(d, t.tolist(), v.tolist()))
    return paths


def _read_alone(fmt: str, path: Path) -> int:
    if fmt == "parquet":
        return pq.read_table(path).num_rows
    if fmt == "csv":
        return pacsv.read_csv(path).num_rows
    return pajson.read_json(path).num_rows


def run(rows: int = 5_000_000, devices: int = 20_000, formats: str = "parquet,csv,ndjson",
        workdir: Path | None = None, progress=lambda n: None, note=lambda s: None) -> dict:
    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="cityops-bench-import-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        note("writing the files")
        table = _history(rows, devices)
        paths = _write(table, root, wanted)
        registry = DeviceRegistry(BUILTIN_KINDS)
        registry.add([Device(id=f"noise-{i:06d}", kind="noise", lat=31.2, lon=121.5)
                      for i in range(devices)])
        out: dict = {"rows": rows, "devices": devices, "fsync": True}
        ok = True
        for fmt in wanted:
            path = paths[fmt]
            note(f"{fmt}: reading alone")
            _read_alone(fmt, path)  # once to warm the page cache for both runs alike
            started = time.perf_counter()
            _read_alone(fmt, path)
            limit = rows / (time.perf_counter() - started)
            note(f"{fmt}: importing")
            history = root / f"history-{fmt}"
            shutil.rmtree(history, ignore_errors=True)
            backfill = Backfill(history, registry, fsync=True)
            started = time.perf_counter()
            summary = import_file(path, backfill, Options(timezone="Asia/Shanghai"),
                                  rejects_path=root / f"{fmt}.rejects.csv")
            seconds = time.perf_counter() - started
            if summary.stored != rows or summary.rejected:
                raise RuntimeError(f"{fmt}: stored {summary.stored} of {rows} rows, "
                                   f"{summary.rejected} rejected")
            rate = rows / seconds
            out[fmt] = {"rows_per_s": round(rate), "limit_rows_per_s": round(limit),
                        "share_of_limit": round(rate / limit, 3),
                        "bytes": path.stat().st_size, "seconds": round(seconds, 3)}
            if fmt in BARS:
                out[fmt]["bar_rows_per_s"] = BARS[fmt]
                out[fmt]["meets_bar"] = rate >= BARS[fmt]
                ok &= rate >= BARS[fmt]
            progress(1)
        out["ok"] = ok
        return out
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
