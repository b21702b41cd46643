"""A PostgreSQL server of the test's own, for a test that stops and starts its database: a
fresh cluster (`initdb`) in a temporary folder, trust authentication, listening only on
127.0.0.1 at a free port, its socket in that folder, fsync off. The shared server on 5432 is
never touched.

    # the fixture, imported into a conftest.py beside the tests
    from tests.pg_kit import private_postgres  # noqa: F401

    async def test_x(private_postgres):
        url = private_postgres.schema_url("x")  # postgresql://postgres@127.0.0.1:<port>/...
        await asyncio.to_thread(private_postgres.stop)  # and .start() / .restart()

    # or, in the test module itself, a fixture of its own on `own_postgres()`
    @pytest.fixture
    def pg():
        with own_postgres() as server:
            yield server

As root (`initdb` and `postgres` refuse to run as root) the server runs as the `postgres` OS
user, who owns the folder; otherwise as the user of the test. The folder is removed and the
server stopped afterwards, even when the test fails. Skips with the reason when the binaries
are missing or the server cannot start; fails instead when CITYOPS_REQUIRE_SERVICES=1, as the
shared servers' fixtures do (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import select
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ROOT = Path("/usr/lib/postgresql")
NEEDED = ("initdb", "pg_ctl", "postgres")
OS_USER = "postgres"  # who runs the server when the tests run as root
HOST = "127.0.0.1"


class Unavailable(Exception):
    """The private server cannot be had here (no binaries, no user to run it, no start)."""


def _unavailable(message: str) -> None:
    if os.environ.get("CITYOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and CITYOPS_REQUIRE_SERVICES=1 says it must be there")
    pytest.skip(message)


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in path.parent.name.split("."))
    except ValueError:
        return (0,)


def find_bin_dir() -> Path | None:
    """The bin folder of the installed server: the version /etc/postgresql names first (the
    shared cluster's), else the newest under /usr/lib/postgresql."""
    candidates: list[Path] = []
    etc = Path("/etc/postgresql")
    if etc.is_dir():
        candidates += [PG_ROOT / v.name / "bin" for v in sorted(etc.iterdir(), reverse=True)]
    candidates += sorted(PG_ROOT.glob("*/bin"), key=_version_key, reverse=True)
    for folder in candidates:
        if all((folder / name).is_file() for name in NEEDED):
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class PrivatePostgres:
    """One server in `folder` (data in `folder/data`, log in `folder/postgres.log`)."""

    host = HOST

    def __init__(self, bin_dir: Path, folder: Path, run_as: str | None) -> None:
        self.bin_dir = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.run_as = run_as
        self.port = 0

    # -- addresses ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def schema_url(self, schema: str) -> str:
        return f"{self.url}?schema={schema}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    # -- commands -------------------------------------------------------------------------------

    def _run(self, tool: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / tool), *args]
        if self.run_as:
            cmd = [shutil.which("runuser") or "runuser", "-u", self.run_as, "--", *cmd]
        # PG* variables of the caller (PGDATA, PGPORT, PGHOST...) must not steer this server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return subprocess.run(cmd, cwd=self.folder, env=env, capture_output=True, text=True,
                              timeout=timeout)

    def _check(self, what: str, result: subprocess.CompletedProcess) -> None:
        if result.returncode != 0:
            raise Unavailable(f"{what} failed ({result.returncode}): "
                              f"{(result.stderr or result.stdout).strip()}\n{self.log_text()}")

    def init(self) -> None:
        self._check("initdb", self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync", "--no-instructions"))
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join([
                "",
                "# the test's own server (tests/pg_kit.py)",
                f"listen_addresses = '{self.host}'",
                f"unix_socket_directories = '{self.folder}'",
                "fsync = off",
                "synchronous_commit = off",
                "full_page_writes = off",
                "max_connections = 40",
                "shared_buffers = 32MB",
                "",
            ]))

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start (again) on `self.port`, waiting until it accepts connections."""
        self._check(f"starting PostgreSQL on {self.host}:{self.port}", self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", f"-p {self.port}",
            "-w", "-t", "30", "start"))

    def stop(self, mode: str = "fast") -> None:
        """Stop, waiting until the server is gone (fast: clients are disconnected)."""
        self._check("stopping PostgreSQL", self._run(
            "pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-m", mode, "stop"))

    def restart(self) -> None:
        self.stop()
        self.start()

    def first_start(self) -> None:
        for attempt in range(3):  # the free port may be taken by someone else before we bind it
            self.port = _free_port()
            try:
                self.start()
                return
            except Unavailable:
                if attempt == 2:
                    raise

    def destroy(self) -> None:
        """Stop whatever still runs and remove the folder."""
        if self.running:
            for mode in ("fast", "immediate"):
                try:
                    self.stop(mode)
                    break
                except (Unavailable, subprocess.TimeoutExpired):
                    continue
            else:
                self._kill_postmaster()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            # Opened before the kill, so the descriptor names this process and no later one
            # that reuses its pid; it becomes readable when the process is gone.
            gone = os.pidfd_open(pid)
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
            # Gone before its folder is removed under it (it is not our child: no wait()).
            select.select([gone], [], [], 5.0)
        except OSError:
            pass
        finally:
            os.close(gone)


def _os_user() -> str | None:
    """Who runs the server: `postgres` when we are root, else we ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        raise Unavailable(f"running as root and there is no {OS_USER!r} OS user to run "
                          "PostgreSQL as") from None
    if shutil.which("runuser") is None:
        raise Unavailable(f"running as root and `runuser` is missing to run PostgreSQL as "
                          f"{OS_USER!r}")
    return OS_USER


def new_private_postgres() -> PrivatePostgres:
    """A started private server; the caller must call `destroy()` on it. Raises Unavailable."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise Unavailable(f"no PostgreSQL server binaries ({', '.join(NEEDED)}) under "
                          f"{PG_ROOT}/<version>/bin; install PostgreSQL's server package")
    run_as = _os_user()
    # Not pytest's tmp_path: its parent is private to the user of the test, and the server's
    # user must reach its folder. The folder's path stays short (the socket path has a limit).
    folder = Path(tempfile.mkdtemp(prefix="cityops-pg-"))
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chown(folder, user.pw_uid, user.pw_gid)
    server = PrivatePostgres(bin_dir, folder, run_as)
    try:
        server.init()
        server.first_start()
    except BaseException:
        server.destroy()
        raise
    return server


@contextlib.contextmanager
def own_postgres() -> Iterator[PrivatePostgres]:
    """A started private server for the `with` block, stopped and removed after it; skips (or
    fails, under CITYOPS_REQUIRE_SERVICES=1) when it cannot be had."""
    try:
        server = new_private_postgres()
    except (Unavailable, subprocess.TimeoutExpired, OSError) as e:
        _unavailable(f"the test's own PostgreSQL server could not be started: {e}")
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    with own_postgres() as server:
        yield server
