"""Scenario packs in force, the audit trail, and the city's vital signs."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.areas import ANY_KEY
from cityops.api.errors import json_response
from cityops.api.paging import int_cursor, limit_of
from cityops.domain.access import READ_DEVICES, READ_OPERATIONS, can_see_place


async def list_scenarios(request: Request) -> Response:
    node = request.app.state.node
    await principal(request, ANY_KEY)
    items = []
    for pack in node.detect.scenarios:
        items.append({
            "name": pack.name, "version": pack.version, "title": pack.title,
            "category": msgspec.to_builtins(pack.category), "departments": pack.departments,
            "urgency": pack.urgency, "states": pack.states, "auto_register": pack.auto_register,
            "rules": [{"id": r.id, "type": type(r).__name__, "kind": r.kind,
                       "severity": r.severity, "title": r.title} for r in pack.rules],
        })
    return json_response({"items": items, "next": None})


async def list_audit(request: Request) -> Response:
    node = request.app.state.node
    await principal(request, READ_OPERATIONS)
    limit = limit_of(request)
    before = int_cursor(request) or None
    entries = await node.store.list_audit(subject=request.query_params.get("subject"),
                                          limit=limit + 1, before_id=before)
    more = len(entries) > limit
    entries = entries[:limit]
    return json_response({"items": [msgspec.to_builtins(e) for e in entries],
                          "next": str(entries[-1].id) if more and entries else None})


async def vital_signs(request: Request) -> Response:
    """Per KPI series (a `kpi` device, e.g. 110 calls per hour in one street): the latest
    value, its baseline for this hour of the week, the z-score and a status."""
    node = request.app.state.node
    who = await principal(request, READ_DEVICES)
    items = []
    for series in node.detect.vital_signs():
        device = node.registry.get(series["device_id"])
        if device is None or not can_see_place(who, device.areas, device.owner,
                                               node.department_areas):
            continue
        level = "district" if device.areas is None else (
            "village" if device.meta.get("level") == "village" else device.meta.get("level")
            or "district")
        items.append({**series, "kpi": device.meta.get("kpi", device.name), "level": level,
                      "area": device.meta.get("area") or (device.areas and device.areas.district)})
    return json_response({"items": items, "next": None})


async def detect_stats(request: Request) -> Response:
    await principal(request, READ_OPERATIONS)
    return json_response(request.app.state.node.detect.summary())
