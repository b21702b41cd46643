"""Absence and the device lifecycle: a device never heard is commissioning, not offline; one in
maintenance or decommissioned is never offline and an offline one moved there clears, saying
why; a device back from maintenance is silent from its return, not from its last reading."""

from __future__ import annotations

import msgspec
import numpy as np

from cityops.domain.lifecycle import Lifecycle
from cityops.domain.scenarios.primitives.absence import AbsenceEvaluator
from cityops.domain.scenarios.spec import Absence

from .city_kit import US, at, batch, context, device, pack

T0 = at(2024, 5, 8, 10)
S = US
DAY = 86400 * S


def make(*devices):
    rule = Absence(id="offline", kind="noise", periods=3)
    ctx = context(list(devices))
    return AbsenceEvaluator(pack(rule), rule, ctx), ctx


def life(d, state, since_us):
    return msgspec.structs.replace(d, lifecycle=state, lifecycle_at=since_us / US)


def tick(ev, ctx, t):
    ctx.now_us = t
    return [(s.subject, s.active, s.detail) for s in ev.on_tick(ctx)]


def move(ctx, i, state, since_us):
    ctx.registry.add([life(ctx.registry.devices[i], state, since_us)])


def test_a_device_never_heard_is_never_offline():
    ev, ctx = make(device(0), device(1))
    tick(ev, ctx, T0)
    for t in (T0 + 180 * S, T0 + DAY, T0 + 30 * DAY):
        assert tick(ev, ctx, t) == []


def test_one_reading_makes_it_count_even_before_the_registry_says_active():
    # A cluster's detect worker hears the first reading before its registry reloads.
    ev, ctx = make(device(0), device(1))
    tick(ev, ctx, T0)
    ctx.now_us = T0 + 10 * S
    ev.on_batch(batch((1, 0, T0 + 10 * S, 50.0)), ctx)
    assert tick(ev, ctx, T0 + 189 * S) == []
    out = tick(ev, ctx, T0 + 190 * S)
    assert out == [("noise-001", True, "no reading for 3 min (reports every 60 s)")]
    assert tick(ev, ctx, T0 + DAY) == []  # noise-000 was never heard


def test_active_counts_from_activation_and_last_seen():
    ev, ctx = make(life(device(0), Lifecycle.ACTIVE, T0 - DAY), device(1))
    tick(ev, ctx, T0)
    ctx.last_seen_us = np.array([T0 - 10 * S, np.iinfo(np.int64).min])
    assert tick(ev, ctx, T0 + 179 * S) == []  # the rule's start is the earliest
    assert [s[:2] for s in tick(ev, ctx, T0 + 180 * S)] == [("noise-000", True)]


def test_maintenance_is_never_offline_and_an_offline_device_moved_there_clears():
    ev, ctx = make(life(device(0), Lifecycle.ACTIVE, T0 - DAY),
                   life(device(1), Lifecycle.MAINTENANCE, T0 - DAY),
                   life(device(2), Lifecycle.DECOMMISSIONED, T0 - DAY))
    tick(ev, ctx, T0)
    ctx.now_us = T0 + 1 * S
    # Readings of a resting device seen by the rule do not make it count either.
    ev.on_batch(batch((1, 0, T0, 50.0), (2, 0, T0, 50.0)), ctx)
    assert tick(ev, ctx, T0 + 200 * S) == [
        ("noise-000", True, "no reading since detection started 3 min ago "
                            "(reports every 60 s)")]
    move(ctx, 0, Lifecycle.MAINTENANCE, T0 + 250 * S)
    assert tick(ev, ctx, T0 + 260 * S) == [("noise-000", False, "in maintenance")]
    assert tick(ev, ctx, T0 + DAY) == []


def test_decommissioned_clears_saying_so():
    ev, ctx = make(life(device(0), Lifecycle.ACTIVE, T0 - DAY))
    tick(ev, ctx, T0)
    assert [s[:2] for s in tick(ev, ctx, T0 + 200 * S)] == [("noise-000", True)]
    move(ctx, 0, Lifecycle.DECOMMISSIONED, T0 + 250 * S)
    assert tick(ev, ctx, T0 + 260 * S) == [("noise-000", False, "decommissioned")]


def test_back_from_maintenance_silence_counts_from_the_return():
    ev, ctx = make(life(device(0), Lifecycle.MAINTENANCE, T0 - DAY))
    tick(ev, ctx, T0)
    ctx.last_seen_us = np.array([T0 - DAY])  # its last reading, before maintenance
    assert tick(ev, ctx, T0 + DAY) == []
    move(ctx, 0, Lifecycle.ACTIVE, T0 + DAY)
    assert tick(ev, ctx, T0 + DAY + 179 * S) == []
    assert tick(ev, ctx, T0 + DAY + 180 * S) == [
        ("noise-000", True, "no reading for 3 min since it became active "
                            "(reports every 60 s)")]
