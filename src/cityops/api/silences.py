"""Silences: alerts recorded, but opening no case and notifying no one, for a while.

    POST   /api/v1/silences               make one (admin, operator; audited)
    GET    /api/v1/silences[?state=]      those the key may see, newest first, paged
    GET    /api/v1/silences/{silence_id}  one
    DELETE /api/v1/silences/{silence_id}  end it now (audited, with the reason)

What a key may silence is what its scope covers, whole. A scoped key must name the areas it
silences, every one inside its scope (a silence with no area would reach the whole city). A
department key must also keep to its own packs: every pack the silence can reach (by its
pack, rule or category matchers) must send its alerts to that department alone, so that no
department silences an alert another department is waiting for. A key sees, and may end, only
the silences it could have made; city-wide ones are for unscoped keys.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from cityops.api.errors import ApiError
from cityops.api.params import cursor_for, cursor_of
from cityops.api.route import Call, Endpoint, Guard, Scope, errors_map
from cityops.api.serve_util import covers
from cityops.detect import silences as records
from cityops.domain.access import READ_DEVICES, Principal, Role
from cityops.domain.silences import (
    MAX_COMMENT,
    Known,
    Matchers,
    Silence,
    SilenceEnded,
    SilenceError,
    SilenceState,
    new_silence,
    packs_reached,
)

errors_map({SilenceError: 400, SilenceEnded: 409})

SILENCERS = frozenset({Role.ADMIN, Role.OPERATOR})


class NewSilence(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    matchers: Matchers
    comment: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT,
                                         description="Why (required)")]
    starts_at: Annotated[float, msgspec.Meta(description="Epoch seconds; default now")] | None \
        = None
    ends_at: Annotated[float, msgspec.Meta(description="Epoch seconds")] | None = None
    duration: Annotated[str, msgspec.Meta(max_length=16, description="Instead of ends_at: "
                                          "90m, 2h, 3d")] | None = None


class ExpireIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT)] = ""


class SilenceView(Silence, kw_only=True):
    state: SilenceState


class SilenceQuery(msgspec.Struct, forbid_unknown_fields=False):
    state: Literal["active", "pending", "ended"] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100
    cursor: Annotated[str, msgspec.Meta(max_length=200,
                                        description="`next` of the previous page")] | None = None


class SilencePage(msgspec.Struct):
    items: list[SilenceView]
    next: str | None


# -- what the node knows, and what a key may reach ------------------------------------------


class _Devices:
    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def __contains__(self, device_id: object) -> bool:
        return isinstance(device_id, str) and self.registry.get(device_id) is not None


def _packs(node: Any) -> list[Any]:
    return list(node.detect.scenarios) if node.detect is not None else []


def known(node: Any) -> Known:
    packs = _packs(node)
    category_of = {p.name: p.category.code for p in packs}
    return Known(rules_of={p.name: [f"{p.name}.{r.id}" for r in p.rules] for p in packs},
                 category_of=category_of,
                 categories=set(category_of.values()) | {c.code for c in node.pack.categories},
                 kinds=node.pack.kinds, areas=node.city, devices=_Devices(node.registry))


def out_of_reach(node: Any, who: Principal, m: Matchers, know: Known | None = None
                 ) -> tuple[str, str] | None:
    """(field, why) when the key's scope does not cover all the silence may hold."""
    scope = who.scope
    if scope.area is None and scope.department is None:
        return None
    if not m.area:
        return ("matchers.area", f"a key scoped to {scope} names the areas it silences, "
                                 "inside its scope")
    outside = [code for code in m.area if not covers(node, who, code)]
    if outside:
        return ("matchers.area", f"area {outside[0]} lies outside this key's scope {scope}")
    if scope.department is not None:
        sent_to = {p.name: set(p.departments) for p in _packs(node)}
        reached = packs_reached(m, know or known(node))
        foreign = sorted(p for p in reached if sent_to.get(p) != {scope.department})
        if foreign:
            return ("matchers.pack", f"a key of department {scope.department} silences only "
                                     f"packs whose alerts go to it alone; {foreign[0]} (and "
                                     f"{len(foreign) - 1} more) also go elsewhere: name its "
                                     "own packs with pack, rule or category")
    return None


def may_hold(node: Any, who: Principal, s: Silence) -> bool:
    return out_of_reach(node, who, s.matchers) is None


def view(s: Silence, now: float) -> SilenceView:
    return SilenceView(**msgspec.structs.asdict(s), state=s.state(now))


# -- handlers ---------------------------------------------------------------------------------


async def load_silence(call: Call[Any, Any]) -> Silence | None:
    return await records.get_silence(call.node.store, call.path["silence_id"])


def sees_silence(call: Call[Any, Any], s: Silence) -> bool:
    return may_hold(call.node, call.principal, s)


SILENCE = Guard("silence", "silence_id", load_silence, sees_silence)


async def post_silence(call: Call[NewSilence, Any]) -> SilenceView:
    """Checked whole before anything is written: a silence is made as asked or not at all."""
    node, who, b = call.node, call.principal, call.body
    now = node.clock()
    know = known(node)
    silence = new_silence(silence_id=records.new_id(), matchers=b.matchers, comment=b.comment,
                          now=now, known=know, created_by=who.key_id, created_by_name=who.name,
                          starts_at=b.starts_at, ends_at=b.ends_at, duration=b.duration,
                          max_s=node.settings.silence_max_s)
    problem = out_of_reach(node, who, silence.matchers, know)
    if problem is not None:
        raise ApiError(403, f"{problem[0]}: {problem[1]}")
    await records.sweep(node.store, now)
    made = await records.create(node.store, silence, now=now, book=node.services.silences)
    return view(made, now)


async def list_silences(call: Call[None, SilenceQuery]) -> SilencePage:
    node, who, q = call.node, call.principal, call.query
    now = node.clock()
    items, last = await records.page(node.store, now=now, state=q.state, limit=q.limit,
                                     before=cursor_of(q.cursor),
                                     visible=lambda s: may_hold(node, who, s))
    return SilencePage([view(s, now) for s in items],
                       cursor_for(*last) if last is not None else None)


async def get_silence(call: Call[None, Any]) -> SilenceView:
    return view(call.record, call.node.clock())


async def expire_silence(call: Call[ExpireIn, Any]) -> SilenceView:
    node, who = call.node, call.principal
    now = node.clock()
    done = await records.expire(node.store, call.record.id, by=who.key_id,
                                reason=call.body.reason, now=now, book=node.services.silences)
    if done is None:
        raise ApiError(404, f"no silence {call.record.id!r}")
    return view(done, now)


ROUTES = [
    Endpoint("POST", "/api/v1/silences", post_silence,
             "Silence alerts for a while (audited): recorded, but no case, no notification",
             SILENCERS, Scope.CREATE, kind="silence", body=NewSilence, body_limit=64 << 10,
             response=SilenceView, status=201),
    Endpoint("GET", "/api/v1/silences", list_silences, "Silences the key may see, newest first",
             READ_DEVICES, Scope.LIST, kind="silence", query=SilenceQuery,
             response=SilencePage),
    Endpoint("GET", "/api/v1/silences/{silence_id}", get_silence, "One silence",
             READ_DEVICES, Scope.RECORD, guard=SILENCE, response=SilenceView),
    Endpoint("DELETE", "/api/v1/silences/{silence_id}", expire_silence,
             "End a silence now (audited); what it held and still fires is raised as new",
             SILENCERS, Scope.RECORD, guard=SILENCE, body=ExpireIn, body_required=False,
             body_limit=4096, response=SilenceView, errors=(409,)),
]
