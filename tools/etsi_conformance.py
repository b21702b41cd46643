"""Run the ETSI NGSI-LD conformance test suite (GS CIM 014) against a CityOps node.

    python tools/etsi_conformance.py --suite DIR [--robot DIR/.venv/bin/robot]
                                     [--out DIR] [TP/NGSI-LD/... ...]

DIR is a checkout of the ETSI suite (forge.etsi.org/rep/cim/ngsi-ld-test-suite, or a mirror)
with its own virtualenv made from its requirements.txt (Robot Framework and its libraries
pin versions CityOps does not use, so they never share a venv). The suite is not shipped with
CityOps and needs the network to fetch; CI does not run this, a developer does, and records
the pass count in docs/interop.md.

What this script sets up, and why:
- A node on a small grid city with the embedded SQLite store, served by uvicorn on loopback.
- An admin key, added to every request that does not carry one: the suite speaks to brokers
  without authentication, CityOps never serves NGSI-LD without a key, so the runner plays
  the part of a client holding one. Nothing else of a request is changed.
- The suite's own JSON-LD contexts (its data files name them by their GitHub address) given to
  the node as an operator's context mirror (`ngsild_context_mirror`), as an air-gapped site
  mirrors the contexts its producers use: the node still fetches nothing.
- The suite's `resources/variables.py`, written for this run (and put back afterwards).

Test cases the suite tags as written for a later version of the spec than CityOps
implements (`since_v1.9.1` ...) are left out unless `--spec all` is given: they test features
V1.8 does not have. The default selection is what CityOps implements: entity provision and consumption,
subscriptions, the JSON-LD context API and the common behaviours; context sources,
registrations and distributed operations are out of its scope. The last line printed is one
JSON object: passed, failed, skipped, per selected folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

DEFAULT_SELECTION = [
    "TP/NGSI-LD/ContextInformation/Provision",
    "TP/NGSI-LD/ContextInformation/Consumption",
    "TP/NGSI-LD/ContextInformation/Subscription",
    "TP/NGSI-LD/jsonldContext",
    "TP/NGSI-LD/CommonBehaviours",
]
SUITE_CONTEXT = ("https://raw.githubusercontent.com/marek-mraz/ngsi-ld-test-suite/main/resources/"
                 "jsonld-contexts/ngsi-ld-test-suite-compound.jsonld")

UPSTREAM_COMPOUND = ("https://easy-global-market.github.io/ngsild-api-data-models/ngsildTestSuite/"
                     "ngsildTestSuiteV1.8-compound.jsonld")

SPEC = "1.8.1"  # the version CityOps implements (GS CIM 009 V1.8.1)


def later_versions(suite: Path, spec: str) -> list[str]:
    """The suite's `since_vX` tags of versions after `spec` (none for 'all'): its test cases
    for features a later version of the spec added."""
    if spec == "all":
        return []

    def key(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in version.split(".") if p.isdigit())

    found: set[str] = set()
    for path in (suite / "TP").rglob("*.robot"):
        found.update(re.findall(r"since_v([0-9.]+[0-9])", path.read_text(errors="replace")))
    return [f"since_v{v}" for v in sorted(found, key=key) if key(v) > key(spec)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def context_mirror(suite: Path, into: Path) -> Path:
    """The suite's contexts as an operator's mirror folder: the files and an index.yaml naming
    the addresses they stand for (every address the suite's data and resources use)."""
    into.mkdir(parents=True, exist_ok=True)
    urls: dict[str, str] = {}
    base = "https://raw.githubusercontent.com/marek-mraz/ngsi-ld-test-suite/main/resources/" \
           "jsonld-contexts/"
    forge = "https://forge.etsi.org/rep/cim/ngsi-ld-test-suite/-/raw/develop/resources/" \
            "jsonld-contexts/"
    for path in sorted((suite / "resources" / "jsonld-contexts").glob("*.jsonld")):
        shutil.copy(path, into / path.name)
        urls[base + path.name] = path.name
        urls[forge + path.name] = path.name
    # Some data files still name the upstream suite's published V1.8 compound context, which
    # is the same terms as the checkout's compound file.
    if (into / "ngsi-ld-test-suite-compound.jsonld").is_file():
        urls[UPSTREAM_COMPOUND] = "ngsi-ld-test-suite-compound.jsonld"
    lines = ["urls:"] + [f"  {json.dumps(u)}: {json.dumps(f)}" for u, f in urls.items()]
    (into / "index.yaml").write_text("\n".join(lines) + "\n")
    return into


class KeyedApp:
    """The node's ASGI app, with the runner's key on requests that carry none."""

    def __init__(self, app, secret: str) -> None:
        self.app = app
        self.header = (b"authorization", f"Bearer {secret}".encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not any(k == b"authorization"
                                               for k, _ in scope["headers"]):
            scope = dict(scope, headers=[*scope["headers"], self.header])
        await self.app(scope, receive, send)


def serve_node(work: Path, mirror: Path, port: int) -> tuple[threading.Thread, object]:
    import uvicorn

    from cityops.api.app import create_app
    from cityops.auth import new_key
    from cityops.node import Node
    from cityops.packs.grid import generate
    from cityops.settings import Settings

    settings = Settings(data_dir=work / "data", ngsild_context_mirror=mirror,
                        rate_per_key=100_000.0, burst_per_key=200_000.0,
                        in_flight_per_key=256)
    node = Node(generate(devices={"noise": 20}), settings)
    secret, record = new_key("admin", None, "etsi-conformance")
    app = create_app(node)

    started = app.router.lifespan_context  # the node's own, wrapped (not replaced)

    @contextlib.asynccontextmanager
    async def with_key(app_):
        async with started(app_):
            await node.store.add_key(record)
            yield

    app.router.lifespan_context = with_key
    server = uvicorn.Server(uvicorn.Config(KeyedApp(app, secret), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SystemExit("the CityOps node did not start")
        time.sleep(0.1)
    return thread, server


def write_variables(suite: Path, port: int) -> str:
    path = suite / "resources" / "variables.py"
    kept = path.read_text()
    url = f"http://127.0.0.1:{port}/ngsi-ld/v1"
    path.write_text("\n".join([
        f"url = {url!r}",
        f"temporal_api_url = {url!r}",
        f"ngsild_test_suite_context = {SUITE_CONTEXT!r}",
        "notification_server_host = '127.0.0.1'",
        f"notification_server_port = {free_port()}",
        "mqtt_broker_host = '127.0.0.1'",
        "mqtt_broker_non_default_port = 8085",
        "context_source_host = '127.0.0.1'",
        f"context_source_port = {free_port()}",
        "context_server_host = '127.0.0.1'",
        f"context_server_port = {free_port()}",
        "core_context = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld'",
        "delete_temporal_on_core_delete = True",
        "",
    ]))
    return kept


def counts(output: Path, selection: list[str]) -> dict[str, dict[str, int]]:
    """Passed, failed and skipped test cases per selected folder, from Robot's output.xml."""
    tree = ET.parse(output)
    out = {s: {"passed": 0, "failed": 0, "skipped": 0} for s in selection}
    for suite in tree.iter("suite"):
        source = suite.get("source") or ""
        for test in suite.findall("test"):
            status = test.find("status")
            state = (status.get("status") if status is not None else "FAIL") or "FAIL"
            for s in selection:
                if f"/{s}/" in source or source.endswith(f"/{s}"):
                    key = {"PASS": "passed", "SKIP": "skipped"}.get(state, "failed")
                    out[s][key] += 1
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", type=Path, required=True)
    parser.add_argument("--robot", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--loglevel", default="WARN",
                        help="Robot's log level: INFO or DEBUG keeps each request's answer in "
                             "log.html, for reading a failure")
    parser.add_argument("--test", action="append", default=[],
                        help="only the test cases whose name matches (Robot's --test; "
                             "repeatable)")
    parser.add_argument("--spec", default=SPEC,
                        help="the GS CIM 009 version to hold the node to: test cases the suite "
                             "tags as written for a later version (since_vX) are left out; "
                             "'all' runs every one")
    parser.add_argument("selection", nargs="*", default=DEFAULT_SELECTION)
    args = parser.parse_args()
    suite = args.suite.resolve()
    robot = args.robot or suite / ".venv" / "bin" / "robot"
    if not robot.exists():
        raise SystemExit(f"no robot at {robot}: make the suite's venv from its requirements.txt")
    work = Path(tempfile.mkdtemp(prefix="cityops-etsi-"))
    out = (args.out or work / "results").resolve()
    port = free_port()
    mirror = context_mirror(suite, work / "contexts")
    _, server = serve_node(work, mirror, port)
    kept = write_variables(suite, port)
    try:
        chosen = [option for name in args.test for option in ("--test", name)]
        chosen += [option for tag in later_versions(suite, args.spec)
                   for option in ("--exclude", tag)]
        run = subprocess.run([str(robot), "--outputdir", str(out), "--loglevel", args.loglevel,
                              "--console", "dotted", *chosen, *args.selection], cwd=suite)
        print(f"robot exited {run.returncode}; report in {out}/report.html", file=sys.stderr)
    finally:
        (suite / "resources" / "variables.py").write_text(kept)
        server.should_exit = True  # type: ignore[attr-defined]
    per = counts(out / "output.xml", args.selection)
    total = {k: sum(v[k] for v in per.values()) for k in ("passed", "failed", "skipped")}
    print(json.dumps({"total": total, "per_folder": per}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
