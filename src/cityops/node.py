"""One CityOps node: the city, the store, the history, the bus and the ingest pipeline, wired.

Data flows one way: sources -> ingest -> history (durable) -> bus -> consumers; the state store
sits beside it holding devices, keys, the latest values and dead letters.

In cluster mode (`settings.bus_url`) the same parts are wired over NATS JetStream and the
shared store, and a node builds what its roles need (docs/deploy.md):

- ingest: validate, publish to the stream, answer once JetStream acknowledged (the stream is
  the durable log; no WAL here); MQTT through a shared subscription;
- detect: its worker's share of the readings partitions through the scenario rules;
- history: the WAL and Parquet history written from the stream, and history reads;
- act: alerts filed as incidents, escalation with claimed deadlines;
- web: the API over the store, live updates from the stream.

Every cluster node keeps the device registry in the store's order (indices on the stream
mean the same device everywhere) and follows area states and new devices from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
import uuid

from cityops.auth import KeyResolver
from cityops.bus.memory import MemoryBus
from cityops.bus.subjects import READINGS
from cityops import cluster
from cityops.detect.engine import DetectEngine
from cityops.domain.city import CityPack
from cityops.domain.geo import CityMap
from cityops.domain.registry import DeviceRegistry
from cityops.history.log import HistoryLog
from cityops.history.query import HistoryReader
from cityops.ingest.pipeline import Ingestor
from cityops.ingest.validate import Limits
from cityops.looplag import LoopLag
from cityops.metrics import NodeMetrics
from cityops.scenarios.loader import load_scenarios
from cityops.settings import Settings
from cityops.store.base import LatestRows, open_store

log = logging.getLogger(__name__)

SNAPSHOT_PIECE = 4096  # latest values per store write


class Node:
    def __init__(self, pack: CityPack, settings: Settings, clock=time.time,
                 notifier=None) -> None:
        """`clock` is what the node takes for now (wall time; a replay passes its own);
        `notifier` overrides the one `settings.notify_url` names (one needing a secret)."""
        self.pack = pack
        self.clock = clock
        self.settings = settings
        self.metrics = NodeMetrics()
        self.loop_lag = LoopLag(self.metrics.loop_lag)
        self.city = CityMap.from_pack(pack)
        self.registry = DeviceRegistry(pack.kinds)
        self.store = open_store(settings.resolved_store_url())
        self.keys = KeyResolver(self.store)
        self.cluster = settings.cluster
        if settings.roles != ["all"] and not self.cluster:
            raise ValueError("roles other than all need a bus between the nodes (--bus nats://...)")
        if self.cluster:
            if not 0 <= settings.worker < settings.workers <= settings.partitions:
                raise ValueError(f"--worker {settings.worker} --workers {settings.workers}: "
                                 f"need 0 <= worker < workers <= partitions "
                                 f"({settings.partitions})")
            self.name = _safe_name(settings.node_name or f"{socket.gethostname()}-{os.getpid()}")
            self.bus = cluster.open_bus(settings)
        else:
            self.name = ""
            self.bus = MemoryBus()
        self.runs = settings.runs
        self.lag: cluster.StreamLag | None = None
        self.history_feeder: cluster.HistoryFeeder | None = None
        self.follower: cluster.LatestFollower | None = None
        if not self.cluster or self.runs("history"):
            self.history = HistoryLog(
                settings.data_dir / "history",
                self.registry,
                fsync=settings.fsync,
                queue_batches=settings.history_queue,
                seal_after_s=settings.seal_after_s,
            )
            self.reader = HistoryReader(self.history)
            if self.cluster and settings.workers > 1:
                self.reader = cluster.ShardReader(self.reader, settings)
        else:
            self.history = cluster.StreamHistory(self.registry)
            self.reader = cluster.NoReader()
        if not self.cluster:
            self.ingestor = Ingestor(self.registry, self.history, self.bus, self.metrics,
                                     limits=Limits(max_age_s=settings.max_age_s),
                                     max_in_flight=settings.max_in_flight, clock=clock)
        elif self.runs("ingest") or self.runs("web"):  # web: field staff post positions
            self.lag = cluster.StreamLag(self.bus)
            self.ingestor = Ingestor(self.registry, self.history,
                                     cluster.IngestBus(self.bus, self.lag,
                                                       settings.max_stream_lag),
                                     self.metrics, limits=Limits(max_age_s=settings.max_age_s),
                                     max_in_flight=settings.max_in_flight, clock=clock)
        else:
            self.ingestor = cluster.NoIngest()
        self.detect = None
        if settings.detect:
            scenarios = load_scenarios(list(settings.scenario_dirs), kinds=pack.kinds)
            _warn_missing_departments(scenarios, pack)
            # A cluster node without the detect role keeps a passive engine: the operating
            # states and the scenario list for the API, no rules evaluated.
            self.detect = DetectEngine(self, scenarios, tick_s=settings.detect_tick_s,
                                       clock=clock,
                                       evaluate=not self.cluster or self.runs("detect"))
        self.act = None
        if settings.act:
            from cityops.act.side import ActSide

            # Every cluster node has the incident desk (moves made through its API); only act
            # nodes take alerts from the bus and run escalation.
            working = not self.cluster or self.runs("act")
            self.act = ActSide(self, notifier=notifier, intake=working, scheduler=working)
        from cityops.serve.side import ServeSide

        self.serve = ServeSide(self, notifier=notifier if self.act is None else None)
        self.dead_letters = None
        self.mqtt = None
        self.broker_sync = None
        self.started_at = 0.0
        self.registration_errors: list[tuple[int, str]] = []
        self._tasks: list[asyncio.Task] = []
        self.department_areas = {d.code: list(d.service_areas) for d in pack.departments}
        self._devices_version: str | None = None
        self._devices_checked = 0.0
        self._devices_lock = asyncio.Lock()
        self.registry_diverged = ""  # set when this node's device order left the store's

    def bus_for(self, component: str):
        """The bus as one component sees it. In cluster mode each component reads in a
        consumer group of its own: one per deployment where the work must be done once
        (detect and history split the partitions by worker, act nodes share the alerts), one
        per node where every node needs everything (live views, latest values)."""
        if not self.cluster:
            return self.bus
        if component in ("detect", "history"):
            return cluster.BusView(self.bus, component, cluster.owned_partitions(self.settings))
        if component == "act":
            return cluster.BusView(self.bus, cluster.ACT_GROUP)
        return cluster.BusView(self.bus, f"{component}-{self.name}")

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.loop_lag.start(self.settings.loop_stall_ms)
        await self.store.open()
        if self.cluster:
            await self._register_pack_devices_shared()
        else:
            self.registry.add(await self.store.load_devices())
            await self._register_pack_devices()
        snapshot = await self.store.load_latest()
        await asyncio.to_thread(self.history.open, snapshot)
        if self.cluster:
            await self.bus.start()
        self.metrics.devices.set_function(lambda: len(self.registry))
        self.metrics.watch_queue("history_writer", self.history.queue_depth)
        self.metrics.watch_queue("store_writer", self.store.queue_depth)
        self.metrics.watch_queue("ingest_in_flight", lambda: self.ingestor.in_flight)
        self.metrics.watch_queue("bus", lambda: sum(self.bus.depths().values()))
        if self.act is not None:
            await self.act.start()  # before detection, so no raised alert goes unheard
        if not self.cluster or self.runs("web"):
            await self.serve.start()
        if self.detect is not None:
            await self.detect.start()
        if self.cluster:
            await self._start_cluster_parts()
        if not self.cluster or self.runs("history"):
            self._tasks.append(asyncio.create_task(self._snapshot_loop(),
                                                   name="latest-snapshot"))
        from cityops.ingest.deadletters import DeadLetterSink

        st = self.settings
        capped = self.metrics.dead_letters_capped
        self.dead_letters = DeadLetterSink(
            self.store, per_source=st.dead_letters_per_source, window_s=st.dead_letters_window_s,
            retention_s=st.dead_letters_retention_s, sweep_every_s=st.dead_letters_sweep_s,
            on_capped=lambda letter: capped.labels(letter.source).inc())
        await self.dead_letters.start()
        if self.settings.mqtt_url and (not self.cluster or self.runs("ingest")):
            await self._start_broker_sync()
        self.metrics.watch_fields(self.metrics.dead_letters, lambda: self.dead_letters.stats)
        if self.settings.mqtt_url and (not self.cluster or self.runs("ingest")):
            from cityops.ingest.mqtt import MqttIntake

            if self.cluster:
                # Every ingest node subscribes in one shared group: the broker deals each
                # message to one of them. A named session lets a restarted node get back
                # what it had been sent and not yet acknowledged.
                topic = self.settings.mqtt_topic
                if not topic.startswith("$share/"):
                    topic = f"$share/{self.settings.mqtt_share}/{topic}"
                self.mqtt = MqttIntake(self.settings.mqtt_url,
                                       cluster.bus_unavailable_as_overload(self.ingestor.ingest),
                                       self.dead_letters, topic=topic,
                                       client_id=f"cityops-{self.name}", session_expiry_s=3600)
            else:
                self.mqtt = MqttIntake(self.settings.mqtt_url, self.ingestor.ingest,
                                       self.dead_letters, topic=self.settings.mqtt_topic)
            await self.mqtt.start()
            self.metrics.watch_fields(self.metrics.mqtt, lambda: self.mqtt.stats)
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

    async def _start_cluster_parts(self) -> None:
        if self.runs("history"):
            view = self.bus_for("history")
            await cluster.prepare_group(self.bus, cluster.HISTORY_GROUP, READINGS,
                                        view.partitions, from_start=True, rewind=True)
            self.history_feeder = cluster.HistoryFeeder(self, view)
            await self.history_feeder.start()
        elif self.runs("web") or self.runs("act"):
            self.follower = cluster.LatestFollower(self, self.bus_for("latest"))
            await self.follower.start()
        if self.lag is not None:
            self.lag.start()
        self._tasks.append(asyncio.create_task(self._follow_store(), name="follow-store"))

    async def stop(self) -> None:
        if self.broker_sync is not None:
            await self.broker_sync.stop()
        if self.mqtt is not None:
            await self.mqtt.stop()
        if self.detect is not None:
            await self.detect.stop()
        for part in (self.history_feeder, self.follower, self.lag):
            if part is not None:
                await part.stop()
        if not self.cluster or self.runs("web"):
            await self.serve.stop()
        if self.act is not None:
            await self.act.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.to_thread(self.history.close)
        # The newest segment stays WAL (no final compaction): replaying it at the next start
        # restores the dedup memory, so a client retrying its last batch is told "duplicate".
        await self.save_snapshot()
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
        if not self.cluster or self.runs("history"):
            checks["history"] = {"ok": depth < limit, "queue": depth, "limit": limit}
        if self.cluster:
            checks["bus"] = await self._bus_check()
        else:
            checks["bus"] = {"ok": self.bus.has_room(READINGS), "depths": self.bus.depths()}
        if self.registry_diverged:
            checks["registry"] = {"ok": False, "error": self.registry_diverged}
        if self.mqtt is not None:
            checks["mqtt"] = {"ok": bool(self.mqtt.connected),
                              "state": "connected" if self.mqtt.connected else "reconnecting"}
        return checks

    async def _bus_check(self) -> dict:
        bus = self.bus
        check = {"ok": bool(bus.healthy), "url": bus.url, "stream": bus.stream,
                 "connected": bus.connected, "in_flight": bus.in_flight,
                 "roles": list(self.settings.roles), "node": self.name}
        if check["ok"]:
            # Asked, like the store: a server that stopped answering can still hold the
            # connection open, and a publish that gave up leaves no trace in `healthy`.
            try:
                check["messages"] = await asyncio.wait_for(bus.stream_messages(), 2.0)
            except Exception as error:  # any failure to answer is "down"
                check["ok"] = False
                check["error"] = f"JetStream did not answer: {type(error).__name__}"
        if bus.last_error:
            check["last_error"] = bus.last_error
        if self.lag is not None:
            check["detect_lag"] = self.lag.messages if self.lag.known else None
            check["max_lag"] = self.settings.max_stream_lag
        subs = {f"{s.subject}/{s.group}": s.depth() for subs in bus._subs.values()  # noqa: SLF001
                for s in subs}
        if subs:
            check["backlog"] = subs
        return check

    async def _register_pack_devices_shared(self) -> None:
        """Cluster mode: the pack's devices the store lacks are registered there, and the
        registry is then read back in the store's order, which is every node's order (the
        store serialises registrations), so a device index on the stream means the same
        device in every process."""
        known = {d.id for d in await self.store.load_devices()}
        new = [d for d in self.pack.devices if d.id not in known]
        if new:
            resolved, errors = self.city.resolve_devices(new)
            for index, message in errors:
                log.warning("pack device %s not registered: %s", new[index].id, message)
            self.registration_errors = errors
            await self.store.upsert_devices(resolved)
        self._devices_version = await self.store.get_meta(DEVICES_VERSION)
        self.registry.add(await self.store.load_devices())

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
            self.registry.add(devices[n:])
            self._devices_checked = time.monotonic()
            return len(devices) - n

    async def ensure_devices(self, batch) -> None:
        """A batch from the stream may name a device registered elsewhere a moment ago."""
        if len(batch) and int(batch.device.max()) >= len(self.registry) \
                and time.monotonic() - self._devices_checked > 0.5:
            await self.reload_devices()

    async def _follow_store(self) -> None:
        """What other nodes change in the store and this one must see: operating states (set
        through any web node) and newly registered devices."""
        while True:
            await asyncio.sleep(min(self.settings.snapshot_every_s, 2.0))
            try:
                version = await self.store.get_meta(DEVICES_VERSION)
                if version != self._devices_version:
                    self._devices_version = version
                    await self.reload_devices()
                if self.detect is not None:
                    states = await self.store.load_area_states()
                    for code, state in states.items():
                        if self.detect.area_states.get(code) != state:
                            self.detect.set_area_state(code, state)
            except Exception as exc:  # the store is down: readiness says so; try again
                log.warning("following the store failed: %s", exc)

    async def _register_pack_devices(self) -> None:
        """Devices of the pack not yet in the store are registered: areas and cell resolved
        once, here, never per reading."""
        new = [d for d in self.pack.devices if d.id not in self.registry.index]
        if not new:
            return
        resolved, errors = self.city.resolve_devices(new)
        for index, message in errors:
            log.warning("pack device %s not registered: %s", new[index].id, message)
        self.registration_errors = errors
        await self.store.upsert_devices(resolved)
        self.registry.add(resolved)

    async def register_devices(self, devices) -> list:
        resolved = [self.city.resolve_device(d) for d in devices]
        for device in resolved:
            self.registry.kind(device.kind)
        await self.store.upsert_devices(resolved)
        if self.cluster:
            # Indices come from the store's order, never from this node's own count; the
            # version tells the other nodes to read the new devices too.
            await self.store.set_meta(DEVICES_VERSION, uuid.uuid4().hex)
            await self.reload_devices()
            for device in resolved:
                self.registry.add([device])  # content of an existing device may have changed
        else:
            self.registry.add(resolved)
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


DEVICES_VERSION = "devices.version"


def _safe_name(name: str) -> str:
    """A node name usable in consumer and MQTT client names."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:60] or "node"


def _warn_missing_departments(scenarios, pack: CityPack) -> None:
    """A scenario may name a department this city does not have; its work then falls to the
    local authority of the place (act side), so this is worth a warning, not a refusal."""
    have = {d.code for d in pack.departments}
    for scenario in scenarios:
        missing = sorted(set(scenario.departments) - have)
        if missing:
            log.warning("scenario %s names departments this city lacks: %s", scenario.name,
                        ", ".join(missing))
