"""The device lifecycle: which moves a person may make, and the registry's per-device arrays
(activation at a first reading, stamps, what the store says changed elsewhere)."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from cityops.domain import lifecycle as life
from cityops.domain.city import Device
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.lifecycle import Lifecycle as L
from cityops.domain.registry import DeviceRegistry


@pytest.mark.parametrize(("before", "after"), [
    (L.COMMISSIONING, L.MAINTENANCE), (L.ACTIVE, L.MAINTENANCE), (L.MAINTENANCE, L.ACTIVE),
    (L.COMMISSIONING, L.DECOMMISSIONED), (L.ACTIVE, L.DECOMMISSIONED),
    (L.MAINTENANCE, L.DECOMMISSIONED), (L.DECOMMISSIONED, L.COMMISSIONING),
    (L.MAINTENANCE, L.MAINTENANCE),  # already there: left as it is, no refusal
])
def test_allowed_moves(before, after):
    assert life.why_not(before, after) is None


@pytest.mark.parametrize(("before", "after", "why"), [
    (L.COMMISSIONING, L.ACTIVE, "becomes active by itself at its first reading"),
    (L.DECOMMISSIONED, L.ACTIVE, "commission it again first"),
    (L.DECOMMISSIONED, L.MAINTENANCE, "cannot move from decommissioned to maintenance"),
    (L.ACTIVE, L.COMMISSIONING, "only a decommissioned device is commissioned again"),
    (L.MAINTENANCE, L.COMMISSIONING, "only a decommissioned device"),
])
def test_refused_moves_say_why(before, after, why):
    assert why in life.why_not(before, after)


def test_a_bulk_check_names_the_first_device_refused():
    moves = [("a", L.ACTIVE, L.MAINTENANCE), ("b", L.DECOMMISSIONED, L.MAINTENANCE),
             ("c", L.COMMISSIONING, L.ACTIVE)]
    with pytest.raises(life.RefusedMove) as refused:
        life.check_moves(moves)
    assert refused.value.device == "b" and "device 'b'" in refused.value.reason


def test_parse_and_windows():
    assert life.parse("maintenance") is L.MAINTENANCE
    with pytest.raises(life.RefusedMove, match="unknown lifecycle state 'broken'"):
        life.parse("broken")
    assert life.never_reported(L.COMMISSIONING, 1000.0, 1000.0 + 7 * 86400, 7 * 86400)
    assert not life.never_reported(L.COMMISSIONING, 1000.0, 1000.0 + 7 * 86400 - 1, 7 * 86400)
    assert not life.never_reported(L.ACTIVE, 0.0, 1e9, 7 * 86400)
    assert life.counts_silence_from(lifecycle_at=500.0, last_reading=100.0) == 500.0


@pytest.mark.parametrize(("stored", "stored_at", "mine", "settles"), [
    (L.COMMISSIONING, 0.0, L.ACTIVE, True),  # a first reading
    (L.COMMISSIONING, 50.0, L.ACTIVE, True),  # a first reading after a stamp saved
    (L.COMMISSIONING, 0.0, L.COMMISSIONING, True),  # a stamp
    (L.ACTIVE, 0.0, L.ACTIVE, True),  # a stamp of a device heard before lifecycles existed
    (L.COMMISSIONING, 50.0, L.COMMISSIONING, False),  # stamped elsewhere meanwhile
    (L.MAINTENANCE, 50.0, L.ACTIVE, False),  # moved by a person meanwhile
    (L.DECOMMISSIONED, 50.0, L.ACTIVE, False),
    (L.ACTIVE, 50.0, L.ACTIVE, False),  # heard first on another node: its time stays
    (L.MAINTENANCE, 50.0, L.MAINTENANCE, False),
])
def test_a_change_of_the_nodes_own_settles_only_while_nobody_moved_the_device(
        stored, stored_at, mine, settles):
    assert life.may_settle(stored, stored_at, mine) is settles


def test_a_stored_doc_without_lifecycle_decodes_as_commissioning():
    doc = b'{"id":"n1","kind":"noise","lat":31.2,"lon":121.5}'
    device = msgspec.json.decode(doc, type=Device)
    assert device.lifecycle is L.COMMISSIONING and device.lifecycle_at == 0.0
    assert msgspec.json.encode(device) == doc  # defaults are not written
    moved = msgspec.structs.replace(device, lifecycle=L.MAINTENANCE, lifecycle_at=5.0)
    assert msgspec.json.decode(msgspec.json.encode(moved), type=Device) == moved


def _registry(n=4):
    registry = DeviceRegistry(BUILTIN_KINDS)
    registry.add([Device(f"n{i}", "noise", 31.2, 121.5) for i in range(n)])
    return registry


def test_registry_arrays_follow_the_devices():
    registry = _registry(3)
    registry.add([Device("n1", "noise", 31.2, 121.5, lifecycle=L.MAINTENANCE,
                         lifecycle_at=10.5)])
    assert registry.lifecycle.tolist() == [life.COMMISSIONING, life.MAINTENANCE,
                                           life.COMMISSIONING]
    assert registry.lifecycle_at_us.tolist() == [0, 10_500_000, 0]
    assert registry.evaluated(4).tolist() == [True, False, True, True]
    # Past the first allocation, arrays grow with the devices.
    registry.add([Device(f"x{i}", "noise", 31.2, 121.5, lifecycle=L.DECOMMISSIONED)
                  for i in range(2000)])
    assert registry.lifecycle.shape == (2003,) and registry.lifecycle[-1] == life.DECOMMISSIONED


def test_the_version_moves_only_into_or_out_of_resting_states():
    registry = _registry(2)
    v = registry.lifecycle_version
    registry.activate(np.array([0]), 5.0)
    assert registry.lifecycle_version == v
    registry.add([msgspec.structs.replace(registry.devices[0], lifecycle=L.MAINTENANCE)])
    assert registry.lifecycle_version == v + 1
    registry.add([msgspec.structs.replace(registry.devices[0], lifecycle=L.ACTIVE)])
    assert registry.lifecycle_version == v + 2


def test_activation_takes_commissioning_devices_once():
    registry = _registry(4)
    registry.add([msgspec.structs.replace(registry.devices[3], lifecycle=L.MAINTENANCE)])
    assert registry.activate(np.array([1, 1, 3, 2, 1], np.int32), 100.0) == 2
    assert registry.lifecycle.tolist() == [0, 1, 1, 2]  # maintenance is not woken up
    assert registry.devices[1].lifecycle is L.ACTIVE and registry.devices[1].lifecycle_at == 100
    assert registry.activate(np.array([1, 2], np.int32), 200.0) == 0  # already active
    assert registry.lifecycle_at_us[1] == 100_000_000
    saved = registry.take_unsaved()
    assert [d.id for d in saved] == ["n1", "n2"] and not registry.unsaved
    registry.restore_unsaved(saved)
    assert registry.unsaved == {1, 2}


def test_activation_per_device_times():
    registry = _registry(3)
    registry.activate(np.array([2, 0]), np.array([30.0, 10.0]))
    assert registry.lifecycle_at_us.tolist() == [10_000_000, 0, 30_000_000]


def test_stamp_gives_a_time_only_to_devices_without_one():
    registry = _registry(2)
    registry.add([msgspec.structs.replace(registry.devices[1], lifecycle_at=7.0)])
    assert registry.stamp(50.0) == 1
    assert [d.lifecycle_at for d in registry.devices] == [50.0, 7.0]
    assert registry.unsaved == {0}


def test_follow_takes_the_store_but_keeps_an_unsaved_first_reading():
    registry = _registry(3)
    stored = list(registry.devices)
    registry.activate(np.array([0, 1]), 100.0)
    # Meanwhile another node put n1 into maintenance and moved n2.
    stored[1] = msgspec.structs.replace(stored[1], lifecycle=L.MAINTENANCE, lifecycle_at=90.0)
    stored[2] = msgspec.structs.replace(stored[2], lat=31.3)
    stored.append(Device("n9", "noise", 31.2, 121.5))
    assert registry.follow(stored) == 2
    assert [d.lifecycle for d in registry.devices] == [L.ACTIVE, L.MAINTENANCE,
                                                       L.COMMISSIONING, L.COMMISSIONING]
    assert registry.devices[2].lat == 31.3 and len(registry) == 4
    assert registry.unsaved == {0}  # n0's first reading is still to be saved; n1's is moot


def test_activation_is_skipped_only_while_nobody_is_commissioning():
    registry = _registry(2)
    assert registry.activate(np.array([0, 1]), 1.0) == 2
    assert registry.activate(np.array([0, 1]), 2.0) == 0
    # A device registered later, and one commissioned again, are activated as ever.
    registry.add([Device("late", "noise", 31.2, 121.5)])
    registry.add([msgspec.structs.replace(registry.devices[0], lifecycle=L.DECOMMISSIONED)])
    registry.add([msgspec.structs.replace(registry.devices[0], lifecycle=L.COMMISSIONING)])
    assert registry.activate(np.array([2, 0, 1]), 3.0) == 2
    assert registry.lifecycle.tolist() == [life.ACTIVE] * 3
