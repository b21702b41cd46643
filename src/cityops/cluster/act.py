"""The act side's pieces in a cluster: several act nodes share the alerts in one consumer
group (filing is idempotent: the case id derives from the alert's id), and their schedulers
claim due cases for a lease before escalating them, so each case is escalated by one of
them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cityops.act.intake import AlertIntake
from cityops.bus.subjects import ALERTS
from cityops.cluster.bus import BusView, is_nats, prepare_group
from cityops.store.base import StoreBusy

log = logging.getLogger(__name__)


class ClaimingStore:
    """The store as a clustered desk sees it: asking for due cases claims them (see
    `claim_due_incidents`); everything else goes straight through."""

    def __init__(self, store, lease_s: float) -> None:
        self._store = store
        self.lease_s = lease_s

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    async def due_incidents(self, now: float, limit: int = 100) -> list[str]:
        return await self._store.claim_due_incidents(now, limit, self.lease_s)


class SteadyIntake(AlertIntake):
    """The alert intake of an act node: an alert that cannot be filed because the store is
    away is tried again, and the bus is not told it was taken until it was (it is acknowledged
    when the next batch is asked for), so a store outage delays alerts and loses none."""

    async def take(self, event) -> None:
        delay = 0.2
        while True:
            try:
                await super().take(event)
                return
            except (StoreBusy, ConnectionError, TimeoutError) as exc:
                log.warning("alert %s not filed yet (%s); retrying in %.1f s",
                            event.alert.id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            except Exception:  # a fault of this alert, not of the store: it must not stop others
                self.stats["failed"] += 1
                log.exception("alert %s could not be filed", event.alert.id)
                return


async def prepare_alerts(view: Any) -> None:
    if isinstance(view, BusView) and is_nats(view.bus):
        # Alerts raised before the first act node ever ran are filed too. No rewind: act
        # nodes share the one partition, and filing twice is harmless anyway.
        await prepare_group(view.bus, view.group, ALERTS, [0], from_start=True, rewind=False)
