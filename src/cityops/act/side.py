"""The act side of a node, wired: the city's workflow rules, the incident desk, the alert
intake from the bus, the escalation scheduler, the notifier and the field staff board.

In cluster mode every node has the desk (the API's moves go through it) but only act nodes
take alerts and escalate. Several act nodes share the alerts in one consumer group (filing is
idempotent: the case id derives from the alert's id), and their schedulers claim due cases for
a lease before escalating them, so each case is escalated by one of them."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from cityops.act.desk import IncidentDesk
from cityops.act.intake import AlertIntake
from cityops.act.scheduler import EscalationScheduler
from cityops.act.staff import StaffBoard
from cityops.bus.subjects import ALERTS
from cityops.cluster.bus import BusView, is_nats, prepare_group
from cityops.domain.city import CityPack, Level, WorkCalendar
from cityops.domain.geo import CityMap
from cityops.domain.incidents.categories import CategoryTable
from cityops.domain.incidents.workflow import Rules
from cityops.domain.workclock import WorkClock
from cityops.notify import open_notifier
from cityops.store.base import StoreBusy

if TYPE_CHECKING:
    from cityops.services import Services

log = logging.getLogger(__name__)


class Placed(Protocol):
    """What the workflow rules are made from: the city's pack and its map."""

    @property
    def pack(self) -> CityPack: ...

    @property
    def city(self) -> CityMap: ...


def rules_for(node: Placed) -> Rules:
    pack = node.pack
    calendar = pack.calendar or WorkCalendar(timezone=pack.info.timezone)
    districts = [a.code for a in pack.areas if a.level is Level.DISTRICT]
    return Rules(CategoryTable(pack.categories), WorkClock(calendar),
                 district=districts[0] if districts else "",
                 cell_owner=node.city.owner_of_cell,
                 departments={d.code for d in pack.departments})


class _ClaimingStore:
    """The store as a clustered desk sees it: asking for due cases claims them (see
    `claim_due_incidents`); everything else goes straight through."""

    def __init__(self, store, lease_s: float) -> None:
        self._store = store
        self.lease_s = lease_s

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    async def due_incidents(self, now: float, limit: int = 100) -> list[str]:
        return await self._store.claim_due_incidents(now, limit, self.lease_s)


class _SteadyIntake(AlertIntake):
    """The alert intake of an act node: an alert that cannot be filed because the store is
    away is tried again, and the bus is not told it was taken until it was (it is acknowledged
    when the next batch is asked for), so a store outage delays alerts and loses none."""

    async def take(self, event) -> None:
        delay = 0.2
        while True:
            try:
                await super().take(event)
                return
            except (StoreBusy, ConnectionError, TimeoutError) as exc:
                log.warning("alert %s not filed yet (%s); retrying in %.1f s",
                            event.alert.id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            except Exception:  # a fault of this alert, not of the store: it must not stop others
                self.stats["failed"] += 1
                log.exception("alert %s could not be filed", event.alert.id)
                return


class ActSide:
    def __init__(self, services: Services, *, notifier: Any = None, intake: bool = True,
                 scheduler: bool = True) -> None:
        settings = services.settings
        self.settings = settings
        self.runs_intake = intake
        self.runs_scheduler = scheduler
        clustered = services.wiring.clustered
        self.notifier = notifier or open_notifier(settings.notify_url)
        state = services.history.state
        self.staff = StaffBoard(
            services.pack.staff, services.registry.index.get,
            lambda series: (state.latest_ts[series], state.latest_value[series]))
        self.rules = rules_for(services)
        store: Any = services.store
        if clustered:
            # A claim outlives a few ticks, so a node that dies holding cases delays them by
            # at most that long.
            store = _ClaimingStore(store, lease_s=max(6 * settings.escalate_tick_s, 10.0))
        self.desk = IncidentDesk(store, self.rules, self.notifier, city=services.city,
                                 bus=services.bus, staff=self.staff, clock=services.clock,
                                 ack_timeout_s=settings.ack_timeout_s)
        if clustered:
            self.intake: AlertIntake = _SteadyIntake(self.desk, services.views("act"))
        else:
            self.intake = AlertIntake(self.desk, services.bus)
        self.scheduler = EscalationScheduler(self.desk, tick_s=settings.escalate_tick_s)

    async def start(self) -> None:
        path = self.settings.street_network
        if path is not None:
            from cityops.routing.network import StreetNetwork

            self.staff.network = await asyncio.to_thread(StreetNetwork.from_pbf, path)
        await self.notifier.async_start()
        if self.runs_intake:
            view = self.intake.bus
            if isinstance(view, BusView) and is_nats(view.bus):
                # Alerts raised before the first act node ever ran are filed too. No rewind:
                # act nodes share the one partition, and filing twice is harmless anyway.
                await prepare_group(view.bus, view.group, ALERTS, [0],
                                    from_start=True, rewind=False)
            await self.intake.start()
        if self.runs_scheduler:
            self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.intake.stop()
        await self.notifier.async_stop()

    def summary(self) -> dict:
        return {**self.desk.stats, **self.intake.summary(),
                "notifier": self.notifier.stats()}
