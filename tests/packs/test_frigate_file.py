"""frigate.yaml: the mapping of Frigate cameras and zones onto CityOps cameras and events is
read strictly, and every mistake names the entry and field at fault."""

from __future__ import annotations

import pytest

from cityops.packs.errors import PackError
from cityops.packs.frigate_file import check_devices, frigate_from_yaml, load_frigate

GOOD = b"""
servers:
  - name: nvr-1
    url: http://10.20.0.5:5000
    topic_prefix: frigate
  - name: nvr-2
    url: https://nvr2.city.example
    topic_prefix: frigate-east
cameras:
  - name: gate_3
    server: nvr-1
    device: cam-1
    streams: {main: "rtsp://10.20.0.9:554/main", web: "https://video.city/hls/gate_3.m3u8"}
    zones:
      - name: fire_lane_gate_3
        device: cam-1-lane
        polygon: {type: Polygon, coordinates: [[[121.5, 31.2], [121.501, 31.2],
                                                [121.501, 31.201], [121.5, 31.2]]]}
        events:
          - {labels: [car, truck, bus, motorcycle], event: vehicle_in_fire_lane}
      - name: square
        events:
          - {labels: [person], min_count: 30, event: crowd_gathering, min_score: 0.6}
  - name: road_7
    server: nvr-2
    device: cam-7
    zones:
      - name: "*"
        events:
          - {labels: [truck], sub_labels: [uncovered], event: muck_truck_uncovered}
          - {labels: [fire, smoke], event: smoke_or_fire}
"""


def test_a_good_file_is_read_and_looked_up_by_topic_and_camera():
    m = frigate_from_yaml(GOOD)
    assert m.topics == ["frigate-east/events", "frigate/events"]
    server, camera = m.camera("frigate/events", "gate_3")
    assert server.url == "http://10.20.0.5:5000" and camera.device == "cam-1"
    assert camera.devices() == ["cam-1", "cam-1-lane"]
    assert m.camera("frigate/events", "road_7") is None  # nvr-2's camera, other topic
    assert m.camera("frigate-east/events", "road_7")[1].device == "cam-7"
    assert set(m.devices()) == {"cam-1", "cam-1-lane", "cam-7"}
    crowd = camera.zones[1].events[0]
    assert crowd.code == 4 and crowd.min_count == 30
    assert crowd.takes("person", None, 0.7) and not crowd.takes("person", None, 0.5)
    assert not crowd.takes("car", None, 0.9)
    truck = m.camera("frigate-east/events", "road_7")[1].zones[0].events[0]
    assert truck.takes("truck", "uncovered", 0.9) and not truck.takes("truck", None, 0.9)


def test_one_server_needs_no_server_names(tmp_path):
    path = tmp_path / "frigate.yaml"
    path.write_bytes(b"""
servers: [{url: "http://nvr:5000"}]
cameras:
  - name: cam_a
    device: cam-a
    zones: [{name: lane, events: [{labels: [car], event: illegal_parking}]}]
""")
    m = load_frigate(path)
    assert m.camera("frigate/events", "cam_a")[1].device == "cam-a"


@pytest.mark.parametrize(("text", "message"), [
    (b"[1, 2]", "must be a mapping"),
    (b"servers: []", "servers"),
    (b"servers: [{url: 'ftp://nvr'}]", "servers[0].url"),
    (b"servers: [{url: 'http://nvr'}]\ncameras: [{name: a, device: d, zones: [{name: z, "
     b"events: [{labels: [car], event: parked_badly}]}]}]",
     "cameras[0] (a).zones[0] (z).events[0].event: unknown camera event 'parked_badly'"),
    (b"servers: [{url: 'http://nvr'}]\ncameras: [{name: a, device: d, zones: [{name: z, "
     b"events: [{labels: [], event: illegal_parking}]}]}]", "labels"),
    (b"servers: [{url: 'http://nvr'}]\ncameras: [{name: a, device: d, zones: [{name: z, "
     b"events: [{labels: [car], event: illegal_parking, min_count: 0}]}]}]", "min_count"),
    (b"servers: [{url: 'http://nvr'}]\ncameras: [{name: a, device: d, zones: [{name: z, "
     b"events: [{labels: [car], event: illegal_parking, min_score: 2}]}]}]", "min_score"),
    (b"servers: [{url: 'http://nvr'}]\ncameras: [{name: a, device: d, zonez: []}]", "zonez"),
    (b"servers: [{url: 'http://nvr'}]\ncameras: [{name: 'a b', device: d, zones: []}]",
     "name"),
    (b"servers: [{name: x, url: 'http://a'}, {name: y, url: 'http://b'}]\ncameras: "
     b"[{name: a, device: d, zones: [{name: z, events: [{labels: [car], "
     b"event: illegal_parking}]}]}]", "cameras[0] (a).server: name the camera's server"),
    (b"servers: [{name: x, url: 'http://a'}]\ncameras: [{name: a, server: y, device: d, "
     b"zones: [{name: z, events: [{labels: [car], event: illegal_parking}]}]}]",
     "no server 'y'"),
    (b"servers: [{name: x, url: 'http://a'}, {name: x, url: 'http://b'}]",
     "servers[1].name: server 'x' is listed twice"),
    (b"servers: [{url: 'http://a'}]\ncameras: [{name: a, device: d, zones: [" + b", ".join(
        b"{name: z, events: [{labels: [car], event: illegal_parking}]}" for _ in range(2))
     + b"]}]", "zones[1] (z).name: zone 'z' is listed twice"),
    (b"servers: [{url: 'http://a'}]\ncameras: [{name: a, device: d, streams: {main: "
     b"'file:///etc/passwd'}, zones: [{name: z, events: [{labels: [car], "
     b"event: illegal_parking}]}]}]", "streams.main"),
    (b"servers: [{url: 'http://a'}]\ncameras: [{name: a, device: d, zones: [{name: z, "
     b"polygon: {type: Polygon, coordinates: [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, "
     b"events: [{labels: [car], event: illegal_parking}]}]}]", "not a valid polygon"),
    (b"servers: [{url: 'http://a'}]\ncameras:\n" + b"".join(
        b"  - {name: a, device: d, zones: [{name: z, events: [{labels: [car], "
        b"event: illegal_parking}]}]}\n" for _ in range(2)), "already cameras[0]"),
])
def test_mistakes_name_the_entry_and_field(text, message):
    with pytest.raises(PackError) as caught:
        frigate_from_yaml(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith("frigate.yaml")


def test_devices_are_checked_against_the_registry():
    m = frigate_from_yaml(GOOD)
    errors, warnings = check_devices(
        m, {"cam-1": "camera", "cam-1-lane": "camera", "cam-7": "noise"},
        {"cam-1-lane": {"site": "community_gate"}})
    assert errors == ["frigate.yaml: camera 'road_7': device 'cam-7' is a noise, not a camera"]
    assert any("no meta site: fire_lane" in w for w in warnings)
    errors, warnings = check_devices(m, {"cam-1": "camera"}, {})
    assert not errors and sum("is not registered" in w for w in warnings) == 2
