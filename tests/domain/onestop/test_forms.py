"""One merged form for a bundle, and the two exemptions: materials the government holds are
attached (e-licences) or shared (registry facts); an expired, revoked or not yet valid licence
is not attached and the reason says why."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from cityops.domain.citizens import Citizen
from cityops.domain.onestop.catalogue import FormField, ServiceItem
from cityops.domain.onestop.forms import (
    FormConflict,
    check_answers,
    hand_in,
    material_states,
    merge_form,
    prefilled,
    valid_id_number,
)
from cityops.domain.onestop.licences import Licence, decide_material, issue_licence
from cityops.packs.pudong import DEPARTMENTS
from cityops.packs.services_file import default_services

CAT = default_services([code for code, _, _ in DEPARTMENTS])
DAY = dt.date(2026, 11, 23)
ID = "31011519800101018X"  # a well-formed number (check character X)
CITIZEN = Citizen(id="c-1", name="Li Hua", id_number=ID, phone="13800138000",
                  birth_date=dt.date(1980, 1, 1), address="1 Century Avenue")


def lic(type_code: str, *, until: dt.date | None = None, start: dt.date = dt.date(2020, 1, 1),
        number: str = "N1", **kw) -> Licence:
    return Licence(id=f"lic-{type_code}-{number}", holder="c-1", issuer="market_regulation",
                   type=type_code, number=number, valid_from=start, valid_until=until, **kw)


def restaurant():
    items = CAT.bundle_items(CAT.bundle("open_restaurant"))
    return items, merge_form(items)


def test_each_field_and_material_is_asked_once() -> None:
    items, form = restaurant()
    codes = [f.field.code for f in form.fields]
    assert len(codes) == len(set(codes))
    per_item = sum(len(i.fields) for i in items)
    assert len(codes) < per_item  # shared fields were unified
    name = next(f for f in form.fields if f.field.code == "business_name")
    assert name.items == [i.code for i in items]  # one answer goes to all four
    scope = next(f for f in form.fields if f.field.code == "registered_capital")
    assert scope.required is False and scope.items == ["restaurant_business_licence"]
    materials = [m.material.code for m in form.materials]
    assert len(materials) == len(set(materials))
    assert next(m for m in form.materials if m.material.code == "business_licence").items == [
        "food_operating_permit", "fire_safety_inspection", "outdoor_signage_permit"]


def test_a_field_required_by_any_item_is_required() -> None:
    a = ServiceItem(code="a", name="A", department="x",
                    fields=[FormField("note", "Note", required=False)])
    b = ServiceItem(code="b", name="B", department="x", fields=[FormField("note", "Note")])
    assert merge_form([a, b]).fields[0].required is True


def test_conflicting_definitions_of_a_code_are_refused() -> None:
    a = ServiceItem(code="a", name="A", department="x", fields=[FormField("area", "Area")])
    b = ServiceItem(code="b", name="B", department="x",
                    fields=[FormField("area", "Area", type="number")])
    with pytest.raises(FormConflict, match="field 'area' is defined differently by items 'a' "
                                           "and 'b'"):
        merge_form([a, b])


def test_answers_are_prefilled_checked_and_cleaned() -> None:
    _, form = restaurant()
    defaults = prefilled(form, CITIZEN)
    assert defaults["applicant_name"] == "Li Hua" and defaults["applicant_id_number"] == ID
    answers = {"business_name": "Noodle House", "business_address": "8 Zhangyang Road",
               "business_scope": "catering", "floor_area": 85, "food_categories": "hot meals",
               "food_safety_manager": "Wang", "seating_capacity": 40.0,
               "opening_date": "2027-01-05", "sign_area": 3.5, "sign_text": "面馆"}
    clean, problems = check_answers(form, answers, defaults)
    assert problems == []
    assert clean["seating_capacity"] == 40 and clean["applicant_phone"] == "13800138000"
    bad = dict(answers, floor_area="big", food_categories="sushi", opening_date="5 Jan",
               colour="red")
    del bad["business_name"]
    _, problems = check_answers(form, bad, defaults)
    assert problems == [
        "field 'colour' is not on this form",
        "field 'business_name' (Business name) is required",
        "field 'floor_area' (Floor area (m²)): 'big' is not a number",
        "field 'food_categories' (Food sold): 'sushi' is not one of hot meals, cold dishes, "
        "pastries, drinks",
        "field 'opening_date' (Planned opening date): '5 Jan' is not a date like 2026-11-23",
    ]


def test_identity_numbers_are_checked() -> None:
    assert valid_id_number(ID)
    assert not valid_id_number(ID[:-1] + "1")
    assert valid_id_number("P1234567")  # another country's shape


def test_a_valid_licence_is_attached_and_never_asked() -> None:
    material = CAT.item("food_operating_permit").materials[0]
    held = [lic("business_licence", until=dt.date(2030, 1, 1))]
    state = decide_material(material, held, CITIZEN, DAY, CAT)
    assert state.status == "attached" and state.licence_number == "N1"
    assert "your business licence No. N1 (valid until 2030-01-01) is attached" in state.reason
    states, problems = hand_in([state], {}, {"business_licence"})
    assert problems == [] and states[0].status == "attached"
    # Even handed in, what the government holds is not taken from the citizen.
    states, _ = hand_in([state], {"business_licence": "scan.pdf"}, {"business_licence"})
    assert states[0].status == "attached" and states[0].ref == ""


def test_the_valid_licence_that_lasts_longest_wins_over_expired_ones() -> None:
    material = CAT.item("food_operating_permit").materials[0]
    held = [lic("business_licence", until=dt.date(2025, 1, 1), number="OLD"),
            lic("business_licence", until=dt.date(2028, 1, 1), number="A"),
            lic("business_licence", until=None, number="B")]
    assert decide_material(material, held, CITIZEN, DAY, CAT).licence_number == "B"


@pytest.mark.parametrize(("licence", "reason"), [
    (lic("food_operating_permit", until=dt.date(2026, 3, 31)),
     "your food operating permit No. N1 expired on 2026-03-31; renew it or hand in a valid one"),
    (lic("food_operating_permit", until=dt.date(2030, 1, 1), revoked_at=1.0,
         revoked_reason="hygiene"),
     "your food operating permit No. N1 was revoked: hygiene; a valid one is needed"),
    (lic("food_operating_permit", start=dt.date(2027, 1, 1)),
     "your food operating permit No. N1 is valid only from 2027-01-01"),
    (None, "no food operating permit of yours is in the e-licence store"),
])
def test_an_unusable_licence_is_not_attached_and_the_reason_is_shown(licence, reason) -> None:
    from cityops.domain.onestop.catalogue import Material

    material = Material("food_permit", "Food operating permit", licence="food_operating_permit")
    state = decide_material(material, [licence] if licence else [], CITIZEN, DAY, CAT)
    assert state.status == "asked" and state.reason == reason
    states, problems = hand_in([state], {}, {"food_permit"})
    assert problems == [f"material 'food_permit' (Food operating permit) is required: {reason}"]
    states, problems = hand_in([state], {"food_permit": "upload-17"}, {"food_permit"})
    assert problems == [] and states[0].status == "provided" and states[0].ref == "upload-17"


def test_valid_on_its_last_day_expired_the_day_after() -> None:
    material = CAT.item("food_operating_permit").materials[0]
    held = [lic("business_licence", until=DAY)]
    assert decide_material(material, held, CITIZEN, DAY, CAT).status == "attached"
    later = DAY + dt.timedelta(days=1)
    assert decide_material(material, held, CITIZEN, later, CAT).status == "asked"


def test_registry_facts_are_shared_and_bundle_results_are_awaited() -> None:
    items, form = restaurant()
    states = {s.code: s for s in material_states(form, items, [], CITIZEN, DAY, CAT)}
    assert states["id_card"].status == "shared"
    # The bundle's first item issues the business licence the other three need.
    assert states["business_licence"].status == "pending"
    assert states["business_licence"].pending_item == "restaurant_business_licence"
    assert states["premises_title"].status == "asked"
    assert states["kitchen_layout"].status == "asked"
    nobody = msgspec.structs.replace(CITIZEN, id_number="")
    states = {s.code: s for s in material_states(form, items, [], nobody, DAY, CAT)}
    assert states["id_card"].status == "asked"
    # Alone, the food permit item has no sibling to wait for: the licence is asked.
    food = [CAT.item("food_operating_permit")]
    alone = {s.code: s for s in material_states(merge_form(food), food, [], CITIZEN, DAY, CAT)}
    assert alone["business_licence"].status == "asked"


def test_an_issued_licence_derives_from_its_application() -> None:
    one = issue_licence(application_id="app-abc-1", holder="c-1", issuer="market_regulation",
                        type_code="food_operating_permit", type_name="Food operating permit",
                        valid_years=5, day=DAY, now=1.0)
    again = issue_licence(application_id="app-abc-1", holder="c-1", issuer="market_regulation",
                          type_code="food_operating_permit", type_name="Food operating permit",
                          valid_years=5, day=DAY, now=2.0)
    assert (one.id, one.number) == (again.id, again.number)
    assert one.valid_until == dt.date(2031, 11, 22) and one.state_on(DAY) == "valid"
    leap = issue_licence(application_id="x", holder="c", issuer="i", type_code="t",
                         type_name="T", valid_years=1, day=dt.date(2028, 2, 29), now=0)
    assert leap.valid_until == dt.date(2029, 2, 28)
