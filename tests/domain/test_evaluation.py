"""Evaluation figures: hand-worked examples, parked cases, empty groups, zero denominators and
the department fan-out of joint dispatch."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityops.domain.evaluation import CaseFacts, Figures, due_to_close, evaluate

S = 1_800_000_000.0  # period start
DAY = 86_400.0
E = S + 7 * DAY  # period end: one week


def case(id: str, rep: float, reg=None, dis=None, acc=None, closed=None, deadline=None,
         **kw) -> CaseFacts:
    """A case with times given in seconds after the period start."""

    def t(x):
        return None if x is None else S + x

    kw.setdefault("category", "garbage")
    return CaseFacts(id=id, reported=t(rep), registered=t(reg), dispatched=t(dis),
                     accepted=t(acc), closed=t(closed), deadline=t(deadline), **kw)


# Ten cases in one week. By hand:
#            rep   reg   dis   acc   closed deadline  notes
#   c1         0   600  1200  1800    7200   14400   on time
#   c2         0   300   900  1500   10800   14400   on time
#   c3      1000  1600  2200  2800   20000   14400   late
#   c4      1000  1900  2500  3100    9000   14400   on time, reworked once
#   c5      2000  2600  3200  3800   30000   20000   late
#   c6      2000  2300  2900  3500    6000   20000   on time, returned once as wrong unit
#   c7      3000  3600  4200  4800    8000   20000   on time
#   c8      3000  3300  3900     -       -   20000   open and overdue, not handled
#   c9      4000  4600  5200  5800       -   30000   parked: out of everything
#   c10     5000  5600     -     -       -       -   voided
#
# due to close: c1..c8 = 8 (c9 parked, c10 voided)
# closed: c1..c7 = 7 -> closure rate 7/8 = 0.875
# on time: c1 c2 c4 c6 c7 = 5 -> on-time closure rate 5/8 = 0.625
# handled among the due: c1..c7 = 7, reworked c4 = 1 -> rework rate 1/7
# dispatched in the week: c1..c8 = 8, returned c6 = 1 -> dispatch accuracy 7/8
# registered in the week: c1..c8, c10 = 9, voided c10 = 1 -> registration accuracy 8/9
# report -> register: 600+300+600+900+600+300+600+300+600 = 4800 over 9 = 533.33...
# register -> dispatch: 600 each, 8 samples; dispatch -> accept: 600 each, 7 samples
# dispatch -> close: 6000+9900+17800+6500+26800+3100+3800 = 73900 over 7 = 10557.14...
SAN, GRN = "sanitation", "greening"
WEEK = [
    case("c1", 0, 600, 1200, 1800, 7200, 14400, handled=True, department=SAN, area="A"),
    case("c2", 0, 300, 900, 1500, 10800, 14400, handled=True, department=SAN, area="A"),
    case("c3", 1000, 1600, 2200, 2800, 20000, 14400, handled=True, department=SAN, area="B"),
    case("c4", 1000, 1900, 2500, 3100, 9000, 14400, handled=True, reworks=1, department=SAN,
         area="B"),
    case("c5", 2000, 2600, 3200, 3800, 30000, 20000, handled=True, department=GRN, area="A"),
    case("c6", 2000, 2300, 2900, 3500, 6000, 20000, handled=True, returned_wrong_unit=1,
         department=GRN, area="A"),
    case("c7", 3000, 3600, 4200, 4800, 8000, 20000, handled=True, department=GRN, area="B"),
    case("c8", 3000, 3300, 3900, None, None, 20000, department=GRN, area="B"),
    case("c9", 4000, 4600, 5200, 5800, None, 30000, handled=True, parked=True,
         department=SAN, area="A"),
    case("c10", 5000, 5600, voided=True, area="B"),
]


def test_hand_worked_week_for_the_city():
    [row] = evaluate(WEEK, S, E)
    assert row.group is None
    assert row.parked == 1
    assert (row.due, row.closed, row.closed_on_time) == (8, 7, 5)
    assert row.closure_rate == 7 / 8
    assert row.on_time_closure_rate == 5 / 8
    assert (row.handled, row.reworked, row.rework_rate) == (7, 1, 1 / 7)
    assert (row.dispatched, row.returned_wrong_unit, row.dispatch_accuracy) == (8, 1, 7 / 8)
    assert (row.registered, row.voided, row.registration_accuracy) == (9, 1, 8 / 9)
    assert row.report_to_register == pytest.approx(4800 / 9)
    assert row.report_to_register_samples == 9
    assert (row.register_to_dispatch, row.register_to_dispatch_samples) == (600, 8)
    assert (row.dispatch_to_accept, row.dispatch_to_accept_samples) == (600, 7)
    assert row.dispatch_to_close == pytest.approx(73900 / 7)
    assert row.dispatch_to_close_samples == 7


def test_hand_worked_week_by_department():
    rows = {r.group: r for r in evaluate(WEEK, S, E, "department")}
    assert list(rows) == [GRN, SAN, None]  # by key, None last
    # sanitation: c1..c4 (c9 parked): all closed, c3 late, c4 reworked
    san = rows[SAN]
    assert (san.parked, san.due, san.closed, san.closed_on_time) == (1, 4, 4, 3)
    assert (san.closure_rate, san.on_time_closure_rate) == (1.0, 0.75)
    assert (san.handled, san.reworked, san.rework_rate) == (4, 1, 0.25)
    assert (san.dispatched, san.returned_wrong_unit, san.dispatch_accuracy) == (4, 0, 1.0)
    # dispatch -> close: 6000 + 9900 + 17800 + 6500 = 40200 over 4
    assert san.dispatch_to_close == 40200 / 4
    # greening: c5..c8: c5 late, c8 open; c6 returned once
    grn = rows[GRN]
    assert (grn.parked, grn.due, grn.closed, grn.closed_on_time) == (0, 4, 3, 2)
    assert (grn.closure_rate, grn.on_time_closure_rate) == (0.75, 0.5)
    assert (grn.handled, grn.reworked, grn.rework_rate) == (3, 0, 0.0)
    assert (grn.dispatched, grn.returned_wrong_unit, grn.dispatch_accuracy) == (4, 1, 0.75)
    # no department: c10 only, registered then voided; nothing due or dispatched
    none = rows[None]
    assert (none.registered, none.voided, none.registration_accuracy) == (1, 1, 0.0)
    assert none.due == none.dispatched == none.handled == 0
    assert none.closure_rate is none.rework_rate is none.dispatch_accuracy is None
    assert none.dispatch_to_close is None and none.dispatch_to_close_samples == 0
    assert none.report_to_register == 600


def test_hand_worked_week_by_area_and_category():
    rows = {r.group: r for r in evaluate(WEEK, S, E, "area")}
    assert list(rows) == ["A", "B"]
    # A: c1 c2 c5 c6 (c9 parked): closed all four, c5 late
    assert (rows["A"].parked, rows["A"].due, rows["A"].closed, rows["A"].closed_on_time) \
        == (1, 4, 4, 3)
    # B: c3 c4 c7 c8 c10: c3 late, c8 open; c10 voided
    b = rows["B"]
    assert (b.due, b.closed, b.closed_on_time, b.registered, b.voided) == (4, 3, 2, 5, 1)
    [garbage] = evaluate(WEEK, S, E, "category")
    assert garbage.group == "garbage"
    assert msgspec.structs.replace(garbage, group=None) == evaluate(WEEK, S, E)[0]


def test_a_parked_case_changes_nothing_but_the_parked_count():
    before = evaluate(WEEK, S, E)[0]
    parked = case("p", 0, 100, 200, 300, 400, 1000, handled=True, reworks=2,
                  returned_wrong_unit=1, parked=True, voided=False)
    after = evaluate([*WEEK, parked], S, E)[0]
    assert after == msgspec.structs.replace(before, parked=before.parked + 1)
    assert not due_to_close(parked, S, E)


def test_due_to_close_edges():
    def due(closed, deadline):
        return due_to_close(case("x", -9 * DAY, -9 * DAY, -9 * DAY, None, closed, deadline),
                            S, E)

    week = 7 * DAY
    assert due(None, 0)  # deadline at the very start is inside
    assert not due(None, week)  # the end is outside
    assert due(None, week - 1)
    assert due(10, None)  # closed in the period, no deadline
    assert due(10, week + DAY)  # closed early, in the period
    assert not due(-DAY, 10)  # deadline in the period but closed before it began
    assert due(week + DAY, 10)  # deadline in the period, closed after its end
    assert not due(week, week + DAY)  # closed at the end, deadline after
    assert not due(None, None)
    assert not due(None, -DAY)  # overdue from an earlier period, still open
    assert not due_to_close(case("v", 0, 10, deadline=100, voided=True), S, E)


def test_a_late_case_counts_against_its_deadline_week_and_for_its_closing_week():
    late = case("late", 0, 10, 20, 30, closed=8 * DAY, deadline=DAY, handled=True)
    first = evaluate([late], S, E)[0]
    assert (first.due, first.closed, first.closed_on_time) == (1, 0, 0)
    assert first.closure_rate == 0.0
    assert first.dispatch_to_close is None  # it closed in the next week
    second = evaluate([late], E, E + 7 * DAY)[0]
    assert (second.due, second.closed, second.closed_on_time) == (1, 1, 0)
    assert (second.closure_rate, second.on_time_closure_rate) == (1.0, 0.0)
    assert second.dispatched == second.registered == 0  # those steps were in the first week
    assert second.dispatch_to_close == 8 * DAY - 20
    # an early closer is due once only, in the week it closed in
    early = case("early", 0, 10, 20, 30, closed=40, deadline=8 * DAY, handled=True)
    assert evaluate([early], S, E)[0].due == 1
    assert evaluate([early], E, E + 7 * DAY)[0].due == 0


def test_a_case_without_a_limit_closed_in_the_period_is_on_time():
    row = evaluate([case("x", 0, 10, 20, 30, 40)], S, E)[0]
    assert (row.due, row.closed, row.closed_on_time) == (1, 1, 1)


def test_zero_denominators_give_none_never_a_division_error():
    [row] = evaluate([], S, E)
    assert row.group is None
    counts = (row.parked, row.due, row.closed, row.closed_on_time, row.handled, row.reworked,
              row.dispatched, row.returned_wrong_unit, row.registered, row.voided)
    assert counts == (0,) * 10
    for name in ("closure_rate", "on_time_closure_rate", "rework_rate", "dispatch_accuracy",
                 "registration_accuracy", "report_to_register", "register_to_dispatch",
                 "dispatch_to_accept", "dispatch_to_close"):
        assert getattr(row, name) is None, name
    # reported only: not registered, so nothing but nothing to count either
    [row] = evaluate([case("r", 0)], S, E)
    assert row.registration_accuracy is None and row.report_to_register is None
    # due cases none of which was handled: a rework rate has no denominator
    [row] = evaluate([case("o", 0, 10, 20, deadline=100)], S, E)
    assert (row.due, row.closure_rate, row.handled, row.rework_rate) == (1, 0.0, 0, None)


def test_empty_groups():
    assert evaluate([], S, E, "department") == []
    rows = evaluate(WEEK, S, E, "department", groups=["police", SAN])
    assert [r.group for r in rows] == [GRN, "police", SAN, None]
    police = rows[1]
    assert police == msgspec.structs.replace(evaluate([], S, E)[0], group="police")
    # a group whose only cases fall outside the period is listed, with nothing in it
    old = case("old", -30 * DAY, -30 * DAY, -30 * DAY, None, -29 * DAY, -29 * DAY,
               department="parks", handled=True)
    [parks] = evaluate([old], S, E, "department")
    assert parks.group == "parks" and parks.due == parks.registered == 0
    assert parks.closure_rate is None


def test_joint_dispatch_counts_the_case_in_each_department_once():
    joint = case("j", 0, 60, 120, 180, 3600, 7200, handled=True, reworks=1,
                 department="police", departments=["police", "fire", "city_management"])
    solo = case("s", 0, 60, 120, 180, 9000, 7200, handled=True, department="fire")
    city = evaluate([joint, solo], S, E)[0]
    assert (city.due, city.closed, city.closed_on_time, city.reworked) == (2, 2, 1, 1)
    rows = {r.group: r for r in evaluate([joint, solo], S, E, "department")}
    assert list(rows) == ["city_management", "fire", "police"]
    assert (rows["police"].due, rows["police"].closed_on_time, rows["police"].reworked) \
        == (1, 1, 1)
    assert (rows["city_management"].due, rows["city_management"].dispatched) == (1, 1)
    fire = rows["fire"]
    assert (fire.due, fire.closed, fire.closed_on_time) == (2, 2, 1)
    assert (fire.handled, fire.reworked, fire.rework_rate) == (2, 1, 0.5)
    assert fire.dispatch_to_close == ((3600 - 120) + (9000 - 120)) / 2
    # departments alone, without the lead department
    only = case("o", 0, 60, 120, departments=["fire", "police"])
    assert only.department_keys() == ["fire", "police"]
    assert [r.group for r in evaluate([only], S, E, "department")] == ["fire", "police"]


def test_case_facts_refuse_impossible_histories():
    with pytest.raises(ValueError, match="dispatched is before registered"):
        case("x", 0, 100, 50)
    with pytest.raises(ValueError, match="registered is before reported"):
        case("x", 100, 50)
    with pytest.raises(ValueError, match="accepted without dispatched"):
        case("x", 0, 10, None, 30)
    with pytest.raises(ValueError, match="closed without registered"):
        case("x", 0, None, None, None, 30)
    with pytest.raises(ValueError, match="voided"):
        case("x", 0, voided=True)
    with pytest.raises(ValueError, match="reworked but never handled"):
        case("x", 0, 10, 20, reworks=1)
    with pytest.raises(ValueError, match="negative"):
        case("x", 0, 10, 20, returned_wrong_unit=-1)
    with pytest.raises(ValueError, match="not a time"):
        case("x", float("nan"))
    # decoding goes through the same checks
    with pytest.raises(msgspec.ValidationError, match="before"):
        msgspec.json.decode(b'{"id":"x","category":"c","reported":10,"registered":5}',
                            type=CaseFacts)
    facts = msgspec.json.decode(
        b'{"id":"x","category":"c","reported":1,"registered":2,"departments":["a"]}',
        type=CaseFacts)
    assert facts.department_keys() == ["a"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="group_by"):
        evaluate(WEEK, S, E, "street")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        evaluate(WEEK, E, S)
    with pytest.raises(ValueError, match="empty"):
        evaluate(WEEK, S, S)


_t = st.one_of(st.none(), st.floats(-2 * DAY, 9 * DAY))


@st.composite
def random_case(draw):
    steps = sorted(t for t in (draw(_t) for _ in range(4)) if t is not None)
    reg, dis, acc, closed = (steps + [None] * 4)[:4]
    handled = draw(st.booleans())
    return case(draw(st.uuids()).hex, -3 * DAY, reg, dis, acc, closed if reg is not None else None,
                draw(_t), category=draw(st.sampled_from("abc")),
                parked=draw(st.booleans()), voided=reg is not None and draw(st.booleans()),
                handled=handled, reworks=draw(st.integers(0, 2)) if handled else 0,
                returned_wrong_unit=draw(st.integers(0, 2)))


@settings(max_examples=150, deadline=None)
@given(st.lists(random_case(), max_size=25))
def test_category_rows_add_up_to_the_city_row(cases):
    [city] = evaluate(cases, S, E)
    rows = evaluate(cases, S, E, "category")
    for field in ("parked", "due", "closed", "closed_on_time", "handled", "reworked",
                  "dispatched", "returned_wrong_unit", "registered", "voided",
                  "report_to_register_samples", "dispatch_to_close_samples"):
        assert sum(getattr(r, field) for r in rows) == getattr(city, field), field
    for row in [city, *rows]:
        assert isinstance(row, Figures)
        assert row.closed_on_time <= row.closed <= row.due
        for rate in (row.closure_rate, row.on_time_closure_rate, row.rework_rate,
                     row.dispatch_accuracy, row.registration_accuracy):
            assert rate is None or 0.0 <= rate <= 1.0
        for mean in (row.report_to_register, row.register_to_dispatch,
                     row.dispatch_to_accept, row.dispatch_to_close):
            assert mean is None or mean >= 0.0


def test_mid_period_only_cases_whose_limit_has_passed_are_due():
    """Issue 14: evaluated mid-month, cases whose limit is still ahead counted as due and not
    closed, so on-time rates read near 0 % until the month ended. A case is due once its limit
    has passed (before `now`), or when it was closed in the period."""
    month_end = S + 30 * DAY
    now = S + 15 * DAY
    cases = [
        case("early", 0, 10, 20, 30, 3 * DAY, 5 * DAY),  # closed on time
        case("before_limit", 0, 10, 20, 30, 10 * DAY, 20 * DAY),  # closed, limit still ahead
        case("open_not_yet_due", DAY, DAY + 10, DAY + 20, deadline=20 * DAY),
        case("open_late", DAY, DAY + 10, DAY + 20, deadline=12 * DAY),
        case("limit_is_now", DAY, DAY + 10, DAY + 20, deadline=15 * DAY),
    ]
    [row] = evaluate(cases, S, month_end, now=now)
    assert (row.due, row.closed, row.closed_on_time) == (4, 2, 2)
    assert row.on_time_closure_rate == 0.5 and row.closure_rate == 0.5
    assert not due_to_close(cases[2], S, month_end, now=now)
    assert due_to_close(cases[3], S, month_end, now=now)
    assert due_to_close(cases[4], S, month_end, now=now)  # its limit is now: overdue
    # With only not-yet-due cases open, the rate is that of the closures: 100 %, not 0 %.
    [row] = evaluate(cases[:3], S, month_end, now=now)
    assert (row.due, row.on_time_closure_rate) == (2, 1.0)
    # Once the month is over (or with no `now`), every limit in it has passed.
    assert evaluate(cases, S, month_end, now=month_end + DAY)[0].due == 5
    assert evaluate(cases, S, month_end)[0].due == 5
