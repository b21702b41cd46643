"""The shape every list-of-records pack file shares (categories.yaml, policies.yaml ...): a
YAML list, each item converted to its struct with the item named in any error, then the
whole list checked; and the default set bundled with CityOps."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

import msgspec

from cityops.packs.codec import describe, dump_yaml, load_yaml
from cityops.packs.errors import PackError

T = TypeVar("T")


def items_from_yaml(data: bytes, name: str, kind: type[T], *, noun: str, label: str,
                    check: Callable[[list[T]], None], errors: type[Exception]) -> list[T]:
    """`label` is the field that names an item in messages ("code", "id"); `check` raises
    `errors` on a list that does not hold together."""
    doc = load_yaml(data, name)
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise PackError(f"{name}: must be a list of {noun}s")
    out: list[T] = []
    for i, item in enumerate(doc):
        tag = item.get(label) if isinstance(item, dict) else None
        where = f"{name}: {noun} {i}" + (f" ({tag})" if isinstance(tag, str) else "")
        try:
            out.append(msgspec.convert(item, kind))
        except msgspec.ValidationError as error:
            raise PackError(f"{where}: {describe(error)}") from None
    try:
        check(out)
    except errors as error:
        raise PackError(f"{name}: {error}") from None
    return out


def items_to_yaml(items: list[Any]) -> bytes:
    return dump_yaml([msgspec.to_builtins(i) for i in items])


def bundled(name: str) -> tuple[bytes, str]:
    """A default data file shipped in this package, and the name to report errors under."""
    return resources.files("cityops.packs").joinpath(name).read_bytes(), f"cityops/packs/{name}"
