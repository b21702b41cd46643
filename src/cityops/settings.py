"""Settings of a node, with the embedded defaults.

A node runs one or more roles. `all` (the default) is one process with everything in it, the
in-process bus and the embedded store, as a laptop runs it. With `bus_url` set the node is a
cluster node: its roles decide which parts it builds (see `cityops.node` and
docs/deploy.md), and the parts talk over NATS JetStream and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import msgspec


class FederationSource(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A subscription this node keeps at another NGSI-LD broker (cityops.ngsild.federation):
    the broker's notifications come back to this node's `POST /ngsi-ld/v1/notify`."""

    url: str  # the broker's base URL (http://orion:1026); /ngsi-ld/v1/... is appended
    types: list[str]  # entity types to take in: terms of `context`, or full IRIs
    name: str = ""  # names the source in status and in its callback key; default the host
    q: str | None = None  # an NGSI-LD query the remote applies before notifying
    watched_attributes: list[str] = []
    context: str | None = None  # a context URL CityOps ships (default: CityOps's own)
    key: str | None = None  # a Bearer key for the remote broker, if it asks for one
    tenant: str | None = None  # the remote's NGSILD-Tenant, if it is multi-tenant


MAX_IMPORT_BYTES = 4 << 30  # a history import's body, by default


class Settings(msgspec.Struct, kw_only=True):
    data_dir: Path
    store_url: str | None = None  # default: sqlite:///DATA/state.db
    mqtt_url: str | None = None
    mqtt_topic: str = "cityops/readings/+"
    max_body_bytes: int = 16 << 20
    max_import_bytes: int = MAX_IMPORT_BYTES  # a history import's body (spooled to disk)
    max_in_flight: int = 64  # concurrent ingest batches before 429
    history_queue: int = 256  # batches waiting for the history writer before 503
    bus_queue: int = 1024
    fsync: bool = True
    snapshot_every_s: float = 2.0
    seal_after_s: float = 60.0
    detect: bool = True  # run the scenario rules on this node
    detect_tick_s: float = 1.0  # how often time-driven rules (absence, quiet) are evaluated
    silence_max_s: float = 30 * 86400.0  # the longest a silence may last (a new one after)
    scenario_dirs: list[Path] = []  # the city's own scenario packs, besides the built-in ones
    max_age_s: float = 7 * 86400.0  # oldest reading taken (raise it to replay history)
    # A commissioning device not heard this long after it was registered is listed as never
    # reported (GET /api/v1/devices/never-reported), never raised as an incident.
    commissioning_window_s: float = 7 * 86400.0
    act: bool = True  # run the incident desk, alert intake and escalation scheduler here
    notify_url: str = "log:"  # see cityops.notify.open_notifier
    escalate_tick_s: float = 5.0  # how often deadlines are checked
    ack_timeout_s: float = 90.0  # a field person's time to acknowledge an assignment
    street_network: Path | None = None  # an OSM .pbf extract: propose staff by travel time
    # The city's elderly-care service points and homes of residents of 60+ (GeoJSON, see
    # cityops.analytics.care_file); None: figures generated from the pack (cityops.packs.care)
    care_file: Path | None = None
    # The storm guard (cityops.act.storm): once this many cases of one category were
    # auto-dispatched in one area (village, town or district) within the window, the next
    # ones wait as one case for a supervisor. 0 turns it off.
    storm_cases: int = 10
    storm_window_s: float = 600.0
    storm_level: str = "town"
    # The kiosk (cityops.serve.kiosk): how long an SMS sign-in code works, and how long the
    # citizen key a kiosk is given lives (its sign-out or idle wipe revokes it sooner).
    kiosk_code_ttl_s: float = 300.0
    kiosk_session_s: float = 900.0
    # -- cluster mode --------------------------------------------------------------------------
    roles: list[str] = msgspec.field(default_factory=lambda: ["all"])  # or ingest, detect,
    # act, web, history: which parts this node runs (cluster mode)
    bus_url: str | None = None  # nats://host:port[?stream=...&ack_wait=...]: cluster mode
    node_name: str = ""  # stable per process: names its own consumer groups and MQTT session
    worker: int = 0  # which share of the readings partitions this detect/history worker takes
    workers: int = 1  # how many workers share them
    partitions: int = 8  # readings partitions of the stream (fixed for a deployment)
    detect_warmup_s: float = 300.0  # readings replayed to rebuild rule memory on (re)start
    max_stream_lag: int = 50_000  # detection backlog (messages) beyond which ingest says 503
    loop_stall_ms: float | None = None  # log the loop's stack whenever it is held this long
    mqtt_share: str = "cityops"  # shared-subscription group of the ingest nodes' MQTT intake
    # -- the trust boundary (docs/security.md) -------------------------------------------------
    public_base_url: str = ""  # absolute URLs the node gives out start with this, never Host
    body_timeout_s: float = 30.0  # a request body must arrive within this long (else 408)
    rate_per_key: float = 1000.0  # requests a second per key (token bucket), then 429
    burst_per_key: float = 2000.0
    in_flight_per_key: int = 32  # a key's requests in progress at once, then 429
    public_rate: float = 100.0  # per source address on routes that take no key
    auth_failures_per_min: int = 20  # failed authentications per address before 429
    open_status: bool = False  # /status.json and /metrics answer without a key
    # The key personal data is sealed with at rest (cityops.serve.pii); default DATA/data.key.
    # Nodes sharing a store must share the file.
    data_key_file: Path | None = None
    # -- authenticated MQTT and dead letters (docs/deploy.md, "MQTT with dynamic security") ----
    # The broker's dynamic-security admin, mqtt://ADMIN:PASSWORD@HOST:PORT. When set, every
    # device key has a broker client of its own (ingest/broker_accounts.py) and the broker
    # should refuse anonymous clients; when not, MQTT publishing is open to anyone who can
    # reach the broker, and the node says so loudly at start. The intake itself connects as
    # the user of `mqtt_url` (mqtt://USER:PASSWORD@...), made on the broker if it is missing.
    mqtt_admin_url: str | None = None
    mqtt_sync_s: float = 30.0  # how often broker clients are brought in step with the keys
    dead_letters_per_source: int = 100  # letters kept per source (MQTT topic) per window ...
    dead_letters_window_s: float = 600.0  # ... of this long; the rest are only counted
    dead_letters_retention_s: float = 7 * 86400.0  # older letters are deleted
    dead_letters_sweep_s: float = 3600.0  # how often the retention sweep runs
    # -- NGSI-LD context entities (cityops.ngsild.store) ----------------------------------------
    ngsild_max_entities: int = 100_000  # context entities the node keeps; more are refused
    ngsild_max_entity_bytes: int = 256 * 1024  # one context entity, as stored
    # An operator's mirror of the JSON-LD contexts its producers name by URL: a folder with an
    # index.yaml (`urls: {remote URL: file}`) and the files (cityops.ngsild.contexts). Those
    # URLs then resolve offline, as the contexts CityOps ships do; nothing is ever fetched.
    ngsild_context_mirror: Path | None = None
    # -- NGSI-LD subscriptions and federation (cityops.ngsild) -----------------------------------
    ngsild_subscriptions_max: int = 10_000  # subscriptions the node keeps; more are refused
    ngsild_notify_workers: int = 16  # notifications in flight at once (the connection pool)
    ngsild_notify_pending: int = 10_000  # entities waiting per subscription; a slow endpoint
    # gets the newest state of each entity, and beyond this the oldest waiting are dropped
    ngsild_notify_batch: int = 1_000  # entities in one notification at most
    ngsild_notify_body_bytes: int = 4 << 20  # a notification's body at most (split above)
    ngsild_notify_timeout_s: float = 10.0  # one notification's HTTP request
    ngsild_retry_base_s: float = 1.0  # first backoff of a failing endpoint, doubled after ...
    ngsild_retry_max_s: float = 300.0  # ... up to this, and retried at this pace from then on
    ngsild_reload_s: float = 5.0  # how often a cluster's web node looks for subscriptions
    # changed by another node
    ngsild_federation: list[FederationSource] = []  # subscriptions kept at other brokers
    ngsild_federation_file: Path | None = None  # the same list as a YAML file

    # -- Frigate (ingest/frigate.py): a city's NVRs' video analytics events -------------------
    frigate_file: Path | None = None  # the city pack's frigate.yaml; None: no Frigate intake
    frigate_mqtt_url: str | None = None  # the broker Frigate publishes to (default: mqtt_url)
    frigate_report_s: float = 30.0  # how often a lasting event's dwell is reported
    frigate_snapshot_attempts: int = 6  # tries at fetching an alert's snapshot from Frigate ...
    frigate_retry_s: float = 2.0  # ... the first pause between them, doubling

    # -- reports (cityops.reports) -------------------------------------------------------------
    reports_schedule: bool = True  # last month's report of the district and each town, made
    # once a month; False: reports only on request
    reports_tick_s: float = 60.0  # how often the schedule looks whether a month is due
    reports_font: Path | None = None  # a TrueType CJK font to embed (default: one found on
    # the system, else the viewer's own; cityops.reports.render)

    @property
    def cluster(self) -> bool:
        return self.bus_url is not None

    def runs(self, role: str) -> bool:
        return "all" in self.roles or role in self.roles

    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{(Path(self.data_dir) / 'state.db').resolve()}"
