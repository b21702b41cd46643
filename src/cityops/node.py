"""One CityOps node: the city, the store, the history, the bus and the ingest pipeline, wired.

Data flows one way: sources -> ingest -> history (durable) -> bus -> consumers; the state store
sits beside it holding devices, keys, the latest values and dead letters.

The parts are typed services (`cityops.services.Services`), composed for one process by
`compose_single` or, in cluster mode (`settings.bus_url`), over NATS JetStream and the shared
store by `cityops.cluster.compose.compose_cluster`. The node builds the detection engine and
the act and serve sides over them, and runs the lifecycle: start, stop, readiness.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from cityops import lifecycle
from cityops.act.side import ActSide
from cityops.background import cancel_all
from cityops.cell_owners import CellOwners
from cityops.cluster.compose import compose_cluster
from cityops.detect.engine import DetectEngine
from cityops.domain.city import CityPack
from cityops.looplag import LoopLag
from cityops.ngsild.service import NgsiLd
from cityops.reports.service import Reports
from cityops.roster import Roster, RosterRules
from cityops.scenarios.loader import load_scenarios
from cityops.serve.side import ServeSide
from cityops.services import DEVICES_VERSION, Clock, Services, compose_single
from cityops.settings import Settings
from cityops.store.base import LatestRows

log = logging.getLogger(__name__)

SNAPSHOT_PIECE = 4096  # latest values per store write

__all__ = ["DEVICES_VERSION", "SNAPSHOT_PIECE", "Node", "compose"]


def compose(pack: CityPack, settings: Settings, clock: Clock) -> Services:
    """The node's services as its settings ask: one process, or a cluster node's roles."""
    composer = compose_cluster if settings.cluster else compose_single
    return composer(pack, settings, clock)


class Node:
    def __init__(self, pack: CityPack, settings: Settings, clock: Clock = time.time,
                 notifier: Any = None) -> None:
        """`clock` is what the node takes for now (wall time; a replay passes its own);
        `notifier` overrides the one `settings.notify_url` names (one needing a secret)."""
        services = compose(pack, settings, clock)
        self.services = services
        self.wiring = services.wiring
        self.pack = pack
        self.clock = clock
        self.settings = settings
        self.metrics = services.metrics
        self.loop_lag = LoopLag(self.metrics.loop_lag)
        self.city = services.city
        self.registry = services.registry
        self.store = services.store
        self.keys = services.keys
        self.cluster = services.wiring.clustered
        self.name = services.name
        self.bus = services.bus
        self.runs = settings.runs
        self.history = services.history
        self.reader = services.reader
        self.ingestor = services.ingestor
        self.detect: DetectEngine | None = None
        if settings.detect:
            scenarios = load_scenarios(list(settings.scenario_dirs), kinds=pack.kinds)
            _warn_missing_departments(scenarios, pack)
            # A cluster node without the detect role keeps a passive engine: the operating
            # states and the scenario list for the API, no rules evaluated.
            self.detect = DetectEngine(self, scenarios, tick_s=settings.detect_tick_s,
                                       clock=clock, evaluate=self.runs("detect"))
        # Field staff as the pack has them, with administrators' changes from the store.
        self.roster = Roster(pack.staff, RosterRules.of(pack, self._device_kind))
        self.act: ActSide | None = None
        if settings.act:
            # Every cluster node has the incident desk (moves made through its API); only act
            # nodes take alerts from the bus and run escalation.
            working = self.runs("act")
            self.act = ActSide(services, notifier=notifier, intake=working, scheduler=working,
                               roster=self.roster,
                               scenarios=self.detect.scenarios if self.detect else ())
        self.serve = ServeSide(self, notifier=notifier if self.act is None else None)
        self.dead_letters: Any = None
        self.mqtt: Any = None
        self.frigate: Any = None  # ingest/frigate_node.FrigatePart, on ingest nodes
        self.frigate_map: Any = None  # the checked frigate.yaml, on every node that has one
        self.ngsild = NgsiLd(self)
        self.reports = Reports(self, tick_s=settings.reports_tick_s)
        self.broker_sync: Any = None
        self.started_at = 0.0
        self.registration_errors: list[tuple[int, str]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.department_areas = {d.code: list(d.service_areas) for d in pack.departments}
        self.devices_version: str | None = None
        self._devices_checked = 0.0
        self._devices_lock = asyncio.Lock()
        self.registry_diverged = ""  # set when this node's device order left the store's
        # Grid-cell owners as the pack says, with administrators' changes from the store.
        self.cell_owners = CellOwners(self.city, pack.cell_owners)

    def _device_kind(self, device_id: str) -> str | None:
        device = self.registry.get(device_id)
        return None if device is None else device.kind

    def bus_for(self, component: str) -> Any:
        """The bus as one component sees it (in cluster mode, through its consumer group)."""
        return self.services.views(component)

    def keep_task(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """A loop that runs until the node stops."""
        self._tasks.append(asyncio.create_task(work, name=name))

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.loop_lag.start(self.settings.loop_stall_ms)
        await self.store.open()
        await self.cell_owners.load(self.store)  # before any case is routed
        await self.roster.load(self.store)  # before anyone is proposed or shown
        await self.wiring.register_pack_devices(self)
        snapshot = await self.store.load_latest()
        await asyncio.to_thread(self.history.open, snapshot)
        await lifecycle.on_start(self)  # devices with readings are active, not commissioning
        await self.wiring.connect(self)
        self.metrics.devices.set_function(lambda: len(self.registry))
        self.metrics.watch_queue("history_writer", self.history.queue_depth)
        self.metrics.watch_queue("store_writer", self.store.queue_depth)
        self.metrics.watch_queue("ingest_in_flight", lambda: self.ingestor.in_flight)
        self.metrics.watch_queue("bus", lambda: sum(self.bus.depths().values()))
        if self.act is not None:
            await self.act.start()  # before detection, so no raised alert goes unheard
        if self.runs("web"):
            await self.serve.start()
            await self.ngsild.start()
        if self.detect is not None:
            await self.detect.start()
        await self.wiring.start_parts(self)
        if self.runs("history"):
            self.keep_task(self._snapshot_loop(), "latest-snapshot")
        if self.runs("web") and self.settings.reports_schedule:
            self.keep_task(self.reports.run_schedule(), "reports-schedule")
        self.keep_task(lifecycle.keep_saved(self, self.settings.snapshot_every_s),
                       "device-lifecycles")
        from cityops.ingest.deadletters import DeadLetterSink

        st = self.settings
        capped = self.metrics.dead_letters_capped
        self.dead_letters = DeadLetterSink(
            self.store, per_source=st.dead_letters_per_source, window_s=st.dead_letters_window_s,
            retention_s=st.dead_letters_retention_s, sweep_every_s=st.dead_letters_sweep_s,
            on_capped=lambda letter: capped.labels(letter.source).inc())
        await self.dead_letters.start()
        takes_mqtt = bool(self.settings.mqtt_url) and self.runs("ingest")
        if takes_mqtt:
            await self._start_broker_sync()
        self.metrics.watch_fields(self.metrics.dead_letters, lambda: self.dead_letters.stats)
        if takes_mqtt:
            self.mqtt = self.wiring.mqtt_intake(self)
            await self.mqtt.start()
            self.metrics.watch_fields(self.metrics.mqtt, lambda: self.mqtt.stats)
        from cityops.ingest import frigate_node

        self.frigate_map = frigate_node.load_mapping(self)
        if self.frigate_map is not None and self.runs("ingest"):
            self.frigate = frigate_node.FrigatePart(self, self.frigate_map)
            await self.frigate.start()
        self.started_at = time.time()

    async def _start_broker_sync(self) -> None:
        from cityops.ingest.broker_accounts import BrokerSync, topic_prefix
        from cityops.ingest.mqtt import parse_mqtt_url

        st = self.settings
        if not st.mqtt_admin_url:
            log.warning("MQTT ANONYMOUS PUBLISHING IS OPEN: no dynamic-security admin is set "
                        "(--mqtt-admin), so CityOps gives devices no broker credentials and "
                        "anyone who reaches %s may publish readings for any device; see "
                        "docs/deploy.md, 'MQTT with dynamic security'", parse_mqtt_url(
                            st.mqtt_url).host)
            return
        intake = parse_mqtt_url(st.mqtt_url)
        admin = parse_mqtt_url(st.mqtt_admin_url)
        own = None
        if intake.username and intake.password and intake.username != admin.username:
            own = (intake.username, intake.password, st.mqtt_topic)
        self.broker_sync = BrokerSync(self.store, lambda: self.registry.devices,
                                      st.mqtt_admin_url, topic_prefix(st.mqtt_topic),
                                      every_s=st.mqtt_sync_s, intake=own)
        await self.broker_sync.start()

    async def stop(self) -> None:
        if self.broker_sync is not None:
            await self.broker_sync.stop()
        if self.frigate is not None:
            await self.frigate.stop()
        if self.mqtt is not None:
            await self.mqtt.stop()
        if self.detect is not None:
            await self.detect.stop()
        await self.wiring.stop_parts()
        if self.runs("web"):
            await self.ngsild.stop()
            await self.serve.stop()
        if self.act is not None:
            await self.act.stop()
        await cancel_all(self._tasks)
        await asyncio.to_thread(self.history.close)
        # The newest segment stays WAL (no final compaction): replaying it at the next start
        # restores the dedup memory, so a client retrying its last batch is told "duplicate".
        await self.save_snapshot()
        await lifecycle.save_unsaved(self)  # first readings not yet in the store
        if self.dead_letters is not None:
            await self.dead_letters.stop()
        await self.bus.close()
        await self.store.close()
        await self.loop_lag.stop()

    async def readiness(self) -> dict[str, dict]:
        """Each dependency with `ok` and what was seen; used by /readyz."""
        checks: dict[str, dict] = {}
        try:
            await asyncio.wait_for(self.store.get_meta("schema_version"), timeout=2.0)
            checks["store"] = {"ok": True, "queue": self.store.queue_depth()}
        except Exception as error:  # any failure to answer is "down", whatever its kind
            checks["store"] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:200]}
        depth, limit = self.history.queue_depth(), self.settings.history_queue
        if self.runs("history"):
            checks["history"] = {"ok": depth < limit, "queue": depth, "limit": limit}
        checks["bus"] = await self.wiring.bus_check(self)
        if self.registry_diverged:
            checks["registry"] = {"ok": False, "error": self.registry_diverged}
        if self.mqtt is not None:
            checks["mqtt"] = {"ok": bool(self.mqtt.connected),
                              "state": "connected" if self.mqtt.connected else "reconnecting"}
        if self.frigate is not None:
            up = self.frigate.intake.connected
            checks["frigate"] = {"ok": up, "state": "connected" if up else "reconnecting"}
        return checks

    async def reload_devices(self) -> int:
        """Devices registered by other nodes since the last look, appended in store order;
        returns how many were new."""
        async with self._devices_lock:
            devices = await self.store.load_devices()
            have = self.registry.devices
            n = len(have)
            if len(devices) < n or any(a.id != b.id for a, b in zip(devices, have)):
                self.registry_diverged = ("the store's device order differs from this node's: "
                                          "restart it")
                log.error("device registry diverged from the store; restart this node")
                return 0
            # New devices, and changes of known ones (lifecycle moves made elsewhere).
            self.registry.follow(devices)
            self._devices_checked = time.monotonic()
            return len(devices) - n

    async def ensure_devices(self, batch) -> None:
        """A batch from the stream may name a device registered elsewhere a moment ago."""
        if len(batch) and int(batch.device.max()) >= len(self.registry) \
                and time.monotonic() - self._devices_checked > 0.5:
            await self.reload_devices()

    async def register_devices(self, devices) -> list:
        resolved = [self.city.resolve_device(d) for d in devices]
        for device in resolved:
            self.registry.kind(device.kind)
        await self.store.upsert_devices(resolved)
        await self.wiring.devices_registered(self, resolved)
        return resolved

    async def save_snapshot(self) -> None:
        rows, mark = self.history.take_dirty_latest()
        if len(rows) == 0 and mark < 0:
            return
        started = time.perf_counter()
        try:
            # In pieces, one after the other: the store has one writer, and a single write of
            # every device's latest value would hold up, for its whole length, the incident
            # that an alert is opening meanwhile. Between pieces other writes get their turn.
            for start in range(0, len(rows), SNAPSHOT_PIECE):
                end = start + SNAPSHOT_PIECE
                await self.store.save_latest(LatestRows(
                    rows.device_id[start:end], rows.channel[start:end], rows.ts_us[start:end],
                    rows.value[start:end]))
        except Exception:
            self.history.restore_dirty(rows)
            raise
        self.metrics.store_seconds.labels("save_latest").observe(time.perf_counter() - started)
        self.history.snapshot_saved(mark)

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.snapshot_every_s)
            try:
                await self.save_snapshot()
            except Exception:
                log.exception("saving the latest values failed; will retry")


def _warn_missing_departments(scenarios, pack: CityPack) -> None:
    """A scenario may name a department this city does not have; its work then falls to the
    local authority of the place (act side), so this is worth a warning, not a refusal."""
    have = {d.code for d in pack.departments}
    for scenario in scenarios:
        missing = sorted(set(scenario.departments) - have)
        if missing:
            log.warning("scenario %s names departments this city lacks: %s", scenario.name,
                        ", ".join(missing))
