"""Masking what identifies a citizen wherever it may turn up: in free text (a report's
description, a log line) and in loosely shaped data (a report's `data`, a record written by
another part of the serve side).

Fields are recognised by name (anything naming a phone, a mobile or an ID number); free text
by shape: Chinese mobile numbers (with or without +86 and separators), Chinese landlines with
their area code, North American numbers as Open311 clients send them, and resident identity
card numbers (18 characters, or the old 15 digits). Shapes are chosen so that the numbers
CityOps itself prints (epoch seconds, 12-digit area codes, dates, device ids) stay readable.
"""

from __future__ import annotations

import re
from typing import Any

from cityops.domain.citizens import mask_id_number, mask_phone

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
    if not any(ch.isdigit() for ch in text):
        return text
    text = _ID.sub(lambda m: mask_id_number(m.group(1)), text)
    text = _CN_MOBILE.sub(_phone, text)
    text = _CN_LANDLINE.sub(lambda m: mask_phone(m.group(1)), text)
    return _NANP.sub(_phone, text)


def _kind_of_field(name: str) -> str | None:
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
    kind = _kind_of_field(field) if field else None
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
