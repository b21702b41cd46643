"""Prometheus metrics of one node (its own registry, so several nodes can live in one process)."""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class RateMeter:
    """Readings per second over the last `window` seconds, for the status page."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._events: deque[tuple[float, int]] = deque()
        self._total = 0

    def add(self, n: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._events.append((now, n))
        self._total += n
        self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        return self._total / self.window

    def _trim(self, now: float) -> None:
        while self._events and self._events[0][0] < now - self.window:
            self._total -= self._events.popleft()[1]


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted = Counter("cityops_readings_accepted", "Readings stored durably",
                                ["source"], registry=r)
        self.values = Counter("cityops_values_stored", "Channel values stored (a reading of "
                              "several channels stores several)", ["source"], registry=r)
        self.duplicates = Counter("cityops_readings_duplicate", "Readings already stored",
                                  ["source"], registry=r)
        self.rejected = Counter("cityops_readings_rejected", "Readings refused at intake",
                                ["source"], registry=r)
        self.overloaded = Counter("cityops_ingest_overloaded", "Ingest requests refused (429/503)",
                                  ["reason"], registry=r)
        self.dead_letters = Gauge("cityops_dead_letters", "Dead letters by state (added, "
                                  "written, dropped for overload, pending)", ["state"], registry=r)
        self.dead_letters_capped = Counter(
            "cityops_dead_letters_capped", "Dead letters counted but not kept: their source "
            "had used its allowance for the window", ["source"], registry=r)
        self.mqtt = Gauge("cityops_mqtt", "MQTT intake figures (connected is 0/1)", ["figure"],
                          registry=r)
        self.ingest_seconds = Histogram("cityops_ingest_batch_seconds",
                                        "Arrival of a batch to its durable acknowledgement",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.store_seconds = Histogram("cityops_store_seconds", "State store call latency",
                                       ["op"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("cityops_queue_depth", "Items waiting in a bounded queue",
                                 ["queue"], registry=r)
        self.ingest_rate = Gauge("cityops_ingest_rate", "Readings stored per second (10 s window)",
                                 registry=r)
        self.alerts = Counter("cityops_alerts", "Alert events by change", ["change"], registry=r)
        self.alert_latency = Histogram("cityops_alert_latency_seconds",
                                       "Reading arrival to alert published",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.rule_errors = Counter("cityops_rule_errors", "Rule evaluations that failed",
                                   ["rule"], registry=r)
        self.loop_lag = Histogram("cityops_event_loop_lag_seconds",
                                  "How late the event loop woke a 20 ms timer",
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.devices = Gauge("cityops_devices", "Registered devices", registry=r)
        self.refused = Counter("cityops_requests_refused", "Requests refused by fair share "
                               "(rate, in_flight, auth)", ["reason"], registry=r)
        self.rate = RateMeter()

    def watch_queue(self, name: str, depth) -> None:
        """Sample `depth()` at every scrape."""
        self.queue_depth.labels(name).set_function(depth)

    def watch_fields(self, gauge: Gauge, stats) -> None:
        """One labelled series per numeric field of the struct that `stats()` returns."""
        for name in stats().__struct_fields__:
            gauge.labels(name).set_function(lambda name=name: float(getattr(stats(), name)))

    def render(self) -> bytes:
        self.ingest_rate.set(self.rate.rate())
        return generate_latest(self.registry)
