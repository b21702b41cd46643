import msgspec
import pytest

from cityops.notify import (
    FanOut,
    Notification,
    Notifier,
    NotifierFull,
    NotifyError,
    notification_id,
)
from cityops.notify.log import LogNotifier
from cityops.notify.memory import MemoryNotifier
from cityops.notify.webhook import WebhookNotifier


def test_ids_are_stable_per_event_and_recipient():
    a = notification_id("work_order.dispatched", "310115-cg", "wo-1@3")
    assert a == notification_id("work_order.dispatched", "310115-cg", "wo-1@3")
    assert a != notification_id("work_order.dispatched", "310115-sw", "wo-1@3")
    assert a != notification_id("work_order.escalated", "310115-cg", "wo-1@3")
    assert a != notification_id("work_order.dispatched", "310115-cg", "wo-1@4")


def test_notifications_round_trip_and_urgency_is_checked(note):
    n = note(data={"work_order": "wo-1", "area": "310115001"})
    assert msgspec.json.decode(msgspec.json.encode(n), type=Notification) == n
    with pytest.raises(ValueError, match="'urgent'"):
        note(urgency="urgent")
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode(n).replace(b'"high"', b'"meh"'),
                            type=Notification)


async def test_memory_twin_records_and_injects_failures(note):
    twin = MemoryNotifier(fail=1)
    assert isinstance(twin, Notifier)
    with pytest.raises(NotifyError):
        await twin.async_send(note("1"))
    await twin.async_send(note("2"))
    twin.fail_next(1, NotifierFull("memory"))
    with pytest.raises(NotifierFull):
        await twin.async_send(note("3"))
    assert [n.data["work_order"] for n in await twin.wait_for(1)] == ["2"]
    assert twin.stats() == {"kind": "memory", "sent": 1, "refused": 2}


async def test_one_failing_notifier_does_not_keep_it_from_the_others(note):
    broken = MemoryNotifier(fail=-1)
    full = MemoryNotifier(fail=-1, error=NotifierFull("x"))
    good = MemoryNotifier()
    fan = FanOut([broken, full, good])
    await fan.async_start()
    await fan.async_send(note("1"))
    await fan.async_send(note("2"))
    assert len(good.sent) == 2 and len(broken.refused) == len(full.refused) == 2
    stats = fan.stats()
    assert (stats["handed"], stats["refused"]) == (2, [2, 2, 0])
    assert [s["kind"] for s in stats["notifiers"]] == ["memory"] * 3


async def test_the_caller_hears_only_when_nobody_took_it(note):
    all_full = FanOut([MemoryNotifier(fail=-1, error=NotifierFull("a")),
                       MemoryNotifier(fail=-1, error=NotifierFull("b"))])
    with pytest.raises(NotifierFull):
        await all_full.async_send(note())
    mixed = FanOut([MemoryNotifier(fail=-1, error=NotifierFull("a")), MemoryNotifier(fail=-1)])
    with pytest.raises(NotifyError) as refused:
        await mixed.async_send(note())
    assert not isinstance(refused.value, NotifierFull)


async def test_a_full_webhook_queue_does_not_keep_it_from_the_log(note):
    hook = WebhookNotifier("http://127.0.0.1:9/hook", secret="k", queue_size=1)
    log = LogNotifier()
    fan = FanOut([hook, log])  # not started: the webhook queue fills and stays full
    await fan.async_send(note("1"))
    await fan.async_send(note("2"))
    assert len(log.recent()) == 2 and fan.stats()["refused"] == [1, 0]
    await fan.async_stop()
    assert len(hook.dead) == 1


class _StopFails(MemoryNotifier):
    async def async_stop(self) -> None:
        raise RuntimeError("stuck")


class _StartFails(MemoryNotifier):
    async def async_start(self) -> None:
        raise RuntimeError("no such host")


async def test_start_and_stop_reach_every_notifier():
    first, second = _StopFails(), MemoryNotifier()
    fan = FanOut([first, second])
    await fan.async_start()
    assert first.started and second.started
    await fan.async_stop()  # the first one's failure is logged; the second is still stopped
    assert second.stopped

    started = MemoryNotifier()
    failing = FanOut([started, _StartFails()])
    with pytest.raises(RuntimeError, match="no such host"):
        await failing.async_start()
    assert started.stopped  # what had started is stopped again
