"""The storm benchmark's judgement of what a node recorded: outage cases counted per village
out (its village's, gateways' or town's), device alerts filed despite an outage, alerts of
never-heard devices, and episodes of flaky devices and repeaters."""

from __future__ import annotations

from cityops.bench.storm import judge
from cityops.sim.storm import Flaky, Outage, Repeater

V, T = "310115001001", "310115001"


def alert(id, rule, subject, first_seen=100.0, **kw):
    return {"id": id, "rule": rule, "subject": subject, "first_seen": first_seen, **kw}


def case(alert_id, category="component.iot_device.network_outage"):
    return {"alert_id": alert_id, "category": category}


OUT = Outage(village=V, town=T, gateways=["gw-1", "gw-2"], devices=["a", "b", "c"], count=3,
             start=90.0, end=300.0)


def test_one_outage_case_for_a_village_and_its_devices_held():
    alerts = [alert("o1", "network.area_outage", f"outage:village:{V}"),
              *[alert(f"d{x}", "device_health.offline_noise", x, 200.0, inhibited_by="o1")
                for x in "abc"]]
    figures = judge([OUT], alerts, [case("o1")], set())
    assert figures["outage_cases_per_village"] == [1]
    assert figures["outage_devices_filed_one_by_one"] == 0


def test_a_case_per_gateway_is_two_cases_for_the_village_and_a_device_filed_counts():
    alerts = [alert("g1", "network.area_outage", "outage:gateway:gw-1"),
              alert("g2", "network.area_outage", "outage:gateway:gw-2"),
              alert("da", "device_health.offline_noise", "a", 150.0),
              alert("db", "device_health.offline_noise", "b", 900.0)]  # after it: its own
    figures = judge([OUT], alerts, [case("g1"), case("g2")], set())
    assert figures["outage_cases_per_village"] == [2]
    assert figures["outage_devices_filed_one_by_one"] == 1


def test_a_town_case_explains_the_village_and_no_case_is_none():
    alerts = [alert("t", "network.area_outage", f"outage:town:{T}")]
    assert judge([OUT], alerts, [case("t")], set())["outage_cases_per_village"] == [1]
    assert judge([OUT], alerts, [], set())["outage_cases_per_village"] == [0]


def test_never_heard_devices_flaky_devices_and_repeaters():
    flaky = Flaky(device="f", kind="noise", village=V, period_s=60.0, spells=[(1.0, 2.0)])
    loud = Repeater(device="r", kind="smoke", village=V, channel="obscuration", level=15.0,
                    every_s=60.0, burst_s=20.0, start=0.0, end=300.0, bursts=5)
    alerts = [alert("n", "device_health.offline_noise", "new-1"),
              alert("f1", "device_health.offline_noise", "f", flaps=3),
              alert("f2", "device_health.offline_noise", "f", 700.0),
              alert("r1", "components.manhole_displaced", "r", flaps=4)]
    figures = judge([flaky, loud], alerts, [], {"new-1", "new-2"})
    assert figures["unreported_alerts"] == 1
    assert figures["flaky_episodes_max"] == 2 and figures["flaky_flaps"] == 3
    assert figures["repeater_episodes_max"] == 1 and figures["repeater_flaps"] == 4
