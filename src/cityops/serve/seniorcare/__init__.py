"""Senior care on a node: nursing-home admission (`homes`), caregiver booking (`bookings`) and
aging-friendly retrofits (`retrofits`), all on the node's records store. Made on first use
from the node's store, clock, citizen registry and notifier, and kept with the node."""

from __future__ import annotations

import weakref
from typing import Any

from cityops.serve.seniorcare.bookings import CaregiverService
from cityops.serve.seniorcare.homes import HomeService
from cityops.serve.seniorcare.points import care_points
from cityops.serve.seniorcare.retrofits import RetrofitService
from cityops.serve.seniorcare.tell import CitizenTeller

_SIDES: weakref.WeakKeyDictionary[Any, SeniorCare] = weakref.WeakKeyDictionary()


class SeniorCare:
    def __init__(self, node: Any) -> None:
        from cityops.serve.onestop import onestop_of

        one = onestop_of(node)
        ref = weakref.ref(node)
        self.zone = one.clock.zone
        teller = CitizenTeller(one.citizens, one.desk.notifier)
        self.homes = HomeService(node.store, lambda: care_points(ref()), now=node.clock,
                                 zone=self.zone, teller=teller)
        self.caregivers = CaregiverService(node.store, now=node.clock, zone=self.zone,
                                           teller=teller)
        self.retrofits = RetrofitService(node.store, lambda: onestop_of(ref()).desk,
                                         now=node.clock, citizens=one.citizens)


def seniorcare_of(node: Any) -> SeniorCare:
    side = _SIDES.get(node)
    if side is None:
        side = _SIDES[node] = SeniorCare(node)
    return side
