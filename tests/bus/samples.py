"""Messages as the node puts them on the bus: reading batches, alert events, incident changes."""

from __future__ import annotations

import asyncio
import time
import uuid

import nats
import numpy as np

from cityops.bus.messages import IncidentChange
from cityops.domain.alerts import Alert, AlertEvent, Evidence
from cityops.domain.city import AreaCodes
from cityops.domain.incidents.model import Incident, Level, Offer, Status, WorkOrder
from cityops.domain.readings import (
    CHANNEL_DTYPE,
    DEVICE_DTYPE,
    TS_DTYPE,
    VALUE_DTYPE,
    ReadingBatch,
)

T0_US = 1_700_000_000_000_000

# Small limits and short waits: the tests make many streams and watch redeliveries happen.
TEST_OPTIONS = {"max_bytes": 64 * 1024 * 1024, "max_age": 600.0, "ack_wait": 5.0,
                "fetch_wait": 2.0}


def stream_name() -> str:
    return f"TEST_{uuid.uuid4().hex[:16]}"


async def drop_stream(url: str, stream: str) -> None:
    """Delete a test's stream on its own connection, after the test's buses are closed (an
    open bus would create it again)."""
    try:
        nc = await asyncio.wait_for(nats.connect(url, connect_timeout=1, allow_reconnect=False,
                                                 max_reconnect_attempts=1,
                                                 reconnect_time_wait=0.1), 3)
    except Exception:
        return  # a private server already stopped: its folder goes with tmp_path
    try:
        await nc.jsm().delete_stream(stream)
    except Exception:
        pass
    finally:
        await nc.close()


def batch(rows: int, *, devices: int = 60_000, seed: int = 1, start_us: int = T0_US,
          source: str = "http") -> ReadingBatch:
    rng = np.random.default_rng(seed)
    return ReadingBatch(
        rng.integers(0, devices, rows).astype(DEVICE_DTYPE),
        rng.integers(0, 4, rows).astype(CHANNEL_DTYPE),
        (start_us + np.arange(rows) * 1000).astype(TS_DTYPE),
        rng.normal(50, 10, rows).astype(VALUE_DTYPE),
        time.monotonic_ns(), source,
    )


def rows_of(batches: list[ReadingBatch]) -> set[tuple[int, int, int, float]]:
    """Every row as a tuple: what arrived, whatever the partitions did to the batches."""
    out: set[tuple[int, int, int, float]] = set()
    for b in batches:
        out.update(zip(b.device.tolist(), b.channel.tolist(), b.ts.tolist(), b.value.tolist()))
    return out


def alert(n: int) -> Alert:
    first = 1_700_000_000.0 + n
    return Alert(
        id=f"noise.loud:{n:06d}", scenario="noise", rule="noise.loud", category="env.noise",
        severity="moderate", urgency="expected", departments=["ecology", "police"],
        subject=f"noise-{n:06d}", title=f"loud at site {n} \u4e2d", detail="72 dB(A) for 10 min",
        areas=AreaCodes("310115", "310115001", "310115001001"), cell="8930e1d8c03ffff",
        lat=31.2 + n / 1e4, lon=121.5, first_seen=first, last_seen=first + 60,
        value=72.5, updates=n % 3, evidence=[Evidence(f"noise-{n:06d}", "laeq", first, 72.5)],
    )


def events(n: int, count: int = 2) -> list[AlertEvent]:
    """What the detect engine publishes: a list of events, here `count` of them."""
    return [AlertEvent("raised" if k == 0 else "updated", alert(n * 100 + k), time.monotonic_ns())
            for k in range(count)]


def incident_change(n: int) -> IncidentChange:
    order = WorkOrder(id=f"inc-{n}-1", department="sanitation", level=Level.VILLAGE,
                      area="310115001001", unit="station:310115001001", created=1000.0 + n,
                      accept_due=1900.0 + n, offer=Offer("staff-7", 1000.0, 1090.0, 250.0),
                      offers_tried=["staff-3"])
    incident = Incident(
        id=f"inc-{n:05d}", category="event.sanitation.exposed_garbage", kind="event",
        title=f"garbage {n}", source="sensor", status=Status.DISPATCHED,
        areas=AreaCodes("310115", "310115001", "310115001001"), cell="8930e1d8c03ffff",
        lat=31.2, lon=121.5, reported_at=1000.0 + n, updated_at=1001.0 + n, orders=[order],
        default_departments=["sanitation"], alert_id=f"noise.loud:{n:06d}", version=3)
    return IncidentChange("dispatch", incident)


async def collect(sub, want: int, *, timeout: float = 10.0, max_items: int = 64) -> list:
    """Messages from `sub` until `want` arrived or `timeout` passed."""
    got: list = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < want:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        got += await sub.get_batch(max_items, timeout=left)
    return got
