"""The export benchmark's machinery at a tiny size (a small grid city, 1,500 cases, SQLite): the
node in its own process exports every case once, the client reads every row, the memory
figures are measured, and the result is one JSON object. Speed is not asserted here."""

from __future__ import annotations

import csv
import io
import json

import pytest

from cityops.bench import export as bench
from cityops.packs.grid import generate

N = 1_500


def test_the_benchmark_exports_every_case_and_measures_the_node(tmp_path) -> None:
    out = bench.run(count=N, store=None, workdir=tmp_path, pack=generate(devices={"noise": 4}))
    assert json.loads(json.dumps(out)) == out
    assert (out["incidents"], out["rows"], out["backend"]) == (N, N, "sqlite")
    assert out["all_rows"] and out["ids_unique"]
    assert out["columns"] > 30 and out["bytes"] > N * 100
    assert out["rss_before_mb"] > 0 and out["rss_peak_mb"] >= out["rss_before_mb"]
    assert out["rss_growth_mb"] is not None and out["rss_samples"] > 0
    assert out["csv_alone_rows_per_s"] > 0
    for key in ("rows_per_s", "mb_per_s", "share_of_csv_alone", "within_bar", "load_avg_1m"):
        assert key in out
    # One town's cases as XLSX: a workbook came, and its temporary file is gone.
    assert out["xlsx_rows"] > 0 and out["xlsx_is_zip"] and out["xlsx_files_left"] == 0


def test_rows_are_read_whole_across_chunks_and_quoted_newlines() -> None:
    """The client's CSV reading: quoted fields holding newlines, cut anywhere between chunks."""
    rows = [[f"r{i}", 'two\nlines, "quoted"' * (i % 3), "王小明"] for i in range(500)]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["id", "note", "name"], *rows, rows[7]])
    body = "\ufeff".encode() + buffer.getvalue().encode()
    reader = bench.RowReader(keep=1000)
    for at in range(0, len(body), 7):
        reader.feed(body[at:at + 7])
    reader.close()
    assert reader.header == ["id", "note", "name"]
    assert reader.first == [*rows, rows[7]] and reader.rows == 501
    assert not reader.unique  # r7 came twice
    cut = bench.RowReader()
    cut.feed(body[:len(body) // 2])
    with pytest.raises(RuntimeError, match="inside a row"):
        cut.close()
