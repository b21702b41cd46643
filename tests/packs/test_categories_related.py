"""categories.yaml's related: section: groups of categories about one component, read into
the table (each category knows its groups), written back the same, and refused with the group
and field named when a merge could not work with them."""

from __future__ import annotations

import pytest

from cityops.domain.incidents.categories import CategoryTable
from cityops.domain.incidents.merge import related_target
from cityops.domain.incidents.model import Incident, Report
from cityops.packs.categories_file import (
    categories_from_yaml,
    categories_to_yaml,
    default_categories,
)
from cityops.packs.errors import PackError

TWO = b"""
categories:
- {code: component.public_facility.manhole_cover, name: Cover, kind: component,
   major: public_facility, minor: manhole_cover, departments: [city_management]}
- {code: component.public_facility.damaged, name: Damaged, kind: component,
   major: public_facility, minor: damaged, departments: [city_management]}
- {code: event.sanitation.garbage, name: Garbage, kind: event, major: sanitation,
   minor: garbage, departments: [sanitation]}
related:
%s
"""


def table(related: str) -> list:
    return categories_from_yaml(TWO % related.encode())


def test_the_default_set_declares_its_groups_and_round_trips() -> None:
    cats = default_categories(["city_management", "water_affairs"])
    t = CategoryTable(cats)
    groups = {g.name: [c.code for c in others]
              for g, others in t.related_to("component.public_facility.damaged")}
    assert groups == {"manhole": ["component.public_facility.manhole_cover"],
                      "street lamp": ["component.public_facility.street_lamp"]}
    (drain, others), = t.related_to("event.drainage.blocked_drain")
    assert drain.name == "drain" and [c.code for c in others] == ["event.emergency.waterlogging"]
    assert t.related_to("event.sanitation.garbage") == []
    assert categories_from_yaml(categories_to_yaml(cats)) == cats


def test_a_plain_list_is_a_table_without_groups() -> None:
    cats = categories_from_yaml(b"""
- {code: event.sanitation.garbage, name: Garbage, kind: event, major: sanitation,
   minor: garbage, departments: [sanitation]}
""")
    assert cats[0].related == []
    assert categories_to_yaml(cats).lstrip().startswith(b"- ")


@pytest.mark.parametrize(("related", "message"), [
    ("- {name: m, categories: [component.public_facility.manhole_cover, nope.x.y]}",
     "related group 'm': field 'categories': unknown category 'nope.x.y'"),
    ("- {name: m, categories: [component.public_facility.damaged]}",
     "related group 'm': field 'categories' must name at least two"),
    ("- {name: m, categories: [component.public_facility.damaged, "
     "component.public_facility.manhole_cover], same: {device: false, component: false}}",
     "related group 'm': field 'same' must allow at least one of"),
    ("- {name: m, categories: [component.public_facility.damaged, "
     "component.public_facility.manhole_cover], same: {within_m: 5000}}",
     "related group 'm': field 'same.within_m' must lie between 0 and 1000"),
    ("- {name: m, categories: [component.public_facility.damaged, "
     "component.public_facility.manhole_cover], same: {near: 3}}",
     "related group 0 (m): field 'same': object contains unknown field near"),
    ("- {name: m, categories: [component.public_facility.damaged, "
     "component.public_facility.manhole_cover]}\n"
     "- {name: m, categories: [component.public_facility.damaged, event.sanitation.garbage]}",
     "related group 'm': listed twice"),
    ("- {categories: [component.public_facility.damaged, event.sanitation.garbage]}",
     "related group 0: field 'name' is missing"),
    ("  {name: m}", "related: must be a list of groups"),
])
def test_bad_groups_are_refused_naming_group_and_field(related: str, message: str) -> None:
    with pytest.raises(PackError) as error:
        table(related)
    assert message in str(error.value)
    assert str(error.value).startswith("categories.yaml: ")


def test_related_is_declared_in_its_section_only() -> None:
    with pytest.raises(PackError, match="field 'related' is not set on a category"):
        categories_from_yaml(b"""
- {code: event.sanitation.garbage, name: Garbage, kind: event, major: sanitation,
   minor: garbage, departments: [sanitation], related: [{name: x, categories: []}]}
""")
    with pytest.raises(PackError, match="unknown section 'groups'"):
        categories_from_yaml(b"categories: []\ngroups: []\n")


def case(n: int, lat: float, *, source: str = "citizen", marks=(), at: float = 0.0) -> Incident:
    return Incident(id=f"inc-{n}", category="component.public_facility.manhole_cover",
                    kind="component", title="", source=source, lat=lat, lon=121.45,
                    reported_at=at, updated_at=at, components=list(marks))


def test_the_same_device_beats_the_component_beats_the_nearest() -> None:
    (manhole,) = [g for c in default_categories(["city_management"]) for g in c.related
                  if g.name == "manhole"][:1]
    report = Report("r", "inspector", 100.0, lat=31.15, lon=121.45,
                    data={"device": "mh-1", "component": "MH-7"})
    near = case(1, 31.15005)  # about 6 m
    named = case(2, 31.1510, marks=["component:MH-7"])
    same_device = case(3, 31.1515, source="sensor", marks=["device:mh-1"])
    hit = related_target([near, named, same_device], report, manhole, window_s=3600)
    assert hit == (same_device, "same manhole: the same device mh-1 as sensor mh-1's alert")
    hit = related_target([near, named], report, manhole, window_s=3600)
    assert hit == (named, "same manhole: component MH-7, named by a citizen's report too")
    hit = related_target([near], report, manhole, window_s=3600)
    assert hit == (near, "same manhole: 6 m from a citizen's report")
    # Too long after the case's last report, or raised by another kind of component's rule.
    assert related_target([near], report, manhole, window_s=50) is None
    lamp = case(4, 31.15005, source="sensor", marks=["rule:components.lamp_out"])
    assert related_target([lamp], report, manhole, window_s=3600) is None


def test_what_a_case_keeps_of_its_reports_is_masked_and_bounded() -> None:
    from cityops.domain.incidents.merge import MAX_MARKS, marks_of, with_marks
    report = Report("r", "open311", 1.0, data={"attributes": {"asset_number": "13812345678"},
                                                "device": "mh-1"})
    assert marks_of(report) == ["device:mh-1", "component:138****5678"]
    many = [f"device:d{i}" for i in range(MAX_MARKS)]
    assert with_marks(many, report) == many
