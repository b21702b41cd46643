"""History import: layouts and formats, rows refused with their line and reason, nothing stored
twice (same file, overlapping file, live readings), and an import stopped midway resumed."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import select
import signal
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cityops.domain.readings import US, ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.history.backfill import Backfill
from cityops.history.imports import ImportRefused, Options, import_file
from cityops.packs.format import save_pack
from cityops.packs.grid import generate as grid_city

NOW = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)


@pytest.fixture
def city():
    return grid_city(devices={"noise": 4, "gps": 2})


@pytest.fixture
def backfill(tmp_path, city):
    registry = DeviceRegistry(city.kinds)
    registry.add(city.devices)
    return Backfill(tmp_path / "history", registry)


def _ids(city, kind):
    return [d.id for d in city.devices if d.kind == kind]


def _stored(backfill) -> list[tuple[str, str, int, float]]:
    rows = []
    for path in sorted(backfill.dir.rglob("*.parquet")):
        t = pq.read_table(path)
        rows += list(zip(t["device_id"].cast(pa.string()).to_pylist(),
                         t["channel"].cast(pa.string()).to_pylist(),
                         t["ts"].cast(pa.int64()).to_pylist(), t["value"].to_pylist()))
    return sorted(rows)


def _options(**kw):
    return Options(timezone="Asia/Shanghai", now_us=int(NOW.timestamp() * US), **kw)


def test_bad_rows_go_to_the_rejects_file_and_the_good_ones_are_kept(tmp_path, city, backfill):
    noise = _ids(city, "noise")
    source = tmp_path / "readings.csv"
    source.write_text(
        "device_id,ts,value\n"
        f"{noise[0]},2019-06-01T22:00:00+08:00,61.5\n"  # line 2: good
        "nobody,2019-06-01T22:00:00+08:00,61.5\n"  # line 3: unknown device
        f"{noise[0]},yesterday,61.5\n"  # line 4: not a time
        f"{noise[0]},2019-06-01T22:01:00+08:00,loud\n"  # line 5: not a number
        f"{noise[0]},2019-06-01T22:02:00+08:00,400\n"  # line 6: outside 0..150 dB(A)
        f"{noise[0]},2030-01-01T00:00:00Z,50\n"  # line 7: the future
        f"{noise[0]},2019-06-01T22:03:00+08:00,\n"  # line 8: empty
        f"{noise[1]},2019-06-01 22:04:00,48\n"  # line 9: good, local time (no zone)
        f"{noise[1]},1559398000,47\n"  # line 10: good, epoch seconds
    )
    summary = import_file(source, backfill, _options())
    assert (summary.rows, summary.stored, summary.rejected) == (9, 3, 6)
    with open(summary.rejects_path, newline="") as f:
        refused = {int(r["line"]): (r["column"], r["reason"]) for r in csv.DictReader(f)}
    assert refused[3] == ("device_id", "unknown device 'nobody'")
    assert refused[4][0] == "ts" and "neither ISO 8601 nor epoch seconds" in refused[4][1]
    assert refused[5] == ("value", "value 'loud' is not a number")
    assert refused[6][0] == "value" and "outside the valid range 0..150 dB(A)" in refused[6][1]
    assert refused[7][0] == "ts" and "in the future" in refused[7][1]
    assert refused[8] == ("value", "empty cell")
    assert set(refused) == {3, 4, 5, 6, 7, 8}
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert _stored(backfill) == sorted([
        (noise[0], "laeq", int(dt.datetime(2019, 6, 1, 22, tzinfo=shanghai).timestamp() * US),
         61.5),
        (noise[1], "laeq", int(dt.datetime(2019, 6, 1, 22, 4, tzinfo=shanghai).timestamp() * US),
         48.0),
        (noise[1], "laeq", 1559398000 * US, 47.0),
    ])


def test_ndjson_with_a_column_per_channel(tmp_path, city, backfill):
    gps = _ids(city, "gps")
    source = tmp_path / "tracks.ndjson"
    lines = [{"tracker": gps[0], "time": 1559390000 + 10 * i, "lat": 31.2 + i / 1000,
              "lon": 121.5, "speed": 12.5} for i in range(3)]
    lines.append({"tracker": gps[1], "time": 1559390000, "lat": 31.2, "lon": 121.5,
                  "speed": None})
    source.write_text("".join(json.dumps(x) + "\n" for x in lines))
    summary = import_file(source, backfill, _options(mapping={"tracker": "device_id",
                                                              "time": "ts"}))
    assert summary.stored == 3 * 3 + 2
    assert summary.rejected == 1  # the null speed, line 4
    stored = _stored(backfill)
    assert (gps[0], "lat", (1559390000 + 20) * US, pytest.approx(31.202)) in stored
    assert {c for _, c, _, _ in stored} == {"lat", "lon", "speed"}


def test_parquet_long_layout_with_a_channel_column(tmp_path, city, backfill):
    gps = _ids(city, "gps")
    source = tmp_path / "history.parquet"
    table = pa.table({
        "device_id": pa.array([gps[0], gps[0], gps[1]]).dictionary_encode(),
        "channel": ["lat", "heading", "altitude"],
        "ts": pa.array([1_559_390_000 * US] * 3, pa.timestamp("us", "UTC")),
        "value": [31.25, 90.0, 12.0],
    })
    pq.write_table(table, source)
    summary = import_file(source, backfill, _options())
    assert (summary.stored, summary.rejected) == (2, 1)
    assert "has channels lat, lon, speed, heading" in summary.first_rejects[0].reason
    assert summary.first_rejects[0].line == 3  # the row number, from 1


def test_an_overlapping_file_and_live_readings_store_nothing_twice(tmp_path, city, backfill):
    noise = _ids(city, "noise")
    base = 1_500_000_000
    first = tmp_path / "a.csv"
    first.write_text("device_id,ts,value\n" + "".join(
        f"{noise[i % 4]},{base + 60 * i},{40 + i % 20}\n" for i in range(400)))
    second = tmp_path / "b.csv"  # the second half again, and 100 rows more
    second.write_text("device_id,ts,value\n" + "".join(
        f"{noise[i % 4]},{base + 60 * i},{40 + i % 20}\n" for i in range(200, 500)))
    assert import_file(first, backfill, _options()).stored == 400
    again = import_file(second, backfill, _options())
    assert (again.stored, again.duplicates) == (100, 200)
    # A reading the live intake holds (in its WAL) is not stored again by an import.
    live = ReadingBatch.concat([])
    third = tmp_path / "c.csv"
    third.write_text(f"device_id,ts,value\n{noise[0]},{base + 60 * 1000},50\n")
    index = backfill.registry.index[noise[0]]
    import numpy as np

    live = ReadingBatch(np.array([index], np.int32), np.array([0], np.int8),
                        np.array([(base + 60 * 1000) * US]), np.array([50.0]))
    held = import_file(third, backfill, _options(), live=lambda: [live])
    assert (held.stored, held.duplicates) == (0, 1)
    assert len(_stored(backfill)) == len(set(_stored(backfill))) == 500


def test_an_import_stopped_midway_resumes_without_duplicates(tmp_path, city, backfill):
    noise = _ids(city, "noise")
    source = tmp_path / "long.csv"
    source.write_text("device_id,ts,value\n" + "".join(
        f"{noise[i % 4]},{1_400_000_000 + 30 * i},{30 + i % 50}\n" for i in range(10_000)))
    options = _options(chunk_rows=1_000)
    stopped = import_file(source, backfill, options, stop_after_chunks=4)
    assert stopped.stored == 4_000
    # The crash came after chunk 4 was written but before the journal said so.
    journal = backfill.journal(stopped.digest)
    assert len(journal.chunks) == 4
    resumed = import_file(source, backfill, options)
    assert resumed.resumed_at_chunk == 4
    assert resumed.stored == 10_000 and resumed.duplicates == 0
    rows = _stored(backfill)
    assert len(rows) == len(set(rows)) == 10_000


def test_an_import_killed_with_sigkill_resumes_without_duplicates(tmp_path, city):
    """Killed at a known point, with no race: the rejects file is a pipe nobody reads, and the
    third chunk refuses more rows than a pipe holds, so the import blocks writing them, after
    that chunk's Parquet file is written and before the journal records it (the worst moment
    for a crash). The test kills it there, then runs the same command again."""
    pack = tmp_path / "city"
    save_pack(city, pack)
    data = tmp_path / "data"
    noise = _ids(city, "noise")
    source = tmp_path / "big.csv"
    rows, chunk = 400_000, 20_000
    bad = range(2 * chunk, 2 * chunk + 6_000)  # in the third chunk: ~300 KB of rejects
    with open(source, "w") as f:
        f.write("device_id,ts,value\n")
        for i in range(rows):
            value = "broken" if i in bad else 30 + i % 50
            f.write(f"{noise[i % 4]},{1_300_000_000 + 15 * i},{value}\n")
    rejects = tmp_path / "rejects.csv"
    os.mkfifo(rejects)
    reader = os.open(rejects, os.O_RDONLY | os.O_NONBLOCK)  # the writer's open need not wait
    command = [sys.executable, "-m", "cityops", "history", "import", str(source), "--city",
               str(pack), "--data", str(data), "--chunk-rows", str(chunk),
               "--rejects", str(rejects)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Wait for the first rejected bytes (or the child's end, which would be a failure).
        while child.poll() is None and not select.select([reader], [], [], 1.0)[0]:
            pass
        assert child.poll() is None, child.stderr.read().decode()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        os.close(reader)
    journal = json.loads(next((data / "history" / "imports").glob("*.json")).read_text())
    assert [c["index"] for c in journal["chunks"]] == [0, 1] and not journal["finished"]
    assert len(list((data / "history" / "imported").rglob("000002.parquet"))) == 1
    rejects.unlink()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stdout
    assert len(rejects.read_text().splitlines()) == 1 + len(bad)
    files = sorted((data / "history" / "imported").rglob("*.parquet"))
    keys = set()
    total = 0
    for path in files:
        t = pq.read_table(path, columns=["device_id", "ts"])
        total += t.num_rows
        keys |= set(zip(t["device_id"].cast(pa.string()).to_pylist(),
                        t["ts"].cast(pa.int64()).to_pylist()))
    assert total == len(keys) == rows - len(bad)


def test_files_that_cannot_be_imported_are_refused_plainly(tmp_path, backfill):
    missing_ts = tmp_path / "x.csv"
    missing_ts.write_text("device_id,when,value\nx,1,2\n")
    with pytest.raises(ImportRefused, match="no `ts` column .* --map COLUMN=ts"):
        import_file(missing_ts, backfill, _options())
    with pytest.raises(ImportRefused, match="cannot tell the format"):
        import_file(tmp_path / "x.xls", backfill, _options()) if (tmp_path / "x.xls").write_text(
            "") is not None else None
    nothing = tmp_path / "y.csv"
    nothing.write_text("ts,somewhere\n1,2\n")
    with pytest.raises(ImportRefused, match="no column named after a registered device"):
        import_file(nothing, backfill, _options())
    with pytest.raises(ImportRefused, match="--map names 'nope'"):
        import_file(nothing, backfill, _options(mapping={"nope": "ts"}))
    broken = tmp_path / "z.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(ImportRefused, match="cannot be read as parquet"):
        import_file(broken, backfill, _options())


def _rejects(path) -> list[tuple[int, str, str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(int(r["line"]), r["column"], r["value"], r["reason"])
                for r in csv.DictReader(f)]


def test_a_ragged_line_is_rejected_and_the_import_goes_on(tmp_path, city, backfill):
    noise = _ids(city, "noise")
    source = tmp_path / "ragged.csv"
    long_line = f"{noise[0]},{'x,' * 3000}61"
    source.write_text(
        "device_id,place,ts,value\n"
        f"{noise[0]},Main St,1559390000,61.5\n"  # line 2: good
        f"{noise[0]},Main St, north, corner,1559390060,62\n"  # line 3: 6 fields
        f"{noise[1]},Park,1559390000,48\n"  # line 4: good
        f"{noise[1]},Park,1559390060,loud\n"  # line 5: a bad cell after the ragged line
        f"{long_line}\n"  # line 6: 3,002 fields
        f"{noise[2]},\"Quay\nside\",1559390000,50\n"  # lines 7-8: one row (counted as one line)
        f"{noise[2]},Quay,1559390060,51\n"  # a good row after a quoted newline
        f"{noise[3]},Dock,15593"  # cut off: 3 fields, no newline
    )
    summary = import_file(source, backfill, _options())
    assert (summary.rows, summary.stored, summary.rejected) == (8, 4, 4)
    refused = _rejects(summary.rejects_path)
    assert [(line, column, reason) for line, column, _, reason in refused] == [
        (3, "", "expected 4 fields, found 6"),
        (5, "value", "value 'loud' is not a number"),
        (6, "", "expected 4 fields, found 3002"),
        # A quoted line break is one line to the reader: later lines count one short, as for
        # every reject (see _Csv.first_line).
        (9, "", "expected 4 fields, found 3"),
    ]
    assert refused[0][2] == f"{noise[0]},Main St, north, corner,1559390060,62"
    assert refused[2][2].startswith(long_line[:100]) and len(refused[2][2]) <= 201
    assert refused[3][2] == f"{noise[3]},Dock,15593"
    assert [r.line for r in summary.first_rejects] == [3, 5, 6, 9]
    assert _stored(backfill) == sorted([
        (noise[0], "laeq", 1559390000 * US, 61.5), (noise[1], "laeq", 1559390000 * US, 48.0),
        (noise[2], "laeq", 1559390000 * US, 50.0), (noise[2], "laeq", 1559390060 * US, 51.0),
    ])


def test_ragged_lines_are_rejected_once_when_an_import_resumes(tmp_path, city):
    noise = _ids(city, "noise")
    rows, chunk = 5_000, 1_000
    # Ragged lines at the start, inside chunks, on both sides of a chunk's edge, and last
    # (after exactly five chunks of good rows: no chunk of its own follows them).
    ragged_before = {0, 999, 1000, 2500, 2501, 4999, 5000}
    lines = ["device_id,ts,value"]
    expected = []
    for i in range(rows + 1):
        if i in ragged_before:
            expected.append(len(lines) + 1)
            lines.append(f"{noise[0]},{i},1,2" if i % 2 else f"{noise[0]}")
        if i < rows:
            lines.append(f"{noise[i % 4]},{1_400_000_000 + 30 * i},{30 + i % 50}")
    source = tmp_path / "ragged.csv"
    source.write_text("\n".join(lines) + "\n")

    def registry_backfill(name):
        registry = DeviceRegistry(city.kinds)
        registry.add(city.devices)
        return Backfill(tmp_path / name, registry)

    whole = import_file(source, registry_backfill("whole"), _options(chunk_rows=chunk),
                        rejects_path=tmp_path / "whole.csv")
    assert (whole.rows, whole.stored, whole.rejected) == (rows + 7, rows, 7)
    assert [line for line, *_ in _rejects(whole.rejects_path)] == expected

    backfill = registry_backfill("resumed")
    stopped = import_file(source, backfill, _options(chunk_rows=chunk),
                          rejects_path=tmp_path / "resumed.csv", stop_after_chunks=2)
    assert stopped.rejected == 3  # the lines before rows 0, 999 and 1000
    resumed = import_file(source, backfill, _options(chunk_rows=chunk),
                          rejects_path=tmp_path / "resumed.csv")
    assert resumed.resumed_at_chunk == 2
    assert (resumed.stored, resumed.rejected, resumed.duplicates) == (rows, 7, 0)
    assert _rejects(resumed.rejects_path) == _rejects(whole.rejects_path)


def test_a_header_that_does_not_fit_the_rows_is_refused_plainly(tmp_path, city, backfill):
    noise = _ids(city, "noise")
    short = tmp_path / "short.csv"
    short.write_text("device_id,ts\n" + "".join(
        f"{noise[0]},{1_400_000_000 + i},50\n" for i in range(3)))
    with pytest.raises(ImportRefused, match=r"header names 2 columns \(device_id, ts\) but "
                                            r"no line has 2 fields \(line 2 has 3\)"):
        import_file(short, backfill, _options())
    many = tmp_path / "many.csv"  # refused before the whole file is read
    many.write_text("device_id,ts\n" + "".join(
        f"{noise[0]},{1_400_000_000 + i},50\n" for i in range(200_000)))
    with pytest.raises(ImportRefused, match="no line has 2 fields"):
        import_file(many, backfill, _options())


def test_ndjson_lines_that_are_not_objects_are_rejected(tmp_path, city, backfill):
    noise = _ids(city, "noise")
    source = tmp_path / "mixed.ndjson"
    source.write_text(
        json.dumps({"device_id": noise[0], "ts": 1559390000, "value": 50}) + "\n"  # line 1
        "{\"device_id\": \"" + noise[0] + "\", \"ts\": 15593\n"  # line 2: cut off
        "[1, 2]\n"  # line 3: an array
        "\n"  # line 4: blank, skipped
        + json.dumps({"device_id": noise[1], "ts": 1559390000, "value": "loud"}) + "\n"  # 5
        + json.dumps({"device_id": noise[1], "ts": 1559390060, "value": 51}) + "\n"  # line 6
        + "7\n"  # line 7: a number
    )
    summary = import_file(source, backfill, _options())
    assert (summary.stored, summary.rejected) == (2, 4)
    assert [(line, column, reason) for line, column, _, reason in
            _rejects(summary.rejects_path)] == [
        (2, "", "not JSON"),
        (3, "", "not a JSON object"),
        (5, "value", "value 'loud' is not a number"),
        (7, "", "not a JSON object"),
    ]
    garbage = tmp_path / "garbage.ndjson"
    garbage.write_text("not json\n" * 5_000)
    with pytest.raises(ImportRefused, match=r"no line could be read \(line 1: not JSON\)"):
        import_file(garbage, backfill, _options())



def test_ragged_lines_met_again_when_a_file_is_read_again_as_text(tmp_path, city, backfill):
    """A word in a number column past Arrow's first 8 MB block makes the file be read again
    with every column as text, inside the first chunk (whose typed rows become text too): the
    ragged lines met by both reads are one reject each."""
    noise = _ids(city, "noise")
    source = tmp_path / "big.csv"
    rows = 400_000
    with open(source, "w") as f:
        f.write("device_id,ts,value\n")
        for i in range(rows):
            if i in (10, 390_000):
                f.write(f"{noise[0]},1,2,3\n")
            value = "n/a" if i == 395_000 else 30 + i % 50
            f.write(f"{noise[i % 4]},{1_300_000_000 + 15 * i},{value}\n")
    summary = import_file(source, backfill, _options())
    assert (summary.stored, summary.rejected) == (rows - 1, 3)
    assert [(line, reason) for line, _, _, reason in _rejects(summary.rejects_path)] == [
        (12, "expected 3 fields, found 4"), (390_003, "expected 3 fields, found 4"),
        (395_004, "value 'n/a' is not a number")]
    stored = _stored(backfill)
    # Rows of the typed first block and of the rest, read as text, stored alike.
    assert (noise[0], "laeq", 1_300_000_000 * US, 30.0) in stored
    assert (noise[3], "laeq", (1_300_000_000 + 15 * 399_999) * US, 79.0) in stored
