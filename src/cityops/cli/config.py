"""What a data directory remembers about its node (the store URL), so that `cityops keys`
finds the same store the server uses."""

from __future__ import annotations

from pathlib import Path

import msgspec

from cityops.settings import Settings

FILE = "cityops.json"


class DataConfig(msgspec.Struct):
    store_url: str


def remember(data_dir: Path, store_url: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / FILE).write_bytes(msgspec.json.encode(DataConfig(store_url)))


def store_url_for(data_dir: Path, explicit: str | None) -> str:
    if explicit:
        return explicit
    path = data_dir / FILE
    if path.exists():
        try:
            return msgspec.json.decode(path.read_bytes(), type=DataConfig).store_url
        except msgspec.MsgspecError as exc:
            raise ValueError(f"{path} is not a CityOps data config: {exc}") from None
    return Settings(data_dir=data_dir).resolved_store_url()
