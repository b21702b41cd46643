"""One-stop services on a node: the catalogue and its search, the e-licence store, the
application desk (forms, submissions, applications, bundles) and the benefit runner
(eligibility policies). Made on first use from the node's pack, store, clock, citizen registry
and notifier, and kept with the node."""

from __future__ import annotations

import weakref

import msgspec

from cityops.domain.city import WorkCalendar
from cityops.domain.citizens import Citizen
from cityops.domain.workclock import WorkClock
from cityops.packs.policies_file import policies_of
from cityops.packs.services_file import services_of
from cityops.serve.onestop.benefits import BenefitRunner
from cityops.serve.onestop.desk import ApplicationDesk
from cityops.serve.onestop.licences import LicenceBook

_SIDES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Registry:
    """The citizen records read directly, for a node without the serve side's registry."""

    def __init__(self, store) -> None:
        self.store = store

    async def get(self, citizen_id: str) -> Citizen | None:
        rec = await self.store.get_record("citizen", citizen_id)
        return None if rec is None else msgspec.json.decode(rec.doc, type=Citizen)


class OneStop:
    def __init__(self, node) -> None:
        pack = node.pack
        serve = getattr(node, "serve", None)
        act = getattr(node, "act", None)
        notifier = (serve.notifier if serve is not None
                    else act.voiced if act is not None else None)
        self.clock = (serve.clock if serve is not None else
                      WorkClock(pack.calendar or WorkCalendar(timezone=pack.info.timezone)))
        citizens = serve.citizens if serve is not None else _Registry(node.store)
        self.catalogue = services_of(pack)
        self.policies = policies_of(pack)
        self.department_names = {d.code: d.name for d in pack.departments}
        self.book = LicenceBook(node.store, node.clock)
        self.desk = ApplicationDesk(node.store, self.catalogue, self.clock, node.clock,
                                    citizens, self.book, notifier)
        self.benefits = BenefitRunner(node.store, self.policies, self.clock, node.clock,
                                      self.book, notifier)
        self.citizens = citizens


def onestop_of(node) -> OneStop:
    side = _SIDES.get(node)
    if side is None:
        side = _SIDES[node] = OneStop(node)
    return side
