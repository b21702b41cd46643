"""Personal data at rest: the node's data key and what is made from it.

China's PIPL counts ID numbers as sensitive personal information, and a phone number reaches the
person. Both are kept encrypted in the store (AES-256-GCM), so that a copied database file, a
backup or a replica shows neither; only a process holding the data key reads them.

- The key: 32 random bytes made at the first start, in a file of mode 0600 (`data.key` in the
  node's data directory unless a setting names another). Nodes that share a store (a
  PostgreSQL-backed cluster) must share the key file: a node with another key could not read
  what the others wrote, so it refuses to start (the store remembers which key it was written
  with, by an id derived from the key that reveals nothing of it).
- Two keys are derived from it (HKDF): one encrypts, one makes the keyed hashes (HMAC-SHA256)
  that look-ups use instead of a clear value. A registry lookup by ID number goes through the
  hash: equal numbers give equal hashes, and without the key a hash cannot be tested against a
  guessed number (the space of ID numbers is small enough that a plain hash could be).
- Records: the store hands every record's document through `seal_record` on the way in and
  `open_record` on the way out (`cityops.store.record_rows.Sealing`), so the serve side's
  services keep working with clear values and nothing they persist holds a phone or ID number
  in the clear: a field named like one (`phone`, `id_number`, `mobile` ...) is sealed whole, and
  so is any other text in which a phone- or ID-shaped number appears (a description, a note).
  A sealed value carries its masked form (`cityops.domain.sealed`), which staff views show.
- Stores written by older CityOps hold these values in the clear: `seal_at_rest` rewrites them
  once, at the first start with a data key (a marker in the store's meta says it was done).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cityops.domain import sealed
from cityops.domain.citizens import mask_id_number, mask_phone
from cityops.domain.privacy import field_kind, mask_text
from cityops.store.base import DuplicateKey, Record, Store
from cityops.store.update import RecordDecision, UpdateGaveUp, update_record

log = logging.getLogger(__name__)

KEY_FILE = "data.key"
_HEADER = "cityops-data-key-v1"
_AAD = b"cityops personal data v1"
# What the store's meta remembers: which key its sealed values were written with, and whether
# the values older CityOps kept in the clear have been sealed.
META_KEY_ID = "pii.key_id"
META_SEALED = "pii.sealed"
SEALED_VERSION = "1"
# Record kinds in which CityOps before the data key kept phone or ID numbers (in named fields
# or in text people typed): the ones `seal_at_rest` rewrites.
OLDER_KINDS = ("citizen", "hotline_order", "cabinet_item", "application", "submission",
               "open311.request", "review", "review_task", "benefit", "licence")
LEGACY_UNIQUE = "id:"  # the citizen registry's unique key before the keyed hash
PAGE = 500
RETRIES = 8

_json = msgspec.json.Encoder()
_any = msgspec.json.Decoder()
_DIGIT = re.compile(rb"\d")


class KeyFileError(ValueError):
    """The key file cannot be read or made (named, with what to do)."""


class WrongKey(RuntimeError):
    """A sealed value, or the store as a whole, was written with another data key."""


# -- the key file ----------------------------------------------------------------------------

def key_path(data_dir: Path, setting: Path | None = None) -> Path:
    return Path(setting) if setting else Path(data_dir) / KEY_FILE


def _write_new(path: Path) -> None:
    """Made aside and linked into place: two processes starting at once end up with the one
    key that was linked first, never with a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"{_HEADER} {base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_key(path: Path, *, create: bool = True) -> bytes:
    """The 32-byte data key in `path`, made there first when missing and `create`."""
    path = Path(path)
    try:
        if not path.exists():
            if not create:
                raise KeyFileError(f"data key file {path} does not exist")
            _write_new(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            # Group or others could read it: the key is only as private as its file.
            os.chmod(path, 0o600)
            log.warning("data key file %s had mode %o; set to 600", path, mode)
        text = path.read_text(encoding="ascii").strip()
    except KeyFileError:
        raise
    except (OSError, UnicodeDecodeError) as error:
        raise KeyFileError(f"data key file {path}: {error}") from None
    header, _, body = text.partition(" ")
    try:
        key = base64.urlsafe_b64decode(body.encode()) if header == _HEADER else b""
    except ValueError:
        key = b""
    if len(key) != 32:
        raise KeyFileError(f"{path} is not a CityOps data key file (expected one line "
                           f"'{_HEADER} <32 bytes in base64>')")
    return key


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


# -- the service -------------------------------------------------------------------------------

def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def normal_id_number(number: str) -> str:
    return number.strip().upper()


class Pii:
    """Seals and opens personal data with one data key; the store's record sealer."""

    def __init__(self, key: bytes, path: Path | None = None) -> None:
        if len(key) != 32:
            raise ValueError("a data key is 32 bytes")
        self.path = path
        self._aead = AESGCM(_derive(key, b"cityops pii encrypt v1"))
        self._mac = _derive(key, b"cityops pii lookup v1")
        # Names the key in the store's meta without revealing anything of it.
        self.key_id = hmac.new(_derive(key, b"cityops pii key id v1"), b"key id",
                               hashlib.sha256).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: Path, *, create: bool = True) -> Pii:
        return cls(load_key(path, create=create), path)

    # -- values

    def seal(self, value: str, kind: str | None = None) -> str:
        """`value` encrypted, carrying its masked form; `kind` "phone" or "id" for a whole
        phone or ID number, None for text that may hold some. Empty and sealed values are
        returned as they are."""
        if not value or sealed.is_sealed(value):
            return value
        masked = (mask_phone(value) if kind == "phone" else
                  mask_id_number(value) if kind == "id" else mask_text(value))
        nonce = secrets.token_bytes(12)
        box = self._aead.encrypt(nonce, value.encode(), _AAD)
        return sealed.make(_b64(nonce + box), masked)

    def open(self, value: str) -> str:
        """The clear value of a sealed one; anything else as it is (an older clear value)."""
        if not sealed.is_sealed(value):
            return value
        try:
            raw = _unb64(sealed.ciphertext_of(value))
            return self._aead.decrypt(raw[:12], raw[12:], _AAD).decode()
        except (InvalidTag, ValueError) as error:
            raise WrongKey("a personal data value does not open with this node's data key "
                           "(was the store written by a node with another key file?)"
                           ) from error

    def lookup(self, id_number: str) -> str:
        """The keyed hash an ID number is looked up by (the citizen registry's unique key)."""
        digest = hmac.new(self._mac, normal_id_number(id_number).encode(), hashlib.sha256)
        return "h1:" + digest.hexdigest()

    # -- documents

    def seal_data(self, value: Any, field: str = "") -> Any:
        """A copy of JSON-like data with identifying values sealed: fields named like a phone
        or ID number whole, other text when a phone- or ID-shaped number appears in it."""
        if isinstance(value, dict):
            return {k: self.seal_data(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.seal_data(v, field) for v in value]
        if isinstance(value, str) and value and not sealed.is_sealed(value):
            kind = field_kind(field) if field else None
            if kind is not None and any(ch.isdigit() for ch in value):
                return self.seal(value, kind)
            if mask_text(value) != value:
                return self.seal(value)
        return value

    def open_data(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.open_data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.open_data(v) for v in value]
        if isinstance(value, str):
            return self.open(value)
        return value

    # -- records (the store's sealer)

    def seal_record(self, rec: Record) -> Record:
        doc = bytes(rec.doc)
        if not _DIGIT.search(doc):
            return rec  # no digit at all: nothing a phone or ID number could be
        data = _any.decode(doc)
        done = self.seal_data(data)
        if done == data:
            return rec
        return msgspec.structs.replace(rec, doc=_json.encode(done))

    def open_record(self, rec: Record) -> Record:
        doc = bytes(rec.doc)
        if b'"' + sealed.PREFIX.encode() not in doc:
            return rec
        return msgspec.structs.replace(rec, doc=_json.encode(self.open_data(_any.decode(doc))))

    # -- the store

    async def check_store(self, store: Store) -> None:
        """Refuses a store whose sealed values were written with another key; a store without
        any is marked as this key's."""
        held = await store.get_meta(META_KEY_ID)
        if held is None:
            await store.set_meta(META_KEY_ID, self.key_id)
            held = await store.get_meta(META_KEY_ID)  # another node may have been first
        if held != self.key_id:
            where = f" ({self.path})" if self.path else ""
            raise WrongKey(f"the store was written with another data key than this node's"
                           f"{where}: every node sharing a store must use the same key file "
                           "(see docs/deploy.md)")


async def seal_at_rest(store: Store, pii: Pii, kinds: Iterable[str] = OLDER_KINDS) -> int:
    """Rewrites the records that older CityOps kept with clear phone or ID numbers, once per
    store; returns how many were rewritten. Each record is saved version-checked (a concurrent
    change is re-read and sealed in turn) and through the store's sealer, so running it twice,
    or on two nodes at once, changes nothing more."""
    await pii.check_store(store)
    if await store.get_meta(META_SEALED) == SEALED_VERSION:
        return 0
    rewritten = 0
    for kind in kinds:
        before: tuple[float, str] | None = None
        while True:
            page = await store.find_records(kind, limit=PAGE, before=before)
            for rec in page:
                rewritten += await _reseal(store, pii, rec)
            if len(page) < PAGE:
                break
            before = (page[-1].created, page[-1].id)
    await store.set_meta(META_SEALED, SEALED_VERSION)
    if rewritten:
        log.info("sealed the personal data of %d stored records", rewritten)
    return rewritten


async def _reseal(store: Store, pii: Pii, rec: Record | None) -> int:
    if rec is None:
        return 0

    def reseal(drop_legacy_unique: bool) -> Callable[[Record | None], RecordDecision[int]]:
        def step(held: Record | None) -> RecordDecision[int]:
            if held is None:
                return None, 0
            unique = held.unique
            if held.kind == "citizen" and unique and unique.startswith(LEGACY_UNIQUE):
                unique = None if drop_legacy_unique else pii.lookup(unique[len(LEGACY_UNIQUE):])
            # Read through the sealer the document is clear either way: whether it holds
            # anything to seal says whether it was stored clear (or sealed, which a second
            # pass redoes).
            if unique == held.unique and pii.seal_record(held) is held:
                return None, 0
            return msgspec.structs.replace(held, unique=unique), 1
        return step

    try:
        try:
            return await update_record(store, rec.kind, rec.id, reseal(False), tries=RETRIES)
        except DuplicateKey:
            # Only a registration by a node already on the keyed hash can clash: the same
            # person under a second account. The number itself must still go.
            log.warning("citizen %s shares its ID number with another account; its unique "
                        "key is dropped", rec.id)
            return await update_record(store, rec.kind, rec.id, reseal(True), tries=RETRIES)
    except UpdateGaveUp:
        raise RuntimeError(f"{rec.kind} {rec.id} kept changing while its personal data "
                           "was sealed") from None
