"""`cityops bench pipeline`: the Pudong city at the seed's load, every scenario pack active,
labelled anomalies injected; how fast alerts come and whether every anomaly is found.

The node runs in its own process (as in production); the simulator and the anomaly plan run in
this one and send over loopback. Alert latency is measured by the node, from a batch's arrival
to the alert's publication on the bus. Scoring: an anomaly is detected when an alert of the
rule it was made for, about its subject, opened during it; an alert that matches no label of
any anomaly (including the companions an anomaly sets off) is a false alert.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path

import httpx

from cityops.bench.ingest import detect_stats
from cityops.bench.server import BenchNode
from cityops.packs.pudong import generate
from cityops.scenarios.loader import load_scenarios
from cityops.sim.anomalies import AnomalyPlan, Label
from cityops.sim.run import simulate

SLACK_S = 5.0  # clock and batching slack when matching alerts to labels


def all_pages(url: str, path: str, headers: dict) -> list[dict]:
    """Every item of a paged list (`items`, `next`), a thousand a page."""
    out, cursor = [], None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(url + path, params=params, headers=headers, timeout=60).json()
        out += page["items"]
        cursor = page["next"]
        if not cursor:
            return out


def _all_alerts(url: str, headers: dict) -> list[dict]:
    return all_pages(url, "/api/v1/alerts", headers)


def act_stats(url: str, headers: dict) -> dict:
    """The incident desk's counters and dispatch latency, once every raised alert is filed."""
    deadline = time.monotonic() + 60
    stats: dict = {}
    while time.monotonic() < deadline:
        r = httpx.get(url + "/api/v1/act/stats", headers=headers, timeout=30)
        if r.status_code != 200:
            return {}
        stats = r.json()
        if stats.get("alerts", 0) == stats.get("filed", 0) + stats.get("failed", 0):
            return stats
        time.sleep(0.2)
    return stats


def score(labels: list[Label], alerts: list[dict]) -> dict:
    def matches(alert: dict, label: Label) -> bool:
        return (alert["rule"] == label.rule and alert["subject"] == label.subject
                and label.start - SLACK_S <= alert["first_seen"] <= label.end + SLACK_S)

    primary: dict[int, Label] = {}
    for label in labels:
        primary.setdefault(label.anomaly, label)
    found = {n for n, label in primary.items() if any(matches(a, label) for a in alerts)}
    false = [a for a in alerts if not any(matches(a, label) for label in labels)]
    missed = sorted({primary[n].rule for n in primary if n not in found})
    return {"injected": len(primary), "detected": len(found), "false_alerts": len(false),
            "injected_rules": sorted({label.rule for label in primary.values()}),
            "missed_rules": missed,
            "false_rules": sorted({a["rule"] for a in false})}


class _Queries(threading.Thread):
    """The incident-list query mix on a store holding a million cases (made by `cityops bench
    incidents`), run halfway through the simulation so it shares the machine with the load."""

    def __init__(self, url: str, delay_s: float) -> None:
        super().__init__(daemon=True)
        self.url, self.delay_s = url, delay_s
        self.result: dict = {}

    def run(self) -> None:
        from cityops.bench.incidents import query_benchmark_at

        time.sleep(self.delay_s)
        try:
            self.result = query_benchmark_at(self.url, rounds=20)
        except Exception as error:  # reported in the JSON, not lost in a thread
            self.result = {"error": f"{type(error).__name__}: {error}"}


def run(*, duration: float, rate: int, seed: int, anomalies_per_min: float, store: str | None,
        workdir: Path | None, progress=lambda n: None, note=lambda s: None,
        incidents_store: str | None = None, loop_stall_ms: float | None = None) -> dict:
    root = Path(workdir or tempfile.mkdtemp(prefix="cityops-pipeline-"))
    note("generating the Pudong city")
    pack = generate(seed)
    node = BenchNode(root, pack, store, extra=["--loop-stall-ms", str(loop_stall_ms)]
                     if loop_stall_ms else None)
    note("starting the node")
    server = node.server
    server.start()
    admin = node.admin
    labels: list[Label] = []
    try:
        scenarios = load_scenarios(None, kinds=pack.kinds)
        start = time.time()
        plan = AnomalyPlan(pack, scenarios, seed, start, anomalies_per_min,
                           end_ts=start + duration - SLACK_S)
        note(f"simulating {rate:,}/s for {duration:.0f} s with anomalies")
        sent = [0]

        def on_progress(report):
            progress(report.sent - sent[0])
            sent[0] = report.sent

        queries = _Queries(incidents_store, duration / 2) if incidents_store else None
        if queries is not None:
            queries.start()
        report = asyncio.run(simulate(pack, server.url, node.device_key, rate=rate,
                                      duration=duration, batch_size=2000, seed=seed,
                                      progress_cb=on_progress, concurrency=4, plan=plan,
                                      on_labels=labels.extend))
        note("letting detection catch up")
        stats = detect_stats(server.url, admin)
        time.sleep(3)  # a few ticks for the time-driven rules
        stats = detect_stats(server.url, admin)
        alerts = _all_alerts(server.url, admin)
        act = act_stats(server.url, admin)
        if queries is not None:
            queries.join()
    finally:
        server.stop()
    scored = score(labels, alerts)
    return {
        "readings_per_s": round(report.accepted / report.elapsed_s) if report.elapsed_s else 0,
        "alert_latency_p50_ms": stats.get("alert_latency_p50_ms"),
        "alert_latency_p99_ms": stats.get("alert_latency_p99_ms"),
        # alert published -> every work order created and its notification handed over
        "dispatch_latency_p50_ms": act.get("dispatch_latency_p50_ms"),
        "dispatch_latency_p99_ms": act.get("dispatch_latency_p99_ms"),
        "incidents_created": act.get("created"),
        "incidents_merged": act.get("merged"),
        "notifications": act.get("notices"),
        # of which waiting to be picked up; and how late the node's event loop ran, over all
        "dispatch_wait_p99_ms": act.get("dispatch_wait_p99_ms"),
        "loop_lag_p99_ms": act.get("loop_lag_p99_ms"),
        "loop_lag_max_ms": act.get("loop_lag_max_ms"),
        "dispatch_samples": act.get("latency_samples"),
        "dispatch_slowest": act.get("dispatch_slowest"),
        # the incident list with filters over the cases of `incidents_store`, under this load
        "incidents_query_p50_ms": queries.result.get("incidents_query_p50_ms") if queries else None,
        "incidents_query_p99_ms": queries.result.get("incidents_query_p99_ms") if queries else None,
        "incidents_queried": queries.result.get("queries") if queries else None,
        "incidents_query_error": queries.result.get("error") if queries else None,
        "injected": scored["injected"],
        "detected": scored["detected"],
        "false_alerts": scored["false_alerts"],
        "missed_rules": scored["missed_rules"],
        "false_rules": scored["false_rules"],
        "injected_rules": len(scored["injected_rules"]),
        "injected_rule_names": scored["injected_rules"],
        "rules_injectable": len(plan.injectable),
        "rules_skipped": plan.skipped,
        # planned - withheld + added == made == accepted + rejected + failed + unsent
        "planned": report.planned,
        "withheld": report.withheld,
        "added": report.added,
        "made": report.made,
        "sent": report.sent,
        "accepted": report.accepted,
        "rejected": report.rejected,
        "failed": report.failed,
        "unsent": report.unsent,
        "retried": report.retried,
        "alerts": len(alerts),
        "latency_samples": stats.get("latency_samples"),
        "detect_rows": stats.get("rows"),
        "detect_rejected_rows": stats.get("rejected_rows"),
        "rejections_dropped": stats.get("rejections_dropped"),
        "duration_s": duration,
        "devices": len(pack.devices),
    }
