"""What every store keeps of an incident beside its JSON document: the columns it is filtered,
sorted and scheduled on. One definition serves the memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from cityops.domain.incidents.model import LIVE_ORDERS, Event, Incident, OrderStatus, Report


class StaleVersion(RuntimeError):
    """Someone saved the incident since it was read: re-read it and try the move again."""


class IncidentFilter(msgspec.Struct, frozen=True, omit_defaults=True):
    status: tuple[str, ...] = ()
    category: str | None = None
    area: str | None = None  # district, town or village code (or a prefix of a village code)
    department: str | None = None
    overdue_at: float | None = None  # only open cases past a deadline at this time
    open: bool | None = None
    # Only what these areas or departments cover (a scoped key's view): any match suffices.
    scope_areas: tuple[str, ...] = ()
    scope_departments: tuple[str, ...] = ()


class Columns(msgspec.Struct, frozen=True):
    id: str
    status: str
    category: str
    district: str | None
    town: str | None
    village: str | None
    cell: str | None
    reported_at: float
    updated_at: float
    next_due: float | None
    late_at: float | None
    version: int
    departments: tuple[str, ...]


def columns_of(incident: Incident) -> Columns:
    areas = incident.areas
    return Columns(
        id=incident.id,
        status=incident.status.value,
        category=incident.category,
        district=areas.district if areas else None,
        town=areas.town if areas else None,
        village=areas.village if areas else None,
        cell=incident.cell,
        reported_at=incident.reported_at,
        updated_at=incident.updated_at,
        next_due=incident.next_due,
        late_at=late_at(incident),
        version=incident.version,
        departments=tuple(incident.departments),
    )


def late_at(incident: Incident) -> float | None:
    """From when an open case counts as overdue: its close deadline, or an order's deadline
    (accept or finish) if that comes first. None for a case that is no longer open."""
    if not incident.is_open:
        return None
    dues = [incident.close_due] if incident.close_due is not None else []
    for o in incident.orders:
        if o.status is OrderStatus.DISPATCHED and o.accept_due is not None:
            dues.append(o.accept_due)
        elif o.status in LIVE_ORDERS and o.status not in (OrderStatus.DONE, OrderStatus.PARKED) \
                and o.finish_due is not None:
            dues.append(o.finish_due)
    if incident.status.value in ("collected", "registered") and incident.dispatch_due is not None:
        dues.append(incident.dispatch_due)
    return min(dues) if dues else None


def matches(c: Columns, f: IncidentFilter) -> bool:
    """The filter as Python, for the memory store; the SQL stores say the same in SQL."""
    if f.status and c.status not in f.status:
        return False
    if f.category is not None and c.category != f.category:
        return False
    if f.area is not None and not _in_area(c, f.area):
        return False
    if f.department is not None and f.department not in c.departments:
        return False
    if f.overdue_at is not None and (c.late_at is None or c.late_at > f.overdue_at):
        return False
    if f.open is not None and (c.status in CLOSED_STATUSES) == f.open:
        return False
    if f.scope_areas or f.scope_departments:
        if not (any(_in_area(c, a) for a in f.scope_areas)
                or any(d in c.departments for d in f.scope_departments)):
            return False
    return True


CLOSED_STATUSES = ("closed", "cancelled")


def _in_area(c: Columns, code: str) -> bool:
    return (c.village or "").startswith(code) or c.town == code or c.district == code


encode = msgspec.json.Encoder().encode
decode_incident = msgspec.json.Decoder(Incident).decode
decode_event = msgspec.json.Decoder(Event).decode
decode_report = msgspec.json.Decoder(Report).decode


def check_new(incidents: Sequence[Incident]) -> None:
    seen: set[str] = set()
    for inc in incidents:
        if inc.id in seen:
            raise ValueError(f"incident {inc.id} given twice")
        seen.add(inc.id)
