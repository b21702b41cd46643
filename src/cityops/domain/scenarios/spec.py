"""The declarative format of scenario packs (`scenarios/<name>/manifest.yaml`).

A pack names what it raises (category, departments, urgency), in which operating states it is
active, and its rules. Each rule is one primitive (`type:`) with its parameters; numeric
parameters may be overridden per operating state (`states: {special: {above: 50}}`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

State = Literal["daily", "special", "emergency"]
STATES: tuple[State, ...] = ("daily", "special", "emergency")
Severity = Literal["info", "minor", "major", "critical"]
Urgency = Literal["low", "normal", "high", "urgent"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def seconds(text: str | float | int) -> float:
    """'90s', '10m', '12h', '2d' (or a number of seconds) as seconds."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r} is not like 90s, 10m, 12h or 2d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


class When(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Calendar condition, in the city's local time; every field given must hold."""

    hours: str | None = None  # "22:00-06:00" (may wrap past midnight)
    working_hours: bool | None = None  # True: inside the calendar's working hours; False: outside
    holiday: bool | None = None  # True: public holidays and weekends only; False: working days
    months: list[int] | None = None  # 1..12, e.g. typhoon season [6, 7, 8, 9, 10]
    weekdays: list[int] | None = None  # ISO 1 (Monday) .. 7


class Where(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Which devices a rule looks at, beyond their kind."""

    meta: dict[str, str | list[str]] = {}  # device meta must equal (or be one of)
    areas: list[str] = []  # inside any of these area codes
    role: str | None = None  # for GPS trackers: the vehicle role (muck_truck) or "staff"


GroupBy = Literal["category", "rule", "subject", "device", "cell", "village", "town", "district"]


class Group(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Which alerts join one case (Alertmanager's group_by, with the city's own areas): alerts
    with equal values of `by`, each within `within` of the group's latest one. `off`: every
    alert its own case (still merged by place, as any report)."""

    by: list[GroupBy] = msgspec.field(default_factory=lambda: ["category", "village"])
    within: str = "10m"
    off: bool = False


class Rule(msgspec.Struct, tag_field="type", kw_only=True, forbid_unknown_fields=True,
           omit_defaults=True):
    id: str
    title: str = ""
    # The title in other languages, by BCP 47 tag ({"zh-CN": ...}): as a city pack's `names`
    # beside its `name`, `title` stays the pack's own and the case keeps it (docs/i18n.md).
    titles: dict[str, str] = {}
    kind: str | None = None  # device kind the rule reads
    channel: str | None = None  # default: the kind's primary channel
    when: When | None = None
    where: Where | None = None
    severity: Severity = "minor"
    states: dict[State, dict[str, Any]] = {}  # per operating state: parameter overrides
    group: Group | None = None  # default: the pack's
    # Cleared and firing again within this long is the same episode, flapping ("0s": never).
    # Default 10 minutes, and for absence at least 10 of the device kind's periods.
    flap: str | None = None


class Threshold(Rule, tag="threshold"):
    """Above (or below) a level for at least `for_`, clearing with hysteresis."""

    above: float | None = None
    below: float | None = None
    clear_below: float | None = None  # with `above`; default: `above` itself
    clear_above: float | None = None  # with `below`; default: `below` itself
    for_: str = msgspec.field(default="0s", name="for")


class RateOfChange(Rule, tag="rate_of_change"):
    """The value rose (or fell) by more than `rise` (`fall`) within `within`."""

    rise: float | None = None
    fall: float | None = None
    within: str = "10m"
    clear_after: str = "30m"  # no qualifying change for this long clears it


class Window(Rule, tag="window"):
    """An aggregate over a sliding window per device, grid cell, village or town."""

    agg: Literal["count", "sum", "mean", "max", "min", "range"] = "count"
    over: str = "5m"
    per: Literal["device", "cell", "village", "town", "district"] = "device"
    value_above: float | None = None  # only readings above this count (e.g. an alarm level)
    above: float | None = None  # the aggregate must exceed this ...
    below: float | None = None  # ... or fall under this (e.g. range < 0.01: a stuck value)
    min_count: int = 1  # fewer readings in the window decide nothing
    source: Literal["readings", "rejections"] = "readings"
    # "device": `agg: count` counts the devices with a reading in the window, not readings
    # (several detectors in alarm, not one detector repeating itself).
    distinct: Literal["device"] | None = None


class Absence(Rule, tag="absence"):
    """A device silent for `periods` of its kind's reporting period: offline."""

    periods: float = 3.0


class Quiet(Rule, tag="quiet"):
    """Nothing happened: no reading above `active_above` for `for_` of time inside `when`
    (an elderly person living alone: no water flow for 12 daytime hours)."""

    active_above: float = 0.0
    for_: str = msgspec.field(default="12h", name="for")


class CameraEvent(Rule, tag="camera_event"):
    """A camera analytics event (by name, see domain/kinds.CAMERA_EVENTS) lasting `dwell`."""

    event: str
    dwell: str = "0s"


class Geofence(Rule, tag="geofence"):
    """Movers entering, leaving or dwelling in zones of a kind (the city pack's zones)."""

    zones: str  # zone kind, e.g. "muck_forbidden"
    on: Literal["enter", "exit", "dwell", "inside"] = "enter"
    dwell: str = "0s"


class RouteDeviation(Rule, tag="route_deviation"):
    """A mover farther than `max_distance_m` from its approved route."""

    routes: str = "muck_route"  # zone kind of the route lines
    max_distance_m: float = 200.0
    for_: str = msgspec.field(default="2m", name="for")


class Composite(Rule, tag="composite"):
    """All of the named rules active within `within` of each other and `distance_m` apart."""

    all_of: list[str]  # rule ids, "rule" in this pack or "pack.rule" in another
    within: str = "30m"
    distance_m: float = 2000.0


class Baseline(Rule, tag="baseline"):
    """A KPI far above (or below) the same hour-of-week's baseline."""

    method: Literal["robust_z", "ewma"] = "robust_z"
    z_above: float = 4.0
    z_below: float | None = None
    min_value: float = 0.0  # below this nothing is anomalous (small counts are noisy)
    weeks: int = 4  # history kept per hour-of-week slot (robust_z)
    alpha: float = 0.2  # smoothing (ewma)
    min_history: int = 3  # slots with less history decide nothing


class Outage(Rule, tag="outage"):
    """Many devices of one gateway, village or town falling silent together: one outage of the
    network they share, not a fault of each. Raised for the largest area it explains; while it
    lasts, the offline alerts of the devices it explains are recorded as inhibited by it."""

    per: list[Literal["gateway", "village", "town"]] = msgspec.field(
        default_factory=lambda: ["town", "village", "gateway"])
    share: float = 0.6  # of the devices heard around the same time, this many fell silent
    min_devices: int = 3
    within: str = "5m"  # the silent devices' last readings lie this close together
    late: float = 1.5  # silent: no reading for this many of the kind's reporting periods
    max_period: str = "30m"  # slower kinds (hourly KPIs) cannot tell an outage in time
    clear_share: float = 0.5  # cleared once this share of the silent devices is heard again


AnyRule = (Threshold | RateOfChange | Window | Absence | Quiet | CameraEvent | Geofence
           | RouteDeviation | Composite | Baseline | Outage)


class Category(msgspec.Struct, forbid_unknown_fields=True):
    code: str  # e.g. "event.environment.noise"
    kind: Literal["component", "event"]  # GB/T 30428: public facility vs. event
    major: str
    minor: str
    name: str
    names: dict[str, str] = {}  # the name in other languages, as a city pack's categories


class ScenarioPack(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    version: int
    title: str
    titles: dict[str, str] = {}  # in other languages; a rule without a title raises this one
    description: str = ""
    category: Category
    departments: list[str]
    urgency: Urgency = "normal"
    states: list[State] = msgspec.field(default_factory=lambda: list(STATES))
    auto_register: bool = True  # incidents open without an operator's verification
    group: Group = msgspec.field(default_factory=Group)  # for rules that name none
    rules: list[AnyRule]

    def rule_ids(self) -> list[str]:
        return [f"{self.name}.{r.id}" for r in self.rules]


def param(rule: Rule, name: str, state: State) -> Any:
    """A rule parameter as it applies in an operating state."""
    override = rule.states.get(state, {})
    if name in override:
        return override[name]
    return getattr(rule, name)
