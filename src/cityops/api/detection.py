"""Detection as the API shows it:

    GET /api/v1/scenarios     the scenario packs in force (any key but a device's)
    GET /api/v1/vital-signs   the city's KPI series against their baselines, as the key sees
    GET /api/v1/audit         the audit trail (city-wide: unscoped operators only)
    GET /api/v1/detect/stats  the detect engine's counters (city-wide: unscoped operators only)
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from cityops.api.areas import ANY_KEY
from cityops.api.export import Export
from cityops.api.route import Call, Endpoint, Scope
from cityops.domain.access import READ_DEVICES, READ_OPERATIONS, can_see_place
from cityops.domain.scenarios.spec import Category, Severity, State, Urgency
from cityops.store.base import AuditEntry

Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class RuleView(msgspec.Struct):
    id: str
    type: str
    kind: str | None
    severity: Severity
    title: str
    titles: dict[str, str]  # the title in other languages, by language tag


class ScenarioView(msgspec.Struct):
    name: str
    version: int
    title: str
    titles: dict[str, str]
    category: Category
    departments: list[str]
    urgency: Urgency
    states: list[State]
    auto_register: bool
    rules: list[RuleView]


class Scenarios(msgspec.Struct):
    items: list[ScenarioView]
    next: str | None


async def list_scenarios(call: Call[None, Any]) -> Scenarios:
    items = [ScenarioView(p.name, p.version, p.title, dict(p.titles), p.category, p.departments,
                          p.urgency, p.states, p.auto_register,
                          [RuleView(r.id, type(r).__name__, r.kind, r.severity, r.title,
                                    dict(r.titles))
                           for r in p.rules])
             for p in call.node.detect.scenarios]
    return Scenarios(items, None)


class AuditQuery(msgspec.Struct, forbid_unknown_fields=False):
    subject: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    limit: Limit = 100
    cursor: Annotated[int, msgspec.Meta(ge=0, le=2**62,
                                        description="`next` of the previous page")] = 0


class AuditPage(msgspec.Struct):
    items: list[AuditEntry]
    next: str | None


async def list_audit(call: Call[None, AuditQuery]) -> AuditPage:
    q = call.query
    entries = await call.node.store.list_audit(subject=q.subject, limit=q.limit + 1,
                                               before_id=q.cursor or None)
    more = len(entries) > q.limit
    entries = entries[:q.limit]
    return AuditPage(entries, str(entries[-1].id) if more and entries else None)


class VitalSign(msgspec.Struct):
    """One KPI series (a `kpi` device, e.g. 110 calls per hour in one street): the latest
    value, its baseline for this hour of the week, the z-score and a status."""

    device_id: str
    ts: float
    value: float | None
    baseline: float | None
    z: float | None
    status: str  # normal, high, low or learning
    history: int
    method: str
    rule: str
    kpi: str
    level: str
    area: str | None


class VitalSigns(msgspec.Struct):
    items: list[VitalSign]
    next: str | None


async def vital_signs(call: Call[None, Any]) -> VitalSigns:
    node, who = call.node, call.principal
    items = []
    for series in node.detect.vital_signs():
        device = node.registry.get(series["device_id"])
        if device is None or not can_see_place(who, device.areas, device.owner,
                                               node.department_areas):
            continue
        level = "district" if device.areas is None else (
            "village" if device.meta.get("level") == "village" else device.meta.get("level")
            or "district")
        items.append(VitalSign(
            **series, kpi=device.meta.get("kpi", device.name), level=level,
            area=device.meta.get("area") or (device.areas and device.areas.district)))
    return VitalSigns(items, None)


class DetectStats(msgspec.Struct, kw_only=True, omit_defaults=True):
    batches: int
    rows: int
    rejected_rows: int
    signals: int
    raised: int
    cleared: int
    updated: int | None = None  # once an alert has been updated
    rule_errors: int
    warmup_rows: int | None = None  # once readings were replayed at start
    alert_latency_p50_ms: float | None
    alert_latency_p99_ms: float | None
    latency_samples: int
    rejections_dropped: int
    rules: int
    backlog: int
    evaluating: bool
    open_alerts: int


async def detect_stats(call: Call[None, Any]) -> DetectStats:
    stats: DetectStats = msgspec.convert(call.node.detect.summary(), DetectStats)
    return stats


ROUTES = [
    Endpoint("GET", "/api/v1/scenarios", list_scenarios, "The scenario packs in force",
             ANY_KEY, Scope.NONE, response=Scenarios),
    Endpoint("GET", "/api/v1/vital-signs", vital_signs,
             "Each KPI series against its baseline for this hour of the week",
             READ_DEVICES, Scope.LIST, kind="device", response=VitalSigns),
    Endpoint("GET", "/api/v1/audit", list_audit, "The audit trail, newest first",
             READ_OPERATIONS, Scope.CITY, query=AuditQuery, response=AuditPage,
             export=Export("audit")),
    Endpoint("GET", "/api/v1/detect/stats", detect_stats, "The detect engine's counters",
             READ_OPERATIONS, Scope.CITY, response=DetectStats),
]
