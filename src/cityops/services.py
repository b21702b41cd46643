"""The parts a node is made of, as typed services, and how one process puts them together.

A node (`cityops.node.Node`) starts, stops and reports readiness over these services and
knows nothing of how they were chosen. What differs between one process and a cluster of
them is the composition: `compose_single` here, `cityops.cluster.compose.compose_cluster`
there. The few lifecycle steps that differ as well (how the pack's devices are registered,
the bus connected, the bus's health told, MQTT subscribed) are the `Wiring` the composer
hands over with the services.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cityops.act.intake import AlertIntake
from cityops.auth import KeyResolver
from cityops.bus.base import Bus
from cityops.bus.memory import MemoryBus
from cityops.bus.subjects import READINGS
from cityops.detect.silences import SilenceBook, registry_kinds
from cityops.domain.city import CityPack
from cityops.domain.geo import CityMap
from cityops.domain.registry import DeviceRegistry
from cityops.history.log import HistoryLog
from cityops.history.query import HistoryReader
from cityops.ingest.pipeline import Ingestor
from cityops.ingest.validate import Limits
from cityops.metrics import NodeMetrics
from cityops.settings import Settings
from cityops.store.base import Store, open_store

if TYPE_CHECKING:
    from cityops.act.desk import IncidentDesk
    from cityops.cluster.history import NoReader, ShardReader, StreamHistory
    from cityops.cluster.ingest import NoIngest
    from cityops.domain.city import Device
    from cityops.ingest.mqtt import MqttIntake
    from cityops.node import Node

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# Store meta key whose change tells cluster nodes that devices were registered elsewhere.
DEVICES_VERSION = "devices.version"


class Wiring(Protocol):
    """The lifecycle steps one composition does its own way; each is given the node whose
    services it composed."""

    clustered: bool

    async def register_pack_devices(self, node: Node) -> None: ...

    async def connect(self, node: Node) -> None: ...

    async def start_parts(self, node: Node) -> None: ...

    async def stop_parts(self) -> None: ...

    async def bus_check(self, node: Node) -> dict[str, Any]: ...

    async def devices_registered(self, node: Node, devices: list[Device]) -> None: ...

    def mqtt_intake(self, node: Node) -> MqttIntake: ...

    def desk_store(self, store: Store, settings: Settings) -> Any: ...

    def alert_intake(self, desk: IncidentDesk, view: Any) -> AlertIntake: ...

    async def prepare_alerts(self, view: Any) -> None: ...


@dataclass(frozen=True, eq=False)
class Services:
    """The services of one node, composed once; the detection engine and the act and serve
    sides are built over them by the node."""

    pack: CityPack
    settings: Settings
    clock: Clock
    metrics: NodeMetrics
    city: CityMap
    registry: DeviceRegistry
    store: Store
    keys: KeyResolver
    bus: Bus
    history: HistoryLog | StreamHistory
    reader: HistoryReader | ShardReader | NoReader
    ingestor: Ingestor | NoIngest
    name: str
    views: Callable[[str], Any]  # the bus as one component sees it (see Node.bus_for)
    wiring: Wiring
    silences: SilenceBook  # the silences in force, for the detect engine (detect/silences.py)

    def runs(self, role: str) -> bool:
        return self.settings.runs(role)


def base_parts(pack: CityPack, settings: Settings, clock: Clock
               ) -> tuple[NodeMetrics, CityMap, DeviceRegistry, Store, KeyResolver]:
    """What every composition has alike: figures, the city, the registry, store and keys."""
    store = open_store(settings.resolved_store_url())
    return (NodeMetrics(), CityMap.from_pack(pack), DeviceRegistry(pack.kinds), store,
            KeyResolver(store))


def compose_single(pack: CityPack, settings: Settings, clock: Clock) -> Services:
    """One process holding every part: an in-process bus, the history log written here."""
    if settings.roles != ["all"]:
        raise ValueError("roles other than all need a bus between the nodes (--bus nats://...)")
    metrics, city, registry, store, keys = base_parts(pack, settings, clock)
    bus = MemoryBus()
    history = HistoryLog(settings.data_dir / "history", registry, fsync=settings.fsync,
                         queue_batches=settings.history_queue,
                         seal_after_s=settings.seal_after_s)
    ingestor = Ingestor(registry, history, bus, metrics,
                        limits=Limits(max_age_s=settings.max_age_s),
                        max_in_flight=settings.max_in_flight, clock=clock)
    return Services(pack=pack, settings=settings, clock=clock, metrics=metrics, city=city,
                    registry=registry, store=store, keys=keys, bus=bus, history=history,
                    reader=HistoryReader(history), ingestor=ingestor, name="",
                    views=lambda component: bus, wiring=SingleWiring(),
                    silences=SilenceBook(store, clock, registry_kinds(registry)))


class SingleWiring:
    """One process: the store's devices are this node's; nothing to connect or follow."""

    clustered = False

    async def register_pack_devices(self, node: Node) -> None:
        """Devices of the pack not yet in the store are registered: areas and cell resolved
        once, here, never per reading."""
        node.registry.add(await node.store.load_devices())
        new = [d for d in node.pack.devices if d.id not in node.registry.index]
        if not new:
            return
        resolved, errors = node.city.resolve_devices(new)
        for index, message in errors:
            log.warning("pack device %s not registered: %s", new[index].id, message)
        node.registration_errors = errors
        await node.store.upsert_devices(resolved)
        node.registry.add(resolved)

    async def connect(self, node: Node) -> None:
        pass

    async def start_parts(self, node: Node) -> None:
        pass

    async def stop_parts(self) -> None:
        pass

    async def bus_check(self, node: Node) -> dict[str, Any]:
        return {"ok": node.bus.has_room(READINGS), "depths": node.bus.depths()}

    async def devices_registered(self, node: Node, devices: list[Device]) -> None:
        node.registry.add(devices)

    def mqtt_intake(self, node: Node) -> MqttIntake:
        from cityops.ingest.mqtt import MqttIntake

        return MqttIntake(node.settings.mqtt_url, node.ingestor.ingest, node.dead_letters,
                          topic=node.settings.mqtt_topic)

    def desk_store(self, store: Store, settings: Settings) -> Any:
        return store

    def alert_intake(self, desk: IncidentDesk, view: Any) -> AlertIntake:
        return AlertIntake(desk, view)

    async def prepare_alerts(self, view: Any) -> None:
        pass
