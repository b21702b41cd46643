"""Eligibility policies: the expression language (parsed by hand, refusing what it does not
know), three-valued logic over missing facts, licences in conditions, the audit of why, the
default policies, and a 100,000-citizen batch evaluated column-wise."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from cityops.domain.citizens import Citizen
from cityops.domain.onestop.expr import Expr, ExprError
from cityops.domain.onestop.licences import Licence
from cityops.domain.onestop.policies import Policy, PolicyError, Population, check_policies, qualify
from cityops.packs.errors import PackError
from cityops.packs.policies_file import default_policies, policies_from_yaml

DAY = dt.date(2026, 11, 23)


def born(age: int) -> dt.date:
    return dt.date(DAY.year - age, 1, 1)


PEOPLE = [
    Citizen(id="alone-84", name="A", birth_date=born(84),
            attributes={"lives_alone": True, "hukou": "local"}),
    Citizen(id="family-85", name="B", birth_date=born(85), attributes={"lives_alone": False}),
    Citizen(id="alone-79", name="C", birth_date=born(79), attributes={"lives_alone": True}),
    Citizen(id="alone-unknown-age", name="D", attributes={"lives_alone": True}),
    Citizen(id="unknown-90", name="E", birth_date=born(90), attributes={"hukou": "local"}),
    Citizen(id="parent", name="F", birth_date=born(32), area="310115001002",
            attributes={"lives_alone": "yes"}),
]
LICENCES = [
    Licence(id="l1", holder="parent", issuer="health", type="birth_medical_certificate",
            number="B1", valid_from=DAY - dt.timedelta(days=40)),
    Licence(id="l2", holder="alone-84", issuer="health", type="birth_medical_certificate",
            number="B0", valid_from=dt.date(1980, 1, 1), revoked_at=1.0),
]


def who(when: str) -> list[str]:
    policy = Policy(id="p", name="P", department="civil_affairs", when=when)
    return [q.citizen for q in qualify(policy, Population(PEOPLE, LICENCES, DAY))]


@pytest.mark.parametrize(("when", "qualified"), [
    ("age >= 80 and lives_alone", ["alone-84"]),
    ("age >= 80 and lives_alone == true", ["alone-84"]),
    ("age >= 80", ["alone-84", "family-85", "unknown-90"]),
    # Unknown facts are unknown: not "not alone", and not "under 80".
    ("age >= 80 and not lives_alone", ["family-85"]),
    ("not (age < 80)", ["alone-84", "family-85", "unknown-90"]),
    ("lives_alone or age >= 90", ["alone-84", "alone-79", "alone-unknown-age", "unknown-90"]),
    ("lives_alone == null", ["unknown-90"]),
    ("birth_date != null and age < 0", []),
    ("hukou == 'local' and age >= 90", ["unknown-90"]),
    ("hukou in ['local', 'other'] and age < 85", ["alone-84"]),
    ("hukou not in ['local'] ", []),
    ("has_licence('birth_medical_certificate')", ["parent"]),  # a revoked one does not count
    ("licence_days('birth_medical_certificate') <= 30", []),
    ("licence_days('birth_medical_certificate') <= 365", ["parent"]),
    ("area_in('310115001', '310115009')", ["parent"]),
    ("age >= -1 and age < 33", ["parent"]),
])
def test_conditions(when, qualified) -> None:
    assert who(when) == qualified


@pytest.mark.parametrize(("when", "error"), [
    ("age >= 'eighty'", ">= compares numbers, not text"),
    ("age >=", "unexpected the end at character 7"),
    ("age => 80", "unexpected '=' at character 5"),
    ("__import__('os')", "unknown function __import__()"),
    ("__import__('os').system('true')", "unexpected '.' at character 17"),
    ("lives_alone.__class__", "unexpected '.'"),
    ("has_licence(business_licence)", "has_licence() takes quoted text"),
    ("has_licence('a', 'b')", "has_licence() takes one argument"),
    ("1 == 1", "compares two constants"),
    ("lives_alone == 1 and true > 0", "> compares numbers, not bool"),
    ("(age > 80", "unexpected the end at character 10, expected ')'"),
    ("", "the condition is empty"),
])
def test_what_the_language_refuses(when, error) -> None:
    with pytest.raises(ExprError) as caught:
        Expr(when)
    assert error in str(caught.value)


def test_the_audit_says_which_conditions_held_with_the_values() -> None:
    policy = Policy(id="p", name="P", department="civil_affairs",
                    when="age >= 80 and (lives_alone or hukou == 'local')")
    got = qualify(policy, Population(PEOPLE, LICENCES, DAY))
    assert [q.citizen for q in got] == ["alone-84", "unknown-90"]
    assert got[1].audit == [
        {"condition": "age >= 80", "held": True, "values": {"age": 90}},
        {"condition": "lives_alone", "held": None, "values": {"lives_alone": None}},
        {"condition": "hukou == 'local'", "held": True, "values": {"hukou": "local"}},
    ]


def test_policies_are_checked_against_departments_and_licence_types() -> None:
    ok = Policy(id="p", name="P", department="civil_affairs", when="has_licence('x')")
    check_policies([ok], {"civil_affairs"}, {"x"})
    with pytest.raises(PolicyError, match="policy 'p': field 'department': unknown"):
        check_policies([ok], {"health"}, {"x"})
    with pytest.raises(PolicyError, match="field 'when': 'x' is not a licence type"):
        check_policies([ok], {"civil_affairs"}, {"y"})
    bad = Policy(id="q", name="Q", department="civil_affairs", when="age >")
    with pytest.raises(PolicyError, match="policy 'q': field 'when': unexpected the end"):
        check_policies([bad])
    with pytest.raises(PackError, match=r"policies.yaml: policy 0 \(p\): field 'when' is "
                                        "missing"):
        policies_from_yaml(b"- {id: p, name: P, department: civil_affairs}")
    with pytest.raises(PackError, match="policies.yaml: policy 'p': field 'when': unexpected"):
        policies_from_yaml(b"- {id: p, name: P, department: x, when: 'age >'}")


def test_the_default_policies() -> None:
    every = default_policies(["civil_affairs", "health"], {"birth_medical_certificate"})
    assert [p.id for p in every] == ["elderly_care_subsidy_80_alone", "senior_allowance_90",
                                     "newborn_childcare_subsidy"]
    assert every[0].when == "age >= 80 and lives_alone"
    assert "300 CNY a month" in every[0].notice_text()
    assert [p.id for p in default_policies(["civil_affairs"], set())] == [
        "elderly_care_subsidy_80_alone", "senior_allowance_90"]


def test_a_hundred_thousand_citizens_in_one_pass() -> None:
    rng = np.random.default_rng(7)
    ages = rng.integers(0, 105, 100_000)
    alone = rng.random(100_000) < 0.2
    people = [Citizen(id=f"c-{i:06d}", name="x", birth_date=born(int(a)),
                      attributes={"lives_alone": bool(s)})
              for i, (a, s) in enumerate(zip(ages, alone, strict=True))]
    policy = Policy(id="p", name="P", department="civil_affairs",
                    when="age >= 80 and lives_alone")
    got = qualify(policy, Population(people, [], DAY))
    expected = np.flatnonzero((ages >= 80) & alone)
    assert [q.citizen for q in got] == [f"c-{i:06d}" for i in expected]
    assert got[0].audit[0]["values"]["age"] >= 80
