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

from cityops.domain.alerts import Alert, AlertEvent, Evidence
from cityops.domain.city import AreaCodes
from cityops.domain.registry import DeviceRegistry
from cityops.domain.scenarios.signals import MAX_EVIDENCE, Signal
from cityops.domain.scenarios.spec import AnyRule, ScenarioPack

US = 1_000_000
STATE_NAMES = ("daily", "special", "emergency")


def alert_id(rule: str, subject: str, first_seen_us: int) -> str:
    digest = hashlib.blake2b(f"{rule}|{subject}|{first_seen_us}".encode(), digest_size=10)
    return "al_" + digest.hexdigest()


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
                events[alert.id] = AlertEvent("cleared", alert)
        return list(events.values())

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
