"""Bus fixtures: NATS buses on the shared server, each test in a stream of its own that is
deleted afterwards; and a private nats-server for the tests that pause, stop or restart the
server (the shared one on 4222 serves everyone else's tests at the same time, so it is never
touched)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from cityops.bus.nats import NatsBus

from .samples import TEST_OPTIONS, drop_stream, stream_name

NATS_SERVER = os.environ.get("CITYOPS_NATS_SERVER") or shutil.which("nats-server") or (
    "/usr/sbin/nats-server")


@pytest.fixture
async def nats_buses(request):
    """`await make(url=None, **options)` opens a NatsBus. A test's buses share one new stream
    unless given `stream=`; all are closed and their streams deleted afterwards."""
    default_stream = stream_name()
    buses: list[NatsBus] = []
    streams: set[tuple[str, str]] = set()

    async def make(url: str | None = None, **options) -> NatsBus:
        if url is None:
            url = request.getfixturevalue("nats_url")
        options = {**TEST_OPTIONS, "stream": default_stream, **options}
        bus = await NatsBus.open(url, **options)
        buses.append(bus)
        streams.add((url, options["stream"]))
        return bus

    yield make
    for bus in buses:
        await bus.close()
    for url, stream in streams:
        await drop_stream(url, stream)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateNats:
    """A nats-server of this test's own (JetStream on, file store in tmp), so that it can be
    stopped, paused and restarted without disturbing anyone else."""

    def __init__(self, binary: str, store: Path) -> None:
        self.binary = binary
        self.store = store
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store),
             "-l", str(self.store / "server.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"nats-server exited with {self.proc.returncode}") from None
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start listening within 10 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.resume()
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets open and answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        stat = Path(f"/proc/{self.proc.pid}/stat")
        deadline = time.monotonic() + 5
        while stat.exists() and time.monotonic() < deadline:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "T":
                return
            time.sleep(0.01)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def private_nats(tmp_path):
    if not os.access(NATS_SERVER, os.X_OK):
        message = f"no nats-server binary at {NATS_SERVER} to run a private server"
        if os.environ.get("CITYOPS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message}, and CITYOPS_REQUIRE_SERVICES=1 says it must be there")
        pytest.skip(message)
    store = tmp_path / "nats"
    store.mkdir()
    server = PrivateNats(NATS_SERVER, store)
    server.start()
    yield server
    server.stop(signal.SIGKILL)
