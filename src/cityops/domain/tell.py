"""Who must be told what, as the serve side's pure rules decide it; `serve/notices.py` turns
these into notifications."""

from __future__ import annotations

import msgspec


class Tell(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str  # hotline.assigned, review.callback, cabinet.dropoff ...
    recipient: str  # department code, "hotline_centre", or a phone number (sms=True)
    subject: str
    body: str = ""
    urgency: str = "normal"
    sms: bool = False  # to a citizen's phone: the recipient is the number itself
    ref: str = ""  # what makes this notice unique (order number and step ...)
    # The facts a person's text is written from in their language (cityops/notify/texts.py
    # and the catalogs' message for `kind`): they go into the notification's data.
    args: dict[str, str | int | float] = {}
