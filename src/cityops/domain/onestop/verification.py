"""The verification code printed on an e-licence, and what the public may see of its holder.

A code is 19 random symbols and one check symbol, printed in five groups of four
(`7KQ2-M9XD-4HTB-0WPE-R3NS`): 95 random bits, so no one finds a genuine code by trying, and
nothing in it derives from the licence's id or number (which are enumerable).

The symbols are Crockford's base 32: digits and capitals without I, L, O and U. What a person
may type for them is read as the symbol it looks like (O as 0, I and L as 1), in either case,
with or without the dashes and spaces; U, which is no symbol, makes the text not a code.

The check symbol makes the twenty symbols a word of a code over GF(32): with weights
w_i = a^(i+1) (a a primitive element, of order 31) the weighted sum of a genuine code is 0.
One symbol typed wrong changes the sum by e * w_i, never 0; two symbols swapped, anywhere in
the code, by (x + y)(w_i + w_j), never 0 while the weights differ, as they do for 20 < 31
positions. So every single mistype and every swap is known to be wrong without asking the
store, and answered "not genuine" at once.
"""

from __future__ import annotations

import hashlib
import re

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DATA = 19  # random symbols
LENGTH = DATA + 1  # and the check symbol
GROUP = 4
ENTROPY_BYTES = 12  # 96 random bits, of which 95 are used
MAX_INPUT = 64  # what is read of typed text at most: longer is not a code
_VALUE = {c: i for i, c in enumerate(ALPHABET)} | {"O": 0, "I": 1, "L": 1}
_SEPARATORS = re.compile(r"[\s\-‐‑–—_.]+")  # dashes of any kind, spaces, dots
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff]")
_POLY = 0b100101  # x^5 + x^2 + 1, primitive: x generates all 31 non-zero elements


class NotACode(ValueError):
    """Typed text that cannot be a verification code (wrong length or characters)."""

    code = "licence_code_malformed"  # the stable code of its HTTP 400


def _mul(a: int, b: int) -> int:
    out = 0
    while b:
        if b & 1:
            out ^= a
        b >>= 1
        a <<= 1
        if a & 0b100000:
            a ^= _POLY
    return out


def _weights() -> list[int]:
    out, w = [], 1
    for _ in range(LENGTH):
        w = _mul(w, 2)
        out.append(w)
    return out


_W = _weights()
# The inverse of the last weight a^20 is a^11 (a^31 = 1).
_LAST_INVERSE = _W[10]


def _sum(values: list[int]) -> int:
    total = 0
    for v, w in zip(values, _W, strict=False):
        total ^= _mul(v, w)
    return total


def check_symbol(data: str) -> str:
    """The symbol that completes DATA symbols (canonical) to a genuine-looking code."""
    return ALPHABET[_mul(_sum([_VALUE[c] for c in data]), _LAST_INVERSE)]


def new_code(entropy: bytes) -> str:
    """A canonical code (20 symbols, no dashes) from ENTROPY_BYTES random bytes."""
    if len(entropy) < ENTROPY_BYTES:
        raise ValueError(f"a code needs {ENTROPY_BYTES} random bytes")
    bits = int.from_bytes(entropy[:ENTROPY_BYTES], "big")
    data = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(DATA))
    return data + check_symbol(data)


def canonical(typed: str) -> str:
    """The code `typed` stands for, upper case and without separators, look-alikes read as
    their symbols. NotACode when it has the wrong length or a character no symbol looks like;
    a code that only fails its check symbol is returned (is_well_formed says so)."""
    if len(typed) > MAX_INPUT:
        raise NotACode(f"a verification code is {LENGTH} letters and digits; "
                       f"this is {len(typed)} characters long")
    text = _SEPARATORS.sub("", typed).upper()
    bad = sorted({c for c in text if c not in _VALUE})
    if bad:
        shown = "".join(bad[:5])
        raise NotACode(f"a verification code has only the letters and digits printed on the "
                       f"licence; {shown!r} is not one of them")
    if len(text) != LENGTH:
        raise NotACode(f"a verification code is {LENGTH} letters and digits; "
                       f"this has {len(text)}")
    return "".join(ALPHABET[_VALUE[c]] for c in text)


def is_well_formed(code: str) -> bool:
    """Whether a canonical code passes its check symbol (a mistype never does)."""
    return len(code) == LENGTH and _sum([_VALUE[c] for c in code]) == 0


def grouped(code: str) -> str:
    """The printed form: groups of four joined by dashes."""
    return "-".join(code[i:i + GROUP] for i in range(0, len(code), GROUP))


def lookup_key(code: str) -> str:
    """What the store finds a licence's code by: its SHA-256, so that the look-up's cost and
    any index order say nothing about the characters of a real code."""
    return hashlib.sha256(f"cityops licence code v1\x1f{code}".encode()).hexdigest()


def mask_name(name: str) -> str:
    """A holder's name as the public sees it: a Chinese name keeps its first and (from three
    characters) last character, 张*三 and 李*; each word of a Latin name keeps its initial and
    three stars, J*** S***, whatever its length."""
    name = " ".join(name.split())
    if not name:
        return ""
    if _CJK.search(name):
        chars = name.replace(" ", "").replace("·", "")
        if len(chars) <= 2:
            return chars[0] + "*"
        return chars[0] + "*" + chars[-1]
    return " ".join(word[0] + "***" for word in name.split(" "))
