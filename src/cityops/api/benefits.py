"""Enjoy without applying:

    GET  /api/v1/policies                  the city's eligibility policies
    GET  /api/v1/policies/{id}             one, with its recent runs (admin, operator)
    POST /api/v1/policies/{id}/run         evaluate it over every citizen, grant and notify
    GET  /api/v1/benefits[?citizen=]       benefits granted, each with the audit of why

A run grants each qualifying citizen once, ever: running it again grants only to those who
have come to qualify since.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.services import onestop
from cityops.domain.access import Role
from cityops.domain.onestop.applications import Refused
from cityops.domain.onestop.policies import Policy

READ = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.CITIZEN})
RUN = frozenset({Role.ADMIN, Role.OPERATOR})
BENEFITS = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.CITIZEN})


def policy_json(p: Policy) -> dict[str, Any]:
    doc = msgspec.to_builtins(p)
    doc["licence_types"] = sorted(p.condition.licence_types())
    doc["attributes"] = sorted(p.condition.attributes())
    return doc


def _policy(request: Request) -> Policy:
    policy_id = request.path_params["policy_id"]
    p = onestop(request).benefits.policy(policy_id)
    if p is None:
        raise ApiError(404, f"no policy {policy_id!r} (GET /api/v1/policies lists them)")
    return p


async def list_policies(request: Request) -> Response:
    await principal(request, READ)
    side = onestop(request)
    return json_response({"items": [policy_json(p) for p in side.policies], "next": None})


async def get_policy(request: Request) -> Response:
    who = await principal(request, READ)
    p = _policy(request)
    doc = policy_json(p)
    if who.role in RUN:
        runs = await onestop(request).benefits.runs(p.id)
        doc["runs"] = [{k: v for k, v in msgspec.to_builtins(r).items() if k != "granted_to"}
                       for r in runs]
    return json_response(doc)


async def run_policy(request: Request) -> Response:
    who = await principal(request, RUN)
    p = _policy(request)
    try:
        run = await onestop(request).benefits.run(p.id, by=who.key_id)
    except Refused as error:
        raise ApiError(409, error.reason) from None
    return json_response(msgspec.to_builtins(run))


async def list_benefits(request: Request) -> Response:
    who = await principal(request, BENEFITS)
    citizen = request.query_params.get("citizen") or None
    if who.role is Role.CITIZEN:
        if citizen not in (None, who.name):
            raise ApiError(403, "a citizen key sees its own benefits only")
        citizen = who.name
    elif citizen is None:
        raise ApiError(400, "name the citizen (?citizen=citizen id)")
    grants = await onestop(request).benefits.benefits_of(citizen)
    if who.role is Role.DEPARTMENT:
        grants = [g for g in grants if g.department == who.scope.department]
    return json_response({"items": [msgspec.to_builtins(g) for g in grants], "next": None})
