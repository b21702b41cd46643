"""Citizens as the serve side knows them, and the masking of what identifies them.

Phone and ID numbers are shown whole only to the citizen's own key; every operator view and
every log line gets the masked form (SPEC section 5, privacy).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import msgspec

from cityops.domain.sealed import sealed_mask

# What the two functions below print: masking that output again must not hide what is left.
_MASKED_PHONE = re.compile(r"^\d{3}\*+\d{4}$")
_MASKED_ID = re.compile(r"^\d{6}\*+[\dXx]{4}$")


class Citizen(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the citizen's account id, e.g. "c-000123"; a citizen key's name is this id
    name: str
    id_number: str = ""  # resident identity card number (18 characters in China)
    phone: str = ""
    birth_date: dt.date | None = None
    area: str = ""  # village code of the registered residence
    address: str = ""
    # Facts policies read: {"lives_alone": true, "disability_level": 2, "hukou": "local"} ...
    attributes: dict[str, Any] = {}

    def age_on(self, day: dt.date) -> int | None:
        if self.birth_date is None:
            return None
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def mask_phone(phone: str) -> str:
    """Keep the first 3 and last 4 digits, the way Chinese service desks print them. A value
    sealed at rest shows the masked form it carries; an already masked one stays as it is."""
    held = sealed_mask(phone)
    if held is not None:
        return held
    if _MASKED_PHONE.match(phone):
        return phone
    digits = [c for c in phone if c.isdigit()]
    if len(digits) < 8:
        return "*" * len(phone)
    head, tail = "".join(digits[:3]), "".join(digits[-4:])
    return f"{head}{'*' * (len(digits) - 7)}{tail}"


def mask_id_number(number: str) -> str:
    """Keep the first 6 (the issuing area) and last 4 characters."""
    held = sealed_mask(number)
    if held is not None:
        return held
    if _MASKED_ID.match(number):
        return number
    if len(number) <= 10:
        return "*" * len(number)
    return f"{number[:6]}{'*' * (len(number) - 10)}{number[-4:]}"


def masked(citizen: Citizen) -> Citizen:
    return msgspec.structs.replace(citizen, phone=mask_phone(citizen.phone),
                                   id_number=mask_id_number(citizen.id_number))
