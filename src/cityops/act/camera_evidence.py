"""Camera evidence on a case: the snapshot and clip of the video analytics event behind one of
its alerts (a Frigate event, see ingest/frigate_evidence.py).

Two kinds of record, through the store's records:

- `case.camera_evidence`, id the alert's id, owner the case's id: which camera event the alert
  came from, the clip's link on the NVR, and the snapshot once fetched (or why not yet: the
  attempts made and the last error). A case lists its evidence by owner.
- `camera.snapshot`, id the image's file name, owner the camera device: so that the image is
  served by this node (`GET /api/v1/camera-snapshots/{name}`) to keys that may see the camera
  or the case, and the camera registry shows each camera's newest.

The image lies in the node's data folder (`file_of`); the browser never talks to the NVR.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import msgspec

from cityops.store.owned import OwnedRecords
from cityops.store.record_rows import Record
from cityops.store.update import update_record

EVIDENCE = "case.camera_evidence"
SNAPSHOT = "camera.snapshot"
NAME = re.compile(r"^[0-9a-f]{24}\.jpg$")
PATH = "/api/v1/camera-snapshots/"
MAX_PER_CASE = 50  # listed with a case; a case of a hundred alerts keeps the first fifty


class CameraEvidence(msgspec.Struct, kw_only=True, omit_defaults=True):
    incident: str
    alert: str
    device: str
    event: str  # the CityOps camera event
    source: str = "frigate"
    source_event: str  # the NVR's event id
    camera: str  # the NVR's camera name
    zone: str = ""
    label: str = ""
    seen_at: float  # node time the event began
    clip_url: str = ""  # on the NVR: a link for staff on the city's network
    snapshot: str = ""  # the image's name here once fetched
    snapshot_bytes: int = 0
    attempts: int = 0
    error: str = ""  # the last failed attempt's
    fetched_at: float | None = None


class Snapshot(msgspec.Struct, kw_only=True, omit_defaults=True):
    device: str
    incident: str
    alert: str
    event: str
    taken_at: float
    bytes: int


def name_for(source_event: str, alert: str) -> str:
    digest = hashlib.sha256(source_event.encode() + b"\0" + alert.encode()).hexdigest()
    return f"{digest[:24]}.jpg"


def file_of(data_dir: Path, name: str) -> Path:
    return data_dir / "camera-snapshots" / name[:2] / name


def path_of(name: str) -> str:
    return PATH + name


class Snapshots(OwnedRecords[Snapshot]):
    kind = SNAPSHOT
    doc_type = Snapshot
    name = NAME

    async def newest(self, device: str) -> tuple[str, Snapshot] | None:
        found = await self.store.find_records(SNAPSHOT, owner=device, limit=1)
        if not found:
            return None
        return found[0].id, msgspec.json.decode(found[0].doc, type=Snapshot)


class EvidenceBook(OwnedRecords[CameraEvidence]):
    kind = EVIDENCE
    doc_type = CameraEvidence

    async def of_case(self, incident: str) -> list[CameraEvidence]:
        found = await self.store.find_records(EVIDENCE, owner=incident, limit=MAX_PER_CASE)
        items = [msgspec.json.decode(r.doc, type=CameraEvidence) for r in found]
        return sorted(items, key=lambda e: e.seen_at)

    async def change(self, alert: str, **fields: object) -> None:
        """Set fields of the alert's evidence (a fetch attempt's outcome)."""

        def decide(rec: Record | None) -> tuple[Record | None, None]:
            if rec is None:
                return None, None
            doc = msgspec.json.decode(rec.doc, type=CameraEvidence)
            doc = msgspec.structs.replace(doc, **fields)
            return msgspec.structs.replace(rec, doc=msgspec.json.encode(doc),
                                           updated=self.now()), None

        await update_record(self.store, EVIDENCE, alert, decide)
