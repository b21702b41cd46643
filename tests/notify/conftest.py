"""Fixtures of the notifier tests: a real HTTP receiver on loopback for the webhook and SMS
notifiers (tests.http_kit, served by uvicorn in the test's own event loop), and notifications."""

from __future__ import annotations

import pytest

from cityops.notify import Notification, notification_id
from tests.http_kit import dead_url as refused_url
from tests.http_kit import receiver


@pytest.fixture
async def hooks():
    """A webhook endpoint: every POST to /hook/NAME is recorded (tests.http_kit.Receiver)."""
    async with receiver("/hook") as state:
        yield state


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    return refused_url("/hook/dead")


@pytest.fixture
def note():
    """Makes a notification; `ref` names the event, so the same ref gives the same id."""
    return make_notification


def make_notification(ref: str = "wo-1", recipient: str = "310115-cg", **fields) -> Notification:
    kind = fields.pop("kind", "work_order.dispatched")
    values = {
        "subject": f"Work order {ref}",
        "body": "Manhole cover missing at Zhangjiang Rd 88",
        "data": {"work_order": ref},
        "created": 1_760_000_000.0,
        "urgency": "high",
        **fields,
    }
    return Notification(id=notification_id(kind, recipient, ref), kind=kind,
                        recipient=recipient, **values)
