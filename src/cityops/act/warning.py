"""A case as an OASIS CAP 1.2 public warning (`cityops.act.cap` renders and checks it)."""

from __future__ import annotations

from cityops.act.cap import (
    Area,
    Info,
    NamedValue,
    PublicWarning,
    Reference,
    cap_circle,
    cap_polygons,
)
from cityops.domain.geo import CityMap
from cityops.domain.incidents.categories import Category
from cityops.domain.incidents.model import Incident, Status

SEVERITY = {"critical": "Extreme", "major": "Severe", "moderate": "Moderate", "minor": "Minor"}
URGENCY = {"urgent": "Immediate", "high": "Expected", "normal": "Future", "low": "Future"}


def warning_of(inc: Incident, category: Category, city: CityMap | None, *, sender: str,
               timezone: str, now: float) -> PublicWarning:
    """Cancelled or closed cases give a CAP `Cancel`/`Update` so receivers take the warning
    down; an open one an `Alert`. The area is the case's village polygon, or a 500 m circle
    when the case has no known place in the city."""
    areas: list[Area] = []
    if inc.areas is not None and city is not None and inc.areas.village in city:
        village = city.area(inc.areas.village)
        areas.append(Area(area_desc=village.name, polygons=cap_polygons(village.geometry),
                          geocodes=[NamedValue("area_code", village.code)]))
    elif inc.lat is not None and inc.lon is not None:
        areas.append(Area(area_desc=inc.title, circles=[cap_circle(inc.lat, inc.lon, 0.5)]))
    ended = inc.status in (Status.CLOSED, Status.CANCELLED)
    info = Info(
        categories=[category.cap_category or "Other"],
        event=category.name,
        urgency="Past" if ended else URGENCY.get(inc.urgency, "Unknown"),
        severity=SEVERITY.get(inc.severity, "Severe" if category.urgent else "Moderate"),
        certainty="Observed" if inc.registered_at is not None else "Likely",
        headline=inc.title,
        description=inc.description or inc.title,
        sender_name=sender,
        parameters=[NamedValue("incident_id", inc.id), NamedValue("status", inc.status.value)],
        areas=areas,
    )
    # The first warning of a case is stable (its id and time never change), so every later
    # Update can reference it exactly as receivers stored it.
    first = inc.registered_at or inc.reported_at
    if not ended:
        return PublicWarning(identifier=inc.id, sender=sender, sent=first, timezone=timezone,
                             info=info)
    return PublicWarning(
        identifier=f"{inc.id}.{inc.version}",
        sender=sender,
        sent=now,
        timezone=timezone,
        msg_type="Update",
        references=[Reference(sender, inc.id, first, timezone)],
        info=info,
    )
