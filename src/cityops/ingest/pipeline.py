"""The ingest pipeline: validate -> durable append to history -> publish on the bus.

Every source (HTTP, MQTT, the simulator in-process) goes through `Ingestor.ingest`.
"""

from __future__ import annotations

import msgspec

from cityops.ingest.decode import Rejection


class IngestResult(msgspec.Struct):
    accepted: int  # stored (durably) or already stored (duplicates)
    duplicates: int  # readings whose (device, channel, ts) was already stored
    rejected: list[Rejection]


class Overloaded(Exception):
    """The node cannot take more now; answer 429/503 with Retry-After."""

    def __init__(self, reason: str, retry_after: float = 1.0, status: int = 503) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status
