"""The written form of a value encrypted at rest (a "sealed" value), as far as the pure core
needs to know it.

A sealed value is one string: `pii:v1:<ciphertext>:<masked>`. The ciphertext (URL-safe base64
of nonce and AES-GCM output) is only opened by the serve side, which holds the data key
(`cityops.serve.pii`). The masked form after it is what any staff view would show of the value
anyway: so a view that masks (every view that is not the citizen's own) shows the right thing
even where nobody opened the value, and never the ciphertext. Base64 has no ':', so everything
after the third ':' is the masked form, whatever it holds.
"""

from __future__ import annotations

PREFIX = "pii:v1:"


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def sealed_mask(value: str) -> str | None:
    """The masked form carried by a sealed value; None when `value` is not one."""
    if not value.startswith(PREFIX):
        return None
    _, sep, masked = value[len(PREFIX):].partition(":")
    return masked if sep else ""


def make(ciphertext: str, masked: str) -> str:
    return f"{PREFIX}{ciphertext}:{masked}"


def ciphertext_of(value: str) -> str:
    return value[len(PREFIX):].partition(":")[0]
