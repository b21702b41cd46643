"""The case categories of a city: component or event, major and minor codes, who handles them,
how urgent they are and how long each step may take (SPEC section 4). Data, not code: a city
pack may carry its own table in `categories.yaml`; `packs/categories.yaml` is the default set."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

import msgspec

URGENCIES = ("low", "normal", "high", "urgent")


class StepLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Time limits per step, as text the working-hours clock parses ("1wh", "20wd", "30min").

    Working hours or days for ordinary cases; wall-clock minutes for emergencies, which do
    not wait for the office to open."""

    dispatch: str = "1wh"  # reported -> registered and dispatched
    accept: str = "1wh"  # dispatched -> the unit accepts
    finish: str = "4wh"  # dispatched -> the unit reports it done
    verify: str = "1wh"  # done -> verified on site and closed


class Identity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When two reports of related categories are about the same component."""

    device: bool = True  # both name the same device (a sensor's alert names its own)
    component: bool = True  # both name the same component id (`data.component`)
    within_m: float = 0.0  # or they lie this close (0: nearness alone is not enough)


class Related(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Categories that describe one component's troubles in different words (a manhole
    tilted, its cover missing, the facility damaged): a report of one of them joins an open
    case of another when `same` says they are about the same component."""

    name: str  # what the component is called in a merge's reason: "same manhole: ..."
    categories: list[str]
    same: Identity = Identity()
    # A category shared by several groups (a sensor's "public facility damaged" is raised for
    # manholes and lamps alike): an alert belongs to this group only when one of these
    # scenario rules raised it. Empty: any alert of the group's categories.
    rules: list[str] = []

    def takes(self, rule: str | None) -> bool:
        return not self.rules or rule is None or rule in self.rules


class Category(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: str  # "<kind>.<major>.<minor>", e.g. "event.sanitation.exposed_garbage"
    name: str
    kind: Literal["component", "event"]
    major: str
    minor: str
    departments: list[str]  # every one gets a work order: joint dispatch
    urgency: str = "normal"
    limits: StepLimits = StepLimits()
    # Reports of this category this close to an open case, this soon, join it (seconds, metres).
    merge_radius_m: float = 200.0
    merge_window_s: float = 86400.0
    # Alerts of this category become registered cases without an operator's check.
    auto_register: bool = True
    # A public warning (CAP) may be issued: its CAP category (Met, Fire, Safety ...), or "".
    cap_category: str = ""
    # The related groups it belongs to: set from categories.yaml's `related:` section (one
    # place to declare a group), never written on a category itself.
    related: list[Related] = []
    names: dict[str, str] = {}  # the name in other languages ({"zh-CN": ...}), as Area.names

    @property
    def urgent(self) -> bool:
        return self.urgency == "urgent"


class CategoryError(ValueError):
    pass


def check_categories(categories: list[Category], departments: set[str] | None = None) -> None:
    """Refuse a table a dispatcher could not work with, naming the category and field."""
    seen: set[str] = set()
    for c in categories:
        where = f"category {c.code!r}"
        if c.code in seen:
            raise CategoryError(f"{where}: listed twice")
        seen.add(c.code)
        parts = c.code.split(".")
        if len(parts) != 3 or parts[0] != c.kind:
            raise CategoryError(f"{where}: code must read '{c.kind}.<major>.<minor>'")
        if (parts[1], parts[2]) != (c.major, c.minor):
            raise CategoryError(f"{where}: major/minor ({c.major}, {c.minor}) differ from the code")
        if c.urgency not in URGENCIES:
            raise CategoryError(f"{where}: urgency {c.urgency!r} is not one of {URGENCIES}")
        if not c.departments:
            raise CategoryError(f"{where}: field 'departments' must name at least one department")
        if departments is not None:
            unknown = [d for d in c.departments if d not in departments]
            if unknown:
                raise CategoryError(f"{where}: unknown department {unknown[0]!r}")
        if c.merge_radius_m < 0 or c.merge_window_s < 0:
            raise CategoryError(f"{where}: merge radius and window must not be negative")
    check_related(related_groups(categories), seen)


MAX_WITHIN_M = 1000.0  # farther apart than this, two reports are not about one component


def check_related(groups: list[Related], codes: set[str]) -> None:
    """Refuse related groups a merge could not work with, naming the group and field."""
    names: set[str] = set()
    for g in groups:
        where = f"related group {g.name!r}"
        if not g.name.strip():
            raise CategoryError("related group: field 'name' must not be empty")
        if g.name in names:
            raise CategoryError(f"{where}: listed twice")
        names.add(g.name)
        if len(set(g.categories)) < 2:
            raise CategoryError(f"{where}: field 'categories' must name at least two "
                                "different categories")
        for code in g.categories:
            if code not in codes:
                raise CategoryError(f"{where}: field 'categories': unknown category {code!r}")
        same = g.same
        if not (same.device or same.component or same.within_m > 0):
            raise CategoryError(f"{where}: field 'same' must allow at least one of device, "
                                "component or within_m > 0")
        if not 0 <= same.within_m <= MAX_WITHIN_M:
            raise CategoryError(f"{where}: field 'same.within_m' must lie between 0 and "
                                f"{MAX_WITHIN_M:g} metres")


def related_groups(categories: list[Category]) -> list[Related]:
    """The distinct related groups the categories carry, by name."""
    out: dict[str, Related] = {}
    for c in categories:
        for g in c.related:
            out.setdefault(g.name, g)
    return sorted(out.values(), key=lambda g: g.name)


def with_related(categories: list[Category], groups: list[Related]) -> list[Category]:
    """The categories with each one's related group set (none for a category in no group)."""
    ordered = sorted(groups, key=lambda g: g.name)
    return [msgspec.structs.replace(c, related=[g for g in ordered if c.code in g.categories])
            for c in categories]


class CategoryTable:
    """Lookup by code, with a stand-in for a code the table lacks (an alert of a newly
    installed scenario pack must still become a case, routed as its pack says).

    `named` holds what the scenario packs call the categories they raise, as (name, names)
    by code: a stand-in is named as its pack names it, in every language the pack has,
    rather than by its code."""

    def __init__(self, categories: list[Category], *,
                 named: Mapping[str, tuple[str, Mapping[str, str]]] | None = None) -> None:
        self._by_code = {c.code: c for c in categories}
        self._named = dict(named or {})

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: str) -> Category | None:
        return self._by_code.get(code)

    def related_to(self, code: str) -> list[tuple[Related, list[Category]]]:
        """The related groups of `code`, each with its other categories in this table."""
        found = self._by_code.get(code)
        if found is None:
            return []
        return [(g, [c for x in g.categories if x != code
                     and (c := self._by_code.get(x)) is not None]) for g in found.related]

    def resolve(
        self, code: str, *, departments: list[str] | None = None, urgency: str | None = None
    ) -> Category:
        found = self._by_code.get(code)
        if found is not None:
            return found
        parts = (code.split(".") + ["other", "other"])[:3]
        kind: Literal["component", "event"] = "component" if parts[0] == "component" else "event"
        level = urgency if urgency in URGENCIES else "normal"
        name, names = self._named.get(code, (code, {}))
        return Category(
            code=code,
            name=name,
            names=dict(names),
            kind=kind,
            major=parts[1],
            minor=parts[2],
            departments=list(departments or ["city_management"]),
            urgency=level,
            limits=EMERGENCY_LIMITS if level == "urgent" else StepLimits(),
        )


EMERGENCY_LIMITS = StepLimits(dispatch="5min", accept="5min", finish="60min", verify="30min")
