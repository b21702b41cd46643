"""kill -9 of a node during full-rate ingest: every reading it acknowledged is there after the
restart, and no alert becomes a second incident. The node is a real `cityops serve` process."""

from __future__ import annotations

import collections
import datetime as dt
import signal
import subprocess
import sys
import threading
import time

import httpx
import msgspec
import pytest

from cityops.bench.server import ServerProcess
from cityops.packs.format import save_pack
from cityops.packs.grid import generate as grid_city
from tests.pack_kit import LOUD

PER_BATCH = 25  # timestamps per batch: 25 x 40 devices = 1,000 readings a request


class Sender(threading.Thread):
    """Posts batches as fast as the node takes them; remembers exactly what was acknowledged
    (a 202), by device and timestamp."""

    def __init__(self, url: str, key: str, devices: list[str], start: float) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.devices, self.t = url, key, devices, start
        self.acked: dict[str, set[float]] = collections.defaultdict(set)
        self.batches = 0
        self.stop = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10,
                          headers={"Authorization": f"Bearer {self.key}"}) as c:
            while not self.stop.is_set():
                stamps = [self.t + k for k in range(PER_BATCH)]
                self.t += PER_BATCH
                # Device 0 is loud the whole time: one alert episode, so one incident.
                rows = [{"device_id": d, "ts": ts, "value": 90.0 if i == 0 else 40.0 + i % 7}
                        for ts in stamps for i, d in enumerate(self.devices)]
                try:
                    r = c.post("/api/v1/readings", content=msgspec.json.encode(rows))
                except httpx.HTTPError:
                    return  # the node is gone: what was in flight was never acknowledged
                if r.status_code == 202:
                    bad = {e["index"] for e in r.json()["rejected"]}
                    for j, row in enumerate(rows):
                        if j not in bad:
                            self.acked[row["device_id"]].add(row["ts"])
                    self.batches += 1
                elif r.status_code not in (429, 503):
                    self.error = f"{r.status_code} {r.text[:200]}"
                    return


def readings_of(client: httpx.Client, device: str) -> set[int]:
    """Timestamps stored for `device`, in microseconds (as the node keeps them)."""
    out: set[int] = set()
    cursor = None
    while True:
        params = {"limit": 10000, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/api/v1/devices/{device}/readings", params=params).json()
        for item in page["items"]:
            when = dt.datetime.fromisoformat(item["ts"].replace("Z", "+00:00"))
            out.add(round(when.timestamp() * 1e6))
        cursor = page["next"]
        if not cursor:
            return out


def make_key(data, role: str) -> str:
    out = subprocess.run([sys.executable, "-m", "cityops", "keys", "create", "--role", role,
                          "--data", str(data)], capture_output=True, text=True, check=True)
    return out.stdout.split()[-1]


@pytest.mark.timeout(300)
def test_kill_9_loses_no_acknowledged_reading_and_makes_no_second_incident(tmp_path):
    city = tmp_path / "city"
    save_pack(grid_city(devices={"noise": 40}), city)
    packs = tmp_path / "packs" / "loud"
    packs.mkdir(parents=True)
    (packs / "manifest.yaml").write_text(LOUD)
    data = tmp_path / "data"
    store = f"sqlite:///{data}/state.db"
    extra = ["--scenarios", str(tmp_path / "packs"), "--notify", "log:"]
    server = ServerProcess(city, data, store, extra=extra)
    server.start()
    device_key = make_key(data, "device")
    admin_key = make_key(data, "admin")
    devices = [f"noise-{i:06d}" for i in range(40)]
    sender = Sender(server.url, device_key, devices, time.time() - 3 * 86400)
    sender.start()
    deadline = time.monotonic() + 60
    while sender.batches < 100 and time.monotonic() < deadline and sender.is_alive():
        time.sleep(0.01)
    assert sender.batches >= 100, sender.error
    server.proc.send_signal(signal.SIGKILL)  # no goodbye: no flush, no snapshot, no close
    server.proc.wait()
    sender.join(10)
    assert sender.error is None, sender.error
    acked = {d: {round(t * 1e6) for t in ts} for d, ts in sender.acked.items()}

    again = ServerProcess(city, data, store, port=server.port, extra=extra)
    again.start()
    try:
        with httpx.Client(base_url=again.url, timeout=30,
                          headers={"Authorization": f"Bearer {admin_key}"}) as c:
            lost = {d: len(acked[d] - readings_of(c, d)) for d in devices}
            lost = {d: n for d, n in lost.items() if n}
            assert lost == {}, "acknowledged readings missing after kill -9 (count per device)"
            assert sum(len(v) for v in acked.values()) >= 100 * PER_BATCH * 40

            # The loud device's alert episode survives the restart as the same alert: one case.
            # A client retrying its last batch after the crash: taken again, but a reading is
            # never there twice (reads drop repeats), and the alert is still the same alert.
            resend = [{"device_id": devices[0], "ts": t / 1e6, "value": 90.0}
                      for t in sorted(acked[devices[0]])[-5:]]
            r = c.post("/api/v1/readings", content=msgspec.json.encode(resend))
            assert r.status_code == 202 and not r.json()["rejected"]
            page = c.get(f"/api/v1/devices/{devices[0]}/readings",
                         params={"from": sorted(acked[devices[0]])[-5] / 1e6}).json()["items"]
            assert len(page) == len({item["ts"] for item in page}) >= 5
            time.sleep(2.0)
            items = c.get("/api/v1/incidents", params={"category": "event.test.loud"}).json()
            assert len(items["items"]) == 1, items
            assert items["items"][0]["reports"] == 1
    finally:
        again.stop()
