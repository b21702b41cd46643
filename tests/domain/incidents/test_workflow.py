"""The case workflow: every transition, legal and illegal, per role and scope."""

from __future__ import annotations

import msgspec
import pytest

from cityops.domain.city import WorkCalendar
from cityops.domain.incidents.categories import CategoryTable
from cityops.domain.incidents.model import Level, OrderStatus, Status
from cityops.domain.incidents.workflow import (
    INCIDENT_ACTIONS,
    ORDER_ACTIONS,
    SYSTEM,
    NotAllowed,
    OutOfScope,
    Refused,
    Rules,
)
from cityops.domain.workclock import WorkClock

from .conftest import (
    CITIZEN,
    INSPECTOR,
    MONDAY_10,
    OPERATOR,
    OTHER_OPERATOR,
    PLACE,
    POLICE,
    SANITATION,
    STATION,
    TOWN_OPERATOR,
    at,
    report,
)

GARBAGE = "event.sanitation.exposed_garbage"


def collected(rules: Rules, category: str = GARBAGE, **kw):
    cat = rules.categories.resolve(category)
    kw.setdefault("title", "")
    return rules.open_incident("inc-1", report(), cat, actor=OPERATOR, areas=PLACE,
                               **kw).incident


def dispatched(rules: Rules, category: str = GARBAGE, departments=None):
    inc = collected(rules, category)
    inc = rules.act(inc, "register", OPERATOR, at(0.1)).incident
    return rules.act(inc, "dispatch", OPERATOR, at(0.2), departments=departments).incident


def test_collect_sets_the_dispatch_deadline_in_working_hours(rules: Rules) -> None:
    inc = collected(rules)
    assert inc.status is Status.COLLECTED
    assert inc.title == "Exposed garbage"
    assert inc.dispatch_due == at(1)  # 1 working hour, inside Monday's morning hours


def test_the_full_life_of_a_case(rules: Rules) -> None:
    inc = collected(rules)
    out = rules.act(inc, "register", OPERATOR, at(0.1))
    assert out.incident.status is Status.REGISTERED and out.incident.registered_at == at(0.1)
    out = rules.act(out.incident, "dispatch", OPERATOR, at(0.2))
    inc = out.incident
    assert inc.status is Status.DISPATCHED
    [order] = inc.orders
    assert (order.department, order.level, order.unit) == (
        "sanitation", Level.VILLAGE, "station:310115001001")
    # 10:12 + 4 working hours: 1.8 h before lunch (12:00-13:30), 2.2 h after: 15:42.
    assert order.accept_due == at(1.2) and order.finish_due == at(5.7)
    assert [n.kind for n in out.notices] == ["order.dispatched"]
    inc = rules.act_on_order(inc, order.id, "accept", SANITATION, at(0.5)).incident
    assert inc.status is Status.ACCEPTED and inc.accepted_at == at(0.5)
    inc = rules.act_on_order(inc, order.id, "progress", SANITATION, at(0.6),
                             progress="on_site").incident
    assert inc.orders[0].progress == "on_site"
    out = rules.act_on_order(inc, order.id, "finish", SANITATION, at(1), note="cleared",
                             photos=["p1.jpg"])
    assert out.incident.status is Status.HANDLED
    assert [n.kind for n in out.notices] == ["incident.handled"]
    inc = rules.act(out.incident, "verify", INSPECTOR, at(1.5)).incident
    assert inc.status is Status.VERIFIED
    out = rules.act(inc, "close", OPERATOR, at(1.6))
    assert out.incident.status is Status.CLOSED and out.incident.closed_at == at(1.6)
    assert [e.action for e in out.events] == ["close"]
    assert out.events[0].before == "verified" and out.events[0].after == "closed"
    assert out.events[0].actor == "k_op"


def test_joint_dispatch_waits_for_every_department(rules: Rules) -> None:
    inc = dispatched(rules, "event.emergency.vehicle_fire")
    assert [o.department for o in inc.orders] == [
        "police", "fire", "ambulance", "transport", "city_management"]
    # Urgent: every order starts at the district centre, on wall-clock minutes.
    assert {o.unit for o in inc.orders} == {"centre:310115"}
    assert inc.orders[0].accept_due == at(0.2) + 180
    for i, o in enumerate(inc.orders):
        inc = rules.act_on_order(inc, o.id, "accept", OPERATOR, at(0.3)).incident
        expected = Status.ACCEPTED if i == len(inc.orders) - 1 else Status.DISPATCHED
        assert inc.status is expected
    for i, o in enumerate(inc.orders):
        inc = rules.act_on_order(inc, o.id, "finish", OPERATOR, at(0.5), note="done").incident
        assert inc.status is (Status.HANDLED if i == len(inc.orders) - 1 else Status.ACCEPTED)


def test_cell_owner_takes_the_place_of_city_management(rules: Rules) -> None:
    rules.cell_owner = lambda cell: "greening" if cell == "park" else "station:310115001001"
    cat = rules.categories.resolve("component.public_facility.damaged")
    inc = rules.open_incident("inc-2", report(), cat, title="", actor=OPERATOR, areas=PLACE,
                              cell="park").incident
    inc = rules.act(rules.act(inc, "register", OPERATOR, at(0)).incident, "dispatch", OPERATOR,
                    at(0)).incident
    assert [o.department for o in inc.orders] == ["greening"]
    rules.cell_owner = lambda cell: "station:310115001001"
    inc2 = rules.open_incident("inc-3", report(), cat, title="", actor=OPERATOR, areas=PLACE,
                               cell="street").incident
    inc2 = rules.act(rules.act(inc2, "register", OPERATOR, at(0)).incident, "dispatch", OPERATOR,
                     at(0)).incident
    assert [o.department for o in inc2.orders] == ["city_management"]


@pytest.mark.parametrize("action,status", [
    ("register", Status.REGISTERED), ("dispatch", Status.COLLECTED), ("verify", Status.COLLECTED),
    ("close", Status.COLLECTED), ("reopen", Status.COLLECTED), ("rework", Status.COLLECTED),
])
def test_illegal_moves_are_refused_with_a_reason(rules: Rules, action: str, status: Status):
    inc = msgspec.structs.replace(collected(rules), status=status)
    with pytest.raises(Refused) as refused:
        rules.act(inc, action, OPERATOR, at(1), reason="x")
    assert f"it is {status.value}" in refused.value.reason


def test_every_incident_action_from_every_state(rules: Rules) -> None:
    """The table of legal moves, checked exhaustively: anything else is refused."""
    legal = {
        "register": {"collected"}, "cancel": {"collected", "registered", "dispatched", "accepted"},
        "dispatch": {"registered"}, "redispatch": {"registered", "dispatched", "accepted"},
        "verify": {"handled"}, "rework": {"handled", "verified"}, "close": {"verified"},
        "reopen": {"closed"},
    }
    base = dispatched(rules)
    done = rules.act_on_order(rules.act_on_order(base, base.orders[0].id, "accept", OPERATOR,
                                                 at(1)).incident,
                              base.orders[0].id, "finish", OPERATOR, at(2), note="ok").incident
    for action in INCIDENT_ACTIONS:
        for status in Status:
            inc = msgspec.structs.replace(done, status=status)
            try:
                rules.act(inc, action, OPERATOR, at(3), reason="why", departments=["police"])
            except Refused:
                allowed = False
            else:
                allowed = True
            assert allowed == (status.value in legal[action]), (action, status)


def test_reasons_are_required(rules: Rules) -> None:
    inc = collected(rules)
    with pytest.raises(Refused, match="cancel needs a reason"):
        rules.act(inc, "cancel", OPERATOR, at(1))
    inc = dispatched(rules)
    with pytest.raises(Refused, match="return needs a reason"):
        rules.act_on_order(inc, inc.orders[0].id, "return", SANITATION, at(1), reason=" ")


def test_roles_and_scopes(rules: Rules) -> None:
    inc = collected(rules)
    with pytest.raises(NotAllowed):
        rules.act(inc, "register", CITIZEN, at(1))
    with pytest.raises(NotAllowed):
        rules.act(inc, "register", INSPECTOR, at(1))
    with pytest.raises(OutOfScope):
        rules.act(inc, "register", OTHER_OPERATOR, at(1))
    assert rules.act(inc, "register", TOWN_OPERATOR, at(1)).incident.status is Status.REGISTERED
    inc = dispatched(rules)
    oid = inc.orders[0].id
    with pytest.raises(OutOfScope):  # the police have no order here
        rules.act_on_order(inc, oid, "accept", POLICE, at(1))
    with pytest.raises(NotAllowed):  # a unit cannot approve its own postponement
        rules.act_on_order(inc, oid, "approve_park", SANITATION, at(1))
    assert rules.act_on_order(inc, oid, "accept", STATION, at(1)).incident.status is \
        Status.ACCEPTED
    with pytest.raises(OutOfScope):  # a field key acts only on what it was given
        rules.act_on_order(inc, oid, "accept", INSPECTOR, at(1))
    with pytest.raises(Refused, match="unknown action"):
        rules.act(inc, "explode", OPERATOR, at(1))
    with pytest.raises(Refused, match="action on a work order"):
        rules.act(inc, "accept", OPERATOR, at(1))


def test_return_then_redispatch_to_the_right_unit(rules: Rules) -> None:
    inc = dispatched(rules)
    out = rules.act_on_order(inc, inc.orders[0].id, "return", SANITATION, at(0.5),
                             reason="this is a construction site, not ours")
    inc = out.incident
    assert inc.status is Status.REGISTERED and inc.returns == 1
    assert inc.orders[0].status is OrderStatus.RETURNED
    assert inc.dispatch_due == at(1.5)
    assert [n.kind for n in out.notices] == ["order.returned"]
    with pytest.raises(Refused, match="needs the departments"):
        rules.act(inc, "redispatch", OPERATOR, at(0.6))
    inc = rules.act(inc, "redispatch", OPERATOR, at(0.6),
                    departments=["housing_construction"]).incident
    assert inc.status is Status.DISPATCHED
    assert [o.department for o in inc.live_orders()] == ["housing_construction"]
    assert inc.orders[1].id == "inc-1-2"
    with pytest.raises(Refused, match="already has a live work order"):
        rules.act(inc, "redispatch", OPERATOR, at(0.7), departments=["housing_construction"])
    with pytest.raises(Refused, match="unknown department"):
        rules.act(inc, "redispatch", OPERATOR, at(0.7), departments=["navy"])


def test_parking_needs_approval_and_stops_the_clock(rules: Rules) -> None:
    inc = dispatched(rules)  # finish due Monday 14:12 (4 working hours from 10:12)
    oid = inc.orders[0].id
    inc = rules.act_on_order(inc, oid, "accept", SANITATION, at(0.3)).incident
    with pytest.raises(Refused, match="request park needs a reason"):
        rules.act_on_order(inc, oid, "request_park", SANITATION, at(1))
    out = rules.act_on_order(inc, oid, "request_park", SANITATION, at(1),
                             reason="waiting for the owner to come back")
    assert [n.kind for n in out.notices] == ["order.park_requested"]
    inc = rules.act_on_order(out.incident, oid, "approve_park", OPERATOR, at(1)).incident
    assert inc.orders[0].status is OrderStatus.PARKED and inc.parked
    assert inc.orders[0].next_due is None  # no escalation while parked
    before = inc.orders[0].finish_due
    # Parked from 11:00 to 16:00: 1 morning hour + 2.5 afternoon working hours of the clock.
    inc = rules.act_on_order(inc, oid, "resume", SANITATION, at(6)).incident
    assert inc.orders[0].status is OrderStatus.ACCEPTED and not inc.parked
    assert inc.orders[0].finish_due - before > 0
    assert rules.clock.working_seconds(at(6), inc.orders[0].finish_due) == pytest.approx(
        rules.clock.working_seconds(at(1), before))
    assert inc.parked_s == 5 * 3600


def test_park_can_be_denied(rules: Rules) -> None:
    inc = dispatched(rules)
    oid = inc.orders[0].id
    inc = rules.act_on_order(inc, oid, "accept", SANITATION, at(0.3)).incident
    inc = rules.act_on_order(inc, oid, "request_park", SANITATION, at(1), reason="r").incident
    with pytest.raises(Refused, match="deny park needs a reason"):
        rules.act_on_order(inc, oid, "deny_park", OPERATOR, at(1))
    inc = rules.act_on_order(inc, oid, "deny_park", OPERATOR, at(1), reason="do it").incident
    assert inc.orders[0].status is OrderStatus.ACCEPTED


def test_failed_verification_sends_it_back_for_rework(rules: Rules) -> None:
    inc = dispatched(rules)
    oid = inc.orders[0].id
    inc = rules.act_on_order(inc, oid, "accept", SANITATION, at(0.3)).incident
    with pytest.raises(Refused, match="needs evidence"):
        rules.act_on_order(inc, oid, "finish", SANITATION, at(0.5))
    inc = rules.act_on_order(inc, oid, "finish", SANITATION, at(0.5), note="done").incident
    out = rules.act(inc, "rework", INSPECTOR, at(0.8), reason="still a pile by the gate")
    inc = out.incident
    assert inc.status is Status.ACCEPTED and inc.reworks == 1
    assert inc.orders[0].status is OrderStatus.ACCEPTED and inc.orders[0].reworks == 1
    assert [n.kind for n in out.notices] == ["order.rework"]
    inc = rules.act_on_order(inc, oid, "finish", SANITATION, at(1), note="really done").incident
    assert inc.status is Status.HANDLED


def test_reopen_and_cancel(rules: Rules) -> None:
    inc = collected(rules)
    out = rules.act(inc, "cancel", OPERATOR, at(0.1), reason="duplicate of inc-0")
    assert out.incident.status is Status.CANCELLED and not out.incident.voided
    inc = dispatched(rules)
    out = rules.act(inc, "cancel", OPERATOR, at(0.5), reason="false report")
    assert out.incident.voided  # registered, then cancelled: a registration error
    assert out.incident.orders[0].status is OrderStatus.WITHDRAWN
    assert [n.kind for n in out.notices] == ["order.withdrawn"]
    closed = msgspec.structs.replace(inc, status=Status.CLOSED, closed_at=at(1))
    with pytest.raises(Refused, match="reopen needs a reason"):
        rules.act(closed, "reopen", OPERATOR, at(2))
    again = rules.act(closed, "reopen", OPERATOR, at(2), reason="the pile is back").incident
    assert again.status is Status.REGISTERED and again.reopened == 1 and again.closed_at is None


def test_merge_counts_reports(rules: Rules) -> None:
    inc = collected(rules)
    out = rules.merge(inc, report("r-2", at(0.5), "citizen"))
    assert out.incident.reports == 2 and out.incident.last_report_at == at(0.5)
    assert out.events[0].action == "merge"
    closed = msgspec.structs.replace(inc, status=Status.CLOSED)
    with pytest.raises(Refused):
        rules.merge(closed, report("r-3"))


def test_the_system_may_register_and_dispatch(rules: Rules) -> None:
    inc = collected(rules)
    inc = rules.act(inc, "register", SYSTEM, MONDAY_10).incident
    inc = rules.act(inc, "dispatch", SYSTEM, MONDAY_10).incident
    assert inc.status is Status.DISPATCHED


def test_every_order_action_is_known() -> None:
    assert set(ORDER_ACTIONS) >= {"accept", "return", "request_park", "approve_park",
                                  "deny_park", "resume", "progress", "finish", "escalate",
                                  "assign", "acknowledge"}


# -- titles in other languages ----------------------------------------------------------------

FLOOD = "event.emergency.waterlogging"


def test_a_case_opened_from_a_rule_carries_its_translated_title(rules: Rules) -> None:
    inc = collected(rules, FLOOD, title="Water on the road deeper than a lane may hold",
                    titles={"zh-CN": "路面积水深度超限"})
    assert inc.title == "Water on the road deeper than a lane may hold"  # the stable text
    assert inc.titles == {"zh-CN": "路面积水深度超限"}


def test_a_case_titled_with_its_category_gets_the_categorys_names(rules: Rules) -> None:
    inc = collected(rules)
    assert (inc.title, inc.titles) == ("Exposed garbage", {"zh-CN": "暴露垃圾"})


def test_a_scenario_category_the_city_lacks_is_named_as_its_pack_names_it() -> None:
    calendar = WorkCalendar(timezone="Asia/Shanghai")
    named = {"event.public_safety.crowding": ("Crowd gathering", {"zh-CN": "人群聚集"})}
    rules = Rules(CategoryTable([], named=named), WorkClock(calendar), district="310115")
    cat = rules.categories.resolve("event.public_safety.crowding", departments=["police"])
    assert (cat.name, cat.names, cat.departments) == ("Crowd gathering", {"zh-CN": "人群聚集"},
                                                      ["police"])
    inc = rules.open_incident("inc-1", report(), cat, title="", actor=OPERATOR,
                              areas=PLACE).incident
    assert (inc.title, inc.titles) == ("Crowd gathering", {"zh-CN": "人群聚集"})
    # A code no pack names stands in as itself, in no other language.
    other = rules.categories.resolve("event.x.y")
    assert (other.name, other.names) == ("event.x.y", {})


def test_an_operators_title_drops_the_translations(rules: Rules) -> None:
    inc = collected(rules, FLOOD, title="Water on the road deeper than a lane may hold",
                    titles={"zh-CN": "路面积水深度超限"})
    same = rules.act(inc, "register", OPERATOR, at(0.1), title=inc.title).incident
    assert same.titles == {"zh-CN": "路面积水深度超限"}  # the form sent the title back as it was
    renamed = rules.act(inc, "register", OPERATOR, at(0.1),
                        title="Underpass at Yanggao Road flooded").incident
    assert renamed.title == "Underpass at Yanggao Road flooded"
    assert renamed.titles is msgspec.UNSET
    assert b"titles" not in msgspec.json.encode(renamed)
