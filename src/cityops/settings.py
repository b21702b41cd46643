"""Settings of a node, with the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import msgspec


class Settings(msgspec.Struct, kw_only=True):
    data_dir: Path
    store_url: str | None = None  # default: sqlite:///DATA/state.db
    mqtt_url: str | None = None
    mqtt_topic: str = "cityops/readings/+"
    max_body_bytes: int = 16 << 20
    max_in_flight: int = 64  # concurrent ingest batches before 429
    history_queue: int = 256  # batches waiting for the history writer before 503
    bus_queue: int = 1024
    fsync: bool = True
    snapshot_every_s: float = 2.0
    seal_after_s: float = 60.0
    detect: bool = True  # run the scenario rules on this node
    detect_tick_s: float = 1.0  # how often time-driven rules (absence, quiet) are evaluated
    scenario_dirs: list[Path] = []  # the city's own scenario packs, besides the built-in ones
    max_age_s: float = 7 * 86400.0  # oldest reading taken (raise it to replay history)
    act: bool = True  # run the incident desk, alert intake and escalation scheduler here
    notify_url: str = "log:"  # see cityops.notify.open_notifier
    escalate_tick_s: float = 5.0  # how often deadlines are checked
    ack_timeout_s: float = 90.0  # a field person's time to acknowledge an assignment
    street_network: Path | None = None  # an OSM .pbf extract: propose staff by travel time

    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{(Path(self.data_dir) / 'state.db').resolve()}"
