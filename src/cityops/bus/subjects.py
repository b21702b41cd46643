"""Every bus subject, declared once: its name, the message it carries, the codec that puts
that message on the wire, and how it is partitioned between processes.

Publishers and subscribers name subjects by the constants below, never by a string of their
own, so that a subject's type and wire format are found here and nowhere else. A subject
that is not declared has no codec, and a bus between processes refuses it.

Partitioning matters to the NATS bus only (the in-process bus has one queue per subscriber):
a subject keyed by device is split over the bus's partitions by a fixed hash of the device
index (`nats.partition_of`), so that the detect worker owning a partition sees every reading
of its devices; every other subject travels on one partition.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

from cityops.bus.codec import AlertEventsCodec, Codec, CodecError, ReadingBatchCodec, StructCodec
from cityops.bus.messages import IncidentChange
from cityops.domain.alerts import AlertEvent
from cityops.domain.readings import ReadingBatch


class Partitioning(enum.Enum):
    NONE = "none"
    BY_DEVICE = "device"


@dataclass(frozen=True, eq=False)
class Subject:
    name: str
    message: Any  # the type published: a class, or list[...] for a list of them
    make_codec: Callable[[], Codec]
    partitioning: Partitioning = Partitioning.NONE

    # Built on first use, once per process: a codec holds msgspec encoders and decoders.
    @cached_property
    def codec(self) -> Codec:
        return self.make_codec()


READINGS: Final = "readings"
REJECTIONS: Final = "rejections"  # readings of known devices refused for their value
ALERTS: Final = "alerts"
INCIDENTS: Final = "incidents"

SUBJECTS: Final[Mapping[str, Subject]] = {s.name: s for s in (
    Subject(READINGS, ReadingBatch, ReadingBatchCodec, Partitioning.BY_DEVICE),
    Subject(REJECTIONS, ReadingBatch, ReadingBatchCodec, Partitioning.BY_DEVICE),
    Subject(ALERTS, list[AlertEvent], AlertEventsCodec),
    Subject(INCIDENTS, IncidentChange, lambda: StructCodec(IncidentChange)),
)}

PARTITIONED: Final = frozenset(
    name for name, s in SUBJECTS.items() if s.partitioning is Partitioning.BY_DEVICE)


def subject(name: str) -> Subject:
    declared = SUBJECTS.get(name)
    if declared is None:
        raise CodecError(f"no wire codec: {name!r} is not a declared bus subject")
    return declared


def codec_for(name: str) -> Codec:
    return subject(name).codec


def encode(name: str, message: Any) -> bytes:
    return subject(name).codec.encode(message)


def decode(name: str, data: bytes | memoryview) -> Any:
    return subject(name).codec.decode(data)
