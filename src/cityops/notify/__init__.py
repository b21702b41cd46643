"""Notifications to departments, staff and supervisors: one backend per module behind the
`Notifier` protocol (`base.py`), and `open_notifier` to make one from configuration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from cityops.notify.base import (
    FanOut,
    Notification,
    Notifier,
    NotifierFull,
    NotifyError,
    notification_id,
)
from cityops.notify.delivery import DeadDelivery, RetryPolicy

__all__ = [
    "DeadDelivery", "FanOut", "Notification", "Notifier", "NotifierFull", "NotifyError",
    "RetryPolicy", "notification_id", "open_notifier",
]

_DELIVERY = {"queue_size", "workers", "retry", "timeout", "transport", "dead_max", "rng",
             "sleep", "clock"}
_OPTIONS = {
    "log": {"keep", "logger"},
    "memory": {"fail", "error"},
    "webhook": {"secret", "routes"} | _DELIVERY,
    "sms": {"phones", "token", "max_chars", "gsm_chars", "prefix"} | _DELIVERY,
}
_FORMS = "log:, memory:, webhook+https://HOST/PATH, webhook+http://..., sms+https://..."


def open_notifier(
    spec: str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]], **options: Any
) -> Notifier:
    """Make the notifier that `spec` names.

    URL forms:
      `log:`                        LogNotifier, the default (options: keep, logger)
      `memory:`                     MemoryNotifier, the test twin (options: fail, error)
      `webhook+https://HOST/PATH`   WebhookNotifier with that default URL (`webhook+http://`
                                    for loopback or a TLS-terminating proxy); needs `secret`;
                                    `routes` maps recipients to other URLs
      `sms+https://HOST/PATH`       SmsGatewayNotifier posting to that gateway URL (or
                                    `sms+http://`); options: phones, token, max_chars, gsm_chars,
                                    prefix
    Webhook and SMS also take the delivery options: queue_size, workers (per endpoint), retry
    (a RetryPolicy or a mapping of its fields), timeout, dead_max.

    A mapping is `{"url": <one of the above>, **options}` (the shape of a settings file); a
    list of URLs or mappings makes a `FanOut` of them. Secrets and tokens are options, never
    part of the URL, so the URL can be logged. A ValueError names the part not understood.
    """
    if isinstance(spec, (list, tuple)):
        if options:
            raise ValueError("options go inside each entry of a notifier list, not beside it")
        if not spec:
            raise ValueError("the notifier list is empty")
        return FanOut([_open_one(entry, {}) for entry in spec])
    return _open_one(spec, options)


def _open_one(spec: Any, options: dict[str, Any]) -> Notifier:
    if isinstance(spec, Mapping):
        options = {**{k: v for k, v in spec.items() if k != "url"}, **options}
        if "url" not in spec:
            raise ValueError(f"notifier config has no 'url' (one of {_FORMS})")
        spec = spec["url"]
    if not isinstance(spec, str):
        raise ValueError(f"notifier {spec!r} is neither a URL, a mapping nor a list of them")
    scheme, colon, rest = spec.partition(":")
    if not colon and spec.strip() not in ("log", "memory"):
        raise ValueError(f"notifier URL {spec!r} has no scheme: use one of {_FORMS}")
    kind, plus, transport = scheme.strip().lower().partition("+")
    if kind not in _OPTIONS:
        raise ValueError(f"notifier URL {spec!r}: scheme {scheme!r} is not one of {_FORMS}")
    unknown = sorted(set(options) - _OPTIONS[kind])
    if unknown:
        raise ValueError(
            f"notifier option {unknown[0]!r} is not understood for {kind}: "
            f"use {', '.join(sorted(_OPTIONS[kind]))}"
        )
    if kind in ("log", "memory"):
        if plus or rest.strip("/"):
            raise ValueError(f"notifier URL {spec!r}: {kind}: takes nothing more, not {rest!r}")
        if kind == "log":
            from cityops.notify.log import LogNotifier

            return LogNotifier(**options)
        from cityops.notify.memory import MemoryNotifier

        return MemoryNotifier(**options)
    if transport not in ("http", "https"):
        raise ValueError(
            f"notifier URL {spec!r}: transport {transport!r} after '{kind}+' "
            "must be http or https"
        )
    url = f"{transport}:{rest}"
    if not urlsplit(url).hostname:
        raise ValueError(f"notifier URL {spec!r} has no host after '{kind}+{transport}://'")
    if isinstance(options.get("retry"), Mapping):
        options["retry"] = _retry_policy(options["retry"])
    if kind == "webhook":
        if not options.get("secret"):
            raise ValueError(f"notifier URL {spec!r}: webhook needs the 'secret' option")
        from cityops.notify.webhook import WebhookNotifier

        return WebhookNotifier(url, **options)
    from cityops.notify.sms import SmsGatewayNotifier

    return SmsGatewayNotifier(url, phones=options.pop("phones", {}), **options)


def _retry_policy(fields: Mapping[str, Any]) -> RetryPolicy:
    known = set(RetryPolicy.__struct_fields__)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(
            f"retry option {unknown[0]!r} is not understood: use {', '.join(sorted(known))}"
        )
    return RetryPolicy(**fields)
