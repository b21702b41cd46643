"""Evidence photos of work orders: which order each one was taken for and who uploaded it, so
that a case's evidence can only name photos kept here that the caller may see.

A photo is a record of kind `order.photo` (id: its file name, owner: who uploaded it); the image
lies in the node's data folder beside the order's other photos (see `file_of`). Its id is what
reports and `finish` cite in `photos`; what the case keeps is the photo's path on this node, so
every reader fetches it from here and nowhere else.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import msgspec

from cityops.domain.access import Principal, Role
from cityops.store.owned import OwnedRecords

KIND = "order.photo"
NAME = re.compile(r"^[0-9a-f]{24}\.(jpg|png|webp)$")
PATTERN = NAME.pattern
ORDER = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
MAX_PER_ORDER = 20


class OrderPhoto(msgspec.Struct, kw_only=True, omit_defaults=True):
    order: str
    type: str
    bytes: int


def name_for(order_id: str, body: bytes, ext: str) -> str:
    """The same photo sent again for one order (a retry) gets the same name; sent for another
    order it is another photo, with its own record."""
    digest = hashlib.sha256(order_id.encode() + b"\0" + body).hexdigest()
    return f"{digest[:24]}.{ext}"


def folder_of(data_dir: Path, order_id: str) -> Path:
    return data_dir / "photos" / order_id


def path_of(order_id: str, name: str) -> str:
    """Where the photo is served on this node, relative to its base."""
    return f"/api/v1/work-orders/{order_id}/photos/{name}"


def uploader(who: Principal) -> str:
    """Who a photo belongs to: the person behind a field key (any of their keys), else the key."""
    if who.role is Role.FIELD and who.name:
        return f"staff:{who.name}"
    return f"key:{who.key_id}"


class EvidencePhotos(OwnedRecords[OrderPhoto]):
    kind = KIND
    doc_type = OrderPhoto
    name = NAME
