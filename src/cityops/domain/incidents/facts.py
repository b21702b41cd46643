"""What a case contributes to the evaluation figures (`cityops.domain.evaluation`)."""

from __future__ import annotations

from cityops.domain.evaluation import CaseFacts
from cityops.domain.incidents.model import Incident, OrderStatus, Status


def facts_of(inc: Incident) -> CaseFacts:
    departments = sorted({o.department for o in inc.orders
                          if o.status is not OrderStatus.WITHDRAWN})
    return CaseFacts(
        id=inc.id,
        category=inc.category,
        department=departments[0] if len(departments) == 1 else None,
        departments=departments,
        area=inc.areas.village if inc.areas else None,
        reported=inc.reported_at,
        registered=inc.registered_at,
        dispatched=inc.dispatched_at,
        accepted=inc.accepted_at if inc.dispatched_at is not None else None,
        closed=inc.closed_at if inc.status is Status.CLOSED else None,
        deadline=inc.close_due,
        parked=inc.parked,
        voided=inc.voided,
        returned_wrong_unit=inc.returns,
        reworks=inc.reworks,
        handled=inc.handled_at is not None or inc.reworks > 0 or inc.status in (
            Status.HANDLED, Status.VERIFIED, Status.CLOSED),
    )
