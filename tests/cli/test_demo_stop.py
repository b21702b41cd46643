"""`cityops demo` stopped as a service manager stops it (SIGTERM, not Ctrl-C in a terminal)
takes its simulator with it: a simulator left behind would post readings for ten years."""

from __future__ import annotations

import contextlib
import os
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


def _simulators(pid: int, within_s: float = 10) -> list[int]:
    """The demo's simulator child, once it has started (a bounded poll: a child just forked
    still shows its parent's command line until it runs its own)."""
    deadline = time.monotonic() + within_s
    while True:
        found = [c for c in _children(pid)
                 if b"simulate" in Path(f"/proc/{c}/cmdline").read_bytes()]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _delivered(base: str, within_s: float = 60) -> bool:
    """A bounded poll of the demo's open status page: has it stored a reading?"""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if httpx.get(f"{base}/status.json", timeout=5).json().get("stored", 0) > 0:
                return True
        time.sleep(0.2)
    return False


def _gone(pid: int, within_s: float) -> bool:
    """A bounded poll of another process (not ours to wait for): has it exited?"""
    deadline = time.monotonic() + within_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
        except FileNotFoundError:
            return True
        if state == "Z":  # exited, waiting for its parent to collect it
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


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
        simulators = _simulators(demo.pid)
        assert len(simulators) == 1
        # Once it has delivered, the simulator rides out a lost node for 30 s before it
        # gives up (sim/senders.py): the demo must stop it, not leave it to notice.
        assert _delivered(base), "the simulator delivered nothing"
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
