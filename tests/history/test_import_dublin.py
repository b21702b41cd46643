"""The real Dublin noise history (9 monitors, hourly, 2015-2021) imported with the CLI, read
back, learnt from, and imported again to no effect."""

from __future__ import annotations

import csv
import datetime as dt
import statistics
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cityops.cli.main import app
from tests.history_kit import (
    DUBLIN_FILE,
    MONITORS,
    device_id,
    dublin_map_args,
    read_dublin,
    save_dublin_city,
)

runner = CliRunner()
DUBLIN = ZoneInfo("Europe/Dublin")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The Dublin city, its data folder with the whole file imported once, and the file."""
    from tests.conftest import SHARED_DATA

    source = SHARED_DATA / DUBLIN_FILE
    if not source.exists():
        pytest.skip(f"real data file {source} is missing")
    root = tmp_path_factory.mktemp("dublin")
    city = save_dublin_city(root / "city")
    data = root / "data"
    result = runner.invoke(app, ["history", "import", str(source), "--city", str(city),
                                 "--data", str(data), "--rejects", str(root / "rejects.csv"),
                                 *dublin_map_args()])
    assert result.exit_code == 0, result.output
    return city, data, source, root / "rejects.csv", result.output


def _count(text: str, label: str) -> int:
    for line in text.splitlines():
        if line.strip().startswith(label):
            return int(line.split(label, 1)[1].split()[0].replace(",", ""))
    raise AssertionError(f"{label!r} not in the summary:\n{text}")


def test_every_monitor_and_every_cell_accounted_for(imported):
    _, data, source, rejects, output = imported
    rows = read_dublin(source)
    empty = sum(1 for row in rows for m in MONITORS if not row[f"laeq_{m}"].strip())
    values = sum(1 for row in rows for m in MONITORS if row[f"laeq_{m}"].strip())
    assert _count(output, "rows read") == len(rows) == 52_779
    assert _count(output, "readings stored") == values
    # The empty cells are the rejects: counted, each with its line and the reason.
    assert _count(output, "rejected") == empty > 0
    with open(rejects, newline="") as f:
        refused = list(csv.DictReader(f))
    assert len(refused) == empty
    assert {r["reason"] for r in refused} == {"empty cell"}
    first = rows[0]  # line 2 of the file, after the header
    gaps = sorted(f"laeq_{m}" for m in MONITORS if not first[f"laeq_{m}"].strip())
    assert sorted(r["column"] for r in refused if r["line"] == "2") == gaps


async def test_a_2015_night_reading_reads_back(imported, live_node):
    city, data, source, _, _ = imported
    from cityops.packs.format import load_pack

    row = next(r for r in read_dublin(source) if r["datetime"] == "2015-03-25 02:00:00")
    when = dt.datetime(2015, 3, 25, 2, tzinfo=DUBLIN)
    async with live_node(load_pack(city), data) as live:
        key = await live.key("admin")
        async with live.client(key) as client:
            for monitor in MONITORS:
                answer = await client.get(
                    f"/api/v1/devices/{device_id(monitor)}/readings",
                    params={"from": when.isoformat(),
                            "to": (when + dt.timedelta(hours=1)).isoformat()})
                assert answer.status_code == 200, answer.text
                items = answer.json()["items"]
                assert [i["value"] for i in items] == [float(row[f"laeq_{monitor}"])]
                assert dt.datetime.fromisoformat(items[0]["ts"]) == when
            count = await client.get("/api/v1/history/count")
            assert count.json()["readings"] == _count(imported[4], "readings stored")


async def test_noise_baseline_learnt_from_the_imported_history(imported, live_node):
    city, data, source, _, _ = imported
    from cityops.packs.format import load_pack

    # The node starts the day the file ends: its baselines come from the imported weeks.
    now = dt.datetime(2021, 1, 19, 12, tzinfo=dt.UTC).timestamp()
    rows = read_dublin(source)
    async with live_node(load_pack(city), data, clock=lambda: now) as live:
        key = await live.key("admin")
        async with live.client(key) as client:
            signs = (await client.get("/api/v1/vital-signs")).json()["items"]
    learnt = {s["device_id"]: s for s in signs if s["rule"] == "noise.unusual_for_the_hour"}
    assert set(learnt) == {device_id(m) for m in MONITORS}
    for monitor in MONITORS:
        sign = learnt[device_id(monitor)]
        # The last reading, Tuesday 2021-01-19 00:00, against the same hour of the four
        # Tuesdays before it, worked out here from the file alone.
        assert dt.datetime.fromtimestamp(sign["ts"], DUBLIN) == dt.datetime(2021, 1, 19,
                                                                             tzinfo=DUBLIN)
        past = [r[f"laeq_{monitor}"] for r in rows if r["datetime"] in {
            f"{day} 00:00:00" for day in ("2020-12-22", "2020-12-29", "2021-01-05",
                                          "2021-01-12")}]
        past = [float(v) for v in past if v.strip()]
        assert sign["history"] == len(past) >= 3
        assert sign["baseline"] == pytest.approx(statistics.median(past), abs=1e-3)
        assert sign["status"] in ("normal", "high", "low")


def test_importing_the_same_file_again_stores_nothing(imported):
    city, data, source, rejects, first = imported
    again = runner.invoke(app, ["history", "import", str(source), "--city", str(city),
                                "--data", str(data), "--rejects", str(rejects),
                                *dublin_map_args()])
    assert again.exit_code == 0, again.output
    assert "already imported" in again.output
    stored = sorted(Path(data, "history", "imported").rglob("*.parquet"))
    import pyarrow.parquet as pq

    assert sum(pq.read_metadata(p).num_rows for p in stored) == _count(first, "readings stored")
