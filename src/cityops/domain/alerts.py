"""Alerts: one per episode of a scenario rule at one place, raised once, updated while it
lasts, cleared when the condition clears."""

from __future__ import annotations

import msgspec

from cityops.domain.city import AreaCodes


class Evidence(msgspec.Struct, frozen=True, array_like=True):
    device_id: str
    channel: str
    ts: float  # epoch seconds
    value: float


class Alert(msgspec.Struct, kw_only=True):
    id: str  # deterministic per episode: scenario rule + subject + first_seen
    scenario: str  # pack name
    rule: str  # "<pack>.<rule id>"
    category: str  # the pack's category code
    severity: str
    urgency: str
    departments: list[str]
    subject: str  # device id, "cell:<h3>", "area:<code>", ...
    title: str
    detail: str = ""
    areas: AreaCodes | None = None
    cell: str | None = None
    lat: float | None = None
    lon: float | None = None
    first_seen: float  # epoch seconds (reading time)
    last_seen: float
    cleared_at: float | None = None
    active: bool = True
    value: float | None = None
    updates: int = 0  # signals folded into this episode after the first
    evidence: list[Evidence] = []
    state: str = "daily"  # operating state in force where it fired
    auto_register: bool = True
    # Alerts of one group join one case: the rule's group key (see spec.Group) and how long
    # after the group's latest alert a new one still joins it.
    group: str = ""
    group_within_s: float = 600.0
    # Recorded, but opening no case and notifying no one: the silence that held it, or the
    # alert that explains it (an area outage explaining a device's silence).
    silenced_by: str | None = None
    inhibited_by: str | None = None
    flaps: int = 0  # times it cleared and fired again within the flap window: one episode
    # Found by running the rules over imported history (`history import --replay`): a record
    # of the past, never active, never acted on. Left unset (and so out of the bytes) on
    # every live alert: the bus's wire format for alerts stays what running clusters expect.
    historical: bool | msgspec.UnsetType = msgspec.UNSET
    # The title in other languages ({"zh-CN": ...}), from the rule's `titles` (the pack's for
    # a rule without a title); unset when the pack has none, so such alerts cross as before.
    titles: dict[str, str] | msgspec.UnsetType = msgspec.UNSET


class AlertEvent(msgspec.Struct, frozen=True):
    """What the bus carries to the act side: an alert and what just happened to it."""

    change: str  # "raised", "updated", "cleared"
    alert: Alert
    published_ns: int = 0  # time.monotonic_ns() at publication, for latency figures
