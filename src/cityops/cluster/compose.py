"""A cluster node's services: the same parts a single node has, composed over NATS JetStream
and the shared store, each built as the node's roles need it (docs/deploy.md):

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
import logging
import os
import re
import socket
import uuid
from typing import TYPE_CHECKING, Any

from cityops.bus.subjects import READINGS
from cityops.cluster.act import ClaimingStore, SteadyIntake, prepare_alerts
from cityops.cluster.bus import BusView, open_bus, prepare_group
from cityops.cluster.history import (
    HistoryFeeder,
    LatestFollower,
    NoReader,
    ShardReader,
    StreamHistory,
)
from cityops.cluster.ingest import IngestBus, NoIngest, StreamLag, bus_unavailable_as_overload
from cityops.cluster.roles import ACT_GROUP, HISTORY_GROUP
from cityops.cluster.routing import owned_partitions
from cityops.detect.silences import SilenceBook, registry_kinds
from cityops.domain.city import CityPack
from cityops.history.log import HistoryLog
from cityops.history.query import HistoryReader
from cityops.ingest.pipeline import Ingestor
from cityops.ingest.validate import Limits
from cityops.services import DEVICES_VERSION, Clock, Services, base_parts
from cityops.store.base import Store
from cityops.settings import Settings

if TYPE_CHECKING:
    from cityops.act.desk import IncidentDesk
    from cityops.act.intake import AlertIntake
    from cityops.domain.city import Device
    from cityops.ingest.mqtt import MqttIntake
    from cityops.node import Node

log = logging.getLogger(__name__)


def compose_cluster(pack: CityPack, settings: Settings, clock: Clock) -> Services:
    if not 0 <= settings.worker < settings.workers <= settings.partitions:
        raise ValueError(f"--worker {settings.worker} --workers {settings.workers}: "
                         f"need 0 <= worker < workers <= partitions "
                         f"({settings.partitions})")
    metrics, city, registry, store, keys = base_parts(pack, settings, clock)
    name = _safe_name(settings.node_name or f"{socket.gethostname()}-{os.getpid()}")
    bus = open_bus(settings)
    history: HistoryLog | StreamHistory
    reader: HistoryReader | ShardReader | NoReader
    if settings.runs("history"):
        history = HistoryLog(settings.data_dir / "history", registry, fsync=settings.fsync,
                             queue_batches=settings.history_queue,
                             seal_after_s=settings.seal_after_s)
        reader = HistoryReader(history)
        if settings.workers > 1:
            reader = ShardReader(reader, settings)
    else:
        history = StreamHistory(registry)
        reader = NoReader()
    lag = None
    ingestor: Ingestor | NoIngest
    if settings.runs("ingest") or settings.runs("web"):  # web: field staff post positions
        lag = StreamLag(bus)
        ingestor = Ingestor(registry, history, IngestBus(bus, lag, settings.max_stream_lag),
                            metrics, limits=Limits(max_age_s=settings.max_age_s),
                            max_in_flight=settings.max_in_flight, clock=clock)
    else:
        ingestor = NoIngest()

    def views(component: str) -> BusView:
        # Each component reads in a consumer group of its own: one per deployment where the
        # work must be done once (detect and history split the partitions by worker, act
        # nodes share the alerts), one per node where every node needs everything (live
        # views, latest values).
        if component in ("detect", "history"):
            return BusView(bus, component, owned_partitions(settings))
        if component == "act":
            return BusView(bus, ACT_GROUP)
        return BusView(bus, f"{component}-{name}")

    return Services(pack=pack, settings=settings, clock=clock, metrics=metrics, city=city,
                    registry=registry, store=store, keys=keys, bus=bus, history=history,
                    reader=reader, ingestor=ingestor, name=name, views=views,
                    wiring=ClusterWiring(lag),
                    silences=SilenceBook(store, clock, registry_kinds(registry)))


class ClusterWiring:
    """The lifecycle of a cluster node: devices in the store's order, the bus connected, the
    stream followed into the history or the latest values, the store followed for what other
    nodes change."""

    clustered = True

    def __init__(self, lag: StreamLag | None) -> None:
        self.lag = lag
        self.history_feeder: HistoryFeeder | None = None
        self.follower: LatestFollower | None = None

    async def register_pack_devices(self, node: Node) -> None:
        """The pack's devices the store lacks are registered there, and the registry is then
        read back in the store's order, which is every node's order (the store serialises
        registrations), so a device index on the stream means the same device in every
        process."""
        known = {d.id for d in await node.store.load_devices()}
        new = [d for d in node.pack.devices if d.id not in known]
        if new:
            resolved, errors = node.city.resolve_devices(new)
            for index, message in errors:
                log.warning("pack device %s not registered: %s", new[index].id, message)
            node.registration_errors = errors
            await node.store.upsert_devices(resolved)
        node.devices_version = await node.store.get_meta(DEVICES_VERSION)
        node.registry.add(await node.store.load_devices())

    async def connect(self, node: Node) -> None:
        bus: Any = node.bus  # NATS: the Bus protocol has no connecting step
        await bus.start()

    async def start_parts(self, node: Node) -> None:
        if node.runs("history"):
            view = node.bus_for("history")
            await prepare_group(node.bus, HISTORY_GROUP, READINGS, view.partitions,
                                from_start=True, rewind=True)
            self.history_feeder = HistoryFeeder(node, view)
            await self.history_feeder.start()
        elif node.runs("web") or node.runs("act"):
            self.follower = LatestFollower(node, node.bus_for("latest"))
            await self.follower.start()
        if self.lag is not None:
            self.lag.start()
        node.keep_task(_follow_store(node), "follow-store")

    async def stop_parts(self) -> None:
        for part in (self.history_feeder, self.follower, self.lag):
            if part is not None:
                await part.stop()

    async def bus_check(self, node: Node) -> dict[str, Any]:
        bus: Any = node.bus
        check = {"ok": bool(bus.healthy), "url": bus.url, "stream": bus.stream,
                 "connected": bus.connected, "in_flight": bus.in_flight,
                 "roles": list(node.settings.roles), "node": node.name}
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
            check["max_lag"] = node.settings.max_stream_lag
        subs = {f"{s.subject}/{s.group}": s.depth() for subs in bus._subs.values()  # noqa: SLF001
                for s in subs}
        if subs:
            check["backlog"] = subs
        return check

    async def devices_registered(self, node: Node, devices: list[Device]) -> None:
        # Indices come from the store's order, never from this node's own count; the version
        # tells the other nodes to read the new devices too.
        await node.store.set_meta(DEVICES_VERSION, uuid.uuid4().hex)
        await node.reload_devices()
        for device in devices:
            node.registry.add([device])  # content of an existing device may have changed

    def mqtt_intake(self, node: Node) -> MqttIntake:
        from cityops.ingest.mqtt import MqttIntake

        # Every ingest node subscribes in one shared group: the broker deals each message to
        # one of them. A named session lets a restarted node get back what it had been sent
        # and not yet acknowledged.
        settings = node.settings
        topic = settings.mqtt_topic
        if not topic.startswith("$share/"):
            topic = f"$share/{settings.mqtt_share}/{topic}"
        return MqttIntake(settings.mqtt_url, bus_unavailable_as_overload(node.ingestor.ingest),
                          node.dead_letters, topic=topic, client_id=f"cityops-{node.name}",
                          session_expiry_s=3600)

    def desk_store(self, store: Store, settings: Settings) -> Any:
        # A claim outlives a few ticks, so a node that dies holding cases delays them by at
        # most that long.
        return ClaimingStore(store, lease_s=max(6 * settings.escalate_tick_s, 10.0))

    def alert_intake(self, desk: IncidentDesk, view: Any) -> AlertIntake:
        return SteadyIntake(desk, view)

    async def prepare_alerts(self, view: Any) -> None:
        await prepare_alerts(view)


async def _follow_store(node: Node) -> None:
    """What other nodes change in the store and this one must see: operating states,
    grid-cell owners and the field staff roster (set through any web node) and newly
    registered devices."""
    while True:
        await asyncio.sleep(min(node.settings.snapshot_every_s, 2.0))
        try:
            version = await node.store.get_meta(DEVICES_VERSION)
            if version != node.devices_version:
                node.devices_version = version
                await node.reload_devices()
            await node.services.silences.refresh_if_changed()
            await node.cell_owners.refresh(node.store)
            await node.roster.refresh(node.store)
            if node.detect is not None:
                states = await node.store.load_area_states()
                for code, state in states.items():
                    if node.detect.area_states.get(code) != state:
                        node.detect.set_area_state(code, state)
        except Exception as exc:  # the store is down: readiness says so; try again
            log.warning("following the store failed: %s", exc)


def _safe_name(name: str) -> str:
    """A node name usable in consumer and MQTT client names."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:60] or "node"
