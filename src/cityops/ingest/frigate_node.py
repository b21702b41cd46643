"""The Frigate parts of a node, started and stopped with it: the mapping (read at start, so a
mistake in frigate.yaml stops the node with the file and field named), the intake on nodes
that take input (role ingest), and the evidence fetcher beside it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cityops.ingest.frigate import FrigateIntake
from cityops.ingest.frigate_evidence import FrigateEvidence
from cityops.packs.errors import PackError
from cityops.packs.frigate_file import FrigateMap, check_devices, load_frigate

if TYPE_CHECKING:
    from cityops.node import Node

log = logging.getLogger(__name__)


def load_mapping(node: Node) -> FrigateMap | None:
    path = node.settings.frigate_file
    if path is None:
        return None
    mapping = load_frigate(path)
    kinds = {d.id: d.kind for d in node.registry.devices}
    meta = {d.id: d.meta for d in node.registry.devices}
    errors, warnings = check_devices(mapping, kinds, meta, str(path))
    for warning in warnings:
        log.warning("%s", warning)
    if errors:
        raise PackError("; ".join(errors))
    return mapping


class FrigatePart:
    def __init__(self, node: Node, mapping: FrigateMap) -> None:
        st = node.settings
        url = st.frigate_mqtt_url or st.mqtt_url
        if not url:
            raise PackError(f"{st.frigate_file}: Frigate's events come over MQTT: give the "
                            f"broker Frigate publishes to (--frigate-mqtt or --mqtt)")
        self.intake = FrigateIntake(mapping, url, node.ingestor.ingest, node.dead_letters,
                                    node.clock, report_s=st.frigate_report_s)
        self.evidence = FrigateEvidence(
            self.intake, node.bus_for("frigate"), node.store, st.data_dir, node.clock,
            attempts=st.frigate_snapshot_attempts, retry_s=st.frigate_retry_s)

    async def start(self) -> None:
        await self.evidence.start()
        await self.intake.start()

    async def stop(self) -> None:
        await self.intake.stop()
        await self.evidence.stop()
