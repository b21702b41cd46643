"""The escalation scheduler: every few seconds, everything whose deadline has passed is
escalated (or its field offer passed on). It keeps no state of its own: deadlines live in the
store with the cases, so a restart, or another node, carries on from there."""

from __future__ import annotations

import asyncio
import logging

from cityops.act.desk import IncidentDesk
from cityops.background import Background

log = logging.getLogger(__name__)


class EscalationScheduler:
    def __init__(self, desk: IncidentDesk, *, tick_s: float = 5.0) -> None:
        self.desk = desk
        self.tick_s = tick_s
        self._task = Background("escalation-scheduler", self._run)
        self.ticks = 0

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def tick(self) -> int:
        self.ticks += 1
        return await self.desk.async_escalate_due()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a store hiccup must not end escalation for good
                log.exception("escalation tick failed; retrying at the next tick")
            await asyncio.sleep(self.tick_s)
