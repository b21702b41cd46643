"""The act side of a node, wired: the city's workflow rules, the incident desk, the alert
intake from the bus, the escalation scheduler, the notifier and the field staff board."""

from __future__ import annotations

import asyncio

from cityops.act.desk import IncidentDesk
from cityops.act.intake import AlertIntake
from cityops.act.scheduler import EscalationScheduler
from cityops.act.staff import StaffBoard
from cityops.domain.city import Level, WorkCalendar
from cityops.domain.incidents.categories import CategoryTable
from cityops.domain.incidents.workflow import Rules
from cityops.domain.workclock import WorkClock
from cityops.notify import open_notifier


def rules_for(node) -> Rules:
    pack = node.pack
    calendar = pack.calendar or WorkCalendar(timezone=pack.info.timezone)
    districts = [a.code for a in pack.areas if a.level is Level.DISTRICT]
    return Rules(CategoryTable(pack.categories), WorkClock(calendar),
                 district=districts[0] if districts else "",
                 cell_owner=node.city.owner_of_cell,
                 departments={d.code for d in pack.departments})


class ActSide:
    def __init__(self, node, *, notifier=None) -> None:
        settings = node.settings
        self.settings = settings
        self.notifier = notifier or open_notifier(settings.notify_url)
        state = node.history.state
        self.staff = StaffBoard(
            node.pack.staff, node.registry.index.get,
            lambda series: (state.latest_ts[series], state.latest_value[series]))
        self.rules = rules_for(node)
        self.desk = IncidentDesk(node.store, self.rules, self.notifier, city=node.city,
                                 bus=node.bus, staff=self.staff, clock=node.clock,
                                 ack_timeout_s=settings.ack_timeout_s)
        self.intake = AlertIntake(self.desk, node.bus)
        self.scheduler = EscalationScheduler(self.desk, tick_s=settings.escalate_tick_s)

    async def start(self) -> None:
        path = self.settings.street_network
        if path is not None:
            from cityops.routing.network import StreetNetwork

            self.staff.network = await asyncio.to_thread(StreetNetwork.from_pbf, path)
        await self.notifier.async_start()
        await self.intake.start()
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.intake.stop()
        await self.notifier.async_stop()

    def summary(self) -> dict:
        return {**self.desk.stats, **self.intake.summary(),
                "notifier": self.notifier.stats()}
