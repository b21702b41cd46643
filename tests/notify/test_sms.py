"""The SMS gateway notifier against the same real loopback receiver as the webhooks."""

import msgspec
import pytest

from cityops.notify import NotifierFull, RetryPolicy
from cityops.notify.sms import SmsGatewayNotifier, gsm_septets, sms_text, trim_text

PHONES = {"310115-cg": ["13800000001", "13800000002"], "staff-17": "13900000017"}
FAST = RetryPolicy(attempts=3, base=0.001, max_delay=0.01)


def gateway(url, **options):
    options.setdefault("retry", FAST)
    return SmsGatewayNotifier(url, phones=PHONES, token="gw-token", **options)


async def test_one_request_per_number_with_bearer_token(hooks, note):
    n = note()
    notifier = gateway(hooks.url("sms"))
    await notifier.async_start()
    await notifier.async_send(n)
    got = await hooks.wait_for("sms", 2)
    await notifier.async_stop()
    sent = [(msgspec.json.decode(g.body), g.headers) for g in got]
    assert sorted(body["to"] for body, _ in sent) == PHONES["310115-cg"]
    for body, headers in sent:
        assert set(body) == {"to", "text"}
        assert body["text"] == "Work order wo-1: Manhole cover missing at Zhangjiang Rd 88"
        assert headers["authorization"] == "Bearer gw-token"
        assert headers["x-cityops-delivery"] == f"{n.id}:{body['to']}"  # distinct per number
    assert notifier.stats()["sent"] == 2


async def test_gateway_errors_use_the_shared_retry_machinery(hooks, note):
    hooks.script["sms"] = [(502, {}), (429, {"Retry-After": "0"})]
    hooks.script["sms-auth"] = [(401, {})]
    retried = gateway(hooks.url("sms"))
    refused = gateway(hooks.url("sms-auth"))
    for notifier in (retried, refused):
        await notifier.async_start()
        await notifier.async_send(note(recipient="staff-17"))
        await notifier.async_stop()
    assert hooks.count("sms") == 3
    assert (retried.stats()["sent"], retried.stats()["retried"]) == (1, 2)
    assert hooks.count("sms-auth") == 1  # a wrong token does not get better by retrying
    [dead] = refused.dead
    assert dead.reason.startswith("HTTP 401") and dead.id.endswith(":13900000017")


async def test_dead_gateway_and_full_queue(dead_url, note):
    notifier = gateway(dead_url, queue_size=3)
    await notifier.async_send(note("1"))  # two numbers, two of the three slots
    with pytest.raises(NotifierFull):  # two more numbers, one slot: none of them is queued
        await notifier.async_send(note("2"))
    assert notifier.stats()["queued"] == 2
    await notifier.async_send(note("3", recipient="staff-17"))
    with pytest.raises(NotifierFull):
        await notifier.async_send(note("4", recipient="staff-17"))
    await notifier.async_start()
    await notifier.async_stop()
    assert len(notifier.dead) == 3
    assert all("ConnectError" in d.reason and d.attempts == 3 for d in notifier.dead)


async def test_unknown_recipient_is_recorded_not_sent(note):
    notifier = gateway("http://127.0.0.1:9/sms")
    await notifier.async_send(note(recipient="nobody"))
    assert notifier.stats()["unrouted"] == 1
    assert "no phone number for recipient 'nobody'" in notifier.dead[0].reason


def test_texts_fit_one_ucs2_segment(note):
    chinese = note(subject="井盖缺失", body="张江路88号井盖缺失，请立即处置并回复处置结果。" * 4)
    text = sms_text(chinese, 70)
    assert len(text) == 70 and text.endswith("…") and text.startswith("井盖缺失: ")
    short = note(subject="路灯故障", body="")
    assert sms_text(short, 70) == "路灯故障"
    signed = sms_text(chinese, 70, prefix="【浦东城运】")
    assert signed.startswith("【浦东城运】井盖缺失") and len(signed) == 70
    # Characters beyond the BMP take two UTF-16 units, as they do in the SMS.
    assert trim_text("🚧" * 40, 9) == "🚧" * 4 + "…"
    assert trim_text("exactly ten", 11) == "exactly ten"
    assert sms_text(note(subject="a\n b", body="c\t\td"), 70) == "a b: c d"


def test_a_text_the_gsm_alphabet_carries_gets_its_160_septets(note):
    english = note(subject="Manhole cover missing",
                   body="Zhangjiang Rd 88: cover missing, make safe and reply. " * 5)
    text = sms_text(english, 70, gsm_max=160)
    assert len(text) == 160 and text.endswith("...") and gsm_septets(text) == 160
    # An extension character takes two septets (an escape and itself).
    assert gsm_septets("Fine: 50€ [paid]") == 19
    assert trim_text("€" * 100, 70, 160) == "€" * 78 + "..."  # 78 x 2 + 3 = 159 septets
    # One character outside the alphabet (a curly quote, Chinese) makes the whole text UCS-2,
    # cut to 70 units with the single-character mark.
    quoted = note(subject="Cover “missing”", body="x" * 200)
    assert gsm_septets("“") is None
    assert len(sms_text(quoted, 70, gsm_max=160)) == 70
    chinese = note(subject="井盖缺失", body="张江路88号" * 30)
    assert sms_text(chinese, 70, gsm_max=160).endswith("…")
    assert len(sms_text(chinese, 70, gsm_max=160)) == 70


async def test_the_gateway_sends_an_english_text_in_one_gsm_segment(hooks, note):
    notifier = gateway(hooks.url("sms"))
    await notifier.async_start()
    await notifier.async_send(note(subject="Road flooded",
                                   body="Underpass at Century Ave, water 40 cm deep. " * 6))
    got = await hooks.wait_for("sms", 2)
    await notifier.async_stop()
    text = got[0].json()["text"]
    assert gsm_septets(text) == 160 and text.startswith("Road flooded: Underpass")


def test_bad_gateway_settings():
    with pytest.raises(ValueError, match="ftp://gw"):
        SmsGatewayNotifier("ftp://gw/send", phones={})
    with pytest.raises(ValueError, match="no room"):
        SmsGatewayNotifier("https://gw/send", phones={}, max_chars=5, prefix="【浦东城运】")


async def test_a_citizen_notice_goes_to_the_number_it_names(hooks, note):
    notifier = gateway(hooks.url("sms"))
    await notifier.async_start()
    await notifier.async_send(note(recipient="+8613812345678"))
    got = await hooks.wait_for("sms", 1)
    await notifier.async_stop()
    assert msgspec.json.decode(got[0].body)["to"] == "+8613812345678"
