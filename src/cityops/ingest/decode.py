"""Wire format of readings and their decoding, with errors reported per element.

A batch is decoded strictly in one msgspec call first (the fast path). Only when that fails is
the body decoded element by element, so one bad reading costs its own rejection and never the
batch: the good ones are kept and the bad one is reported with its index.

JSON nested deeper than the decoder's recursion limit (anywhere: the batch itself, or a field
no reading uses, which is skipped but still parsed) makes msgspec raise RecursionError. It is
caught only where a decode fails anyway, so the common batch pays nothing for it: a JSON body
nested that deep is refused whole (400), an NDJSON line by its line number.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

AwareDatetime = Annotated[dt.datetime, msgspec.Meta(tz=True)]


class Reading(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """One reading as devices send it.

    `ts` is an RFC 3339 timestamp with a zone (`2024-05-26T23:10:00Z`) or a number of seconds
    since the Unix epoch. `value` reports the kind's primary channel; `values` reports several
    channels by name (`{"pm25": 12, "pm10": 30}`, or `{"lat": .., "lon": ..}` for movers).
    """

    device_id: str
    ts: AwareDatetime | float
    value: float | None = None
    values: dict[str, float] | None = None


class Rejection(msgspec.Struct, frozen=True):
    index: int
    error: str


class BodyError(ValueError):
    """The body as a whole cannot be read (not JSON, not an array or object)."""


TOO_DEEP = "nested too deeply"
_FAILED = (msgspec.MsgspecError, RecursionError)


def _too_deep(where: str) -> BodyError:
    return BodyError(f"{where} is {TOO_DEEP} (JSON nested beyond the decoder's limit)")


_batch = msgspec.json.Decoder(list[Reading])
_one = msgspec.json.Decoder(Reading)
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


def _explain(exc: msgspec.MsgspecError) -> str:
    # msgspec paths read `$[3].value` for the batch; the index is reported separately.
    return str(exc).replace("JSON is malformed: ", "malformed JSON: ")


def _reason(exc: Exception) -> str:
    if isinstance(exc, msgspec.MsgspecError):
        return _explain(exc)
    return f"the reading is {TOO_DEEP}"


def decode_array(body: bytes) -> tuple[list[tuple[int, Reading]], list[Rejection]]:
    """Decode a JSON array of readings (or a single reading object)."""
    head = body.lstrip()[:1]
    if head == b"{":
        try:
            return [(0, _one.decode(body))], []
        except msgspec.ValidationError as exc:
            return [], [Rejection(0, _explain(exc))]
        except msgspec.DecodeError as exc:
            raise BodyError(f"body is not valid JSON ({_explain(exc)})") from None
        except RecursionError:
            raise _too_deep("the body") from None
    try:
        return list(enumerate(_batch.decode(body))), []
    except _FAILED:
        pass
    try:
        items = _raw_list.decode(body)
    except RecursionError:
        raise _too_deep("the body") from None
    except msgspec.MsgspecError as exc:
        raise BodyError(
            f"body is not a JSON array of readings or a reading object ({_explain(exc)})"
        ) from None
    return _decode_each(items)


def decode_ndjson(body: bytes) -> tuple[list[tuple[int, Reading]], list[Rejection]]:
    """Decode newline-delimited JSON, one reading per line; the index is the line number."""
    lines = body.split(b"\n")
    good: list[tuple[int, Reading]] = []
    bad: list[Rejection] = []
    # Fast path: splice the lines into one array for a single decoder call.
    stripped = [line for line in lines if line.strip()]
    if len(stripped) == len(lines) or len(stripped) == len(lines) - 1 and not lines[-1].strip():
        try:
            readings = _batch.decode(b"[" + b",".join(stripped) + b"]")
            return list(enumerate(readings)), []
        except _FAILED:
            pass
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            good.append((i, _one.decode(line)))
        except _FAILED as exc:
            bad.append(Rejection(i, _reason(exc)))
    return good, bad


def _decode_each(items: list[msgspec.Raw]) -> tuple[list[tuple[int, Reading]], list[Rejection]]:
    good: list[tuple[int, Reading]] = []
    bad: list[Rejection] = []
    for i, raw in enumerate(items):
        try:
            good.append((i, _one.decode(raw)))
        except _FAILED as exc:
            bad.append(Rejection(i, _reason(exc)))
    return good, bad


def decode_body(body: bytes, content_type: str = "application/json"):
    """Decode by content type: NDJSON for `application/x-ndjson` (or `jsonl`), else JSON."""
    if "ndjson" in content_type or "jsonl" in content_type:
        return decode_ndjson(body)
    return decode_array(body)
