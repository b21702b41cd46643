"""Evidence from Frigate: when an alert of a mapped camera opens or joins a case, the snapshot
of the Frigate event behind it is fetched from Frigate's HTTP API
(`GET {server}/api/events/<id>/snapshot.jpg`) and kept as evidence on that case, with the
clip's link (`{server}/api/events/<id>/clip.mp4`) beside it (act/camera_evidence.py).

This runs beside ingest, never in its way: alerts are read off the bus (a queue of its own,
read at once), the work for each is a task of its own, at most `concurrency` at a time and
`max_pending` waiting (more are counted and skipped: an alert storm must not turn into a
download storm against the NVR). A case is waited for (the act side files the alert a moment
after it is raised) up to `case_wait_s`. Its evidence record is written first, so the case
shows the event and the clip at once; the snapshot follows. A fetch is bounded in time
(`timeout_s`) and size (`max_bytes`), must be a JPEG, and is retried `attempts` times with a
doubling pause: an NVR that is down or rebooting does not lose the evidence, and never the
case. Each failed attempt is written on the record (attempts, last error), so an operator sees
that the snapshot is late and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from cityops.act import camera_evidence as ce
from cityops.background import Background
from cityops.bus.subjects import ALERTS
from cityops.domain.alerts import Alert
from cityops.ingest.frigate import Cause, FrigateIntake

log = logging.getLogger(__name__)

JPEG = b"\xff\xd8\xff"
SEEN_KEPT = 10_000  # alert ids already taken up (a raised alert is published once, but a
# cluster's redelivery may repeat it)


class BadSnapshot(Exception):
    pass


class FrigateEvidence:
    def __init__(
        self,
        intake: FrigateIntake,
        bus: Any,
        store: Any,
        data_dir: Path,
        clock: Callable[[], float],
        *,
        attempts: int = 6,
        retry_s: float = 2.0,
        timeout_s: float = 5.0,
        max_bytes: int = 4 << 20,
        case_wait_s: float = 120.0,
        concurrency: int = 4,
        max_pending: int = 256,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.intake = intake
        self.bus = bus
        self.data_dir = data_dir
        self.clock = clock
        self.attempts = max(1, attempts)
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.case_wait_s = case_wait_s
        self.max_pending = max_pending
        self.book = ce.EvidenceBook(store, clock)
        self.snapshots = ce.Snapshots(store, clock)
        self.store = store
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._sub: Any = None
        self._reader = Background("frigate-evidence", self._read)
        self._gate = asyncio.Semaphore(concurrency)
        self._jobs: set[asyncio.Task[None]] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.stats = {"alerts": 0, "no_cause": 0, "no_case": 0, "skipped": 0, "filed": 0,
                      "fetched": 0, "failed_attempts": 0, "gave_up": 0}

    async def start(self) -> None:
        self._http = httpx.AsyncClient(transport=self._transport, timeout=self.timeout_s,
                                       follow_redirects=False)
        self._sub = self.bus.subscribe(ALERTS, maxsize=1024)
        self._reader.start()

    async def stop(self) -> None:
        await self._reader.stop()
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        if self._sub is not None:
            await self._sub.close()
        if self._http is not None:
            await self._http.aclose()

    @property
    def busy(self) -> bool:
        return bool(self._jobs) or bool(self._sub is not None and self._sub.depth())

    async def _read(self) -> None:
        while True:
            for events in await self._sub.get_batch(64):
                for event in events:
                    if event.change == "raised":
                        self.consider(event.alert)

    def consider(self, alert: Alert) -> None:
        """Take up a raised alert if it is a mapped camera's: never waits."""
        if alert.silenced_by or alert.inhibited_by:
            return  # files no case
        if alert.subject not in self.intake.tracker.zones_of or alert.id in self._seen:
            return
        self.stats["alerts"] += 1
        cause = self.intake.tracker.cause_for(alert.subject, alert.first_seen)
        if cause is None:
            self.stats["no_cause"] += 1
            return
        self._seen[alert.id] = None
        if len(self._seen) > SEEN_KEPT:
            self._seen.popitem(last=False)
        if len(self._jobs) >= self.max_pending:
            self.stats["skipped"] += 1
            log.warning("camera evidence of alert %s skipped: %d fetches already waiting",
                        alert.id, len(self._jobs))
            return
        job = asyncio.create_task(self._evidence(alert, cause), name=f"evidence-{alert.id}")
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _evidence(self, alert: Alert, cause: Cause) -> None:
        try:
            incident = await self._case_of(alert.id)
            if incident is None:
                self.stats["no_case"] += 1
                log.info("alert %s filed into no case within %.0f s: no camera evidence",
                         alert.id, self.case_wait_s)
                return
            await self.book.keep(incident, alert.id, ce.CameraEvidence(
                incident=incident, alert=alert.id, device=alert.subject, event=cause.event,
                source_event=cause.frigate_event, camera=cause.camera, zone=cause.zone,
                label=cause.label, seen_at=cause.at, clip_url=cause.clip_url))
            self.stats["filed"] += 1
            await self._fetch(alert, cause, incident)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("camera evidence of alert %s failed", alert.id)

    async def _case_of(self, alert_id: str) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.case_wait_s
        while True:
            found: str | None = await self.store.incident_of_report(f"alert:{alert_id}")
            if found is not None or loop.time() >= deadline:
                return found
            await asyncio.sleep(0.1)

    async def _fetch(self, alert: Alert, cause: Cause, incident: str) -> None:
        delay = self.retry_s
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._gate, asyncio.timeout(self.timeout_s * 3):
                    # httpx's timeout is per read; this bounds a server that drips.
                    body = await self._download(cause.snapshot_url)
            except (httpx.HTTPError, BadSnapshot, OSError) as exc:
                self.stats["failed_attempts"] += 1
                error = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
                last = attempt == self.attempts
                await self.book.change(alert.id, attempts=attempt,
                                       error=error + ("" if not last else " (gave up)"))
                if last:
                    self.stats["gave_up"] += 1
                    log.warning("snapshot of Frigate event %s for case %s not fetched after "
                                "%d attempts: %s", cause.frigate_event, incident, attempt, error)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2.0, 300.0)
                continue
            name = ce.name_for(cause.frigate_event, alert.id)
            path = ce.file_of(self.data_dir, name)
            await asyncio.to_thread(_save, path, body)
            await self.snapshots.keep(alert.subject, name, ce.Snapshot(
                device=alert.subject, incident=incident, alert=alert.id, event=cause.event,
                taken_at=cause.at, bytes=len(body)))
            await self.book.change(alert.id, snapshot=name, snapshot_bytes=len(body),
                                   attempts=attempt, error="", fetched_at=self.clock())
            self.stats["fetched"] += 1
            return

    async def _download(self, url: str) -> bytes:
        assert self._http is not None
        async with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                raise BadSnapshot(f"{url} answered {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                raise BadSnapshot(f"{url}: {declared} bytes is over the {self.max_bytes} "
                                  f"byte limit")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise BadSnapshot(f"{url}: over the {self.max_bytes} byte limit")
                chunks.append(chunk)
        body = b"".join(chunks)
        if not body.startswith(JPEG):
            raise BadSnapshot(f"{url} did not answer a JPEG image")
        return body


def _save(path: Path, body: bytes) -> None:
    """Whole or not at all: a reader never sees half an image under its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(body)
    partial.replace(path)
