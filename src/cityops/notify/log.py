"""The default notifier: one log line per notification, and the last few kept for inspection.

It needs no configuration, so a node always has somewhere to send notifications; the kept
ones let an operator (or a test) see what would have gone out.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from cityops.notify.base import Notification, NotifyError

_LEVELS = {"high": logging.WARNING, "critical": logging.WARNING}


class LogNotifier:
    def __init__(self, *, keep: int = 100, logger: logging.Logger | None = None) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        self._log = logger or logging.getLogger("cityops.notify")
        self._recent: deque[Notification] = deque(maxlen=keep)
        self._sent = 0
        self._stopped = False

    async def async_send(self, n: Notification) -> None:
        if self._stopped:
            raise NotifyError("log notifier is stopped")
        self._log.log(
            _LEVELS.get(n.urgency, logging.INFO),
            "notify %s to %s [%s] %s (id %s)",
            n.kind, n.recipient, n.urgency, n.subject, n.id,
        )
        self._recent.append(n)
        self._sent += 1

    def recent(self) -> list[Notification]:
        """Oldest first, at most `keep`."""
        return list(self._recent)

    async def async_start(self) -> None:
        self._stopped = False

    async def async_stop(self) -> None:
        self._stopped = True

    def stats(self) -> dict[str, Any]:
        return {"kind": "log", "sent": self._sent, "kept": len(self._recent)}
