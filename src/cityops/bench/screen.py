"""`cityops bench screen`: the big screen in headless Chromium with N live moving objects.

A grid city with N muck trucks (each its GPS tracker) is served by `cityops serve` in its own
process. A feeder thread moves every truck once a second through the normal intake (HTTP,
JSON readings), so the node does the real work: ingest, history, detection, and the live hub
turning moved positions into coalesced deltas. Chromium opens /screen and the page measures
itself with the Performance API:

- first_render_ms: navigation start to the first frame on screen with every object drawn;
- update_ms_p95: from a delta's last byte arriving to the first animation frame after the map
  drew it (the 95th percentile over the run, after a 5 s warm-up);
- dropped_updates: updates the server dropped for this viewer because it fell behind (each
  drop is followed by a fresh snapshot, so the screen resyncs rather than drifts);
- bytes_per_s: bytes of the live streams (events and objects) received per second during the
  measured window.

Up to `INTAKE_MAX` objects move through the intake. Past that (a million), the JSON intake
alone would take the machine's two cores, so the node moves its trackers itself
(`cityops.bench.screen_node`: `cityops serve` with a thread writing each second's positions
where the intake leaves them); `feed` in the result says which. Before the page opens, one
JSON request to /api/v1/live/objects starts the node's live hub and places every object in its
H3 cell (`warm_ms`, what the first screen after a node starts waits for once); the page then
finds a node that is already serving a screen, as a wall in an operations centre does.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import msgspec
import numpy as np

from cityops.bench.server import BenchNode
from cityops.domain.city import Vehicle
from cityops.packs.grid import generate

CHROMIUM = "/usr/bin/chromium"
BATCH = 10_000
WARM_UP_S = 5.0
INTAKE_MAX = 100_000  # objects moved through the HTTP intake; more are moved in the node
BARS = {"first_render_ms": 3000, "update_ms_p95": 200}


class Fix(msgspec.Struct):
    device_id: str
    ts: float
    values: dict[str, float]


def city_with_trucks(objects: int):
    pack = generate(towns=4, villages=4, devices={"gps": objects}, size_deg=0.4)
    vehicles = [Vehicle(f"truck-{i:06d}", f"沪B·{i:05d}", "muck_truck", d.id)
                for i, d in enumerate(pack.devices)]
    return msgspec.structs.replace(pack, vehicles=vehicles), pack.devices


class Feeder:
    """Moves every object a few metres each period, all of them, every period."""

    def __init__(self, url: str, key: str, devices, period_s: float = 1.0) -> None:
        self.url = url
        self.key = key
        self.ids = [d.id for d in devices]
        self.lat = np.array([d.lat for d in devices])
        self.lon = np.array([d.lon for d in devices])
        self.heading = np.random.default_rng(3).uniform(0, 2 * np.pi, len(devices))
        self.period_s = period_s
        self.rounds = 0
        self.late_rounds = 0
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="screen-feeder", daemon=True)

    def _round(self, client: httpx.Client) -> None:
        now = time.time()
        step = 2e-5  # about 2 m a second: a truck crawling through traffic
        self.heading += np.random.default_rng(self.rounds).normal(0, 0.3, len(self.ids))
        self.lat += step * np.cos(self.heading)
        self.lon += step * np.sin(self.heading)
        lat = np.round(self.lat, 6).tolist()
        lon = np.round(self.lon, 6).tolist()
        encoder = msgspec.json.Encoder()
        for first in range(0, len(self.ids), BATCH):
            body = encoder.encode([Fix(self.ids[i], now, {"lat": lat[i], "lon": lon[i]})
                                   for i in range(first, min(first + BATCH, len(self.ids)))])
            for _ in range(20):  # a busy node says so (429/503): wait a little and resend
                r = client.post("/api/v1/readings", content=body,
                                headers={"Content-Type": "application/json"})
                if r.status_code == 202:
                    break
                self.refused += 1
                time.sleep(0.05)
        self.rounds += 1

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60.0,
                          headers={"Authorization": f"Bearer {self.key}"}) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                self._round(client)
                spent = time.monotonic() - started
                if spent > self.period_s:
                    self.late_rounds += 1
                self._stop.wait(max(0.0, self.period_s - spent))

    def first_round(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120.0,
                          headers={"Authorization": f"Bearer {self.key}"}) as client:
            self._round(client)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


MEASURE = """() => {
  const s = window.cityops.stats, l = window.cityops.layers, o = window.cityops.objects;
  let drawn = 0;
  for (const layer of [l.staff, l.vehicles]) {
    for (let i = 0; i < layer.count; i++) if (!Number.isNaN(layer.pos[2 * i])) drawn++;
  }
  drawn += l.bins.total();  // a binned object is drawn as part of its hexagon
  return {first: s.firstRender, updates: s.updates.slice(), dropped: s.dropped,
          snapshots: s.snapshots, deltas: s.deltas + o.frames,
          bytes: window.cityops.stream.bytes + o.bytes, drawn: drawn, objects: s.objects,
          mode: o.mode, bins: l.bins.bins.size, now: performance.now(),
          marks: Object.fromEntries(performance.getEntriesByType("mark")
            .map((m) => [m.name.replace("cityops:", ""), Math.round(m.startTime)]))};
}"""


def warm(url: str, key: str, objects: int, timeout_s: float = 600.0) -> float:
    """Start the node's live hub and wait until it holds every object; answers the seconds
    the first answer took (the hub's start and every object placed in its cell)."""
    with httpx.Client(base_url=url, timeout=timeout_s,
                      headers={"Authorization": f"Bearer {key}"}) as client:
        started = time.monotonic()
        first = None
        while time.monotonic() - started < timeout_s:
            body = client.get("/api/v1/live/objects", params={"zoom": 9}).json()
            first = first if first is not None else time.monotonic() - started
            if body.get("total", 0) >= objects:
                # And one snapshot of the event stream: the hub's per-device tables (which
                # village each device is in, for the health counts) are made on the first.
                client.get("/api/v1/live", params={"vehicles": "false"}).raise_for_status()
                return first
            time.sleep(0.5)
    raise RuntimeError(f"the node placed fewer than {objects:,} objects in {timeout_s:.0f} s")


def run(*, objects: int, duration: float, workdir: Path | None, progress=lambda n: None,
        note=lambda s: None, feed: str | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (make install)")
    root = Path(workdir or tempfile.mkdtemp(prefix="cityops-bench-screen-"))
    note(f"making a city with {objects:,} trucks")
    pack, devices = city_with_trucks(objects)
    feed = feed or ("intake" if objects <= INTAKE_MAX else "node")
    node = BenchNode(root, pack)
    if feed == "node":
        serve_args = node.server.args[4:]  # after: python -m cityops serve
        node.server.args = [sys.executable, "-m", "cityops.bench.screen_node", *serve_args]
    note("starting the node")
    node.server.start(timeout=900)
    feeder = Feeder(node.url, node.device_key, devices) if feed == "intake" else None
    try:
        if feeder is not None:
            note("placing every truck")
            feeder.first_round()
            feeder.start()
        note("starting the live hub")
        warm_s = warm(node.url, node.admin_key, objects)
        note("opening the screen")
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=[*args, "--use-gl=angle", "--use-angle=swiftshader",
                      "--enable-unsafe-swiftshader"])
            page = browser.new_page(viewport={"width": 1920, "height": 1080},
                                    bypass_csp=True)
            page.goto(f"{node.url}/screen#key={node.admin_key}")
            page.wait_for_function(
                "window.cityops && window.cityops.stats && "
                "window.cityops.stats.firstRender !== null", timeout=300_000)
            first = page.evaluate(MEASURE)
            # The page's own start-up work (panels, the evaluation, sparklines) settles in
            # the first seconds; updates are measured in steady running after that.
            time.sleep(WARM_UP_S)
            start = page.evaluate(MEASURE)
            note(f"measuring for {duration:.0f} s")
            for _ in range(int(duration)):
                time.sleep(1)
                progress(1)
            end = page.evaluate(MEASURE)
            browser.close()
    finally:
        if feeder is not None:
            feeder.stop()
        node.server.stop()
    updates = np.array(end["updates"][len(start["updates"]):] or [np.nan])
    window_s = (end["now"] - start["now"]) / 1000
    figures = {"first_render_ms": round(first["first"]),
               "update_ms_p95": round(float(np.nanpercentile(updates, 95)), 1)}
    return {
        "objects": objects,
        **figures,
        "bars": BARS,
        "meets_bars": all(figures[k] < bar for k, bar in BARS.items()),
        "dropped_updates": int(end["dropped"]),
        "bytes_per_s": round((end["bytes"] - start["bytes"]) / window_s),
        "update_ms_p50": round(float(np.nanpercentile(updates, 50)), 1),
        "updates_measured": int(np.isfinite(updates).sum()),
        "objects_drawn": first["drawn"],
        "page_marks_ms": first["marks"],
        "shown_as": first["mode"],
        "bins_drawn": first["bins"],
        "feed": feed,
        "warm_ms": round(warm_s * 1000),
        "snapshots": end["snapshots"],
        "deltas": end["deltas"] - start["deltas"],
        "feeder_rounds_late": feeder.late_rounds if feeder else None,
        "feeder_refused_batches": feeder.refused if feeder else None,
        "duration_s": round(window_s, 1),
    }
