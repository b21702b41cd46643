"""The import benchmark's machinery at a tiny size: every format written, read alone and
imported whole into an empty history, one JSON object out. Speed is not asserted here."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cityops.cli.main import app


def test_the_benchmark_imports_every_format_whole(tmp_path) -> None:
    result = CliRunner().invoke(app, ["bench", "import", "--rows", "30000", "--devices", "50",
                                      "--workdir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["rows"] == 30_000 and out["fsync"] is True
    for fmt in ("parquet", "csv", "ndjson"):
        figures = out[fmt]
        assert figures["rows_per_s"] > 0 and figures["limit_rows_per_s"] > 0
        assert figures["bytes"] > 0
    assert out["parquet"]["bar_rows_per_s"] == 2_000_000
    assert out["csv"]["bar_rows_per_s"] == 500_000
    assert isinstance(out["ok"], bool)
    # The import really stored the rows it was timed on, once each.
    import pyarrow.parquet as pq

    stored = sum(pq.read_metadata(p).num_rows
                 for p in (tmp_path / "history-parquet" / "imported").rglob("*.parquet"))
    assert stored == 30_000
