"""Photos citizens take of a problem they report: who owns each one, and which cases it was
filed with, so that it is shown to the citizen who took it and to the staff who may see one of
those cases, and to nobody else.

A photo is a record of kind `citizen.photo` (id: its file name, owner: the citizen's id); the
image itself lies in the node's data folder (see `file_of`). Its URL is what the report sends
as Open311 `media_url`, and Open311 requests are public: so the URL says nothing about who took
it (the name is a digest of the citizen's id and the image, not guessable from either alone,
and in an alphabet with no 0, 1, 8 or 9, so no part of it is ever masked as a phone number).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from cityops.store.base import Record
from cityops.store.owned import OwnedRecords
from cityops.store.update import RecordDecision, UpdateGaveUp, update_record

KIND = "citizen.photo"
PATH = "/api/v1/citizen-photos/"
NAME = re.compile(r"^[a-z2-7]{26}\.(jpg|png|webp)$")
# Photos are small but not free: a key that sends more than this in a day is stopped.
MAX_PER_DAY = 20
DAY_S = 86400.0
RETRIES = 8


class Photo(msgspec.Struct, kw_only=True, omit_defaults=True):
    type: str
    bytes: int
    incidents: list[str] = []


class NotYours(ValueError):
    """A media_url naming a photo kept here that the poster did not take (or none at all)."""


def name_for(owner: str, body: bytes, ext: str) -> str:
    """The same photo sent twice by one citizen (a retry) gets the same name."""
    digest = hashlib.sha256(owner.encode() + b"\0" + body).digest()
    return f"{base64.b32encode(digest).decode().lower()[:26]}.{ext}"


def file_of(data_dir: Path, name: str) -> Path:
    # Spread over subfolders: a city's worth of photos in one folder lists slowly.
    return data_dir / "citizen-photos" / name[:2] / name


def name_in(url: str) -> str | None:
    """The photo a media_url names if it is one of ours ("" for our path with a name that
    cannot be one), None for any other URL. The host is not compared: behind a proxy the
    public host is not the one this node sees."""
    path = urlsplit(url).path
    if not path.startswith(PATH):
        return None
    name = path[len(PATH):]
    return name if NAME.match(name) else ""


class ReportPhotos(OwnedRecords[Photo]):
    kind = KIND
    doc_type = Photo

    async def sent_today(self, owner: str) -> int:
        since = self.now() - DAY_S
        recent = await self.store.find_records(KIND, owner=owner, limit=MAX_PER_DAY + 1)
        return sum(1 for rec in recent if rec.created >= since)

    async def claim(self, url: str, owner: str) -> str | None:
        """The name of the photo a report's media_url names, if it is one of ours; refused
        unless the poster took it, so a report cannot show a stranger's photo to the staff of
        its case."""
        name = name_in(url)
        if name is None:
            return None
        found = await self.get(name) if name else None
        if found is None or not owner or found[0] != owner:
            raise NotYours("media_url names no photo of this key's citizen: upload it with "
                           "POST /api/v1/citizens/me/photos and send the url answered")
        return name

    async def attach(self, name: str, incident_id: str) -> bool:
        """Record that the photo was filed with a case; False if that could not be saved."""
        def step(rec: Record | None) -> RecordDecision[bool]:
            if rec is None:
                return None, False
            photo = msgspec.json.decode(rec.doc, type=Photo)
            if incident_id in photo.incidents:
                return None, True
            photo.incidents.append(incident_id)
            return msgspec.structs.replace(
                rec, doc=msgspec.json.encode(photo), updated=self.now()), True

        try:
            return await update_record(self.store, KIND, name, step, tries=RETRIES)
        except UpdateGaveUp:
            return False
