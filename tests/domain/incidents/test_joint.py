"""Joint dispatch against one department after another, summed from a case's timeline."""

from __future__ import annotations

from cityops.domain.city import Level
from cityops.domain.incidents.joint import compare
from cityops.domain.incidents.model import Event, Incident, OrderStatus, WorkOrder

T0 = 1_000_000.0
MIN = 60.0


def _order(n: int, department: str, on_site_after: float, done_after: float | None,
           status: OrderStatus = OrderStatus.DONE) -> tuple[WorkOrder, Event]:
    order = WorkOrder(id=f"c1-{n}", department=department, level=Level.TOWN, area="990001001",
                      unit="subcentre:990001001", status=status, created=T0 + MIN,
                      done_at=None if done_after is None else T0 + MIN + done_after)
    arrived = Event(T0 + MIN + on_site_after, "k_x", "order.on_site", "accepted", "accepted",
                    order_id=order.id)
    return order, arrived


def _case(legs, closed_after: float | None, handled_after: float | None = None) -> Incident:
    inc = Incident(id="c1", category="event.emergency.vehicle_fire", kind="event",
                   title="truck fire", source="video", lat=31.1, lon=121.5, reported_at=T0,
                   updated_at=T0, orders=[o for o, _ in legs])
    inc.handled_at = None if handled_after is None else T0 + handled_after
    inc.closed_at = None if closed_after is None else T0 + closed_after
    return inc


def test_sequential_calls_each_unit_after_the_one_before_arrived() -> None:
    # Police 8 min to site, 25 on it; fire 10 and 20; ambulance 12 and 10.
    legs = [_order(1, "police", 8 * MIN, 33 * MIN), _order(2, "fire", 10 * MIN, 30 * MIN),
            _order(3, "ambulance", 12 * MIN, 22 * MIN)]
    # All done 34 min after discovery (the police), checked and closed 6 min later.
    inc = _case(legs, closed_after=40 * MIN, handled_after=34 * MIN)
    result = compare(inc, [e for _, e in legs], relay_s=10 * MIN,
                     order=["police", "fire", "ambulance"])
    assert result.joint_s == 40 * MIN
    # Police dispatched at 1, on site at 9; fire called at 19, on site at 29, done at 49;
    # ambulance called at 39, on site at 51, done at 61; then the same 6 min to close.
    assert result.sequential_s == 67 * MIN
    assert result.saved_s == 27 * MIN
    assert [leg.department for leg in result.legs] == ["police", "fire", "ambulance"]
    assert [leg.to_site_s for leg in result.legs] == [8 * MIN, 10 * MIN, 12 * MIN]


def test_without_an_order_the_units_go_as_dispatched() -> None:
    legs = [_order(2, "fire", 10 * MIN, 30 * MIN), _order(1, "police", 8 * MIN, 33 * MIN)]
    inc = _case(legs, closed_after=40 * MIN, handled_after=34 * MIN)
    result = compare(inc, [e for _, e in legs], relay_s=0.0)
    assert [leg.department for leg in result.legs] == ["police", "fire"]  # same time: by id
    # No relay: police on site at 9, fire at 19 and done at 39, closed 6 min after.
    assert result.sequential_s == 45 * MIN


def test_a_case_in_progress_has_legs_but_no_figures() -> None:
    legs = [_order(1, "police", 8 * MIN, None, OrderStatus.ACCEPTED),
            _order(2, "fire", 10 * MIN, 30 * MIN)]
    result = compare(_case(legs, closed_after=None), [e for _, e in legs])
    assert (result.joint_s, result.sequential_s, result.saved_s) == (None, None, None)
    assert [leg.status for leg in result.legs] == ["accepted", "done"]
    assert result.legs[0].work_s is None and result.legs[0].to_site_s == 8 * MIN


def test_a_withdrawn_order_is_left_out_and_the_last_arrival_counts() -> None:
    legs = [_order(1, "police", 8 * MIN, 33 * MIN),
            _order(2, "fire", 10 * MIN, 30 * MIN, OrderStatus.WITHDRAWN)]
    again = Event(T0 + MIN + 20 * MIN, "k_x", "order.on_site", "accepted", "accepted",
                  order_id="c1-1")  # back on site after a rework
    inc = _case(legs, closed_after=40 * MIN, handled_after=34 * MIN)
    result = compare(inc, [legs[0][1], again])
    assert [leg.department for leg in result.legs] == ["police"]
    assert result.legs[0].to_site_s == 20 * MIN and result.legs[0].work_s == 13 * MIN
