"""The serve side's scheduler: every few seconds, hotline orders past a deadline, review
follow-ups past theirs, one-stop applications past their legal time limit and cabinet items
waiting over 7 days are flagged (and their people told). Like the escalation scheduler it keeps
no state: each tick asks the store for records whose `due` has passed, so a restart, or another
node, carries on from there."""

from __future__ import annotations

import asyncio
import logging

from cityops.background import Background

log = logging.getLogger(__name__)


class ServeScheduler:
    def __init__(self, side, *, tick_s: float = 5.0) -> None:
        self.side = side
        self.tick_s = tick_s
        self.ticks = 0
        self._task = Background("serve-scheduler", self._run)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def tick(self, now: float | None = None) -> dict[str, int]:
        """One pass; `now` defaults to the services' clock."""
        self.ticks += 1
        side = self.side
        return {
            "hotline_overdue": await side.hotline.scan_overdue(now),
            "review_tasks_overdue": await side.reviews.scan_overdue(now),
            "applications_overdue": await side.onestop.desk.scan_overdue(now),
            "cabinet_items_flagged": await side.cabinets.scan_uncollected(now),
            "care_homes_offers_lapsed": await side.seniorcare.homes.scan_offers(now),
        }

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a store hiccup must not end the scans for good
                log.exception("serve scheduler tick failed; retrying at the next tick")
            await asyncio.sleep(self.tick_s)
