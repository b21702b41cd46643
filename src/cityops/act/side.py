"""The act side of a node, wired: the city's workflow rules, the incident desk, the alert
intake from the bus, the escalation scheduler, the notifier and the field staff board.

In cluster mode every node has the desk (the API's moves go through it) but only act nodes
take alerts and escalate; the store the desk escalates through and the intake are the
composition's (`Services.wiring`, see `cityops.cluster.act`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from cityops.act.desk import IncidentDesk
from cityops.act.intake import AlertIntake
from cityops.act.scheduler import EscalationScheduler
from cityops.act.staff import StaffBoard
from cityops.act.storm import StormGuard
from cityops.domain.city import CityPack, Level, WorkCalendar
from cityops.domain.geo import CityMap
from cityops.domain.incidents.categories import CategoryTable
from cityops.domain.incidents.workflow import Rules
from cityops.domain.scenarios.spec import ScenarioPack
from cityops.domain.workclock import WorkClock
from cityops.notify import open_notifier
from cityops.notify.texts import Voice, Voiced
from cityops.roster import Roster

if TYPE_CHECKING:
    from cityops.services import Services


class Placed(Protocol):
    """What the workflow rules are made from: the city's pack and its map."""

    @property
    def pack(self) -> CityPack: ...

    @property
    def city(self) -> CityMap: ...


def rules_for(node: Placed, scenarios: Iterable[ScenarioPack] = ()) -> Rules:
    """The city's rules; `scenarios` name the categories they raise that the city's table
    lacks (its cases are then filed under the pack's name, not the code)."""
    pack = node.pack
    calendar = pack.calendar or WorkCalendar(timezone=pack.info.timezone)
    districts = [a.code for a in pack.areas if a.level is Level.DISTRICT]
    named = {s.category.code: (s.category.name, s.category.names) for s in scenarios}
    return Rules(CategoryTable(pack.categories, named=named), WorkClock(calendar),
                 district=districts[0] if districts else "",
                 cell_owner=node.city.owner_of_cell,
                 departments={d.code for d in pack.departments})


class ActSide:
    def __init__(self, services: Services, *, notifier: Any = None, intake: bool = True,
                 scheduler: bool = True, roster: Roster | None = None,
                 scenarios: Iterable[ScenarioPack] = ()) -> None:
        """`roster`: the node's field staff (the pack's alone when not given); `scenarios`:
        the packs whose categories the desk names (see `rules_for`)."""
        settings = services.settings
        self.settings = settings
        self.runs_intake = intake
        self.runs_scheduler = scheduler
        self.notifier = notifier or open_notifier(settings.notify_url)
        state = services.history.state
        self.staff = StaffBoard(
            roster if roster is not None else Roster(services.pack.staff),
            services.registry.index.get,
            lambda series: (state.latest_ts[series], state.latest_value[series]))
        self.rules = rules_for(services, scenarios)
        # What the desk and the serve side send through: `notifier` with each notification's
        # text written in the city's language (`notifier` is what is started and stopped).
        self.voiced = Voiced(self.notifier, Voice.for_city(services.pack,
                                                           categories=self.rules.categories))
        self.wiring = services.wiring
        store = self.wiring.desk_store(services.store, settings)
        self.desk = IncidentDesk(store, self.rules, self.voiced, city=services.city,
                                 bus=services.bus, staff=self.staff, clock=services.clock,
                                 ack_timeout_s=settings.ack_timeout_s)
        self.desk.storm = StormGuard(self.desk, cases=settings.storm_cases,
                                     window_s=settings.storm_window_s, level=settings.storm_level)
        self.intake: AlertIntake = self.wiring.alert_intake(self.desk, services.views("act"))
        self.scheduler = EscalationScheduler(self.desk, tick_s=settings.escalate_tick_s)

    async def start(self) -> None:
        path = self.settings.street_network
        if path is not None:
            from cityops.routing.network import StreetNetwork

            self.staff.network = await asyncio.to_thread(StreetNetwork.from_pbf, path)
        await self.notifier.async_start()
        if self.runs_intake:
            await self.desk.storm.restore()
            await self.wiring.prepare_alerts(self.intake.bus)
            await self.intake.start()
        if self.runs_scheduler:
            self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.intake.stop()
        await self.notifier.async_stop()

    def summary(self) -> dict:
        return {**self.desk.stats, **self.intake.summary(),
                "held_by_storm_guard": self.desk.storm.stats["held"],
                "storms_started": self.desk.storm.stats["storms"],
                "notifier": self.notifier.stats()}
