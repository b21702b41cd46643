"""What a decoded pack must also mean: rules that read real channels, durations and hours that
parse, levels that can be reached, per-state overrides of parameters the rule has.

Every check yields `(field path, message)` with the path as the manifest spells it
(`rules[2].for`, `rules[0].states.special.above`), so that an error can point at the line
to fix. Checks that need every pack (unique names, composite references) live in the loader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

from cityops.domain.calendar import parse_hours
from cityops.domain.city import DeviceKind, level_of_code
from cityops.domain.kinds import CAMERA_EVENTS
from cityops.domain.scenarios import spec

Problem = tuple[str, str]

NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# Fields that hold a duration, and those of them that must be longer than nothing (a window
# or a span of zero seconds holds no reading at all).
DURATIONS = ("for_", "within", "clear_after", "over", "dwell", "max_period", "flap")
POSITIVE_DURATIONS = ("within", "over")

# What a rule is about is fixed when it is built (which devices, channels, zones, rules it
# reads); only how strict it is may change with the operating state.
FIXED = frozenset({"id", "title", "titles", "kind", "channel", "states", "where", "event", "zones",
                   "routes", "all_of", "source", "per", "agg", "method", "weeks", "alpha"})

# Rule types that read one channel of one device kind and cannot guess which.
NEEDS_KIND = (spec.Threshold, spec.RateOfChange, spec.Quiet, spec.Baseline)
MOVERS_ONLY = (spec.Geofence, spec.RouteDeviation)


def encoded(rule_type: type, attr: str) -> str:
    """The name a manifest uses for a rule field (`for`, not `for_`)."""
    for field in msgspec.structs.fields(rule_type):
        if field.name == attr:
            return field.encode_name
    return attr


def attribute(rule_type: type, name: str) -> str | None:
    """The attribute of a rule field given as it is written in a manifest or in Python."""
    for field in msgspec.structs.fields(rule_type):
        if name in (field.name, field.encode_name):
            return field.name
    return None


def check_pack(pack: spec.ScenarioPack, kinds: dict[str, DeviceKind],
               departments: set[str] | None) -> Iterator[Problem]:
    """Problems of one pack. Rules whose per-state overrides are sound get them rewritten to
    attribute names and typed values, which is what `spec.param(rule, name, state)` expects."""
    if not NAME.match(pack.name):
        yield "name", f"{pack.name!r} must be snake_case (rules are referred to as pack.rule)"
    if pack.version < 1:
        yield "version", f"must be 1 or more, got {pack.version}"
    prefix = f"{pack.category.kind}."
    if not pack.category.code.startswith(prefix):
        yield "category.code", (f"{pack.category.code!r} must start with {prefix!r}, "
                                f"as the category is a{'n' if prefix[0] == 'e' else ''} "
                                f"{pack.category.kind}")
    yield from _prefixed("titles", _check_names(pack.titles))
    yield from _prefixed("category.names", _check_names(pack.category.names))
    if not pack.departments:
        yield "departments", "name at least one department"
    yield from _duplicates("departments", pack.departments)
    if departments is not None:
        for i, code in enumerate(pack.departments):
            if code not in departments:
                yield f"departments[{i}]", (f"unknown department {code!r} (known: "
                                            f"{', '.join(sorted(departments))})")
    if not pack.states:
        yield "states", "name at least one operating state the pack is active in"
    yield from _duplicates("states", pack.states)
    yield from _prefixed("group", check_group(pack.group))
    if not pack.rules:
        yield "rules", "a pack needs at least one rule"
    seen: dict[str, int] = {}
    for i, rule in enumerate(pack.rules):
        where = f"rules[{i}]"
        if not NAME.match(rule.id):
            yield f"{where}.id", f"{rule.id!r} must be snake_case"
        if rule.id in seen:
            yield f"{where}.id", f"{rule.id!r} is already the id of rules[{seen[rule.id]}]"
        seen.setdefault(rule.id, i)
        yield from _prefixed(where, check_rule(rule, kinds))
        yield from _prefixed(f"{where}.titles", _check_names(rule.titles))
        if rule.titles and not rule.title:
            yield f"{where}.titles", ("translates a title the rule does not have: give `title` "
                                      "(the pack's title is used without one)")
        problems, typed = check_overrides(rule, kinds)
        yield from _prefixed(where, problems)
        if not problems:
            rule.states = typed  # type: ignore[assignment]


def untranslated(pack: spec.ScenarioPack, language: str) -> Iterator[Problem]:
    """What a page in `language` would still show in the pack's own words: the category's
    name and every title a case can be opened with (a rule's, or the pack's for a rule with
    none). The packs shipped with CityOps must have all of it in Chinese."""
    if not pack.category.names.get(language):
        yield "category.names", f"the category's name in {language} is missing"
    if any(not rule.title for rule in pack.rules) and not pack.titles.get(language):
        yield "titles", (f"the pack's title in {language} is missing (rules without a title "
                         "open cases under it)")
    for i, rule in enumerate(pack.rules):
        if rule.title and not rule.titles.get(language):
            yield f"rules[{i}].titles", f"the title in {language} is missing"


def _check_names(names: dict[str, str]) -> Iterator[Problem]:
    # Keyed by language tag, as a city pack's names; a blank one would show as nothing.
    for tag, text in names.items():
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", tag):
            yield tag, f"{tag!r} is not a language tag (like zh-CN)"
        elif not text.strip():
            yield tag, "must not be empty"


def check_rule(rule: spec.AnyRule, kinds: dict[str, DeviceKind]) -> Iterator[Problem]:
    """Problems of one rule on its own (no other rule or pack involved)."""
    rtype = type(rule)
    kind = None
    if rule.kind is not None:
        kind = kinds.get(rule.kind)
        if kind is None:
            yield "kind", f"unknown device kind {rule.kind!r} (known: {', '.join(sorted(kinds))})"
    elif isinstance(rule, NEEDS_KIND) or (isinstance(rule, spec.Window)
                                          and rule.source == "readings"):
        yield "kind", f"a {_tag(rule)} rule must say which device kind it reads"
    channel = None
    if rule.channel is not None:
        if rule.kind is None:
            yield "channel", "a channel needs the kind it belongs to"
        elif kind is not None:
            names = [c.name for c in kind.channels]
            if rule.channel not in names:
                yield "channel", (f"kind {kind.name!r} has no channel {rule.channel!r} "
                                  f"(it has: {', '.join(names)})")
            else:
                channel = kind.channels[names.index(rule.channel)]
    elif kind is not None:
        channel = kind.primary

    for attr in DURATIONS:
        if not hasattr(rule, attr):
            continue
        value = getattr(rule, attr)
        if value is None:  # optional (flap): the default applies
            continue
        name = encoded(rtype, attr)
        try:
            secs = spec.seconds(value)
        except (ValueError, TypeError) as exc:
            yield name, str(exc)
            continue
        if secs < 0 or (attr in POSITIVE_DURATIONS and secs == 0):
            yield name, f"{value!r} must be {'longer than' if secs >= 0 else 'at least'} 0s"
    if rule.when is not None:
        yield from _prefixed("when", _check_when(rule.when))
    if rule.group is not None:
        yield from _prefixed("group", check_group(rule.group))
    if rule.where is not None:
        yield from _prefixed("where", _check_where(rule.where, kind))

    if isinstance(rule, spec.Threshold):
        yield from _check_threshold(rule, channel)
    elif isinstance(rule, spec.RateOfChange):
        if rule.rise is None and rule.fall is None:
            yield "rise", "give `rise` or `fall` (how much change within `within` counts)"
        for name in ("rise", "fall"):
            value = getattr(rule, name)
            if value is not None and value <= 0:
                yield name, f"must be more than 0, got {value}"
    elif isinstance(rule, spec.Window):
        if rule.above is None and rule.below is None:
            yield "above", "give `above` or `below` (what the aggregate must exceed or fall under)"
        if rule.min_count < 1:
            yield "min_count", f"must be 1 or more, got {rule.min_count}"
        if rule.distinct is not None and rule.agg != "count":
            yield "distinct", (f"counts devices: it goes with agg: count, not "
                               f"agg: {rule.agg}")
        if rule.value_above is not None and channel is not None:
            yield from _reachable("value_above", rule.value_above, channel, upward=True)
    elif isinstance(rule, spec.Absence):
        if rule.periods <= 0:
            yield "periods", f"must be more than 0, got {rule.periods}"
    elif isinstance(rule, spec.CameraEvent):
        events = sorted(set(CAMERA_EVENTS.values()) - {"none"})
        if rule.event not in events:
            yield "event", f"unknown camera event {rule.event!r} (known: {', '.join(events)})"
        if kind is not None:
            missing = {"event", "dwell"} - {c.name for c in kind.channels}
            if missing:
                yield "kind", (f"kind {kind.name!r} does not report camera events (no "
                               f"{' or '.join(sorted(missing))} channel)")
    elif isinstance(rule, spec.Geofence | spec.RouteDeviation):
        if kind is not None and not kind.mobile:
            yield "kind", f"kind {kind.name!r} does not move; {_tag(rule)} is for GPS movers"
        zone_kind = rule.zones if isinstance(rule, spec.Geofence) else rule.routes
        field = "zones" if isinstance(rule, spec.Geofence) else "routes"
        if not zone_kind:
            yield field, "name the kind of zone (as in the city pack's zones)"
        if isinstance(rule, spec.RouteDeviation) and rule.max_distance_m <= 0:
            yield "max_distance_m", f"must be more than 0, got {rule.max_distance_m}"
    elif isinstance(rule, spec.Composite):
        if rule.kind is not None or rule.channel is not None:
            yield "kind", "a composite reads the rules it combines, not devices"
        if len(rule.all_of) < 2:
            yield "all_of", "a composite combines at least two rules"
        yield from _duplicates("all_of", rule.all_of)
        if rule.distance_m <= 0:
            yield "distance_m", f"must be more than 0, got {rule.distance_m}"
    elif isinstance(rule, spec.Outage):
        if not rule.per:
            yield "per", "name at least one of gateway, village, town"
        yield from _duplicates("per", rule.per)
        for name in ("share", "clear_share"):
            if not 0 < getattr(rule, name) <= 1:
                yield name, f"is a share of devices: in (0, 1], got {getattr(rule, name)}"
        if rule.min_devices < 1:
            yield "min_devices", f"must be 1 or more, got {rule.min_devices}"
        if rule.late <= 0:
            yield "late", f"must be more than 0 reporting periods, got {rule.late}"
    elif isinstance(rule, spec.Baseline):
        if rule.z_above <= 0:
            yield "z_above", f"must be more than 0, got {rule.z_above}"
        if rule.z_below is not None and rule.z_below <= 0:
            yield "z_below", f"is a distance below the baseline: more than 0, got {rule.z_below}"
        if rule.weeks < 1:
            yield "weeks", f"must be 1 or more, got {rule.weeks}"
        if rule.min_history < 1 or (rule.method == "robust_z" and rule.min_history > rule.weeks):
            yield "min_history", (f"must be between 1 and weeks ({rule.weeks}), "
                                  f"got {rule.min_history}")
        if not 0 < rule.alpha <= 1:
            yield "alpha", f"must be in (0, 1], got {rule.alpha}"


def check_group(group: spec.Group) -> Iterator[Problem]:
    if not group.off and not group.by:
        yield "by", "name what alerts of one group share (category, village ...), or off: true"
    yield from _duplicates("by", group.by)
    try:
        if spec.seconds(group.within) <= 0:
            yield "within", f"{group.within!r} must be longer than 0s"
    except (ValueError, TypeError) as exc:
        yield "within", str(exc)


def _check_threshold(rule: spec.Threshold, channel) -> Iterator[Problem]:
    if (rule.above is None) == (rule.below is None):
        yield "above", "give exactly one of `above` and `below`"
        return
    if rule.above is not None:
        if rule.clear_above is not None:
            yield "clear_above", "goes with `below`; with `above` the rule clears `clear_below`"
        if rule.clear_below is not None and rule.clear_below > rule.above:
            yield "clear_below", (f"{rule.clear_below} is above the level {rule.above}: the "
                                  f"rule would clear while it still holds")
        if channel is not None:
            yield from _reachable("above", rule.above, channel, upward=True)
    else:
        if rule.clear_below is not None:
            yield "clear_below", "goes with `above`; with `below` the rule clears `clear_above`"
        if rule.clear_above is not None and rule.clear_above < rule.below:
            yield "clear_above", (f"{rule.clear_above} is below the level {rule.below}: the "
                                  f"rule would clear while it still holds")
        if channel is not None:
            yield from _reachable("below", rule.below, channel, upward=False)


def _reachable(name: str, level: float, channel, *, upward: bool) -> Iterator[Problem]:
    # Intake rejects readings outside the channel's range, so such a level can never be met.
    if upward and level >= channel.max:
        yield name, (f"{level} {channel.unit} can never be exceeded: {channel.name} reads at "
                     f"most {channel.max}")
    if not upward and level <= channel.min:
        yield name, (f"{level} {channel.unit} can never be undercut: {channel.name} reads at "
                     f"least {channel.min}")


def _check_when(when: spec.When) -> Iterator[Problem]:
    if when.hours is not None:
        try:
            parse_hours(when.hours)
        except (ValueError, AttributeError) as exc:
            yield "hours", str(exc)
    for i, month in enumerate(when.months or []):
        if not 1 <= month <= 12:
            yield f"months[{i}]", f"{month} is not a month (1..12)"
    for i, day in enumerate(when.weekdays or []):
        if not 1 <= day <= 7:
            yield f"weekdays[{i}]", f"{day} is not an ISO weekday (1 Monday .. 7 Sunday)"


def _check_where(where: spec.Where, kind: DeviceKind | None) -> Iterator[Problem]:
    for i, code in enumerate(where.areas):
        try:
            level_of_code(code)
        except ValueError as exc:
            yield f"areas[{i}]", str(exc)
    if where.role is not None and kind is not None and not kind.mobile:
        yield "role", f"roles are for GPS movers; kind {kind.name!r} does not move"


def check_overrides(rule: spec.AnyRule, kinds: dict[str, DeviceKind]
                    ) -> tuple[list[Problem], dict[str, dict[str, Any]]]:
    """Each state's overrides must name parameters of the rule, have their types and leave the
    rule valid. Returns the problems and the overrides keyed by attribute name (`for_`) with
    typed values (`When`, float), as `spec.param` looks them up."""
    rtype = type(rule)
    base = msgspec.to_builtins(rule)
    base.pop("states", None)
    problems: list[Problem] = []
    typed: dict[str, dict[str, Any]] = {}
    for state, overrides in rule.states.items():
        where = f"states.{state}"
        renamed: dict[str, str] = {}  # encoded name -> name as written
        for name in overrides:
            attr = attribute(rtype, name) if isinstance(name, str) else None
            if attr is None:
                have = sorted(encoded(rtype, f.name) for f in msgspec.structs.fields(rtype)
                              if f.name not in FIXED)
                problems.append((f"{where}.{name}", f"a {_tag(rule)} rule has no parameter "
                                 f"{name!r} (it has: {', '.join(have)})"))
            elif attr in FIXED:
                problems.append((f"{where}.{name}", f"{name!r} cannot change with the operating "
                                 "state; only levels, durations, severity and hours can"))
            else:
                renamed[encoded(rtype, attr)] = name
        if len(renamed) < len(overrides):
            continue
        merged = {**base, **{enc: overrides[name] for enc, name in renamed.items()}}
        try:
            variant = msgspec.convert(merged, rtype)
        except msgspec.ValidationError as exc:
            message, path = split_validation_error(exc)
            problems.append((f"{where}.{path}" if path else where, message))
            continue
        changed = set(renamed)
        for path, message in check_rule(variant, kinds):
            if path.split(".")[0].split("[")[0] in changed or _relational(path, changed):
                problems.append((f"{where}.{path}", message))
        typed[state] = {attribute(rtype, enc): getattr(variant, attribute(rtype, enc))
                        for enc in renamed}
    return problems, typed


def _relational(path: str, changed: set[str]) -> bool:
    # A threshold's clear level is checked against its level: overriding either can break it.
    pairs = {"clear_below": "above", "clear_above": "below", "min_history": "weeks"}
    return path in pairs and pairs[path] in changed


def split_validation_error(exc: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's 'Expected `float`, got `str` - at `$.rules[0].above`' as (message, path)."""
    text = str(exc)
    message, sep, at = text.rpartition(" - at `")
    if not sep:  # an error of the document itself carries no path
        message, at = text, "$`"
    path = at.rstrip("`")
    if path.startswith("key` in `"):
        path = path[len("key` in `"):]
        message = f"{message} (a key)"
    path = path.removeprefix("$").removeprefix(".")
    unknown = re.match(r"Object contains unknown field `(.+)`", message)
    if unknown:
        return "unknown field", f"{path}.{unknown.group(1)}" if path else unknown.group(1)
    missing = re.match(r"Object missing required field `(.+)`", message)
    if missing:
        return "required field is missing", (f"{path}.{missing.group(1)}" if path
                                             else missing.group(1))
    return message, path


def _tag(rule: spec.AnyRule) -> str:
    return str(type(rule).__struct_config__.tag)


def _duplicates(path: str, values: list) -> Iterator[Problem]:
    seen = set()
    for i, value in enumerate(values):
        if value in seen:
            yield f"{path}[{i}]", f"{value!r} is listed twice"
        seen.add(value)


def _prefixed(prefix: str, problems) -> Iterator[Problem]:
    for path, message in problems:
        yield (f"{prefix}.{path}" if path else prefix), message
