"""Generated from the route table: every route, called with a key of every role scoped to town
A, against records made in town B. Outside its scope a key gets 403 or 404, a list shows
nothing of town B, and the record as stored is unchanged afterwards. No route answers 5xx.

A route added to the table is walked here without anyone writing a test for it; a route
naming a record kind with no maker in tests/api/scope_kinds fails until one is added."""

from __future__ import annotations

import os
import re
from typing import Any

import msgspec
import pytest

from cityops.api.route import Endpoint, Scope
from cityops.api.table import TABLE
from cityops.domain.access import Role
from cityops.domain.city import Department, Staff
from cityops.packs.categories_file import default_categories
from cityops.packs.grid import generate as grid_city
from tests.api.scope_kinds import World, all_kinds
from tests.api.scope_kinds.base import CITIZEN, DEPARTMENT, STAFF, TOWN_A, TOWN_B, VILLAGE

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")
KINDS = all_kinds()


def _city():
    codes = ["police", "fire", "city_management", "sanitation", "environment",
             "water_affairs", "transport", "ambulance"]
    departments = [Department(c, c.title(), None,
                              [TOWN_A] if c == DEPARTMENT[TOWN_A]
                              else [TOWN_B] if c == DEPARTMENT[TOWN_B] else ["990001"])
                   for c in codes]
    staff = [Staff(STAFF[TOWN_A], "A", DEPARTMENT[TOWN_A], "gps-000000", VILLAGE[TOWN_A]),
             Staff(STAFF[TOWN_B], "B", DEPARTMENT[TOWN_B], "gps-000001", VILLAGE[TOWN_B])]
    return msgspec.structs.replace(
        grid_city(devices={"noise": 8, "gps": 2}), departments=departments, staff=staff,
        categories=default_categories(codes))


async def _keys(live) -> dict[Role, str]:
    return {
        Role.OPERATOR: await live.key("operator", TOWN_A),
        Role.STATION: await live.key("station", TOWN_A),
        Role.DEPARTMENT: await live.key("department", DEPARTMENT[TOWN_A]),
        Role.DEVICE: await live.key("device", TOWN_A),
        Role.FIELD: await live.key("field", TOWN_A, name=STAFF[TOWN_A]),
        Role.CITIZEN: await live.key("citizen", name=CITIZEN[TOWN_A]),
    }


def _url(e: Endpoint, rid: str | None) -> str:
    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if e.guard is not None and name == e.guard.param and rid is not None:
            return rid
        return e.examples.get(name, "x") if e.examples else "x"
    return _PARAM.sub(fill, e.path)


def test_every_scoped_route_names_a_known_kind() -> None:
    missing = sorted({f"{e.method} {e.path}: {e.record_kind}" for e in TABLE
                      if e.scope in (Scope.RECORD, Scope.LIST, Scope.CREATE)
                      and e.record_kind not in KINDS})
    assert missing == [], "record kinds without a maker in tests/api/scope_kinds"


@pytest.mark.timeout(600)
async def test_route_by_role_scope(tmp_path, live_node) -> None:
    async with live_node(_city(), tmp_path / "d", notify_url="memory:",
                         rate_per_key=1e6, burst_per_key=1e6) as live:
        world = World(live, await live.key("admin"))
        keys = await _keys(live)
        for name in sorted({e.record_kind for e in TABLE if e.record_kind in KINDS}):
            for town in (TOWN_A, TOWN_B):
                world.made[(name, town)] = await KINDS[name].make(world, town)
        problems: list[str] = []
        # SCOPE_ONLY=/api/v1/hotline,/api/v1/reviews walks only those paths (while working on
        # one feature); unset, every route is walked.
        only = tuple(p for p in os.environ.get("SCOPE_ONLY", "").split(",") if p)
        for e in TABLE:
            if only and not e.path.startswith(only):
                continue
            kind = KINDS.get(e.record_kind) if e.record_kind else None
            theirs = world.made.get((e.record_kind, TOWN_B)) if kind else None
            for role, secret in keys.items():
                before = await kind.snapshot(world, theirs) if kind and theirs else None
                body: Any = None
                if e.method != "GET":
                    body = {}
                    if e.scope is Scope.CREATE and kind is not None and theirs:
                        body = kind.move_body(world, theirs, TOWN_A) or {}
                async with world.client(secret) as c:
                    r = await c.request(e.method, _url(e, theirs),
                                        **({"json": body} if body is not None else {}))
                where = f"{e.method} {e.path} as {role.value}: {r.status_code}"
                if r.status_code >= 500:
                    problems.append(f"{where} (server error) {r.text[:200]}")
                    continue
                if e.public:
                    continue
                if role not in e.roles:
                    if r.status_code != 403:
                        problems.append(f"{where}, wanted 403 for a role not allowed")
                elif e.scope is Scope.CITY:
                    if r.status_code != 403:
                        problems.append(f"{where}, wanted 403 for a scoped key")
                elif e.scope in (Scope.RECORD, Scope.CREATE) and theirs:
                    if r.status_code not in (403, 404):
                        problems.append(f"{where}, wanted 403/404 for town B's "
                                        f"{e.record_kind}")
                elif e.scope is Scope.LIST and theirs:
                    if r.status_code == 200 and theirs in r.text:
                        problems.append(f"{where}: the list shows town B's {e.record_kind} "
                                        f"{theirs}")
                if kind and theirs:
                    after = await kind.snapshot(world, theirs)
                    if after != before:
                        problems.append(f"{where}: town B's {e.record_kind} {theirs} changed")
        assert problems == []
