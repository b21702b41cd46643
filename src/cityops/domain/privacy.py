"""Masking what identifies a citizen wherever it may turn up: in free text (a report's
description, a log line) and in loosely shaped data (a report's `data`, a record written by
another part of the serve side).

Fields are recognised by name (anything naming a phone, a mobile or an ID number); free text
by shape: Chinese mobile numbers (with or without +86 and separators), Chinese landlines with
their area code, North American numbers as Open311 clients send them, and resident identity
card numbers (18 characters, or the old 15 digits). Shapes are chosen so that the numbers
CityOps itself prints (epoch seconds, 12-digit area codes, dates, device ids) stay readable.

A value sealed at rest (`cityops.domain.sealed`) is shown as the masked form it carries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from cityops.domain.citizens import mask_id_number, mask_phone
from cityops.domain.sealed import sealed_mask

_ID = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_CN_MOBILE = re.compile(r"(?<![\d.])(\+?86[\s-]?)?(1[3-9]\d(?:[\s-]?\d{4}){2})(?![\d])")
_CN_LANDLINE = re.compile(r"(?<![\d.])(0\d{2,3}-\d{7,8})(?![\d])")
_NANP = re.compile(r"(?<![\d.])(\+?1[\s.-]?)?(\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4})(?![\d])")

_PHONE_WORDS = frozenset({"mobile", "tel", "telephone", "cell"})
_ID_PARTS = ("id_number", "idnumber", "id_card", "idcard", "identity_number", "id_no")
_WORD = re.compile(r"[a-z]+")


def _phone(match: re.Match[str]) -> str:
    prefix = match.group(1) or ""
    return prefix + mask_phone(match.group(2))


def mask_text(text: str) -> str:
    """`text` with every phone- or ID-number-shaped run masked (first and last digits kept)."""
    held = sealed_mask(text)
    if held is not None:
        return held
    if not any(ch.isdigit() for ch in text):
        return text
    text = _ID.sub(lambda m: mask_id_number(m.group(1)), text)
    text = _CN_MOBILE.sub(_phone, text)
    text = _CN_LANDLINE.sub(lambda m: mask_phone(m.group(1)), text)
    return _NANP.sub(_phone, text)


def field_kind(name: str) -> str | None:
    """"phone" or "id" when a field's name says it holds a phone or an ID number."""
    low = name.lower()
    if any(part in low for part in _ID_PARTS):
        return "id"
    # Whole words, so "hotel" or "satellite" are not taken for a phone.
    if "phone" in low or "contact_number" in low or not _PHONE_WORDS.isdisjoint(
            _WORD.findall(low.replace("_", " "))):
        return "phone"
    return None


def mask_data(value: Any, field: str = "") -> Any:
    """A copy of JSON-like data with phone and ID numbers masked: fields named like one are
    masked whole, every other string by shape."""
    kind = field_kind(field) if field else None
    if isinstance(value, dict):
        return {k: mask_data(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v, field) for v in value]
    if isinstance(value, str):
        if kind == "phone":
            return mask_phone(value)
        if kind == "id":
            return mask_id_number(value)
        return mask_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and kind is not None:
        return mask_data(str(value), field)
    return value


ERASED = "[erased]"


def scrub_text(text: str, known: Iterable[str] = ()) -> str:
    """`text` with each of the `known` identifying strings (a person's name, phone, ID number,
    address, as held about them) replaced by a marker, and every phone or ID number left masked:
    what a record kept for a case's history may still say once its person is erased."""
    held = sealed_mask(text)
    if held is not None:
        text = held
    # Longest first, so that an address is not left half-replaced by a name it contains.
    for value in sorted({k.strip() for k in known if len(k.strip()) >= 2}, key=len,
                        reverse=True):
        pattern = re.escape(value)
        if value.isascii():
            # Whole words only: "Li" must not eat into "Lights". Chinese text has no spaces
            # between words, so there the name is taken wherever it stands.
            pattern = rf"(?<![A-Za-z0-9]){pattern}(?![A-Za-z0-9])"
        text = re.sub(pattern, ERASED, text, flags=re.IGNORECASE)
    return mask_text(text)
