"""The case categories of a city: component or event, major and minor codes, who handles them,
how urgent they are and how long each step may take (SPEC section 4). Data, not code: a city
pack may carry its own table in `categories.yaml`; `packs/categories.yaml` is the default set."""

from __future__ import annotations

from collections.abc import Iterator
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


class CategoryTable:
    """Lookup by code, with a stand-in for a code the table lacks (an alert of a newly
    installed scenario pack must still become a case, routed as its pack says)."""

    def __init__(self, categories: list[Category]) -> None:
        self._by_code = {c.code: c for c in categories}

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: str) -> Category | None:
        return self._by_code.get(code)

    def resolve(
        self, code: str, *, departments: list[str] | None = None, urgency: str | None = None
    ) -> Category:
        found = self._by_code.get(code)
        if found is not None:
            return found
        parts = (code.split(".") + ["other", "other"])[:3]
        kind: Literal["component", "event"] = "component" if parts[0] == "component" else "event"
        level = urgency if urgency in URGENCIES else "normal"
        return Category(
            code=code,
            name=code,
            kind=kind,
            major=parts[1],
            minor=parts[2],
            departments=list(departments or ["city_management"]),
            urgency=level,
            limits=EMERGENCY_LIMITS if level == "urgent" else StepLimits(),
        )


EMERGENCY_LIMITS = StepLimits(dispatch="5min", accept="5min", finish="60min", verify="30min")
