"""What a camera device reports from Frigate's tracked objects: the event its zones show, the
dwell, the clearing; and strict decoding of the messages."""

from __future__ import annotations

import msgspec
import pytest

from cityops.ingest.frigate import BadMessage, FrigateTracker, decode_message
from tests.ingest.frigate_kit import mapping, message, obj

T = 1_750_000_000.0
TOPIC = "frigate/events"
LANE, CROWD, PARKING, MUCK, FIRE = 1, 4, 5, 7, 6


def take(tracker, kind, after, now):
    return tracker.take(TOPIC, decode_message(message(kind, after)), now)


def test_a_car_in_the_fire_lane_dwells_until_it_ends():
    tr = FrigateTracker(mapping(), report_s=30)
    car = obj("e1", "gate_3", "car", T, T, ["fire_lane_gate_3"])
    assert take(tr, "new", car, T) == [("cam-lane", T, LANE, 0.0)]
    assert tr.tick(T + 10) == []  # reported 10 s ago
    (emit,) = tr.tick(T + 30)
    assert emit[0] == "cam-lane" and emit[2] == LANE and emit[3] == pytest.approx(30.0)
    (emit,) = tr.tick(T + 330)
    assert emit[3] == pytest.approx(330.0)
    ended = obj("e1", "gate_3", "car", T, T + 331, ["fire_lane_gate_3"], end=T + 331)
    assert take(tr, "end", ended, T + 331) == [("cam-lane", T + 331, 0, 0.0)]
    assert tr.tick(T + 400) == []
    cause = tr.cause_for("cam-lane", T + 330)
    assert cause.frigate_event == "e1" and cause.event == "vehicle_in_fire_lane"
    assert cause.snapshot_url == "http://127.0.0.1:5000/api/events/e1/snapshot.jpg"
    assert cause.clip_url == "http://127.0.0.1:5000/api/events/e1/clip.mp4"


def test_dwell_counts_from_start_time_for_an_object_first_seen_in_the_zone():
    tr = FrigateTracker(mapping())
    # Frigate's clock is an hour off; only the difference (40 s) counts.
    car = obj("e1", "gate_3", "car", T - 3600 - 40, T - 3600, ["fire_lane_gate_3"])
    ((_, ts, code, dwell),) = take(tr, "new", car, T)
    assert code == LANE and dwell == pytest.approx(40.0)


def test_entering_later_counts_from_then_and_leaving_the_zone_clears():
    tr = FrigateTracker(mapping())
    car = obj("e1", "gate_3", "car", T, T, [])
    assert take(tr, "new", car, T) == []  # not in a mapped zone
    car = obj("e1", "gate_3", "car", T, T + 60, ["fire_lane_gate_3"])
    assert take(tr, "update", car, T + 60) == [("cam-lane", T + 60, LANE, 0.0)]
    car = obj("e1", "gate_3", "car", T, T + 90, [])
    assert take(tr, "update", car, T + 90) == [("cam-lane", T + 90, 0, 0.0)]


def test_two_cars_are_one_event_until_the_last_leaves():
    tr = FrigateTracker(mapping())
    zone = ["fire_lane_gate_3"]
    take(tr, "new", obj("a", "gate_3", "car", T, T, zone), T)
    assert take(tr, "new", obj("b", "gate_3", "truck", T + 100, T + 100, zone), T + 100) == []
    assert take(tr, "end", obj("b", "gate_3", "truck", T + 100, T + 200, zone, end=T + 200),
                T + 200) == []
    (emit,) = tr.tick(T + 300)
    assert emit[3] == pytest.approx(300.0)  # still the first car's dwell
    assert take(tr, "end", obj("a", "gate_3", "car", T, T + 310, zone, end=T + 310),
                T + 310)[0][2] == 0


def test_a_crowd_is_a_count_lasting_from_when_it_was_reached():
    tr = FrigateTracker(mapping(crowd=3))
    for i in range(2):
        assert take(tr, "new", obj(f"p{i}", "square_cam", "person", T, T, ["square"]), T) == []
    (emit,) = take(tr, "new", obj("p2", "square_cam", "person", T + 50, T + 50, ["square"]),
                   T + 50)
    assert emit[:3] == ("cam-square", T + 50, CROWD) and emit[3] == 0.0
    (emit,) = tr.tick(T + 230)
    assert emit[3] == pytest.approx(180.0)
    (emit,) = take(tr, "end", obj("p0", "square_cam", "person", T, T + 240, ["square"],
                                  end=T + 240), T + 240)
    assert emit[2] == 0


def test_a_zone_reports_as_its_own_device():
    tr = FrigateTracker(mapping())
    (emit,) = take(tr, "new", obj("c", "square_cam", "car", T, T, ["kerb"]), T)
    assert emit[:3] == ("cam-kerb", T, PARKING)


def test_labels_sub_labels_and_scores_pick_the_event():
    tr = FrigateTracker(mapping())
    assert take(tr, "new", obj("t1", "road_7", "truck", T, T), T) == []  # covered
    new = obj("t2", "road_7", "truck", T, T, sub_label=["uncovered", 0.92])
    assert take(tr, "new", new, T)[0][2] == MUCK
    assert take(tr, "new", obj("f1", "road_7", "fire", T, T, score=0.5), T + 1) == []
    # The muck truck's event is still on: it is not cut short by another.
    assert take(tr, "new", obj("f2", "road_7", "fire", T, T, score=0.9), T + 2) == []
    emits = take(tr, "end", obj("t2", "road_7", "truck", T, T + 3, end=T + 3), T + 3)
    assert [e[2] for e in emits] == [FIRE]


def test_readings_of_one_device_never_share_a_time():
    tr = FrigateTracker(mapping())
    zone = ["fire_lane_gate_3"]
    first = take(tr, "new", obj("a", "gate_3", "car", T, T, zone), T)
    second = take(tr, "end", obj("a", "gate_3", "car", T, T, zone, end=T), T)
    assert second[0][1] > first[0][1]


def test_followed_objects_are_capped_and_stale_ones_let_go():
    tr = FrigateTracker(mapping(), max_events=2, stale_s=600)
    zone = ["fire_lane_gate_3"]
    take(tr, "new", obj("a", "gate_3", "car", T, T, zone), T)
    take(tr, "new", obj("b", "square_cam", "person", T, T, ["square"]), T)
    take(tr, "new", obj("c", "square_cam", "person", T, T, ["square"]), T)
    assert len(tr.events) == 2 and tr.evicted == 1
    assert tr.current("cam-lane") == (0, 0.0)  # the car was let go: its event is over
    emits = tr.tick(T + 601)
    assert not tr.events and tr.expired == 2 and emits == []


def test_an_unknown_camera_is_refused_by_name():
    tr = FrigateTracker(mapping())
    with pytest.raises(BadMessage, match="unknown camera 'back_yard'"):
        take(tr, "new", obj("x", "back_yard", "car", T), T)
    with pytest.raises(BadMessage, match="unknown camera 'gate_3'"):
        tr.take("other/events", decode_message(message("new", obj("x", "gate_3", "car", T))), T)


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\xff\xfe", "not valid JSON"),
    (b"{\"type\": \"new\"", "not valid JSON"),
    (b"[]", "not a Frigate event"),
    (b"{\"type\": \"new\"}", "missing required field `after`"),
    (b"{\"type\": \"moved\", \"after\": {}}", "type"),
    (msgspec.json.encode({"type": "new", "after": {"id": "x", "camera": "gate_3",
                                                   "label": "car"}}), "start_time"),
    (msgspec.json.encode({"type": "new", "after": {**obj("x", "gate_3", "car", T),
                                                   "current_zones": "lane"}}),
     "current_zones"),
    (msgspec.json.encode({"type": "new", "after": {**obj("x", "gate_3", "car", T),
                                                   "score": "high"}}), "score"),
    (msgspec.json.encode({"type": "new", "after": obj("x", "gate_3", "car", T),
                          "before": obj("y", "gate_3", "car", T)}), "differ"),
    (b"{\"type\": \"new\", \"pad\": \"" + b"x" * 70_000 + b"\"}", "byte limit"),
])
def test_malformed_messages_are_refused_with_the_reason(payload, reason):
    with pytest.raises(BadMessage, match=reason):
        decode_message(payload)
