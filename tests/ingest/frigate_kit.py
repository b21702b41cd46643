"""Frigate event messages as Frigate documents them (docs/docs/integrations/mqtt.md of
blakeblackshear/frigate: `type` new|update|end, `before`/`after` objects), written by hand for
the replay tests, and a mapping to replay them against."""

from __future__ import annotations

import msgspec

from cityops.packs.frigate_file import frigate_from_yaml


def mapping_yaml(prefix: str = "frigate", url: str = "http://127.0.0.1:5000",
                 crowd: int = 3) -> bytes:
    return f"""
servers:
  - name: nvr
    url: {url}
    topic_prefix: {prefix}
cameras:
  - name: gate_3
    device: cam-lane
    streams: {{main: "rtsp://10.0.0.9:554/gate_3", web: "https://video.example/gate_3.m3u8"}}
    zones:
      - name: fire_lane_gate_3
        events:
          - {{labels: [car, truck, bus, motorcycle], event: vehicle_in_fire_lane}}
  - name: square_cam
    device: cam-square
    zones:
      - name: square
        events:
          - {{labels: [person], min_count: {crowd}, event: crowd_gathering}}
      - name: kerb
        device: cam-kerb
        events:
          - {{labels: [car], event: illegal_parking}}
  - name: road_7
    device: cam-road
    zones:
      - name: "*"
        events:
          - {{labels: [truck], sub_labels: [uncovered], event: muck_truck_uncovered}}
          - {{labels: [fire, smoke], event: smoke_or_fire, min_score: 0.7}}
          - {{labels: [stall], event: repair_stall_on_carriageway}}
          - {{labels: [garbage], event: garbage_exposed}}
""".encode()


def mapping(**kwargs):
    return frigate_from_yaml(mapping_yaml(**kwargs))


def obj(event_id: str, camera: str, label: str, start: float, frame: float | None = None,
        zones=(), *, end: float | None = None, sub_label=None, score: float = 0.8,
        stationary: bool = False, snapshot: bool = True, clip: bool = True) -> dict:
    """One tracked object, with every field Frigate's documented message carries."""
    frame = start if frame is None else frame
    return {
        "id": event_id, "camera": camera, "frame_time": frame, "snapshot_time": frame,
        "label": label, "sub_label": sub_label, "top_score": score, "false_positive": False,
        "start_time": start, "end_time": end, "score": score, "box": [424, 500, 536, 712],
        "area": 23744, "ratio": 0.53, "region": [264, 450, 667, 853],
        "current_zones": list(zones), "entered_zones": list(zones), "thumbnail": None,
        "has_snapshot": snapshot, "has_clip": clip, "stationary": stationary,
        "motionless_count": 0, "position_changes": 1, "attributes": {},
    }


def message(kind: str, after: dict, before: dict | None = None) -> bytes:
    return msgspec.json.encode({"type": kind, "before": before or after, "after": after})
