"""`cityops serve`: run one node."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from cityops.cli.config import remember, store_url_for
from cityops.cli.errors import fail


def load_city(city: Path):
    from cityops.packs.format import PackError, load_pack

    if not city.is_dir():
        raise fail(f"city pack {city} is not a folder; make one with "
                   "`cityops city generate --preset pudong --out DIR`")
    try:
        return load_pack(city)
    except PackError as exc:
        raise fail(str(exc)) from None


def serve(
    city: Path = typer.Option(..., "--city", help="City pack folder."),
    data: Path = typer.Option(Path("var/data"), "--data", help="Data directory."),
    port: int = typer.Option(8080, "--port"),
    host: str = typer.Option("127.0.0.1", "--host"),
    mqtt: str = typer.Option(None, "--mqtt", help="MQTT broker, e.g. mqtt://127.0.0.1:1883 "
                             "(mqtt://USER:PASSWORD@HOST:PORT for the intake's own account)"),
    mqtt_admin: str = typer.Option(None, "--mqtt-admin", envvar="CITYOPS_MQTT_ADMIN",
                                   help="The broker's dynamic-security admin, mqtt://ADMIN:"
                                        "PASSWORD@HOST:PORT: device keys get broker accounts "
                                        "(without it MQTT publishing is open to anyone)."),
    frigate: Path = typer.Option(None, "--frigate", help="The Frigate mapping (frigate.yaml, "
                                 "see docs/city-packs.md); default: the city pack's own, "
                                 "if it has one. Frigate's events then become camera "
                                 "readings."),
    frigate_mqtt: str = typer.Option(None, "--frigate-mqtt", help="The broker Frigate "
                                     "publishes its events to, mqtt://HOST:PORT (default: "
                                     "--mqtt)."),
    store: str = typer.Option(None, "--store", help="sqlite:///PATH or postgresql://..."),
    no_fsync: bool = typer.Option(False, "--no-fsync", help="Do not fsync (tests only: "
                                                            "acknowledged readings may be lost)."),
    notify: str = typer.Option("log:", "--notify", help="Where notifications go: log:, "
                                                         "webhook+https://..., sms+https://..."),
    notify_secret: str = typer.Option(None, "--notify-secret", envvar="CITYOPS_NOTIFY_SECRET",
                                      help="HMAC secret of the webhook notifier."),
    street_network: Path = typer.Option(None, "--street-network", help="OSM .pbf extract: "
                                        "propose field staff by travel time on its streets."),
    care: Path = typer.Option(None, "--care", help="The city's elderly-care service points "
                              "and homes of residents of 60+ (GeoJSON; see docs/api.md, "
                              "\"Community analytics\"); default: figures generated from "
                              "the pack."),
    scenarios: list[Path] = typer.Option([], "--scenarios", help="A folder of the city's own "
                                         "scenario packs (repeatable), besides the built-in "
                                         "ones."),
    max_in_flight: int = typer.Option(64, "--max-in-flight", min=1, help="Ingest batches in "
                                      "progress at once; more are answered 429."),
    history_queue: int = typer.Option(256, "--history-queue", min=1, help="Batches waiting for "
                                      "the history writer; more are answered 503."),
    role: list[str] = typer.Option(["all"], "--role", help="What this node runs: ingest, "
                                   "detect, act, web, history or all (repeatable, or a comma "
                                   "list). Anything but all needs --bus; see docs/deploy.md."),
    bus: str = typer.Option(None, "--bus", help="NATS JetStream between the nodes, e.g. "
                            "nats://127.0.0.1:4222[?stream=CITYOPS]: cluster mode."),
    name: str = typer.Option(None, "--name", help="This node's name, stable across restarts "
                             "(its own consumer groups and MQTT session); default HOST-PORT."),
    worker: int = typer.Option(0, "--worker", min=0, help="Which share of the readings "
                               "partitions this detect/history worker takes (0-based)."),
    workers: int = typer.Option(1, "--workers", min=1, help="How many detect (history) workers "
                                "share the partitions."),
    partitions: int = typer.Option(8, "--partitions", min=1, help="Readings partitions of the "
                                   "stream; the same on every node of a deployment."),
    snapshot_every: float = typer.Option(2.0, "--snapshot-every", min=0.1, help="Seconds between "
                                         "saves of the latest values to the store (raise it "
                                         "for a million devices; see docs/deploy.md)."),
    loop_stall_ms: float = typer.Option(None, "--loop-stall-ms", min=5, help="Log what the "
                                        "event loop was running whenever it is held this many "
                                        "ms (to find the cause of a latency tail)."),
    log_level: str = typer.Option("warning", "--log-level"),
    public_url: str = typer.Option("", "--public-url", envvar="CITYOPS_PUBLIC_URL",
                                   help="The address people and systems reach this node at "
                                        "(https://ops.city.example): absolute URLs it gives "
                                        "out start with it, never with a request's Host."),
    open_status: bool = typer.Option(False, "--open-status", help="Publish /status.json and "
                                     "/metrics without a key (else an unscoped operator key)."),
    rate_per_key: float = typer.Option(1000.0, "--rate-per-key", min=0.001, help="Requests a "
                                       "second one key may send (burst: twice that); more "
                                       "are answered 429."),
    in_flight_per_key: int = typer.Option(32, "--in-flight-per-key", min=1, help="Requests of "
                                          "one key in progress at once; more are answered "
                                          "429."),
    body_timeout: float = typer.Option(30.0, "--body-timeout", min=0.1, help="Seconds a "
                                       "request body may take to arrive; then 408."),
    data_key: Path = typer.Option(None, "--data-key", envvar="CITYOPS_DATA_KEY",
                                  help="The key file personal data is sealed with (made at the "
                                  "first start; default DATA/data.key). Every node sharing a "
                                  "store must use the same file."),
    storm_cases: int = typer.Option(10, "--storm-cases", min=0, help="Storm guard: once this "
                                    "many cases of one category were auto-dispatched in one "
                                    "area within --storm-window, further ones wait as one "
                                    "case for a supervisor (0: off)."),
    storm_window: float = typer.Option(600.0, "--storm-window", min=1.0, help="Seconds the "
                                       "storm guard counts over."),
    storm_level: str = typer.Option("town", "--storm-level", help="The area the storm guard "
                                    "counts in: village, town or district."),
    ngsild_subscribe: list[str] = typer.Option([], "--ngsild-subscribe", help="Take in an "
                                               "NGSI-LD broker's entities: URL#Type1,Type2 "
                                               "(repeatable; needs --public-url for the "
                                               "broker's callbacks)."),
    ngsild_federation: Path = typer.Option(None, "--ngsild-federation", help="A YAML list of "
                                           "NGSI-LD brokers to subscribe to (url, types, q, "
                                           "key, context, name)."),
    ngsild_contexts: Path = typer.Option(None, "--ngsild-contexts", help="A folder mirroring "
                                         "the JSON-LD contexts producers name by URL: an "
                                         "index.yaml (urls: {URL: file}) and the files; those "
                                         "URLs then resolve offline."),
    report_schedule: bool = typer.Option(True, "--report-schedule/--no-report-schedule",
                                         help="Make last month's PDF report of the district "
                                         "and each town once a month."),
    report_font: Path = typer.Option(None, "--report-font", exists=True, dir_okay=False,
                                     help="A TrueType CJK font to embed in PDF reports "
                                     "(default: one found on the system)."),
) -> None:
    """Run a node: HTTP API (and MQTT intake) over the city pack, storing in DATA."""
    import uvicorn

    from cityops.api.app import create_app
    from cityops.node import Node
    from cityops.notify import open_notifier
    from cityops.settings import Settings

    # Everything this node writes under DATA (its database, history, photos, the data key)
    # is for its own user only: citizens' data must not be readable by others on the host.
    os.umask(0o077)
    if public_url and not public_url.startswith(("http://", "https://")):
        raise fail(f"--public-url {public_url!r} must start with http:// or https://")
    if mqtt and not mqtt.startswith("mqtt://"):
        raise fail(f"--mqtt {mqtt!r} must look like mqtt://host:port")
    if mqtt_admin and not mqtt_admin.startswith(("mqtt://", "mqtts://")):
        raise fail("--mqtt-admin must look like mqtt://ADMIN:PASSWORD@HOST:PORT")
    if frigate is None and (city / "frigate.yaml").is_file():
        frigate = city / "frigate.yaml"
    if frigate is not None:
        from cityops.packs.errors import PackError
        from cityops.packs.frigate_file import load_frigate

        try:
            load_frigate(frigate)
        except PackError as exc:
            raise fail(str(exc)) from None
        if not (frigate_mqtt or mqtt):
            raise fail(f"{frigate}: Frigate's events come over MQTT: give --frigate-mqtt "
                       "mqtt://HOST:PORT (the broker Frigate publishes to) or --mqtt")
    if frigate_mqtt and not frigate_mqtt.startswith(("mqtt://", "mqtts://")):
        raise fail(f"--frigate-mqtt {frigate_mqtt!r} must look like mqtt://host:port")
    federation_sources = []
    if ngsild_subscribe or ngsild_federation is not None:
        from cityops.ngsild.federation import source_from_flag, sources_of

        try:
            federation_sources = [source_from_flag(text) for text in ngsild_subscribe]
            sources_of(Settings(data_dir=data, ngsild_federation=federation_sources,
                                ngsild_federation_file=ngsild_federation))
        except (ValueError, OSError) as exc:
            raise fail(str(exc)) from None
        if not public_url:
            raise fail("--ngsild-subscribe/--ngsild-federation need --public-url: the brokers "
                       "call this node back there")
    if storm_level not in ("village", "town", "district"):
        raise fail(f"--storm-level {storm_level!r} must be village, town or district")
    if report_font is not None:
        from cityops.reports.render import cjk_font

        try:
            cjk_font(report_font)  # a file that is no TrueType font is said now, not per report
        except ValueError as error:
            raise fail(f"--report-font: {error}") from None
    pack = load_city(city)
    try:
        url = store_url_for(data, store)
    except ValueError as exc:
        raise fail(str(exc)) from None
    remember(data, url)
    if street_network is not None and not street_network.is_file():
        raise fail(f"--street-network {street_network} is not a file (an OSM .pbf extract)")
    if care is not None:
        from cityops.analytics.care_file import CareFileError, load
        from cityops.domain.geo import CityMap

        try:  # checked now: a mistake in it is told at start, not on the first request
            load(care, CityMap.from_pack(pack))
        except CareFileError as exc:
            raise fail(f"--care: {exc}") from None
    for folder in scenarios:
        if not folder.is_dir():
            raise fail(f"--scenarios {folder} is not a folder of scenario packs")
    from cityops.cluster import bus_options, parse_roles

    try:
        roles = parse_roles(role)
        if bus is not None:
            bus_options(bus)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if roles != ["all"] and bus is None:
        raise fail(f"--role {','.join(roles)} needs --bus nats://...: the roles of a cluster "
                   "talk over NATS JetStream")
    if bus is not None and not url.startswith(("postgresql", "postgres:")):
        raise fail("a cluster (--bus) needs a store all of its nodes share: --store "
                   "postgresql://...")
    if worker >= workers or workers > partitions:
        raise fail(f"--worker {worker} --workers {workers} --partitions {partitions}: need "
                   "worker < workers <= partitions")
    import socket

    cluster_settings = {}
    if bus is not None:
        cluster_settings = dict(roles=roles, bus_url=bus, worker=worker, workers=workers,
                                partitions=partitions,
                                node_name=name or f"{socket.gethostname()}-{port}")
    settings = Settings(data_dir=data, store_url=url, mqtt_url=mqtt, fsync=not no_fsync,
                        notify_url=notify, street_network=street_network, care_file=care,
                        scenario_dirs=list(scenarios), max_in_flight=max_in_flight,
                        history_queue=history_queue, snapshot_every_s=snapshot_every,
                        loop_stall_ms=loop_stall_ms, data_key_file=data_key,
                        mqtt_admin_url=mqtt_admin, public_base_url=public_url.rstrip("/"),
                        open_status=open_status, rate_per_key=rate_per_key,
                        burst_per_key=2 * rate_per_key, in_flight_per_key=in_flight_per_key,
                        body_timeout_s=body_timeout, storm_cases=storm_cases,
                        storm_window_s=storm_window, storm_level=storm_level,
                        frigate_file=frigate, frigate_mqtt_url=frigate_mqtt,
                        ngsild_federation=federation_sources,
                        ngsild_federation_file=ngsild_federation,
                        ngsild_context_mirror=ngsild_contexts,
                        reports_schedule=report_schedule, reports_font=report_font)
    if cluster_settings:
        import msgspec

        settings = msgspec.structs.replace(settings, **cluster_settings)
    try:
        notifier = open_notifier(notify, **({"secret": notify_secret} if notify_secret else {}))
        node = Node(pack, settings, notifier=notifier)
    except ValueError as exc:  # a bad pack, scenario folder or notifier URL, named
        raise fail(str(exc)) from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: "
                                                        "%(message)s")
    from cityops.api.live import graceful_server

    config = uvicorn.Config(create_app(node), host=host, port=port, log_level=log_level,
                            loop="uvloop", http="httptools", access_log=False,
                            timeout_graceful_shutdown=5)
    graceful_server(config).run()
