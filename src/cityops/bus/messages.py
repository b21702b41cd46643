"""Message types that exist only to travel on the bus. The rest it carries are the domain's
own (`ReadingBatch`, `AlertEvent`); keeping these here, not with their publishers, is what
lets the bus (and every reader of a subject) do without the publishing side's imports."""

from __future__ import annotations

import msgspec

from cityops.domain.incidents.model import Incident


class IncidentChange(msgspec.Struct, frozen=True):
    """What the bus carries to the views: the case as it now is, and what just happened."""

    change: str  # collect, merge, dispatch, order.accept, order.escalate ...
    incident: Incident
