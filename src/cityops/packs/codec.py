"""Reading and writing the text formats of a pack (YAML, JSON, JSON lines), with errors that
say which file, which line or record, and which field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml

from cityops.packs.errors import PackError

T = TypeVar("T")

_AT_PATH = re.compile(r"^(?P<what>.*) - at `\$(?P<path>[^`]*)`$", re.S)
_MISSING = re.compile(
    r"^Object missing required field `(?P<field>[^`]+)`(?: - at `\$(?P<path>[^`]*)`)?$"
)


def describe(error: msgspec.ValidationError) -> str:
    """msgspec's "Expected `float`, got `str` - at `$.lat`" as "field 'lat': expected float,
    got str", the way the rest of the pack messages read."""
    text = str(error)
    missing = _MISSING.match(text)
    if missing:
        where = (missing["path"] or "").lstrip(".")
        field = f"{where}.{missing['field']}" if where else missing["field"]
        return f"field '{field}' is missing"
    at_path = _AT_PATH.match(text)
    if at_path:
        what = at_path["what"].replace("`", "")
        return f"field '{at_path['path'].lstrip('.')}': {what[0].lower()}{what[1:]}"
    return text.replace("`", "")


def read_bytes(folder: Path, name: str, *, required: bool) -> bytes | None:
    path = folder / name
    if not path.exists():
        if required:
            raise PackError(f"{name}: missing; every city pack has one (see docs/city-packs.md)")
        return None
    if not path.is_file():
        raise PackError(f"{name}: is not a file")
    return path.read_bytes()


def load_yaml(data: bytes, name: str) -> Any:
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PackError(f"{name}: {where}not valid YAML: {problem}") from None


def dump_yaml(obj: Any) -> bytes:
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=100).encode()


def convert(obj: Any, kind: type[T], where: str) -> T:
    """A YAML/JSON value as `kind`; `where` prefixes the message, e.g. "city.yaml"."""
    try:
        return msgspec.convert(obj, kind)
    except msgspec.ValidationError as exc:
        raise PackError(f"{where}: {describe(exc)}") from None


def decode_json(data: bytes, name: str) -> Any:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise PackError(f"{name}: not valid JSON: {exc}") from None


def read_jsonl(data: bytes, kind: type[T], name: str) -> list[T]:
    """One `kind` per non-blank line. Decodes the whole file in one call (tens of thousands of
    lines in milliseconds) and only walks line by line to explain a failure."""
    lines = [line for line in data.splitlines() if line.strip()]
    if not lines:
        return []
    try:
        items = msgspec.json.decode(b"[" + b",".join(lines) + b"]", type=list[kind])
        if len(items) == len(lines):
            return items
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    decoder = msgspec.json.Decoder(kind)
    items = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(decoder.decode(line))
        except msgspec.ValidationError as exc:
            raise PackError(f"{name}: line {number}: {describe(exc)}") from None
        except msgspec.DecodeError as exc:
            raise PackError(f"{name}: line {number}: not valid JSON: {exc}") from None
    return items


_encoder = msgspec.json.Encoder()


def write_jsonl(items: list[Any]) -> bytes:
    buffer = bytearray()
    for item in items:
        _encoder.encode_into(item, buffer, len(buffer))
        buffer.extend(b"\n")
    return bytes(buffer)


def encode_json(obj: Any) -> bytes:
    return _encoder.encode(obj) + b"\n"


def line_of(name: str, index: int) -> str:
    """How messages point at the index-th record of a JSON-lines file (lines count from 1)."""
    return f"{name}: line {index + 1}"
