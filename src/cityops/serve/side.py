"""The serve side of a node, wired: the citizen registry, 12345 hotline orders, reviews,
smart filing cabinets, and the scheduler that watches their deadlines and those of the one-stop
applications. Everything persists as records in the node's store; notices go through the act
side's notifier when the node runs one, else through a notifier of its own made from the same
setting. Personal data in those records is sealed at rest with the node's data key (`pii`,
installed as the store's record sealer), and a citizen's data is exported or erased on request
through `citizen_data`."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from cityops.domain.city import WorkCalendar
from cityops.domain.workclock import WorkClock
from cityops.notify import open_notifier
from cityops.notify.texts import Voice, Voiced
from cityops.serve.cabinets import CabinetService
from cityops.serve.citizen_data import CitizenData
from cityops.serve.citizens import CitizenRegistry
from cityops.serve.hotline import HotlineService
from cityops.serve.logmask import install_log_masking
from cityops.serve.onestop import OneStop, onestop_of
from cityops.serve.pii import Pii, key_path, seal_at_rest
from cityops.serve.reviews import ReviewService
from cityops.serve.scheduler import ServeScheduler
from cityops.serve.seniorcare import SeniorCare, seniorcare_of
from cityops.serve.seniorcare.tell import CitizenTeller

if TYPE_CHECKING:
    from cityops.node import Node


class ServeSide:
    def __init__(self, node: Node, *, notifier: Any = None) -> None:
        pack = node.pack
        install_log_masking()
        act = node.act
        self._own_notifier = act is None  # else the act side starts and stops it
        if notifier is None:
            notifier = act.voiced if act is not None else open_notifier(
                node.settings.notify_url)
        if not isinstance(notifier, Voiced):
            notifier = Voiced(notifier, Voice.for_city(pack))
        self.notifier = notifier
        self.clock = WorkClock(pack.calendar or WorkCalendar(timezone=pack.info.timezone))
        departments = {d.code for d in pack.departments}
        store, now = node.store, node.clock
        # Weak: the node keeps this side, and the one-stop services are kept with the node.
        self._node = weakref.ref(node)
        settings = node.settings
        # Made here, before the store is opened: every part of the node that reads records
        # (the act side's too) reads them through the sealer from the first read on.
        self.pii = Pii.from_file(key_path(settings.data_dir,
                                          getattr(settings, "data_key_file", None)))
        store.sealer = self.pii
        self.citizens = CitizenRegistry(store, self.pii, now)
        self.citizen_data = CitizenData(store, now, data_dir=settings.data_dir,
                                        zone=self.clock.zone,
                                        teller=CitizenTeller(self.citizens, notifier))
        self.hotline = HotlineService(store, self.clock, now=now, notifier=notifier,
                                      desk=act.desk if act is not None else None,
                                      citizens=self.citizens, city=node.city,
                                      departments=departments)
        self.reviews = ReviewService(store, self.clock, now=now, notifier=notifier,
                                     citizens=self.citizens, departments=departments)
        self.cabinets = CabinetService(store, now=now, notifier=notifier,
                                       citizens=self.citizens)
        self.scheduler = ServeScheduler(self, tick_s=getattr(node.settings,
                                                              "escalate_tick_s", 5.0))

    @property
    def onestop(self) -> OneStop:
        """The node's one-stop services, made on first use (they take this side's clock,
        citizens and notifier, so not before the node has this side)."""
        node = self._node()
        if node is None:
            raise RuntimeError("the node this serve side belonged to is gone")
        return onestop_of(node)

    @property
    def seniorcare(self) -> SeniorCare:
        """Senior care (nursing homes, caregivers, retrofits), made on first use like the
        one-stop services it builds on."""
        node = self._node()
        if node is None:
            raise RuntimeError("the node this serve side belonged to is gone")
        return seniorcare_of(node)

    async def start(self) -> None:
        install_log_masking()  # again: the CLI sets up its handlers after the node is made
        await seal_at_rest(self._node().store, self.pii)
        if self._own_notifier:
            await self.notifier.async_start()
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        if self._own_notifier:
            await self.notifier.async_stop()
