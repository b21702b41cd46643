"""The 24-hour self-service kiosk: sign-in by resident ID card and a one-time SMS code
(`signin`), the card number's own check (`idcard`), and the receipt printed for an application
made at the kiosk (`receipt`). The kiosk's catalogue and applications are the one-stop desk's;
what is the kiosk's own is getting a short-lived citizen key without a password."""

from __future__ import annotations

import time
import weakref
from typing import Any

from cityops.serve.kiosk.signin import KioskSignIn

_SIGNINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def signin_of(node: Any) -> KioskSignIn:
    """The node's kiosk sign-in, made on first use from its serve side (registry, data key,
    notifier) and the settings `kiosk_code_ttl_s` and `kiosk_session_s`."""
    held = _SIGNINS.get(node)
    if held is None:
        serve = node.serve
        settings = node.settings
        held = _SIGNINS[node] = KioskSignIn(
            node.store, serve.citizens, serve.pii, serve.notifier, now=node.clock,
            wall=time.time, today=lambda: serve.clock.local_date(node.clock()),
            code_ttl_s=settings.kiosk_code_ttl_s, session_s=settings.kiosk_session_s)
    return held


__all__ = ["KioskSignIn", "signin_of"]
