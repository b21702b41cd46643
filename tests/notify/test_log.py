import logging

import pytest

from cityops.notify import Notifier, NotifyError
from cityops.notify.log import LogNotifier


async def test_one_line_per_notification_and_the_last_few_kept(caplog, note):
    notifier = LogNotifier(keep=3)
    assert isinstance(notifier, Notifier)
    await notifier.async_start()
    with caplog.at_level(logging.INFO, logger="cityops.notify"):
        for i in range(5):
            await notifier.async_send(note(f"wo-{i}", urgency="normal"))
    assert len(caplog.records) == 5
    line = caplog.records[-1].getMessage()
    assert "work_order.dispatched" in line and "310115-cg" in line and note("wo-4").id in line
    assert [n.subject for n in notifier.recent()] == ["Work order wo-2", "Work order wo-3",
                                                     "Work order wo-4"]
    assert notifier.stats() == {"kind": "log", "sent": 5, "kept": 3}


async def test_urgent_ones_are_warnings_and_a_stopped_notifier_refuses(caplog, note):
    notifier = LogNotifier()
    with caplog.at_level(logging.INFO, logger="cityops.notify"):
        await notifier.async_send(note(urgency="critical", kind="work_order.escalated"))
    assert caplog.records[0].levelno == logging.WARNING
    await notifier.async_stop()
    with pytest.raises(NotifyError):
        await notifier.async_send(note())


def test_keep_must_be_positive():
    with pytest.raises(ValueError):
        LogNotifier(keep=0)
