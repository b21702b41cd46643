"""Enjoy without applying:

    GET  /api/v1/policies                  the city's eligibility policies
    GET  /api/v1/policies/{id}             one, with its recent runs (admin, operator)
    POST /api/v1/policies/{id}/run         evaluate it over every citizen, grant and notify
    GET  /api/v1/benefits[?citizen=]       benefits granted, each with the audit of why

A run grants each qualifying citizen once, ever: running it again grants only to those who
have come to qualify since. A run covers the whole city, so only unscoped keys start one or
read the runs' city-wide figures. Benefits are a citizen's own; a department sees those its
department grants, an area key those of citizens living in its area.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Scope, errors_map
from cityops.api.serve_util import in_area_scope
from cityops.api.services import Code, onestop
from cityops.domain.access import Role
from cityops.domain.onestop.applications import Refused
from cityops.domain.onestop.policies import Policy
from cityops.serve.onestop.benefits import Grant, Run

READ = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.CITIZEN})
RUN = frozenset({Role.ADMIN, Role.OPERATOR})
BENEFITS = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.CITIZEN})

errors_map({Refused: 409})


class PolicyOut(Policy, kw_only=True):
    licence_types: list[str]  # the e-licence types its condition reads
    attributes: list[str]  # the citizen attributes it reads
    runs: list[Run] | msgspec.UnsetType = msgspec.UNSET  # the latest, for unscoped staff


class PolicyList(msgspec.Struct):
    items: list[PolicyOut]
    next: str | None = None


class GrantList(msgspec.Struct):
    items: list[Grant]
    next: str | None = None


class BenefitQuery(msgspec.Struct, forbid_unknown_fields=False):
    citizen: Code | None = None


def policy_out(p: Policy, runs: list[Run] | msgspec.UnsetType = msgspec.UNSET) -> PolicyOut:
    return PolicyOut(**msgspec.structs.asdict(p),
                     licence_types=sorted(p.condition.licence_types()),
                     attributes=sorted(p.condition.attributes()), runs=runs)


def _policy(call: Call[Any, Any]) -> Policy:
    policy_id = call.path["policy_id"]
    p = onestop(call).benefits.policy(policy_id)
    if p is None:
        raise ApiError(404, f"no policy {policy_id!r} (GET /api/v1/policies lists them)")
    return p


async def list_policies(call: Call[None, Any]) -> PolicyList:
    return PolicyList([policy_out(p) for p in onestop(call).policies])


async def get_policy(call: Call[None, Any]) -> PolicyOut:
    who = call.principal
    p = _policy(call)
    if who.role not in RUN or who.scope.area is not None or who.scope.department is not None:
        return policy_out(p)
    # Whom a run granted to is each citizen's own business: their benefits say it.
    return policy_out(p, [msgspec.structs.replace(r, granted_to=[])
                          for r in await onestop(call).benefits.runs(p.id)])


async def run_policy(call: Call[None, Any]) -> Run:
    p = _policy(call)
    return await onestop(call).benefits.run(p.id, by=call.principal.key_id)


async def list_benefits(call: Call[None, BenefitQuery]) -> GrantList:
    who = call.principal
    side = onestop(call)
    citizen = call.query.citizen
    if who.role is Role.CITIZEN:
        if citizen not in (None, who.name):
            raise ApiError(403, "a citizen key sees its own benefits only")
        citizen = who.name
    elif citizen is None:
        raise ApiError(400, "name the citizen (?citizen=citizen id)")
    elif who.scope.department is None and who.scope.area is not None:
        held = await side.citizens.get(citizen)
        if held is None or not in_area_scope(who, held.area):
            return GrantList([])
    if not citizen:
        return GrantList([])
    grants = await side.benefits.benefits_of(citizen)
    if who.role is Role.DEPARTMENT or who.scope.department is not None:
        grants = [g for g in grants if g.department == who.scope.department]
    return GrantList(grants)


ROUTES = [
    Endpoint("GET", "/api/v1/policies", list_policies, "The city's eligibility policies", READ,
             Scope.NONE, response=PolicyList),
    Endpoint("GET", "/api/v1/policies/{policy_id}", get_policy,
             "One policy; for unscoped staff with its recent runs", READ, Scope.NONE,
             response=PolicyOut, errors=(404,)),
    Endpoint("POST", "/api/v1/policies/{policy_id}/run", run_policy,
             "Evaluate a policy over every citizen; grant and notify the newly qualified",
             RUN, Scope.CITY, response=Run, errors=(404, 409)),
    Endpoint("GET", "/api/v1/benefits", list_benefits,
             "Benefits granted to a citizen, each with the audit of why", BENEFITS,
             Scope.LIST, kind="benefit", query=BenefitQuery, response=GrantList),
]
