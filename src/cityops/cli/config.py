"""What a data directory remembers about its node (the store URL), so that `cityops keys`
finds the same store the server uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import msgspec

from cityops.settings import Settings

if TYPE_CHECKING:
    from cityops.store.base import Store

T = TypeVar("T")

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


async def with_store(data: Path, store: str | None, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the node's store (from --store, or the one the data folder remembers), run `work`
    with it, close it; an unreachable or misnamed store is one readable line, no traceback."""
    from cityops.cli.errors import fail
    from cityops.store.base import open_store

    try:
        url = store_url_for(data, store)
        opened = open_store(url)
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        await opened.open()
    except Exception as exc:  # an unreachable server is a user-facing condition here
        raise fail(f"cannot open the store {url.split('@')[-1]}: {exc}") from None
    try:
        return await work(opened)
    finally:
        await opened.close()


def cli_actor(by: str | None = None) -> str:
    """Who a command acts as, for the audit trail: `--by` when given, else the login running
    it as "cli:<login>" (or "cli" where no user name is to be had, as in some containers)."""
    if by:
        return by
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # getpass raises KeyError or OSError without a passwd entry
        return "cli"
