import pytest

from cityops.notify import FanOut, RetryPolicy, open_notifier
from cityops.notify.log import LogNotifier
from cityops.notify.memory import MemoryNotifier
from cityops.notify.sms import SmsGatewayNotifier
from cityops.notify.webhook import WebhookNotifier


def test_url_forms():
    assert isinstance(open_notifier("log:"), LogNotifier)
    assert isinstance(open_notifier("log"), LogNotifier)
    assert isinstance(open_notifier("memory:"), MemoryNotifier)
    hook = open_notifier("webhook+https://hooks.test/cityops?t=1", secret="k")
    assert isinstance(hook, WebhookNotifier)
    assert list(hook.stats()["endpoints"]) == ["https://hooks.test/cityops?..."]
    plain = open_notifier("WEBHOOK+http://127.0.0.1:8000/in", secret="k",
                          routes={"310115-cg": "http://127.0.0.1:8001/cg"})
    assert len(plain.stats()["endpoints"]) == 2
    sms = open_notifier("sms+https://gw.test/send", token="t", phones={"a": "138"})
    assert isinstance(sms, SmsGatewayNotifier)


def test_mappings_and_lists():
    config = {"url": "webhook+https://hooks.test/in", "secret": "k",
              "retry": {"attempts": 2, "base": 0.1}, "queue_size": 8}
    hook = open_notifier(config)
    assert hook._deliverer.retry == RetryPolicy(attempts=2, base=0.1)
    fan = open_notifier(["log:", config, {"url": "sms+http://127.0.0.1:9/sms", "phones": {}}])
    assert isinstance(fan, FanOut)
    assert [s["kind"] for s in fan.stats()["notifiers"]] == ["log", "webhook", "sms"]


@pytest.mark.parametrize(
    ("spec", "options", "names"),
    [
        ("smtp://mail.test", {}, "'smtp'"),
        ("nowhere", {}, "no scheme"),
        ("webhook+ftp://hooks.test/x", {"secret": "k"}, "'ftp'"),
        ("webhook://hooks.test/x", {"secret": "k"}, "transport ''"),
        ("webhook+https:///path", {"secret": "k"}, "no host"),
        ("webhook+https://hooks.test/x", {}, "'secret'"),
        ("webhook+https://hooks.test/x", {"secret": "k", "phones": {}}, "'phones'"),
        ("webhook+https://hooks.test/x", {"secret": "k", "retry": {"tries": 3}}, "'tries'"),
        ("log:extra", {}, "'extra'"),
        ({"secret": "k"}, {}, "'url'"),
        (42, {}, "42"),
        ([], {}, "empty"),
        (["log:"], {"keep": 3}, "each entry"),
    ],
)
def test_errors_name_the_bad_part(spec, options, names):
    with pytest.raises(ValueError) as error:
        open_notifier(spec, **options)
    assert names in str(error.value)


def test_bad_route_urls_are_named():
    with pytest.raises(ValueError, match="'310115-cg'"):
        open_notifier("webhook+https://hooks.test/x", secret="k",
                      routes={"310115-cg": "hooks.test/cg"})
