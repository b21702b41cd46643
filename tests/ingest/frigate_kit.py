"""Frigate event messages as Frigate documents them (docs/docs/integrations/mqtt.md of
blakeblackshear/frigate: `type` new|update|end, `before`/`after` objects), written by hand for
the replay tests, a mapping to replay them against, and a node running it (`running`) on the
test's clock with a `Rig` to publish, let time pass and read alerts and cases."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import aiomqtt
import msgspec

from cityops.domain.city import Device
from cityops.packs.frigate_file import frigate_from_yaml
from cityops.packs.grid import generate as grid_city
from tests.clock_kit import Clock


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


def jpeg() -> bytes:
    """A valid baseline JPEG of one grey 8x8 block, built by hand: quantisation all 1, one
    Huffman code each for "DC difference 0" and "end of block", so the scan is two bits."""
    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body

    one_code = bytes([1] + [0] * 15) + b"\x00"  # one code of length 1, for symbol 0
    return (b"\xff\xd8"
            + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + segment(0xDB, b"\x00" + b"\x01" * 64)
            + segment(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00")
            + segment(0xC4, b"\x00" + one_code) + segment(0xC4, b"\x10" + one_code)
            + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x3f" + b"\xff\xd9")


class SnapshotServer:
    """Frigate's HTTP API as far as evidence needs it: a real server on a loopback port that
    answers `/api/events/<id>/snapshot.jpg` with a JPEG and counts what it was asked."""

    def __init__(self, port: int = 0) -> None:
        import http.server
        import threading

        asked: list[str] = []
        self.asked = asked
        body = jpeg()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                asked.append(self.path)
                if self.path.startswith("/api/events/") and self.path.endswith("/snapshot.jpg"):
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a node with the Frigate mapping, replayed through the real Mosquitto --------------------

LAT, LON = 31.2, 121.5


def camera_city():
    """A grid city with four cameras: one on a fire lane, two by a square, one on a road."""
    pack = grid_city(devices={"noise": 2})
    cams = [Device("cam-lane", "camera", LAT + 0.01, LON + 0.01, meta={"site": "fire_lane"}),
            Device("cam-square", "camera", LAT - 0.01, LON + 0.01),
            Device("cam-kerb", "camera", LAT - 0.011, LON + 0.01),
            Device("cam-road", "camera", LAT + 0.02, LON - 0.02)]
    return msgspec.structs.replace(pack, devices=[*pack.devices, *cams])


async def until(check, timeout=15.0, what="condition"):
    """Poll `check` (sync or async) until it answers something truthy, within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not met within {timeout} s")


class Rig:
    def __init__(self, live, prefix: str, clock: Clock) -> None:
        self.live = live
        self.node = live.node
        self.prefix = prefix
        self.clock = clock

    async def publish(self, *payloads: bytes) -> None:
        before = self.node.frigate.intake.stats.handled
        async with aiomqtt.Client("127.0.0.1", 1883) as pub:
            for payload in payloads:
                await pub.publish(f"{self.prefix}/events", payload, qos=1)
        await until(lambda: self.node.frigate.intake.stats.handled >= before + len(payloads),
                    what="messages taken")
        await self.settle()

    async def settle(self) -> None:
        await self.node.detect.caught_up()
        await self.node.act.intake.caught_up()

    async def wait(self, seconds: float) -> None:
        """Time passes on the node's clock; the intake reports the dwell as it would."""
        self.clock.now += seconds
        await self.node.frigate.intake.tick()
        await self.settle()

    async def alerts(self, secret) -> list[dict]:
        async with self.live.client(secret) as c:
            return (await c.get("/api/v1/alerts", params={"limit": 1000})).json()["items"]

    async def case_of(self, alert: dict, what: str = "the case") -> str:
        """The case the alert opened, once the act side has opened it."""
        return await until(lambda: self.node.store.incident_of_report(f"alert:{alert['id']}"),
                           what=what)


@contextlib.asynccontextmanager
async def running(live_node, pack, tmp_path, mqtt_url, url, **settings):
    """A node with the Frigate mapping (snapshots at `url`) on a topic prefix of its own, its
    intake subscribed, on the test's clock."""
    clock = Clock(time.time())
    prefix = f"frigate-test-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "frigate.yaml"
    path.write_bytes(mapping_yaml(prefix=prefix, url=url))
    node = live_node(pack, tmp_path / "data", clock=clock, frigate_file=path,
                     frigate_mqtt_url=mqtt_url, frigate_retry_s=0.05, **settings)
    async with node as live:
        await live.node.frigate.intake.wait_ready(10)
        yield Rig(live, prefix, clock)
