"""Silences: an operator's "I know, stop telling me" for a while, for some alerts.

A silence has matchers and a time span. An alert it holds is still recorded, marked with the
silence's id, but opens no case and notifies no one. Matchers name what an alert must be; all
the matchers given must match, and each lists values of which any one matches:

- `pack`: the scenario pack that raised it (`Alert.scenario`);
- `rule`: the rule, `"<pack>.<rule id>"` (`Alert.rule`);
- `category`: the pack's category code (`Alert.category`);
- `device`: the alert's subject, when it is that device. Only the subject: an alert about a
  cell or an area that some device's readings contributed to is not held by silencing that
  device, because the other devices of the cell may be telling the truth (a faulty smoke
  detector silenced must not silence a fire its neighbours see);
- `kind`: the kind of the subject device (an alert about a cell has no device kind);
- `area`: any area code (district, town or village); it matches an alert whose place lies in
  that area.

A silence of everything is refused: a city-wide mute is one slip away from missing a fire, so
at least one matcher is required, and what it names must exist on the node (a misspelt rule
would make a silence that silences nothing while its author thinks otherwise).

The engine asks about every alert it raises, hundreds a second in a storm, so `SilenceSet`
indexes silences by one of their matchers and checks only the few that could hold an alert.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from cityops.domain.alerts import Alert
from cityops.domain.scenarios.spec import seconds

MATCHERS = ("pack", "rule", "category", "device", "kind", "area")
MAX_VALUES = 100  # values per matcher
MAX_COMMENT = 500
DEFAULT_MAX_S = 30 * 86400.0

SilenceState = Literal["pending", "active", "ended"]
KindOf = Callable[[str], str | None]  # a device id's kind; None when it is no device

Value = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Values = Annotated[list[Value], msgspec.Meta(max_length=MAX_VALUES)]


class Matchers(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    pack: Values = []
    rule: Values = []
    category: Values = []
    device: Values = []
    kind: Values = []
    area: Values = []

    def given(self) -> list[tuple[str, list[str]]]:
        """The matchers that name something, in `MATCHERS` order."""
        return [(name, values) for name in MATCHERS if (values := getattr(self, name))]


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    matchers: Matchers
    starts_at: float  # epoch seconds
    ends_at: float  # as asked; `expired_at` ends it earlier
    comment: str  # why
    created_by: str  # the key id (or "cli:<login>")
    created_by_name: str = ""
    created_at: float
    expired_at: float | None = None
    expired_by: str | None = None
    expired_reason: str = ""

    @property
    def end(self) -> float:
        """When it stops holding: its end, or the moment it was expired if that came first."""
        if self.expired_at is None:
            return self.ends_at
        return min(self.ends_at, self.expired_at)

    def state(self, now: float) -> SilenceState:
        if now >= self.end:
            return "ended"
        return "pending" if now < self.starts_at else "active"

    def in_force(self, now: float) -> bool:
        return self.starts_at <= now < self.end


class SilenceError(ValueError):
    """A silence that cannot be made as asked; `field` names what is wrong
    (`matchers.rule`, `ends_at` ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class SilenceEnded(ValueError):
    """Expiring a silence that no longer holds anything."""


@dataclass(frozen=True)
class Known:
    """What the node knows, to check matchers against: packs with their rules ("pack.rule")
    and category, the device kinds, the area codes and the devices."""

    rules_of: Mapping[str, Iterable[str]]  # pack name -> its rules as "pack.rule"
    category_of: Mapping[str, str]  # pack name -> its category code
    categories: Container[str]  # every category an alert may carry (packs' and the city's)
    kinds: Container[str]
    areas: Container[str]
    devices: Container[str]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values))


def check_matchers(m: Matchers, known: Known) -> Matchers:
    """`m` with values trimmed and deduplicated, or SilenceError naming the first problem."""
    m = Matchers(**{name: _unique(values) for name, values in m.given()})
    if not m.given():
        raise SilenceError("matchers", "give at least one of pack, rule, category, device, "
                                       "kind or area: a silence of everything is refused")
    rule_pack = {r: p for p, rules in known.rules_of.items() for r in rules}
    checks: list[tuple[str, list[str], Container[str], str]] = [
        ("pack", m.pack, known.rules_of, "pack"),
        ("rule", m.rule, rule_pack, "rule (write it as pack.rule)"),
        ("category", m.category, known.categories, "category"),
        ("device", m.device, known.devices, "device"),
        ("kind", m.kind, known.kinds, "device kind"),
        ("area", m.area, known.areas, "area code"),
    ]
    for name, values, container, what in checks:
        for value in values:
            if not value or value not in container:
                raise SilenceError(f"matchers.{name}", f"unknown {what} {value!r}")
    # Matchers that contradict each other would make a silence that holds nothing.
    if m.pack and m.rule:
        stray = [r for r in m.rule if rule_pack[r] not in m.pack]
        if stray:
            raise SilenceError("matchers.rule", f"rule {stray[0]!r} is not of the pack(s) "
                                                f"{', '.join(m.pack)}: the silence would hold "
                                                "nothing")
    if m.category and (m.pack or m.rule):
        packs = set(m.pack) | {rule_pack[r] for r in m.rule}
        if not any(known.category_of.get(p) in m.category for p in packs):
            raise SilenceError("matchers.category", "no pack or rule named has that category: "
                                                    "the silence would hold nothing")
    return m


def packs_reached(m: Matchers, known: Known) -> set[str]:
    """The packs whose alerts the silence may hold (what a department key must own)."""
    packs = set(known.rules_of)
    if m.pack:
        packs &= set(m.pack)
    if m.rule:
        rule_pack = {r: p for p, rules in known.rules_of.items() for r in rules}
        packs &= {rule_pack[r] for r in m.rule if r in rule_pack}
    if m.category:
        packs = {p for p in packs if known.category_of.get(p) in m.category}
    return packs


def span(now: float, *, starts_at: float | None, ends_at: float | None,
         duration: str | None, max_s: float = DEFAULT_MAX_S) -> tuple[float, float]:
    """The (start, end) a request asks for: `ends_at`, or `duration` from the start (one of
    them); a start in the past is taken as now, since nothing before now can be held."""
    start = now if starts_at is None else starts_at
    if not math.isfinite(start):
        raise SilenceError("starts_at", "is not a finite time (epoch seconds)")
    start = max(start, now)
    if start - now > max_s:
        raise SilenceError("starts_at", f"starts more than {_days(max_s)} ahead")
    if ends_at is not None and duration is not None:
        raise SilenceError("duration", "give ends_at or duration, not both")
    if ends_at is None and duration is None:
        raise SilenceError("ends_at", "give ends_at (epoch seconds) or duration (2h)")
    if duration is not None:
        try:
            length = seconds(duration)
        except ValueError:
            raise SilenceError("duration", f"{duration!r} is not like 90m, 2h or 3d") from None
        if length <= 0:
            raise SilenceError("duration", "must be longer than nothing")
        end = start + length
        field = "duration"
    else:
        assert ends_at is not None
        end = ends_at
        field = "ends_at"
        if not math.isfinite(end):
            raise SilenceError("ends_at", "is not a finite time (epoch seconds)")
        if end <= now:
            raise SilenceError("ends_at", "has already passed")
        if end <= start:
            raise SilenceError("ends_at", "ends before it starts")
    if end - start > max_s:
        raise SilenceError(field, f"a silence lasts at most {_days(max_s)}; make a new one "
                                  "when it ends if it is still needed")
    return start, end


def _days(s: float) -> str:
    return f"{s / 86400:g} days" if s >= 86400 else f"{s / 3600:g} hours"


def check_comment(comment: str) -> str:
    text = comment.strip()
    if not text:
        raise SilenceError("comment", "say why the alerts are silenced (required)")
    if len(text) > MAX_COMMENT:
        raise SilenceError("comment", f"at most {MAX_COMMENT} characters")
    return text


def new_silence(*, silence_id: str, matchers: Matchers, comment: str, now: float,
                known: Known, created_by: str, created_by_name: str = "",
                starts_at: float | None = None, ends_at: float | None = None,
                duration: str | None = None, max_s: float = DEFAULT_MAX_S) -> Silence:
    """A checked silence, or SilenceError naming the first field at fault."""
    checked = check_matchers(matchers, known)
    start, end = span(now, starts_at=starts_at, ends_at=ends_at, duration=duration, max_s=max_s)
    return Silence(id=silence_id, matchers=checked, starts_at=start, ends_at=end,
                   comment=check_comment(comment), created_by=created_by,
                   created_by_name=created_by_name, created_at=now)


def expired(silence: Silence, *, by: str, reason: str, now: float) -> Silence:
    """`silence` ended now; SilenceEnded when it has already stopped holding."""
    if silence.state(now) == "ended":
        raise SilenceEnded(f"silence {silence.id} has already ended")
    if len(reason) > MAX_COMMENT:
        raise SilenceError("reason", f"at most {MAX_COMMENT} characters")
    return msgspec.structs.replace(silence, expired_at=now, expired_by=by,
                                   expired_reason=reason.strip())


# -- matching ---------------------------------------------------------------------------------


def _no_kind(device_id: str) -> str | None:
    return None


class _Compiled:
    """A silence's matchers as sets, for membership tests on every raised alert."""

    __slots__ = ("silence", "pack", "rule", "category", "device", "kind", "area")

    def __init__(self, silence: Silence) -> None:
        m = silence.matchers
        self.silence = silence
        self.pack = frozenset(m.pack)
        self.rule = frozenset(m.rule)
        self.category = frozenset(m.category)
        self.device = frozenset(m.device)
        self.kind = frozenset(m.kind)
        self.area = frozenset(m.area)

    def matches(self, alert: Alert, kind_of: KindOf) -> bool:
        if self.rule and alert.rule not in self.rule:
            return False
        if self.pack and alert.scenario not in self.pack:
            return False
        if self.category and alert.category not in self.category:
            return False
        if self.device and alert.subject not in self.device:
            return False
        if self.area:
            areas = alert.areas
            if areas is None or self.area.isdisjoint((areas.district, areas.town,
                                                      areas.village)):
                return False
        if self.kind and kind_of(alert.subject) not in self.kind:
            return False
        return True


def matches(silence: Silence, alert: Alert, kind_of: KindOf = _no_kind) -> bool:
    """Whether the silence's matchers fit the alert (time aside)."""
    return _Compiled(silence).matches(alert, kind_of)


# The matcher each silence is filed under, most selective first: an alert then looks up its
# rule, subject, pack, category, three area codes and (only when some silence is filed so)
# its device's kind, and checks the few silences found there.
_INDEX_ORDER = ("rule", "device", "pack", "category", "area", "kind")


class SilenceSet:
    """Silences indexed for `match`; build a new one when they change."""

    def __init__(self, silences: Iterable[Silence], kind_of: KindOf = _no_kind) -> None:
        self.kind_of = kind_of
        self._by: dict[str, dict[str, list[_Compiled]]] = {f: {} for f in _INDEX_ORDER}
        self._count = 0
        for silence in silences:
            compiled = _Compiled(silence)
            field = next((f for f in _INDEX_ORDER if getattr(compiled, f)), None)
            if field is None:
                continue  # refused when made; one read from elsewhere holds nothing here
            for value in getattr(compiled, field):
                self._by[field].setdefault(value, []).append(compiled)
            self._count += 1

    def __len__(self) -> int:
        return self._count

    def candidates(self, alert: Alert) -> list[_Compiled]:
        by = self._by
        found: list[_Compiled] = []
        for field, key in (("rule", alert.rule), ("device", alert.subject),
                           ("pack", alert.scenario), ("category", alert.category)):
            hit = by[field].get(key)
            if hit:
                found += hit
        if by["area"] and alert.areas is not None:
            a = alert.areas
            for code in (a.district, a.town, a.village):
                hit = by["area"].get(code)
                if hit:
                    found += hit
        if by["kind"]:
            kind = self.kind_of(alert.subject)
            if kind is not None:
                found += by["kind"].get(kind, [])
        return found

    def match(self, alert: Alert, now: float) -> Silence | None:
        """The silence in force at `now` that holds the alert; of several, the one that holds
        longest (so the alert stays held until the last of them ends), ties by id."""
        best: Silence | None = None
        for c in self.candidates(alert):
            s = c.silence
            if not s.in_force(now) or not c.matches(alert, self.kind_of):
                continue
            if best is None or (s.end, s.id) > (best.end, best.id):
                best = s
        return best
