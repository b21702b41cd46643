"""Making, keeping and listing reports, and the monthly schedule.

A report is made whole before it is answered: the figures gathered (store and history reads),
the PDF rendered in a worker thread, written to `<data dir>/reports/<id>.pdf` (to a temporary
name first, so a crash leaves no half file under a real name), and only then its record saved.
A record therefore always names a whole file on the node that made it. In a cluster the file
is on the web node that made it; another node lists the report but answers its PDF only if it
shares the data dir (noted in docs/api.md).

At most `at_once` reports are rendered at a time (rendering holds a core): a request beyond
that is refused at once with 503 and Retry-After rather than queued behind minutes of work,
while the schedule waits its turn.

The schedule: on the first days of a month (any time after it began, by the node's clock, in
the city's time zone) the month before is reported for each district and each town, once. The
meta key `reports.scheduled` holds the last month done; a node that finds none (a new city)
starts from the month before without making anything, so a fresh node or a test node never
renders a month of nothing at start. A scheduled report's record is unique per area and month,
so two nodes running the schedule make each report once.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cityops.domain.city import Level
from cityops.reports.builder import gather
from cityops.reports.model import FAILED, KIND, READY, ReportDoc, doc_of, record_of
from cityops.store.values import DuplicateKey

log = logging.getLogger(__name__)

META_KEY = "reports.scheduled"
MAX_PDF_BYTES = 32 << 20  # a report past this is kept as failed, its file not written
PAGE = 200
MAX_SCANNED = 10_000  # records a list looks through for the key's area, newest first


class ReportsBusy(Exception):
    """As many reports as the node renders at once are being made."""

    retry_after = 5.0

    def __init__(self) -> None:
        super().__init__("the node is making as many reports as it makes at once; "
                         "try again shortly")


def new_id() -> str:
    # Base32 letters and digits 2-7: no run of it looks like a phone or ID number, which the
    # store's sealer would seal (see detect/silences.new_id).
    return "rep-" + base64.b32encode(uuid.uuid4().bytes[:10]).decode().lower()


def month_before(day: dt.date) -> tuple[str, dt.date, dt.date]:
    """The calendar month before the one `day` is in: its name and [first, after)."""
    after = day.replace(day=1)
    first = (after - dt.timedelta(days=1)).replace(day=1)
    return first.strftime("%Y-%m"), first, after


class Reports:
    def __init__(self, node: Any, *, at_once: int = 2, tick_s: float = 60.0) -> None:
        self.node = node
        self.dir = Path(node.settings.data_dir) / "reports"
        self.at_once = at_once
        self.tick_s = tick_s
        self._slots: asyncio.Semaphore | None = None
        self._busy = 0

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.at_once)
        return self._slots

    def path_of(self, rid: str) -> Path:
        return self.dir / f"{rid}.pdf"

    async def make(self, area: str, period: str, first: dt.date, after: dt.date,
                   made_by: str, *, scheduled: bool = False) -> ReportDoc | None:
        """Make and keep one report; None when it is a scheduled one already made."""
        if not scheduled and self._busy >= self.at_once:
            raise ReportsBusy()
        self._busy += 1
        try:
            async with self._semaphore():
                return await self._make(area, period, first, after, made_by, scheduled)
        finally:
            self._busy -= 1

    async def _make(self, area: str, period: str, first: dt.date, after: dt.date,
                    made_by: str, scheduled: bool) -> ReportDoc | None:
        store = self.node.store
        if scheduled and await store.find_records(
                KIND, unique=f"scheduled/{area}/{period}", limit=1):
            return None
        data = await gather(self.node, area, period, first, after)
        from cityops.reports.render import render  # ReportLab is loaded by the first report

        rid, error, pdf = new_id(), None, b""
        try:
            pdf = await asyncio.to_thread(render, data, self.node.settings.reports_font)
        except Exception as e:  # a layout failure is the report's, kept as failed, not a 5xx
            log.exception("report %s for %s %s failed to render", rid, area, period)
            error = f"rendering failed: {type(e).__name__}"
        if len(pdf) > MAX_PDF_BYTES:
            error, pdf = f"the PDF came to {len(pdf)} bytes, over {MAX_PDF_BYTES}", b""
        if pdf:
            await asyncio.to_thread(self._write, rid, pdf)
        doc = ReportDoc(
            id=rid, area=area, area_name=data.area_name, level=data.level, period=period,
            first=first.isoformat(), last=(after - dt.timedelta(days=1)).isoformat(),
            timezone=data.timezone, status=FAILED if error else READY, made_by=made_by,
            scheduled=scheduled, created=self.node.clock(), size=len(pdf),
            sha256=hashlib.sha256(pdf).hexdigest() if pdf else "", error=error)
        try:
            await store.put_record(record_of(doc))
        except DuplicateKey:  # another node made this scheduled report meanwhile
            await asyncio.to_thread(self.path_of(rid).unlink, missing_ok=True)
            return None
        return doc

    def _write(self, rid: str, pdf: bytes) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{rid}.tmp"
        with open(tmp, "wb") as f:
            f.write(pdf)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path_of(rid))

    async def get(self, rid: str) -> ReportDoc | None:
        rec = await self.node.store.get_record(KIND, rid)
        return None if rec is None else doc_of(rec)

    async def pdf(self, doc: ReportDoc) -> bytes | None:
        path = self.path_of(doc.id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def recent(self, area: str | None, limit: int) -> list[ReportDoc]:
        """Newest first, the reports of areas inside `area` (None: all)."""
        out: list[ReportDoc] = []
        before: tuple[float, str] | None = None
        scanned = 0
        while len(out) < limit and scanned < MAX_SCANNED:
            page = await self.node.store.find_records(KIND, limit=PAGE, before=before)
            scanned += len(page)
            out.extend(d for d in map(doc_of, page)
                       if area is None or d.area.startswith(area))
            if len(page) < PAGE:
                break
            before = (page[-1].created, page[-1].id)
        return out[:limit]

    # -- the schedule -------------------------------------------------------------------------

    def scheduled_areas(self) -> list[str]:
        return [a.code for a in self.node.pack.areas
                if a.level in (Level.DISTRICT, Level.TOWN)]

    async def schedule_once(self) -> list[ReportDoc]:
        """Make last month's reports if they are due and not made; what was made."""
        tz = ZoneInfo(self.node.pack.info.timezone)
        today = dt.datetime.fromtimestamp(self.node.clock(), tz).date()
        period, first, after = month_before(today)
        store = self.node.store
        done = await store.get_meta(META_KEY)
        if done is None:
            await store.set_meta(META_KEY, period)
            return []
        if done >= period:
            return []
        made = []
        for area in self.scheduled_areas():
            doc = await self.make(area, period, first, after, "schedule", scheduled=True)
            if doc is not None:
                made.append(doc)
        await store.set_meta(META_KEY, period)
        log.info("reports for %s made: %d", period, len(made))
        return made

    async def run_schedule(self) -> None:
        while True:
            try:
                await self.schedule_once()
            except Exception:  # a store hiccup: tried again at the next tick
                log.exception("scheduled reports failed; trying again in %.0f s", self.tick_s)
            await asyncio.sleep(self.tick_s)


