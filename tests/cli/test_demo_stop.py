"""`cityops demo` stopped as a service manager stops it (SIGTERM, not Ctrl-C in a terminal)
takes its simulator with it: a simulator left behind would post readings for ten years."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cityops.packs.format import save_pack
from tests.http_kit import free_socket


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = task / "children"
        if children.exists():
            found += [int(c) for c in children.read_text().split()]
    return found


def _delivered(base: str, key: str, within_s: float = 60) -> bool:
    """Has the node taken readings? Read off its live stream (each second's figures arrive as
    an event), not polled."""
    deadline = time.monotonic() + within_s
    with httpx.stream("GET", f"{base}/api/v1/live?vehicles=false",
                      headers={"Authorization": f"Bearer {key}",
                               "Accept": "text/event-stream"},
                      timeout=httpx.Timeout(10, read=within_s)) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                kpi = json.loads(line[6:]).get("kpi") or {}
                if kpi.get("ingest_rate", 0) > 0:
                    return True
            if time.monotonic() > deadline:
                break
    return False


def _gone(pid: int, within_s: float) -> bool:
    """Has another process (not ours to wait for) exited? Its pidfd turns readable when it
    does."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], within_s)
        return bool(readable)
    finally:
        os.close(fd)


def test_sigterm_stops_the_demo_and_its_simulator(tmp_path, grid_pack):
    save_pack(grid_pack, tmp_path / "city")
    sock, base = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    demo = subprocess.Popen(
        [sys.executable, "-m", "cityops", "demo", "--pack", str(tmp_path / "city"), "--data",
         str(tmp_path / "data"), "--port", str(port), "--rate", "200"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    simulators: list[int] = []
    try:
        seen = b""
        deadline = time.monotonic() + 150
        while b"Admin key" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([demo.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(demo.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
        assert b"Admin key" in seen, seen.decode(errors="replace")[-2000:]
        # The links are printed once the simulator is started: the demo's one child.
        simulators = _children(demo.pid)
        assert len(simulators) == 1
        key = re.search(rb"/screen#key=(co_[\w-]+)", seen).group(1).decode()
        # Once it has delivered, the simulator rides out a lost node for 30 s before it
        # gives up (sim/senders.py): the demo must stop it, not leave it to notice.
        assert _delivered(base, key), "the simulator delivered nothing"
        demo.send_signal(signal.SIGTERM)
        demo.wait(60)
        assert _gone(simulators[0], 10), "the simulator outlived the demo"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        for pid in simulators:
            if not _gone(pid, 0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
