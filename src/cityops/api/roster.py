"""The field staff roster over HTTP, for the /admin page (and scripts):

    GET   /api/v1/roster                       people in the key's scope, retired ones too,
                                               each with the version an edit must name
    POST  /api/v1/roster                       add a person
    PATCH /api/v1/roster/{staff_id}            change name, department, beat, device, skills
    POST  /api/v1/roster/{staff_id}/retire     take a person off the roster (never deleted)

The roster is cityops.roster: the city pack's people with these changes, which count at once
for dispatch, the live screen and the field page, here and on the other nodes of a cluster.

Scope is checked against the person as stored, and again against the person as changed: a
department key manages its own department's people and cannot move one to a department it
does not hold; an area key the people whose beat (home area) lies in its area, before and
after. Outside it the answer is 403 with a sentence saying whose scope is whose. Every change
is audited with the key that made it.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Guard, Scope, errors_map
from cityops.domain.access import Principal, Role
from cityops.domain.city import Staff
from cityops.roster import BadStaff, Member, StaffConflict, StaffIdTaken

errors_map({BadStaff: 422, StaffIdTaken: 409, StaffConflict: 409})

MANAGERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})

PersonId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
                                       description="letters, digits and _ . : - (1-64)")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
AreaCode = Annotated[str, msgspec.Meta(min_length=1, max_length=32,
                                       description="a town or village code: the beat")]
DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=128,
                                       description="a registered GPS tracker")]
Skills = Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]],
                   msgspec.Meta(max_length=32)]
Version = Annotated[int, msgspec.Meta(ge=0, le=2**53, description="the version last read "
                                      "(0: as the city pack has them)")]
Reason = Annotated[str, msgspec.Meta(max_length=500)]


class RosterEntry(msgspec.Struct):
    id: str
    name: str
    department: str
    home_area: str
    device_id: str
    skills: list[str]
    active: bool
    version: int
    added: bool  # not in the city pack


class RosterPage(msgspec.Struct):
    items: list[RosterEntry]
    next: None = None


class RosterQuery(msgspec.Struct, forbid_unknown_fields=False):
    department: Code | None = None
    q: Annotated[str, msgspec.Meta(max_length=200, description="part of an id or a name")] \
        | None = None
    active: bool | None = None


class PersonIn(msgspec.Struct, forbid_unknown_fields=True):
    id: PersonId
    name: Name
    department: Code
    home_area: AreaCode
    device_id: DeviceId
    skills: Skills = []
    reason: Reason = ""


class PersonEdit(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    version: Version
    name: Name | None = None
    department: Code | None = None
    home_area: AreaCode | None = None
    device_id: DeviceId | None = None
    skills: Skills | None = None
    reason: Reason = ""


class RetireIn(msgspec.Struct, forbid_unknown_fields=True):
    version: Version
    reason: Reason = ""


def entry_of(member: Member) -> RosterEntry:
    p = member.person
    return RosterEntry(p.id, p.name, p.department, p.home_area, p.device_id, list(p.skills),
                       member.active, member.version, member.added)


def manages(who: Principal, person: Staff) -> bool:
    scope = who.scope
    if scope.department is not None:
        return person.department == scope.department
    if scope.area is not None:
        return person.home_area.startswith(scope.area)
    return True


def _refuse(who: Principal, person: Staff, doing: str) -> ApiError:
    return ApiError(403, f"{doing} {person.id} of department {person.department}, beat "
                         f"{person.home_area}, lies outside this key's scope {who.scope}",
                    code="staff_out_of_scope")


async def list_roster(call: Call[None, RosterQuery]) -> RosterPage:
    who, q = call.principal, call.query
    text = (q.q or "").strip().lower()
    items = []
    for member in call.node.roster.members():
        p = member.person
        if not manages(who, p):
            continue
        if q.department is not None and p.department != q.department:
            continue
        if q.active is not None and member.active != q.active:
            continue
        if text and text not in p.id.lower() and text not in p.name.lower():
            continue
        items.append(entry_of(member))
    return RosterPage(items)


async def add_person(call: Call[PersonIn, Any]) -> RosterEntry:
    node, who, body = call.node, call.principal, call.body
    held = node.roster.get(body.id)
    if held is not None and not manages(who, held.person):
        raise _refuse(who, held.person, "field person")  # said before "taken": not theirs
    person = Staff(id=body.id, name=body.name.strip(), department=body.department,
                   device_id=body.device_id, home_area=body.home_area,
                   skills=list(dict.fromkeys(body.skills)))
    if not manages(who, person):
        raise _refuse(who, person, "a new field person")
    member = await node.roster.add(node.store, person, actor=who.key_id, reason=body.reason)
    return entry_of(member)


async def load_member(call: Call[Any, Any]) -> Member | None:
    return call.node.roster.get(call.path["staff_id"])


def manages_member(call: Call[Any, Any], member: Member) -> bool:
    if not manages(call.principal, member.person):
        # Said plainly rather than as a 404, as for keys and cells: the person at the page
        # should learn why nothing happened.
        raise _refuse(call.principal, member.person, "field person")
    return True


MEMBER = Guard("roster", "staff_id", load_member, manages_member)


async def edit_person(call: Call[PersonEdit, Any]) -> RosterEntry:
    node, who, body = call.node, call.principal, call.body
    member: Member = call.record
    changes = {f: getattr(body, f) for f in ("name", "department", "home_area", "device_id",
                                             "skills") if getattr(body, f) is not None}
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    if "skills" in changes:
        changes["skills"] = list(dict.fromkeys(changes["skills"]))
    after = msgspec.structs.replace(member.person, **changes)
    if not manages(who, after):
        raise _refuse(who, after, "moving field person")
    done = await node.roster.edit(node.store, member.person.id, body.version, actor=who.key_id,
                                  reason=body.reason, **changes)
    return entry_of(done)


async def retire_person(call: Call[RetireIn, Any]) -> RosterEntry:
    node, who, body = call.node, call.principal, call.body
    member: Member = call.record
    done = await node.roster.retire(node.store, member.person.id, body.version,
                                    actor=who.key_id, reason=body.reason)
    return entry_of(done)


ROUTES = [
    Endpoint("GET", "/api/v1/roster", list_roster,
             "Field staff in the key's scope, retired ones too, each with its version",
             MANAGERS, Scope.LIST, kind="roster", query=RosterQuery, response=RosterPage),
    Endpoint("POST", "/api/v1/roster", add_person,
             "Add a field person: a known department, a town or village as beat, a registered "
             "GPS tracker nobody active carries (audited)",
             MANAGERS, Scope.CREATE, kind="roster", body=PersonIn, body_limit=8192,
             response=RosterEntry, status=201, errors=(409, 422)),
    Endpoint("PATCH", "/api/v1/roster/{staff_id}", edit_person,
             "Change a field person's name, department, beat, device or skills at the version "
             "last read (409 if changed meanwhile); counts at once for dispatch (audited)",
             MANAGERS, Scope.RECORD, guard=MEMBER, body=PersonEdit, body_limit=8192,
             response=RosterEntry, errors=(409, 422)),
    Endpoint("POST", "/api/v1/roster/{staff_id}/retire", retire_person,
             "Take a field person off the roster: never offered work again, never deleted; "
             "their cases and history stay (audited)",
             MANAGERS, Scope.RECORD, guard=MEMBER, body=RetireIn, body_limit=4096,
             response=RosterEntry, errors=(409,)),
]
