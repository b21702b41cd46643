"""Alerts from the bus become reports on the incident desk: a raised alert files a report
(a new case, its group's case, or merged into an open one); the alert's pack decides whether
the case is registered and dispatched at once or waits for an operator's check. Silenced and
inhibited alerts are counted here and filed nowhere.

The dispatch latency is measured here: from the alert's publication on the bus to every work
order created and its notification handed to the notifier.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import h3
import numpy as np

from cityops.act.desk import IncidentDesk
from cityops.background import Background, idle
from cityops.bus.subjects import ALERTS
from cityops.domain.alerts import AlertEvent
from cityops.domain.incidents.model import Report
from cityops.domain.incidents.workflow import Refused

log = logging.getLogger(__name__)


def report_of(event: AlertEvent) -> Report:
    """The alert as a report: what it is about (its device, when its subject is one: a cell
    or an area is named "cell:..." or "area:..."), and its group, which the desk files it by."""
    a = event.alert
    data: dict[str, object] = {"rule": a.rule, "subject": a.subject, "severity": a.severity}
    if a.value is not None:
        data["value"] = a.value
    if a.subject and ":" not in a.subject:
        data["device"] = a.subject
    if a.group:
        data["group"] = a.group
        data["group_within_s"] = a.group_within_s
    return Report(key=f"alert:{a.id}", source="sensor", at=a.first_seen,
                  text=a.detail or a.title, lat=a.lat, lon=a.lon, data=data)


LANE_RESOLUTION = 6  # H3: cells ~3.2 km a side


def lane_key(event: AlertEvent) -> tuple[str, str]:
    a = event.alert
    if a.lat is None or a.lon is None:
        return a.category, ""
    return a.category, h3.latlng_to_cell(a.lat, a.lon, LANE_RESOLUTION)


class AlertIntake:
    def __init__(self, desk: IncidentDesk, bus, *, queue: int = 256) -> None:
        self.desk = desk
        self.bus = bus
        self._queue = queue
        self._sub = None
        self._task = Background("alert-intake", self._run)
        self._busy = False  # filing a batch taken off the bus
        self.latencies: deque[float] = deque(maxlen=100_000)  # seconds
        # The same filings split in two: waiting to be picked up, and being filed.
        self.waits: deque[float] = deque(maxlen=100_000)
        self.stats = {"alerts": 0, "filed": 0, "failed": 0, "silenced": 0, "inhibited": 0}
        self.slowest: list[tuple[float, str, float]] = []

    async def start(self) -> None:
        self._sub = self.bus.subscribe(ALERTS, maxsize=self._queue)
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        if self._sub is not None:
            await self._sub.close()

    async def _run(self) -> None:
        while True:
            batches = await self._sub.get_batch(16)
            self._busy = True
            try:
                await self.take_all([e for events in batches for e in events])
            finally:
                self._busy = False

    async def caught_up(self, timeout: float = 10.0) -> bool:
        """Wait until every alert published so far has been filed (replays, tests)."""
        return await idle(lambda: bool(self._sub is not None and self._sub.depth())
                          or self._busy, timeout)

    async def take_all(self, events: list[AlertEvent]) -> None:
        """Alerts are filed side by side, so a burst shares the store's group commits instead
        of queueing behind one another; alerts of one category in one neighbourhood (an H3
        cell of about 6 km across, far wider than any merge radius) go one after the other, in
        order, because a later one may merge into the case an earlier one opens. Two alerts
        within a merge radius on either side of such a cell's edge may each open a case; a
        later report still merges into one of them."""
        lanes: dict[tuple[str, str], list[AlertEvent]] = {}
        for event in events:
            lanes.setdefault(lane_key(event), []).append(event)

        async def lane(queue: list[AlertEvent]) -> None:
            for event in queue:
                await self.take(event)

        await asyncio.gather(*(lane(q) for q in lanes.values()))

    async def take(self, event: AlertEvent) -> None:
        picked_ns = time.monotonic_ns()
        # A cleared event is filed too: an episode raised and cleared within one evaluation
        # (a backlog evaluated at once) is published only as "cleared", and it still happened.
        # Filing is idempotent by the alert's id, so a cleared alert already filed changes
        # nothing.
        if event.change not in ("raised", "cleared"):
            return
        self.stats["alerts"] += 1
        a = event.alert
        # Held by a silence, or explained by another alert (an area outage): detection has
        # recorded it with what held it; it opens no case and tells no one. Should the
        # silence end while it still fires, it comes again as raised, with neither set.
        if a.silenced_by:
            self.stats["silenced"] += 1
            return
        if a.inhibited_by:
            self.stats["inhibited"] += 1
            return
        try:
            await self.desk.async_report(
                report_of(event), a.category, title=a.title, titles=a.titles or None,
                description=a.detail,
                severity=a.severity, alert_id=a.id, departments=a.departments,
                urgency=a.urgency, auto_register=a.auto_register, areas=a.areas)
        except (Refused, ValueError) as error:
            # One alert that cannot be filed must not stop the others; it stays listed
            # under /api/v1/alerts for an operator to pick up.
            self.stats["failed"] += 1
            log.warning("alert %s not filed: %s", a.id, error)
            return
        self.stats["filed"] += 1
        if event.published_ns and event.change == "raised":
            latency = (time.monotonic_ns() - event.published_ns) / 1e9
            wait = (picked_ns - event.published_ns) / 1e9
            self.latencies.append(latency)
            self.waits.append(wait)
            # The slowest few, with what and when and how long they waited to be picked up,
            # so a tail can be told from a cold start and a busy loop from a slow store.
            self.slowest.append((round(latency * 1000, 2), a.category, round(time.time(), 1),
                                 round(wait * 1000, 2)))
            self.slowest.sort(reverse=True)
            del self.slowest[5:]

    def summary(self) -> dict:
        lat = np.array(self.latencies) * 1000
        pct = {f"dispatch_latency_p{p}_ms": round(float(np.percentile(lat, p)), 2)
               if len(lat) else None for p in (50, 99)}
        wait = np.array(self.waits) * 1000
        pct["dispatch_wait_p99_ms"] = round(float(np.percentile(wait, 99)), 2) \
            if len(wait) else None
        return {**self.stats, **pct, "latency_samples": len(lat),
                "dispatch_slowest": [list(x) for x in self.slowest]}
