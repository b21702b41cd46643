"""The in-memory store: the same contract as the durable ones, kept in dicts, lost on exit."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from cityops.domain.city import Device
from cityops.store.base import ApiKeyRecord, DeadLetter, DuplicateKey, LatestRows

SCHEMA_VERSION = 1


class MemoryStore:
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._devices: dict[str, Device] = {}  # dicts keep first-insertion order
        self._keys: dict[str, ApiKeyRecord] = {}
        self._key_ids_by_hash: dict[str, str] = {}
        self._latest: dict[tuple[str, str], tuple[int, float]] = {}
        self._dead: list[DeadLetter] = []
        self._meta: dict[str, str] = {}

    async def open(self) -> None:
        self._meta.setdefault("schema_version", str(SCHEMA_VERSION))

    async def close(self) -> None:
        pass

    def queue_depth(self) -> int:
        return 0

    async def upsert_devices(self, devices: Sequence[Device]) -> None:
        for device in devices:
            self._devices[device.id] = device

    async def load_devices(self) -> list[Device]:
        return list(self._devices.values())

    async def add_key(self, record: ApiKeyRecord) -> None:
        if record.id in self._keys or record.hash in self._key_ids_by_hash:
            raise DuplicateKey(f"API key {record.id!r} clashes with a stored key")
        self._keys[record.id] = record
        self._key_ids_by_hash[record.hash] = record.id

    async def find_key(self, key_hash: str) -> ApiKeyRecord | None:
        key_id = self._key_ids_by_hash.get(key_hash)
        return None if key_id is None else self._keys[key_id]

    async def list_keys(self) -> list[ApiKeyRecord]:
        return list(self._keys.values())

    async def revoke_key(self, key_id: str) -> bool:
        record = self._keys.get(key_id)
        if record is None:
            return False
        self._keys[key_id] = msgspec.structs.replace(record, revoked=True)
        return True

    async def save_latest(self, rows: LatestRows) -> None:
        latest = self._latest
        for device_id, channel, ts_us, value in zip(
            rows.device_id, rows.channel, rows.ts_us, rows.value, strict=True
        ):
            key = (device_id, channel)
            stored = latest.get(key)
            if stored is None or ts_us > stored[0]:
                latest[key] = (int(ts_us), float(value))

    async def load_latest(self) -> LatestRows:
        keys = sorted(self._latest)  # sorting keys alone is much cheaper than whole items
        stored = [self._latest[key] for key in keys]
        return LatestRows(
            [device_id for device_id, _ in keys],
            [channel for _, channel in keys],
            [ts_us for ts_us, _ in stored],
            [value for _, value in stored],
        )

    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            self._dead.append(msgspec.structs.replace(letter, id=len(self._dead) + 1))

    async def list_dead_letters(
        self, *, limit: int = 100, before_id: int | None = None
    ) -> list[DeadLetter]:
        # ids are 1..n, so an id is also its position plus one
        end = len(self._dead) if before_id is None else max(0, min(before_id - 1, len(self._dead)))
        start = max(0, end - max(0, limit))
        return self._dead[start:end][::-1]

    async def count_dead_letters(self) -> int:
        return len(self._dead)

    async def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    async def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)
