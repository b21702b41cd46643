"""`cityops bench storm`: a real city's first day. The Pudong city at the seed's load with its
usual labelled anomalies, and on top: villages whose gateways go down, a share of flaky devices
dropping in and out, detectors repeating one alarm, and devices installed but never heard of.

The node runs in its own process, as `cityops bench pipeline` runs it; the simulator sends over
loopback. Afterwards the alerts and cases are read back through the API and held to the bars:

- each village out is explained by one outage case (its village's, its gateways', or its
  town's: counted per village), and none of its devices' own offline alerts is filed (each is
  recorded inhibited by the outage);
- no alert (so no case) for a device that never reported;
- every labelled anomaly detected, filed into a case that was dispatched (not held by the storm
  guard; packs that ask for an operator's check first, noise and vital signs, wait for it),
  and the dispatch latency p99 (alert published -> work orders made and notices handed over) under
  100 ms;
- a flaky device is one episode (one alert) however often it drops out, and so is a repeater.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from cityops.bench.ingest import detect_stats
from cityops.bench.pipeline import SLACK_S, all_pages, act_stats, score
from cityops.bench.server import BenchNode
from cityops.packs.pudong import generate
from cityops.scenarios.loader import load_scenarios
from cityops.sim.anomalies import AnomalyPlan, Label
from cityops.sim.run import simulate
from cityops.sim.storm import Flaky, Outage, Repeater, StormLabel, StormOptions

DISPATCH_P99_BAR_MS = 100.0
OUTAGE_RULE = "network.area_outage"
OFFLINE = "device_health.offline_"
DISPATCHED = {"dispatched", "accepted", "handled", "verified", "closed"}


def _register_unreported(url: str, headers: dict, pack, count: int, seed: int) -> list[str]:
    """Devices installed beside existing ones (at their places), registered but
    never sending: they stay commissioning and must never be called offline."""
    rng = np.random.default_rng(seed + 7)
    fixed = [d for d in pack.devices if d.kind in ("noise", "smoke", "manhole_tilt", "bin_fill")]
    picks = rng.choice(len(fixed), size=min(count, len(fixed)), replace=False)
    body = [{"id": f"new-{i:05d}", "kind": fixed[p].kind, "lat": fixed[p].lat,
             "lon": fixed[p].lon, "name": "installed, not yet reporting"}
            for i, p in enumerate(picks.tolist())]
    answer = httpx.post(url + "/api/v1/devices", json=body, headers=headers, timeout=120)
    answer.raise_for_status()
    return [d["id"] for d in body]


def _explains(subject: str, label: Outage) -> bool:
    return subject in ({f"outage:village:{label.village}", f"outage:town:{label.town}"}
                       | {f"outage:gateway:{g}" for g in label.gateways})


def judge(storm: list[StormLabel], alerts: list[dict], incidents: list[dict],
          unreported: set[str]) -> dict:
    """The storm's own figures from what the node recorded: outages and the cases explaining
    them, device alerts filed despite an outage, alerts of never-heard devices, episodes of
    flaky devices and repeaters."""
    by_id = {a["id"]: a for a in alerts}
    outages = [s for s in storm if isinstance(s, Outage)]
    outage_cases = [c for c in incidents if c["category"].endswith(".network_outage")]
    case_subjects = [by_id[c["alert_id"]]["subject"] for c in outage_cases
                     if c.get("alert_id") in by_id]
    per_village = {o.village: sum(_explains(s, o) for s in case_subjects) for o in outages}
    filed_one_by_one = 0
    for o in outages:
        behind = set(o.devices)
        filed_one_by_one += sum(
            1 for a in alerts if a["rule"].startswith(OFFLINE) and a["subject"] in behind
            and o.start - SLACK_S <= a["first_seen"] <= o.end + SLACK_S
            and not a.get("inhibited_by") and not a.get("silenced_by"))
    episodes = Counter(a["subject"] for a in alerts if a["rule"].startswith(OFFLINE))
    flaky = [s.device for s in storm if isinstance(s, Flaky)]
    repeaters = [s.device for s in storm if isinstance(s, Repeater)]
    repeat_episodes = Counter(a["subject"] for a in alerts
                              if a["subject"] in set(repeaters))
    return {
        "villages_out": len(outages),
        "outage_incidents": len(outage_cases),
        "outage_cases_per_village": sorted(per_village.values()),
        "outage_devices": sum(o.count for o in outages),
        "outage_devices_filed_one_by_one": filed_one_by_one,
        "unreported_devices": len(unreported),
        "unreported_alerts": sum(1 for a in alerts if a["subject"] in unreported),
        "flaky_devices": len(flaky),
        "flaky_devices_offline": sum(1 for d in flaky if episodes[d]),
        "flaky_episodes_max": max((episodes[d] for d in flaky), default=0),
        "flaky_flaps": sum(a.get("flaps", 0) for a in alerts
                           if a["rule"].startswith(OFFLINE) and a["subject"] in set(flaky)),
        "repeaters": len(repeaters),
        "repeater_episodes_max": max((repeat_episodes[d] for d in repeaters), default=0),
        "repeater_flaps": sum(a.get("flaps", 0) for a in alerts
                              if a["subject"] in set(repeaters)),
    }


def _dispatched(url: str, headers: dict, labels: list[Label], alerts: list[dict]) -> dict:
    """For every labelled anomaly detected: was its alert filed into a case that went out (or
    that waits for the operator's check because its pack asks for one: noise, vital signs),
    rather than held by the storm guard or filed nowhere?"""
    primary: dict[int, Label] = {}
    for label in labels:
        primary.setdefault(label.anomaly, label)
    done = checking = held = unfiled = 0
    held_rules: Counter[str] = Counter()
    for label in primary.values():
        found = [a for a in alerts if a["rule"] == label.rule and a["subject"] == label.subject
                 and label.start - SLACK_S <= a["first_seen"] <= label.end + SLACK_S]
        if not found:
            continue
        alert = httpx.get(f"{url}/api/v1/alerts/{found[0]['id']}", headers=headers,
                          timeout=30).json()
        if alert.get("silenced_by") or alert.get("inhibited_by") or not alert["incident_id"]:
            unfiled += 1
            continue
        case = httpx.get(f"{url}/api/v1/incidents/{alert['incident_id']}", headers=headers,
                         timeout=30).json()
        if case["status"] in DISPATCHED:
            done += 1
        elif case["status"] == "collected" and not alert["auto_register"]:
            checking += 1
        else:
            held += 1
            held_rules[label.rule] += 1
    return {"anomalies_dispatched": done, "anomalies_awaiting_check": checking,
            "anomalies_held": held, "anomalies_held_rules": dict(held_rules),
            "anomalies_unfiled": unfiled}


def run(*, duration: float, rate: int, seed: int, anomalies_per_min: float, outages: int,
        flaky: float, repeaters: int, unreported: int, store: str | None,
        workdir: Path | None, progress=lambda n: None, note=lambda s: None) -> dict:
    root = Path(workdir or tempfile.mkdtemp(prefix="cityops-storm-"))
    note("generating the Pudong city")
    pack = generate(seed)
    node = BenchNode(root, pack, store)
    note("starting the node")
    server = node.server
    server.start()
    admin = node.admin
    labels: list[Label] = []
    storm: list[StormLabel] = []
    try:
        unheard = set(_register_unreported(server.url, admin, pack, unreported, seed))
        scenarios = load_scenarios(None, kinds=pack.kinds)
        start = time.time()
        plan = AnomalyPlan(pack, scenarios, seed, start, anomalies_per_min,
                           end_ts=start + duration - SLACK_S)
        options = StormOptions(outages=outages, flaky=flaky, repeaters=repeaters)
        note(f"simulating {rate:,}/s for {duration:.0f} s: anomalies, {outages} villages "
             f"out, {flaky:.0%} flaky, {repeaters} repeaters")
        sent = [0]

        def on_progress(report):
            progress(report.sent - sent[0])
            sent[0] = report.sent

        report = asyncio.run(simulate(pack, server.url, node.device_key, rate=rate,
                                      duration=duration, batch_size=2000, seed=seed,
                                      progress_cb=on_progress, concurrency=4, plan=plan,
                                      on_labels=labels.extend, storm=options,
                                      on_storm=storm.extend))
        note("letting detection and the desk catch up")
        detect_stats(server.url, admin)
        time.sleep(3)  # a few ticks for the time-driven rules
        stats = detect_stats(server.url, admin)
        act = act_stats(server.url, admin)
        alerts = all_pages(server.url, "/api/v1/alerts", admin)
        incidents = all_pages(server.url, "/api/v1/incidents", admin)
        dispatched = _dispatched(server.url, admin, labels, alerts)
    finally:
        server.stop()
    scored = score(labels, alerts)
    figures = judge(storm, alerts, incidents, unheard)
    p99 = act.get("dispatch_latency_p99_ms")
    bars = {
        "one_outage_case_per_village_out": figures["villages_out"] > 0 and all(
            n == 1 for n in figures["outage_cases_per_village"]),
        "no_device_case_during_its_outage": figures["outage_devices_filed_one_by_one"] == 0,
        "no_case_for_a_device_never_heard": figures["unreported_alerts"] == 0,
        "every_anomaly_detected": scored["detected"] == scored["injected"],
        "every_anomaly_dispatched": dispatched["anomalies_dispatched"]
        + dispatched["anomalies_awaiting_check"] == scored["injected"],
        "dispatch_p99_under_100_ms": p99 is not None and p99 < DISPATCH_P99_BAR_MS,
        "flapping_is_one_episode": figures["flaky_episodes_max"] <= 1
        and figures["repeater_episodes_max"] <= 1,
    }
    return {
        "incidents_opened": len(incidents),
        "outage_incidents": figures["outage_incidents"],
        "villages_out": figures["villages_out"],
        "alerts": len(alerts),
        "inhibited": sum(1 for a in alerts if a.get("inhibited_by")),
        "silenced": sum(1 for a in alerts if a.get("silenced_by")),
        "grouped": act.get("grouped"),
        "held_by_storm_guard": act.get("held_by_storm_guard"),
        "storms_started": act.get("storms_started"),
        "auto_dispatched": sum(1 for c in incidents if c.get("dispatched_at")
                               and c.get("source") == "sensor"),
        "injected": scored["injected"],
        "detected": scored["detected"],
        **dispatched,
        "missed_rules": scored["missed_rules"],
        "dispatch_latency_p50_ms": act.get("dispatch_latency_p50_ms"),
        "dispatch_latency_p99_ms": p99,
        "dispatch_limit_ms": DISPATCH_P99_BAR_MS,
        "alert_latency_p99_ms": stats.get("alert_latency_p99_ms"),
        "loop_lag_p99_ms": act.get("loop_lag_p99_ms"),
        **{k: v for k, v in figures.items() if k not in ("villages_out", "outage_incidents")},
        "readings_per_s": round(report.accepted / report.elapsed_s) if report.elapsed_s else 0,
        "accepted": report.accepted,
        "rejected": report.rejected,
        "duration_s": duration,
        "devices": len(pack.devices),
        "bars": bars,
        "ok": all(bars.values()),
    }
