"""The overload benchmark's machinery, small: a real `cityops serve` process on a grid city is
offered three times what it takes, open loop, for 10 s. What it cannot take it refuses with
429/503 and Retry-After, nothing else fails, its memory stays bounded, it takes normal load
again afterwards, and every reading it acknowledged is stored. No speed is asserted."""

from __future__ import annotations

import pytest

from cityops.bench import overload

MB = 1.0  # RSS figures are in MB


@pytest.mark.timeout(150)
def test_three_times_the_sustainable_rate_is_refused_cleanly_and_the_node_recovers(tmp_path):
    r = overload.run(duration=10, factor=3, devices=2000, batch=1000, warmup=30, measure=4,
                     recover=5, concurrency=8, workdir=tmp_path,
                     serve_options=["--max-in-flight", "8", "--history-queue", "8"])

    refused = r["answers"].get("429", 0) + r["answers"].get("503", 0)
    assert refused > 0, r  # it was overloaded, and said so
    assert set(r["all_answers"]) <= {"202", "429", "503"}, r
    assert r["retry_after_missing"] == 0, r
    assert r["errors"] == 0, r["error_samples"]  # no 500s, no resets, no timeouts
    assert r["node_log_errors"] == 0

    # Memory. What may grow under overload is bounded by the settings, not by the offered
    # load: 8 batches in progress and 8 waiting for the writer (60 KB bodies and their decoded
    # readings, a few MB), the bus (1,024 batches of 1,000 rows, ~40 MB), detection's windows
    # (2,000 devices x 128 rows, a few MB). Beside them, what normal load costs too: the WAL
    # rows kept until their segment is compacted and one compaction's working set (a 32 MB
    # segment as rows, concatenated, as Arrow: ~150 MB at its peak). Before admission counted
    # bodies being read, every connection (the client opens up to 512) read and decoded its
    # body before being refused: memory grew with the connections.
    assert r["rss_mb_max"] < r["rss_mb_before"] + 300 * MB, r

    # Recovery: at normal load every batch is taken again (a refused one after its
    # Retry-After), none fails, and the node says it is ready.
    assert r["recovery_batches"] > 0
    assert r["recovery_answers"]["202"] == r["recovery_batches"], r
    assert r["ready_after"]

    # Nothing lost: the history holds exactly the readings acknowledged with a 202.
    assert r["acknowledged"] > 0 and r["rejected"] == 0 and r["duplicates"] == 0
    assert r["stored"] == r["acknowledged"], r
