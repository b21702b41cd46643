"""From signals to alerts: one alert per episode of a rule at one subject.

An episode opens with the first active signal (the alert is raised), folds every later active
signal in (updated: last_seen, value, evidence) and ends with an inactive one (cleared). The
alert id is derived from rule, subject and the episode's first reading time, so replaying the
same readings after a crash produces the same id rather than a second alert.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from cityops.domain.alerts import Alert, AlertEvent, Evidence
from cityops.domain.city import AreaCodes
from cityops.domain.registry import DeviceRegistry
from cityops.domain.scenarios.signals import MAX_EVIDENCE, Signal
from cityops.domain.scenarios.spec import Absence, AnyRule, ScenarioPack, seconds

US = 1_000_000
STATE_NAMES = ("daily", "special", "emergency")
# A rule that clears and fires again at one subject within this long is one episode that
# flapped, not a new one: a device dropping in and out, a level hovering at the limit. For a
# device's silence, at least FLAP_PERIODS of its kind's reporting period (a bin sensor reports
# every ten minutes: back for two reports and silent again is still the same trouble).
FLAP_S = 600.0
FLAP_PERIODS = 10


def alert_id(rule: str, subject: str, first_seen_us: int) -> str:
    digest = hashlib.blake2b(f"{rule}|{subject}|{first_seen_us}".encode(), digest_size=10)
    return "al_" + digest.hexdigest()


def group_key(pack: ScenarioPack, rule: AnyRule, signal: Signal, areas: AreaCodes | None,
              cell: str | None) -> str:
    """What alerts of one group share, as one string ("" when the rule groups nothing).
    A value the alert lacks (no village for an alert without a place) is left empty, so such
    alerts group among themselves rather than with every other."""
    group = rule.group or pack.group
    if group.off:
        return ""
    parts = []
    for field in group.by:
        if field == "category":
            parts.append(pack.category.code)
        elif field == "rule":
            parts.append(signal.rule)
        elif field in ("subject", "device"):
            parts.append(signal.subject)
        elif field == "cell":
            parts.append(cell or "")
        else:
            parts.append((getattr(areas, field, None) if areas is not None else None) or "")
    return "|".join(parts)


@dataclass(slots=True)
class _Open:
    alert: Alert
    confirm_by_us: int | None = None  # restored after a restart: must be seen again by then


class Episodes:
    def __init__(
        self,
        rules: dict[str, tuple[ScenarioPack, AnyRule]],
        registry: DeviceRegistry,
        locate: Callable[[float, float], tuple[AreaCodes | None, str | None]],
    ) -> None:
        """`rules` maps "<pack>.<rule>" to its pack and spec; `locate(lat, lon)` gives the
        areas and cell of a place that is not a device's fixed position."""
        self.rules = rules
        self.registry = registry
        self.locate = locate
        self.open: dict[tuple[str, str], _Open] = {}
        # Cleared lately, by (rule, subject): fired again within FLAP_S, the episode resumes.
        self.cleared: dict[tuple[str, str], tuple[Alert, int]] = {}  # with its flap window
        self.flap_us = int(FLAP_S * US)

    def restore(self, alerts: list[Alert], now_us: int, grace_s: float = 600.0) -> None:
        """Alerts still open when the node stopped: kept open if their condition is seen again
        within `grace_s`, cleared otherwise (the rules' memory did not survive the restart)."""
        for alert in alerts:
            if alert.active and alert.rule in self.rules:
                self.open[(alert.rule, alert.subject)] = _Open(alert, now_us + int(grace_s * US))

    def apply(self, signals: list[Signal], device_state: Callable[[int], int]) -> list[AlertEvent]:
        """Fold signals in; returns at most one event per alert (raised wins over updated)."""
        events: dict[str, AlertEvent] = {}
        for signal in signals:
            key = (signal.rule, signal.subject)
            current = self.open.get(key)
            if signal.active:
                if current is None:
                    resumed = self._resume(key, signal)
                    if resumed is not None:
                        self.open[key] = _Open(resumed)
                        events[resumed.id] = AlertEvent("updated", resumed)
                        continue
                    alert = self._raise(signal, device_state)
                    self.open[key] = _Open(alert)
                    events[alert.id] = AlertEvent("raised", alert)
                else:
                    current.confirm_by_us = None
                    self._update(current.alert, signal)
                    if current.alert.id not in events:
                        events[current.alert.id] = AlertEvent("updated", current.alert)
            elif current is not None:
                del self.open[key]
                alert = current.alert
                alert.active = False
                alert.cleared_at = max(signal.ts_us / US, alert.last_seen)
                if signal.detail:
                    alert.detail = signal.detail
                self.cleared[key] = (alert, self._flap_window(signal))
                events[alert.id] = AlertEvent("cleared", alert)
        return list(events.values())

    def _resume(self, key: tuple[str, str], signal: Signal) -> Alert | None:
        """The episode cleared at this subject lately, open again (flapping), if any."""
        found = self.cleared.pop(key, None)
        if found is None:
            return None
        alert, window = found
        if alert.cleared_at is None or signal.ts_us - alert.cleared_at * US > window:
            return None
        alert.active = True
        alert.cleared_at = None
        alert.flaps += 1
        self._update(alert, signal)
        return alert

    def _flap_window(self, signal: Signal) -> int:
        _, rule = self.rules[signal.rule]
        if rule.flap is not None:
            return int(seconds(rule.flap) * US)
        if isinstance(rule, Absence) and 0 <= signal.device < len(self.registry):
            kind = self.registry.kinds[int(self.registry.kind_of[signal.device])]
            return max(self.flap_us, int(FLAP_PERIODS * kind.period_s * US))
        return self.flap_us

    def forget_cleared(self, now_us: int) -> None:
        """Episodes cleared longer ago than the flap window can no longer resume."""
        old = [k for k, (a, window) in self.cleared.items()
               if a.cleared_at is None or now_us - a.cleared_at * US > window]
        for key in old:
            del self.cleared[key]

    def expire_unconfirmed(self, now_us: int) -> list[AlertEvent]:
        events = []
        for key, current in list(self.open.items()):
            if current.confirm_by_us is not None and now_us >= current.confirm_by_us:
                del self.open[key]
                alert = current.alert
                alert.active = False
                alert.cleared_at = now_us / US
                alert.detail = "cleared: not confirmed after a restart of detection"
                events.append(AlertEvent("cleared", alert))
        return events

    def _raise(self, signal: Signal, device_state: Callable[[int], int]) -> Alert:
        pack, rule = self.rules[signal.rule]
        areas, cell, lat, lon = self._place(signal)
        state = STATE_NAMES[device_state(signal.device)] if signal.device >= 0 else "daily"
        return Alert(
            id=alert_id(signal.rule, signal.subject, signal.ts_us),
            scenario=pack.name,
            rule=signal.rule,
            category=pack.category.code,
            severity=rule.severity,
            urgency=pack.urgency,
            departments=list(pack.departments),
            subject=signal.subject,
            title=rule.title or pack.title,
            titles=dict(rule.titles if rule.title else pack.titles) or msgspec.UNSET,
            detail=signal.detail,
            areas=areas,
            cell=cell,
            lat=lat,
            lon=lon,
            first_seen=signal.ts_us / US,
            last_seen=signal.ts_us / US,
            value=None if math.isnan(signal.value) else signal.value,
            evidence=self._evidence(signal),
            state=state,
            auto_register=pack.auto_register,
            group=group_key(pack, rule, signal, areas, cell),
            group_within_s=seconds((rule.group or pack.group).within),
        )

    def _update(self, alert: Alert, signal: Signal) -> None:
        alert.last_seen = max(alert.last_seen, signal.ts_us / US)
        alert.updates += 1
        if not math.isnan(signal.value):
            alert.value = signal.value
        if signal.detail:
            alert.detail = signal.detail
        if signal.evidence:
            merged = {(e.device_id, e.channel, e.ts): e for e in alert.evidence}
            for e in self._evidence(signal):
                merged[(e.device_id, e.channel, e.ts)] = e
            alert.evidence = sorted(merged.values(), key=lambda e: e.ts)[-MAX_EVIDENCE:]

    def _place(self, signal: Signal
               ) -> tuple[AreaCodes | None, str | None, float | None, float | None]:
        if not math.isnan(signal.lat):
            areas, cell = self.locate(signal.lat, signal.lon)
            return areas, cell, signal.lat, signal.lon
        if signal.device >= 0:
            device = self.registry.devices[signal.device]
            return device.areas, device.cell, device.lat, device.lon
        return None, None, None, None

    def _evidence(self, signal: Signal) -> list[Evidence]:
        out = []
        for device, channel, ts_us, value in signal.evidence[-MAX_EVIDENCE:]:
            d = self.registry.devices[device]
            name = self.registry.kind(d.kind).channels[channel].name
            out.append(Evidence(d.id, name, ts_us / US, value))
        return out
