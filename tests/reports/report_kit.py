"""Cases for the roll-up and report tests, loaded straight into a live node's store (as an
import would) with the times each test needs: who reported what where and when, which
department it went to, and whether it closed in time."""

from __future__ import annotations

import datetime as dt

from cityops.domain.city import AreaCodes
from cityops.domain.incidents.model import Incident, Level, OrderStatus, Status, WorkOrder

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DISTRICT, TOWN_1, TOWN_2 = "990001", "990001001", "990001002"
V11, V12, V21, V22 = "990001001001", "990001001002", "990001002001", "990001002002"
HOUR = 3600.0


def at(year: int, month: int, day: int, hour: int = 10) -> float:
    return dt.datetime(year, month, day, hour, tzinfo=SHANGHAI).timestamp()


def case(cid: str, village: str, reported: float, *, department: str = "city_management",
         category: str = "event.sanitation.exposed_garbage", close_after: float | None = HOUR,
         limit: float = 24 * HOUR) -> Incident:
    """A case dispatched to `department` an hour after it was reported, closed `close_after`
    seconds after that (None: still being worked on), due `limit` after the report."""
    dispatched = reported + 60
    closed = None if close_after is None else dispatched + close_after
    order = WorkOrder(id=f"{cid}-1", department=department, level=Level.VILLAGE, area=village,
                      unit=f"station:{village}", created=dispatched,
                      status=OrderStatus.DONE if closed else OrderStatus.ACCEPTED,
                      accepted_at=dispatched + 30, done_at=closed)
    return Incident(
        id=cid, category=category, kind="event", title=cid, source="operator",
        status=Status.CLOSED if closed else Status.ACCEPTED,
        areas=AreaCodes(village[:6], village[:9], village), reported_at=reported,
        updated_at=closed or dispatched, registered_at=reported + 30, dispatched_at=dispatched,
        accepted_at=dispatched + 30, handled_at=closed, verified_at=closed, closed_at=closed,
        close_due=reported + limit, orders=[order])


NOV = [
    # Town 1: three cases, two closed in time, one late.
    case("n1", V11, at(2026, 11, 3)), case("n2", V11, at(2026, 11, 4)),
    case("n3", V12, at(2026, 11, 5), close_after=48 * HOUR, category="event.traffic.parking"),
    # Town 2: two, one in time and one still open past its limit, for another department.
    case("n4", V21, at(2026, 11, 6), department="environment"),
    case("n5", V22, at(2026, 11, 7), close_after=None, department="environment"),
]
OCT = [case("o1", V11, at(2026, 10, 8)), case("o2", V21, at(2026, 10, 9), close_after=None)]
NOV_LAST_YEAR = [case("y1", V12, at(2025, 11, 10))]
ALL = NOV + OCT + NOV_LAST_YEAR
