"""One CityOps node: the city, the store, the history, the bus and the ingest pipeline, wired.

Data flows one way: sources -> ingest -> history (durable) -> bus -> consumers; the state store
sits beside it holding devices, keys, the latest values and dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from cityops.auth import KeyResolver
from cityops.bus.memory import MemoryBus
from cityops.detect.engine import DetectEngine
from cityops.domain.city import CityPack
from cityops.domain.geo import CityMap
from cityops.domain.registry import DeviceRegistry
from cityops.history.log import HistoryLog
from cityops.history.query import HistoryReader
from cityops.ingest.pipeline import Ingestor
from cityops.ingest.validate import Limits
from cityops.metrics import NodeMetrics
from cityops.scenarios.loader import load_scenarios
from cityops.settings import Settings
from cityops.store.base import open_store

log = logging.getLogger(__name__)


class Node:
    def __init__(self, pack: CityPack, settings: Settings, clock=time.time,
                 notifier=None) -> None:
        """`clock` is what the node takes for now (wall time; a replay passes its own);
        `notifier` overrides the one `settings.notify_url` names (one needing a secret)."""
        self.pack = pack
        self.clock = clock
        self.settings = settings
        self.metrics = NodeMetrics()
        self.city = CityMap.from_pack(pack)
        self.registry = DeviceRegistry(pack.kinds)
        self.store = open_store(settings.resolved_store_url())
        self.keys = KeyResolver(self.store)
        self.bus = MemoryBus()
        self.history = HistoryLog(
            settings.data_dir / "history",
            self.registry,
            fsync=settings.fsync,
            queue_batches=settings.history_queue,
            seal_after_s=settings.seal_after_s,
        )
        self.reader = HistoryReader(self.history)
        self.ingestor = Ingestor(self.registry, self.history, self.bus, self.metrics,
                                 limits=Limits(max_age_s=settings.max_age_s),
                                 max_in_flight=settings.max_in_flight, clock=clock)
        self.detect = None
        if settings.detect:
            scenarios = load_scenarios(list(settings.scenario_dirs), kinds=pack.kinds)
            _warn_missing_departments(scenarios, pack)
            self.detect = DetectEngine(self, scenarios, tick_s=settings.detect_tick_s,
                                       clock=clock)
        self.act = None
        if settings.act:
            from cityops.act.side import ActSide

            self.act = ActSide(self, notifier=notifier)
        from cityops.serve.side import ServeSide

        self.serve = ServeSide(self, notifier=notifier if self.act is None else None)
        self.dead_letters = None
        self.mqtt = None
        self.started_at = 0.0
        self.registration_errors: list[tuple[int, str]] = []
        self._tasks: list[asyncio.Task] = []
        self.department_areas = {d.code: list(d.service_areas) for d in pack.departments}

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        self.registry.add(await self.store.load_devices())
        await self._register_pack_devices()
        snapshot = await self.store.load_latest()
        await asyncio.to_thread(self.history.open, snapshot)
        self.metrics.devices.set_function(lambda: len(self.registry))
        self.metrics.watch_queue("history_writer", self.history.queue_depth)
        self.metrics.watch_queue("store_writer", self.store.queue_depth)
        self.metrics.watch_queue("ingest_in_flight", lambda: self.ingestor.in_flight)
        self.metrics.watch_queue("bus", lambda: sum(self.bus.depths().values()))
        if self.act is not None:
            await self.act.start()  # before detection, so no raised alert goes unheard
        await self.serve.start()
        if self.detect is not None:
            await self.detect.start()
        self._tasks.append(asyncio.create_task(self._snapshot_loop(), name="latest-snapshot"))
        from cityops.ingest.deadletters import DeadLetterSink

        self.dead_letters = DeadLetterSink(self.store)
        await self.dead_letters.start()
        self.metrics.watch_fields(self.metrics.dead_letters, lambda: self.dead_letters.stats)
        if self.settings.mqtt_url:
            from cityops.ingest.mqtt import MqttIntake

            self.mqtt = MqttIntake(self.settings.mqtt_url, self.ingestor.ingest, self.dead_letters,
                                   topic=self.settings.mqtt_topic)
            await self.mqtt.start()
            self.metrics.watch_fields(self.metrics.mqtt, lambda: self.mqtt.stats)
        self.started_at = time.time()

    async def stop(self) -> None:
        if self.mqtt is not None:
            await self.mqtt.stop()
        if self.detect is not None:
            await self.detect.stop()
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

    async def readiness(self) -> dict[str, dict]:
        """Each dependency with `ok` and what was seen; used by /readyz."""
        checks: dict[str, dict] = {}
        try:
            await asyncio.wait_for(self.store.get_meta("schema_version"), timeout=2.0)
            checks["store"] = {"ok": True, "queue": self.store.queue_depth()}
        except Exception as error:  # any failure to answer is "down", whatever its kind
            checks["store"] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:200]}
        depth, limit = self.history.queue_depth(), self.settings.history_queue
        checks["history"] = {"ok": depth < limit, "queue": depth, "limit": limit}
        checks["bus"] = {"ok": self.bus.has_room("readings"), "depths": self.bus.depths()}
        if self.mqtt is not None:
            checks["mqtt"] = {"ok": bool(self.mqtt.connected),
                              "state": "connected" if self.mqtt.connected else "reconnecting"}
        return checks

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
        self.registry.add(resolved)
        return resolved

    async def save_snapshot(self) -> None:
        rows, mark = self.history.take_dirty_latest()
        if len(rows) == 0 and mark < 0:
            return
        started = time.perf_counter()
        try:
            if len(rows):
                await self.store.save_latest(rows)
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
