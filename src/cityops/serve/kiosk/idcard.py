"""The PRC resident identity number as a card reader hands it over (GB 11643-1999): six digits
of the issuing area, the birth date as YYYYMMDD, a three-digit sequence and one check
character, the ISO 7064 MOD 11-2 checksum of the first seventeen ('X' standing for 10).

Checked before anything is looked up, so a misread card (a swapped or dropped digit: the
checksum catches every single-digit error and every swap of two neighbours) is told apart
from a card nobody registered, and no SMS goes out on a number that cannot exist."""

from __future__ import annotations

import datetime as dt

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
# The first two digits name a province-level division; 1x-6x and Hong Kong, Macao, Taiwan.
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83", "91"})


class BadCard(ValueError):
    """The number cannot be a resident ID number; the message says which part is wrong."""

    code = "kiosk_bad_card"


def check_digit(first17: str) -> str:
    return CHECK[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def normal(number: str) -> str:
    """What a reader or the on-screen keypad typed, as the registry keeps it: no spaces, an
    upper-case X."""
    return "".join(number.split()).upper()


def check_card(number: str, today: dt.date) -> str:
    """The number, normalised, or BadCard naming what is wrong with it."""
    n = normal(number)
    if len(n) != 18:
        raise BadCard(f"an ID card number has 18 characters, this one {len(n)}")
    if not n[:17].isdigit() or not (n[17].isdigit() or n[17] == "X"):
        raise BadCard("an ID card number is 17 digits and a last digit or X")
    if n[:2] not in PROVINCES:
        raise BadCard(f"{n[:2]} is not the code of a province: the card was misread")
    try:
        born = dt.date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        raise BadCard(f"{n[6:14]} is not a date of birth: the card was misread") from None
    if born > today or born.year < 1890:
        raise BadCard(f"the date of birth {born.isoformat()} cannot be right: the card was "
                      "misread")
    if check_digit(n[:17]) != n[17]:
        raise BadCard("the check digit does not match: the card was misread; insert it again")
    return n
