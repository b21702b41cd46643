"""Small city packs built in code, so simulator tests do not depend on the Pudong generator."""

from __future__ import annotations

import pytest

from cityops.bench.server import asgi_body
from cityops.domain.city import (
    Area,
    CityInfo,
    CityPack,
    Department,
    Device,
    Level,
    Staff,
    Vehicle,
)
from cityops.domain.kinds import BUILTIN_KINDS

DISTRICT = "310115"


def square(lat: float, lon: float, size: float) -> dict:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def small_pack(per_kind: int = 5, movers: int = 6) -> CityPack:
    """Two towns side by side, two square villages each; `per_kind` sensors of every kind."""
    areas = [Area(DISTRICT, "Test District", Level.DISTRICT, None, square(31.0, 121.0, 0.2))]
    villages = []
    for t in range(2):
        town = f"{DISTRICT}{t + 1:03d}"
        outline = square(31.0, 121.0 + 0.1 * t, 0.1)
        areas.append(Area(town, f"Town {t}", Level.TOWN, DISTRICT, outline))
        for v in range(2):
            code = f"{town}{v + 1:03d}"
            geometry = square(31.0 + 0.05 * v, 121.0 + 0.1 * t, 0.05)
            areas.append(Area(code, f"Village {t}.{v}", Level.VILLAGE, town, geometry))
            villages.append((code, 31.0 + 0.05 * v + 0.025, 121.0 + 0.1 * t + 0.025))
    devices = []
    for name in BUILTIN_KINDS:
        if name == "gps":
            continue
        for i in range(per_kind):
            _, lat, lon = villages[i % len(villages)]
            devices.append(Device(f"{name}-{i:06d}", name, lat + 0.001 * i, lon - 0.001 * i))
    staff, vehicles = [], []
    for i in range(movers):
        code, lat, lon = villages[i % len(villages)]
        device_id = f"gps-{i:06d}"
        devices.append(Device(device_id, "gps", lat, lon))
        if i % 2:
            vehicles.append(Vehicle(f"truck-{i}", f"沪A{i:05d}", "muck_truck", device_id))
        else:
            staff.append(Staff(f"staff-{i}", f"Inspector {i}", "city_management", device_id, code))
    return CityPack(
        info=CityInfo("Testville", "Asia/Shanghai", (31.1, 121.1)),
        areas=areas,
        departments=[Department("city_management", "City management", None, [DISTRICT])],
        kinds=dict(BUILTIN_KINDS),
        devices=devices,
        staff=staff,
        vehicles=vehicles,
    )


@pytest.fixture
def pack() -> CityPack:
    return small_pack()


@pytest.fixture
def make_pack():
    return small_pack


class ReadingsNode:
    """A stand-in for a node's readings endpoint, served for real over HTTP by uvicorn.

    `script` lists the answers to give first, as (status, headers); after it runs out every
    batch is accepted, with duplicates counted by (device_id, ts).
    """

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.bodies: list[bytes] = []
        self.auth: list[str | None] = []
        self.peers: set[int] = set()
        self.seen: set[tuple[str, float]] = set()
        self.url = ""

    async def __call__(self, scope, receive, send) -> None:
        import msgspec

        assert scope["type"] == "http"
        body = await asgi_body(receive, 64 << 20)
        headers = dict(scope["headers"])
        self.auth.append(headers.get(b"authorization", b"").decode() or None)
        self.peers.add(scope["client"][1])
        if scope["path"] != "/api/v1/readings":
            status, extra, answer = 404, {}, {"error": "not found"}
        elif self.script:
            status, extra = self.script.pop(0)
            answer = {"error": f"scripted {status}"}
        else:
            self.bodies.append(body)
            rows = msgspec.json.decode(body)
            rejected = [{"index": i, "error": "unknown device"}
                        for i, r in enumerate(rows) if r["device_id"].startswith("ghost")]
            keys = [(r["device_id"], r["ts"]) for r in rows]
            duplicates = sum(k in self.seen for k in keys)
            self.seen.update(keys)
            status, extra = 202, {}
            answer = {"accepted": len(rows) - len(rejected), "duplicates": duplicates,
                      "rejected": rejected}
        payload = msgspec.json.encode(answer)
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")]
            + [(k.encode(), v.encode()) for k, v in extra.items()],
        })
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
async def node():
    import asyncio
    import socket

    import uvicorn

    app = ReadingsNode()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield app
    finally:
        server.should_exit = True
        await task
        sock.close()

