"""Outage: devices of one gateway, village or town falling silent together make one alert for
the network, for the largest area it explains; one flaky device does not; devices never heard
do not count; it clears when the devices are heard again, and says which devices it explains."""

from __future__ import annotations

import numpy as np

from cityops.domain.scenarios.primitives.outage import OutageEvaluator
from cityops.domain.scenarios.spec import Outage

from .city_kit import DISTRICT, US, V1, V2, V3, at, context, device, pack

T0 = at(2024, 5, 8, 10)
S = US
NEVER = np.iinfo(np.int64).min


def city():
    """Village V1: 6 noise meters behind gw-a, 4 behind gw-b; V2: 8 behind gw-c; V3 (another
    town): 8 behind gw-d. Noise meters report every 60 s."""
    devices = ([device(i, village=V1, gateway="gw-a") for i in range(6)]
               + [device(6 + i, village=V1, gateway="gw-b") for i in range(4)]
               + [device(10 + i, village=V2, gateway="gw-c") for i in range(8)]
               + [device(18 + i, village=V3, gateway="gw-d") for i in range(8)])
    return devices


def make(rule=None, devices=None):
    rule = rule or Outage(id="outage")
    ctx = context(devices or city())
    ctx.last_seen_us = np.full(len(ctx.registry), T0, np.int64)
    return OutageEvaluator(pack(rule), rule, ctx), ctx


def heard(ctx, devices, t):
    ctx.last_seen_us[list(devices)] = t


def tick(ev, ctx, t):
    ctx.now_us = t
    return [(s.subject, s.active) for s in ev.on_tick(ctx)]


def everyone_reports_until(ctx, t, but=()):
    alive = [d for d in range(len(ctx.registry)) if d not in set(but)]
    heard(ctx, alive, t)


def test_a_gateway_down_is_one_outage_of_that_gateway():
    ev, ctx = make()
    # gw-b's 4 devices stop at T0; everybody else keeps reporting every minute.
    for minute in range(1, 4):
        everyone_reports_until(ctx, T0 + minute * 60 * S, but=range(6, 10))
        out = tick(ev, ctx, T0 + minute * 60 * S + 5 * S)
        if minute == 1:
            assert out == []  # 65 s silent: not yet 1.5 periods
    # From 90 s on, gw-b's devices are silent: 4 of 4 of the gateway, 4 of 10 of V1.
    assert ev.outages.keys() == {"outage:gateway:gw-b"}
    assert ev.explains(7) == "outage:gateway:gw-b"
    assert ev.explains(0) is None  # gw-a, same village, still up
    assert ev.explains(12) is None


def test_a_village_out_is_one_outage_of_the_village_not_of_its_gateways():
    ev, ctx = make()
    everyone_reports_until(ctx, T0 + 100 * S, but=range(0, 10))
    ctx.now_us = T0 + 100 * S
    signals = ev.on_tick(ctx)
    assert [(s.subject, s.active) for s in signals] == [(f"outage:village:{V1}", True)]
    s = signals[0]
    assert s.value == 1.0
    assert s.device in range(0, 10)
    assert "10 of 10 devices of village" in s.detail
    assert all(ev.explains(d) == f"outage:village:{V1}" for d in range(10))
    # Later ticks raise nothing more (neither the village again nor its gateways).
    everyone_reports_until(ctx, T0 + 200 * S, but=range(0, 10))
    assert tick(ev, ctx, T0 + 200 * S) == []


def test_a_town_out_is_one_outage_of_the_town():
    ev, ctx = make()
    everyone_reports_until(ctx, T0 + 100 * S, but=range(0, 18))  # V1 and V2: town 001
    assert tick(ev, ctx, T0 + 100 * S) == [(f"outage:town:{DISTRICT}001", True)]
    assert ev.explains(15) == f"outage:town:{DISTRICT}001"
    assert ev.explains(20) is None


def test_one_flaky_device_or_two_are_not_an_outage():
    ev, ctx = make(Outage(id="outage", min_devices=3))
    for minute in range(1, 10):
        everyone_reports_until(ctx, T0 + minute * 60 * S, but=(1, 12))
        assert tick(ev, ctx, T0 + minute * 60 * S + 1 * S) == []


def test_devices_never_heard_are_being_installed_not_out():
    ev, ctx = make()
    ctx.last_seen_us[:] = NEVER
    assert tick(ev, ctx, T0 + 3600 * S) == []


def test_slow_kinds_not_due_yet_tell_nothing_either_way():
    """Bin sensors report every 10 min: 3 min after a village went dark they have not missed a
    report, so they are neither silent nor alive; the noise meters decide."""
    devices = ([device(i, village=V1, gateway="gw-a") for i in range(4)]
               + [device(4 + i, kind="bin_fill", village=V1, gateway="gw-a")
                  for i in range(10)]
               + [device(14 + i, village=V2, gateway="gw-c") for i in range(4)])
    ev, ctx = make(devices=devices)
    ctx.last_seen_us[4:14] = T0 - 120 * S  # their last report, two minutes before the cut
    heard(ctx, range(14, 18), T0 + 180 * S)
    assert tick(ev, ctx, T0 + 180 * S) == [(f"outage:village:{V1}", True)]


def test_devices_dead_for_days_are_not_part_of_todays_outage():
    devices = [device(i, village=V1, gateway="gw-a") for i in range(10)]
    ev, ctx = make(devices=devices)
    ctx.last_seen_us[:4] = T0 - 3 * 86400 * S  # broken long ago, at different times
    ctx.last_seen_us[:4] -= np.arange(4) * 3600 * S
    heard(ctx, range(4, 10), T0 + 300 * S)
    assert tick(ev, ctx, T0 + 300 * S) == []


def test_it_clears_once_half_are_heard_again_and_what_is_still_out_narrows():
    ev, ctx = make()
    everyone_reports_until(ctx, T0 + 100 * S, but=range(0, 10))
    assert tick(ev, ctx, T0 + 100 * S) == [(f"outage:village:{V1}", True)]
    heard(ctx, range(0, 4), T0 + 150 * S)
    heard(ctx, range(10, 26), T0 + 150 * S)
    assert tick(ev, ctx, T0 + 150 * S) == []  # 4 of 10 back
    heard(ctx, range(4, 6), T0 + 160 * S)  # gw-a whole again, gw-b still dark
    heard(ctx, range(10, 26), T0 + 160 * S)
    assert tick(ev, ctx, T0 + 160 * S) == [(f"outage:village:{V1}", False)]
    assert ev.explains(3) is None and ev.explains(8) is None
    # gw-b's meters had 1.5 periods since the recovery to report and did not: their outage.
    heard(ctx, list(range(0, 6)) + list(range(10, 26)), T0 + 251 * S)
    assert tick(ev, ctx, T0 + 251 * S) == [("outage:gateway:gw-b", True)]
    assert ev.explains(8) == "outage:gateway:gw-b"


def test_only_the_levels_asked_for():
    ev, ctx = make(Outage(id="outage", per=["gateway"]))
    everyone_reports_until(ctx, T0 + 100 * S, but=range(0, 10))
    assert sorted(tick(ev, ctx, T0 + 100 * S)) == [("outage:gateway:gw-a", True),
                                                   ("outage:gateway:gw-b", True)]


def test_gps_trackers_move_between_areas_and_are_left_out():
    devices = [device(i, kind="gps", village=V1) for i in range(10)] + \
        [device(10 + i, village=V1) for i in range(2)]
    ev, ctx = make(devices=devices)
    assert tick(ev, ctx, T0 + 600 * S) == []


def test_a_backlog_of_old_readings_arriving_now_is_devices_alive_now():
    """Readings two hours old (a gateway catching up, a replay) arrive: their devices are
    heard now, not silent for two hours."""
    from .city_kit import batch

    ev, ctx = make()
    ctx.last_seen_us[:] = T0 - 7200 * S
    ctx.now_us = T0
    ev.on_batch(batch(*[(d, 0, T0 - 7200 * S, 50.0) for d in range(26)]), ctx)
    assert tick(ev, ctx, T0 + 30 * S) == []
    assert tick(ev, ctx, T0 + 100 * S) != []  # then silent: judged from their arrival


def test_after_a_recovery_devices_not_heard_since_tell_nothing():
    """A village back: its slow bin sensors have not had their turn to report yet. They are
    not a new outage of their gateway; silent again after being heard, they would be."""
    devices = ([device(i, village=V1, gateway="gw-a") for i in range(6)]
               + [device(6 + i, kind="bin_fill", village=V1, gateway="gw-b")
                  for i in range(4)]
               + [device(10 + i, village=V2, gateway="gw-c") for i in range(8)])
    ev, ctx = make(devices=devices)
    ctx.last_seen_us[6:10] = T0 - 60 * S  # bins: last report a minute before the cut
    heard(ctx, range(10, 18), T0 + 200 * S)
    assert tick(ev, ctx, T0 + 200 * S) == [(f"outage:village:{V1}", True)]
    heard(ctx, range(0, 6), T0 + 400 * S)  # the meters are back; the bins not yet
    heard(ctx, range(10, 18), T0 + 400 * S)
    assert tick(ev, ctx, T0 + 400 * S) == [(f"outage:village:{V1}", False)]
    for t in (600, 900, 1200):
        heard(ctx, list(range(0, 6)) + list(range(10, 18)), T0 + t * S)
        assert tick(ev, ctx, T0 + t * S) == []


def test_it_stays_while_the_devices_stay_silent_whatever_their_last_readings():
    """The silence is dated by the median of the devices' last readings; half of them sent a
    reading after that median. They are not back until heard after their newest one."""
    ev, ctx = make()
    for d in range(10):  # V1's devices fell silent over 40 s, each at its own moment
        ctx.last_seen_us[d] = T0 + d * 4 * S
    heard(ctx, range(10, 26), T0 + 200 * S)
    assert tick(ev, ctx, T0 + 200 * S) == [(f"outage:village:{V1}", True)]
    for t in (260, 320, 380):
        heard(ctx, range(10, 26), T0 + t * S)
        assert tick(ev, ctx, T0 + t * S) == []
    assert ev.explains(9) == f"outage:village:{V1}"
