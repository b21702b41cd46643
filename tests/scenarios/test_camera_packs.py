"""The camera rules of the shipped packs (the event types a video analytics source such as
Frigate reports), each driven through its real evaluator with sightings that must raise it and
ones that must not: each dwell limit means what its pack's README says."""

from __future__ import annotations

import pytest

from cityops.domain.kinds import CAMERA_EVENTS
from cityops.domain.scenarios.spec import CameraEvent
from tests.scenarios.test_packs import Rig, at, packs  # noqa: F401 (fixture)

CODE = {name: code for code, name in CAMERA_EVENTS.items()}

# (pack, rule, event, dwell limit in seconds, severity, a department the case goes to)
CAMERA_RULES = [
    ("fire_lane", "blocked", "vehicle_in_fire_lane", 300, "major", "fire"),
    ("street_stall", "on_carriageway", "repair_stall_on_carriageway", 600, "minor",
     "city_management"),
    ("muck", "uncovered", "muck_truck_uncovered", 0, "minor", "city_management"),
    ("garbage", "garbage_exposed", "garbage_exposed", 900, "minor", "sanitation"),
    ("crowd", "gathering", "crowd_gathering", 180, "major", "police"),
    ("smoke", "seen_on_camera", "smoke_or_fire", 60, "critical", "fire"),
    ("parking", "parked", "illegal_parking", 600, "minor", "police"),
]


def _sighting(rig, camera, start, seconds, event, step=30):
    for s in [*range(0, seconds, step), seconds]:
        t = start + s
        rig.feed([(camera, "event", t, float(CODE[event])), (camera, "dwell", t, float(s))])


def _nothing(rig, camera, t):
    rig.feed([(camera, "event", t, 0.0), (camera, "dwell", t, 0.0)])


def test_every_camera_event_has_a_rule(packs):  # noqa: F811
    ruled = {r.event for p in packs.values() for r in p.rules if isinstance(r, CameraEvent)}
    assert ruled == set(CAMERA_EVENTS.values()) - {"none"}


@pytest.mark.parametrize(("pack", "rule", "event", "limit", "severity", "department"),
                         CAMERA_RULES, ids=[r[1] for r in CAMERA_RULES])
def test_each_camera_event_raises_its_rule_past_its_dwell(packs, pack, rule, event, limit,  # noqa: F811
                                                         severity, department):
    p = packs[pack]
    spec = next(r for r in p.rules if r.id == rule)
    assert spec.severity == severity and department in p.departments
    rig = Rig(p)
    # The fire-lane rule reads fire-lane cameras only; the others any camera.
    camera = "cam-lane"
    if limit:
        _sighting(rig, camera, at(20), limit - 30, event)
        assert not rig.raised(), "raised before its dwell limit"
        _nothing(rig, camera, at(20, 30))
    _sighting(rig, camera, at(21), limit + 30, event)
    (first, *_) = rig.raised(f"{pack}.{rule}", camera)
    assert event in first.detail
    _nothing(rig, camera, at(22))
    assert rig.cleared(f"{pack}.{rule}")


@pytest.mark.parametrize(("pack", "rule", "event"),
                         [(r[0], r[1], r[2]) for r in CAMERA_RULES if r[0] != "fire_lane"],
                         ids=[r[1] for r in CAMERA_RULES if r[0] != "fire_lane"])
def test_a_camera_rule_ignores_the_other_events(packs, pack, rule, event):  # noqa: F811
    rig = Rig(packs[pack])
    for other in sorted(set(CAMERA_EVENTS.values()) - {"none", event}):
        _sighting(rig, "cam-gate", at(9), 1800, other)
        _nothing(rig, "cam-gate", at(9, 40))
    assert not rig.raised(f"{pack}.{rule}")


def test_the_fire_lane_still_reads_fire_lane_cameras_only(packs):  # noqa: F811
    rig = Rig(packs["fire_lane"])
    _sighting(rig, "cam-gate", at(21), 900, "vehicle_in_fire_lane")
    assert not rig.raised()
    _sighting(rig, "cam-lane", at(22), 330, "vehicle_in_fire_lane")
    assert rig.raised("fire_lane.blocked", "cam-lane")
