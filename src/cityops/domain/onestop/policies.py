"""Enjoy without applying: eligibility policies over the data the government already holds.

A policy is data (`policies.yaml` in the city pack): who qualifies, as a condition in the small
language of `expr.py` over citizen facts, attributes and e-licences, and what they get. A run
evaluates the condition over every citizen at once (column-wise, so 100,000 citizens take a
fraction of a second), and says for each who qualifies which conditions held, with the values.
Granting once per citizen and policy is the serve side's (a unique key in the store).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import numpy as np

from cityops.domain.citizens import Citizen
from cityops.domain.onestop.expr import Columns, Evaluation, Expr, ExprError, Val, evaluate
from cityops.domain.onestop.licences import Licence

_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


class Benefit(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    kind: str = "subsidy"  # subsidy, allowance, service, card ...
    amount: float | None = None
    unit: str = ""  # "CNY/month", "CNY/year", "hours/month"
    text: str = ""  # what the citizen gets, in a sentence


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True,
             dict=True):
    id: str
    name: str
    department: str  # who grants it
    when: str  # the condition, e.g. "age >= 80 and lives_alone"
    benefit: Benefit = Benefit()
    name_zh: str = ""
    description: str = ""
    notice: str = ""  # the text of the notice the citizen gets; default from the benefit
    active: bool = True

    @functools.cached_property
    def condition(self) -> Expr:
        return Expr(self.when)

    def notice_text(self) -> str:
        if self.notice:
            return self.notice
        b = self.benefit
        amount = f" of {b.amount:g} {b.unit}".rstrip() if b.amount is not None else ""
        what = b.text or f"{self.name}{amount}"
        return f"You qualify for {what}; nothing to apply for, it is granted to you."


class PolicyError(ValueError):
    pass


def check_policies(policies: Sequence[Policy], departments: set[str] | None = None,
                   licence_types: set[str] | None = None) -> None:
    seen: set[str] = set()
    for p in policies:
        where = f"policy {p.id!r}"
        if not _CODE.match(p.id):
            raise PolicyError(f"{where}: field 'id' must be snake_case, like elderly_care_80")
        if p.id in seen:
            raise PolicyError(f"{where}: listed twice")
        seen.add(p.id)
        if departments is not None and p.department not in departments:
            raise PolicyError(f"{where}: field 'department': unknown department "
                              f"{p.department!r}")
        try:
            condition = p.condition
        except ExprError as error:
            raise PolicyError(f"{where}: field 'when': {error}") from None
        if licence_types is not None:
            unknown = sorted(condition.licence_types() - licence_types)
            if unknown:
                raise PolicyError(f"{where}: field 'when': {unknown[0]!r} is not a licence "
                                  "type of the service catalogue")


class Population(Columns):
    """Citizens as columns for one run on `day`; columns are built when first read."""

    def __init__(self, citizens: Sequence[Citizen], licences: Iterable[Licence],
                 day: dt.date) -> None:
        self.citizens = citizens
        self.n = len(citizens)
        self.day = day
        self.ids = np.array([c.id for c in citizens], dtype=object)
        self._row = {c.id: i for i, c in enumerate(citizens)}
        # Only valid licences count; per type, the newest start date per holder.
        self._licences: dict[str, dict[str, dt.date]] = {}
        for lic in licences:
            if lic.holder in self._row and lic.state_on(day) == "valid":
                held = self._licences.setdefault(lic.type, {})
                if lic.holder not in held or lic.valid_from > held[lic.holder]:
                    held[lic.holder] = lic.valid_from
        self._cache: dict[Any, Val] = {}

    def name(self, name: str) -> Val:
        if name not in self._cache:
            self._cache[name] = self._build(name)
        return self._cache[name]

    def _build(self, name: str) -> Val:
        if name == "age":
            ages = np.fromiter((_age(c, self.day) for c in self.citizens), dtype=float,
                               count=self.n)
            return Val("number", ages, ~np.isnan(ages))
        if name == "area":
            data = _objects(c.area or None for c in self.citizens)
        else:
            data = _objects(c.attributes.get(name) for c in self.citizens)
        known = np.fromiter((x is not None for x in data), dtype=bool, count=self.n)
        return Val("obj", data, known)

    def call(self, fn: str, args: tuple[str, ...]) -> Val:
        key = (fn, args)
        if key not in self._cache:
            self._cache[key] = self._call(fn, args)
        return self._cache[key]

    def _call(self, fn: str, args: tuple[str, ...]) -> Val:
        everyone = np.ones(self.n, dtype=bool)
        if fn == "has_licence":
            held = self._licences.get(args[0], {})
            rows = np.zeros(self.n, dtype=bool)
            rows[[self._row[h] for h in held]] = True
            return Val("bool", rows, everyone)
        if fn == "licence_days":
            days = np.full(self.n, np.nan)
            for holder, since in self._licences.get(args[0], {}).items():
                days[self._row[holder]] = (self.day - since).days
            return Val("number", days, ~np.isnan(days))
        if fn == "area_in":
            prefixes = tuple(args)
            area = self.name("area")
            hit = np.fromiter((isinstance(a, str) and a.startswith(prefixes) for a in area.data),
                              dtype=bool, count=self.n)
            return Val("bool", hit, everyone)
        raise ExprError(f"unknown function {fn}()")


def _age(c: Citizen, day: dt.date) -> float:
    age = c.age_on(day)
    return float("nan") if age is None else float(age)


def _objects(values: Iterable[Any]) -> np.ndarray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


class Qualified(msgspec.Struct, frozen=True):
    citizen: str
    audit: list[dict[str, Any]]


def qualify(policy: Policy, population: Population) -> list[Qualified]:
    """Who qualifies, with the audit of why, in the population's order."""
    ev: Evaluation = evaluate(policy.condition, population)
    rows = np.flatnonzero(ev.result)
    return [Qualified(str(population.ids[r]), ev.audit(int(r))) for r in rows]
