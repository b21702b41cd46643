"""The NGSI-LD benchmark's machinery: its upsert bodies, its notification receiver (a real
process on loopback) and the matching of notifications to the upserts that caused them; and
a small run of the whole benchmark against a real node. Speed is not asserted here."""

from __future__ import annotations

import json

import httpx
import msgspec
import numpy as np

from cityops.bench import ngsild as bench


def test_a_round_carries_every_entity_once_in_batches():
    ids = [bench.entity_id(f"n{i}") for i in range(5)]
    values = np.array([50.0, 51.0, 52.0, 53.0, 54.0])
    got = bench.make_round(ids, values, "2026-01-01T00:00:00Z", 2)
    assert [chunk for chunk, _ in got] == [ids[:2], ids[2:4], ids[4:]]
    first = msgspec.json.decode(got[0][1])
    assert first[1] == {"id": "urn:ngsi-ld:NoiseLevelObserved:n1", "type": "NoiseLevelObserved",
                        "LAeq": {"type": "Property", "value": 51.0,
                                 "observedAt": "2026-01-01T00:00:00Z"}}


def test_the_receiver_notes_each_notified_entity_and_latency_is_matched():
    receiver = bench.Receiver()
    receiver.start()
    try:
        sender = bench.Sender("http://unused", "k", "http://unused/ctx", 1)
        sender.sent_ns[("urn:a", "2026-01-01T00:00:00Z")] = 0
        notification = {"id": "urn:ngsi-ld:Notification:1", "type": "Notification",
                        "subscriptionId": "urn:s", "notifiedAt": "2026-01-01T00:00:01Z",
                        "data": [{"id": "urn:a", "type": "NoiseLevelObserved",
                                  "LAeq": {"type": "Property", "value": 50.0,
                                           "observedAt": "2026-01-01T00:00:00Z"}},
                                 {"id": "urn:b", "type": "NoiseLevelObserved",
                                  "LAeq": [{"type": "Property", "value": 51.0,
                                            "observedAt": "2026-01-01T00:00:00Z"}]},
                                 {"id": "urn:c", "type": "NoiseLevelObserved"}]}
        r = httpx.post(receiver.url + "/notify", json=notification)
        assert r.status_code == 204
        assert httpx.post(receiver.url + "/notify", content=b"not json").status_code == 204
        assert receiver.count() == 2
        got = receiver.received()
        assert got.ids == ["urn:a", "urn:b"]
        latencies, unmatched = bench._latencies(sender, got, {"2026-01-01T00:00:00Z"})
        assert len(latencies) == 1 and latencies[0] > 0  # urn:a, sent at the clock's origin
        assert unmatched == 1  # urn:b was never sent
        assert len(bench._latencies(sender, got, {"2027-01-01T00:00:00Z"})[0]) == 0
    finally:
        receiver.stop()


def test_a_small_run_of_the_whole_benchmark(tmp_path):
    out = bench.run(entities=200, rounds=2, paced_rounds=1, pace_per_s=2_000, batch=50,
                    concurrency=2, subscriptions=10, queries=3, workdir=tmp_path, settle_s=60)
    assert json.loads(json.dumps(out)) == out
    assert out["failed"] == 0, out["failures"]
    assert out["updated"] == 400 and out["paced_updated"] == 200
    assert out["subscriptions"] == 10
    assert out["stored"] == 600  # every update became a reading
    assert out["notified_expected"] == 600
    # Every paced update is notified; at full speed newer states may replace pending ones.
    assert out["notified_steady_matched"] == 200 and out["notified_unmatched"] == 0
    assert out["notified_at_full_speed"] + out["superseded_at_full_speed"] == 400
    assert out["notified"] == 200 + out["notified_at_full_speed"]
    assert out["entity_updates_per_s_notified"] > 0 and out["seconds_to_last_notification"] > 0
    for key in ("entity_updates_per_s", "query_p99_ms", "notification_latency_p99_ms",
                "expand_limit_per_s"):
        assert out[key] is not None and out[key] > 0, key
    assert set(out["met"]) == {"entity_updates_per_s_at_least_50000",
                               "notification_p99_under_100_ms"}
