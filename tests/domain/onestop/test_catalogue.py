"""The service catalogue as pack data: loading with errors that name file, entry and field,
shared definitions, conflicting field codes refused, the default set, and search."""

from __future__ import annotations

import pytest

from cityops.domain.onestop.catalogue import search
from cityops.packs.errors import PackError
from cityops.packs.pudong import DEPARTMENTS
from cityops.packs.services_file import default_services, services_from_yaml, services_to_yaml

PUDONG = [code for code, _, _ in DEPARTMENTS]

SMALL = """
licences:
  - {code: business_licence, name: Business licence, issuer: market_regulation}
fields:
  - {code: business_name, label: Business name}
materials:
  - {code: licence, name: Business licence, licence: business_licence}
items:
  - code: shop_licence
    name: Shop licence
    department: market_regulation
    fields: [business_name]
    issues: {type: business_licence}
  - code: shop_sign
    name: Shop sign
    department: city_management
    fields: [business_name, {code: sign_area, label: Sign area, type: number}]
    materials: [licence]
bundles:
  - {code: open_shop, name: Open a shop, items: [shop_licence, shop_sign]}
"""


def test_shared_definitions_are_named_by_code_and_round_trip() -> None:
    cat = services_from_yaml(SMALL.encode(), departments={"market_regulation",
                                                          "city_management"})
    sign = cat.item("shop_sign")
    assert [f.code for f in sign.fields] == ["business_name", "sign_area"]
    assert sign.materials[0].licence == "business_licence"
    assert cat.bundle_items(cat.bundle("open_shop"))[1] is sign
    assert services_from_yaml(services_to_yaml(cat)) == cat


@pytest.mark.parametrize(("change", "message"), [
    (("{code: sign_area, label: Sign area, type: number}",
      "{code: business_name, label: Shop name}"),
     "services.yaml: item 'shop_sign': field 'business_name': asked twice in one item"),
    (("fields: [business_name, {code: sign_area",
      "fields: [{code: business_name, label: Business name, type: number}, {code: sign_area"),
     "services.yaml: item 'shop_sign': field 'business_name': defined differently by item "
     "'shop_licence' (there: text 'Business name'; here: number 'Business name')"),
    (("department: city_management", "department: navy"),
     "services.yaml: item 'shop_sign': field 'department': unknown department 'navy'"),
    (("issues: {type: business_licence}", "issues: {type: permit}"),
     "services.yaml: item 'shop_licence': field 'issues.type': 'permit' is not a licence type"),
    (("materials: [licence]", "materials: [licence, photo]"),
     "services.yaml: items[1] (shop_sign): field 'materials'[1]: 'photo' is not defined in "
     "the top-level 'materials' section"),
    (("type: number}", "type: colour}"),
     "services.yaml: items[1] (shop_sign): field 'fields[1].type': invalid enum value 'colour'"),
    (("items: [shop_licence, shop_sign]", "items: [shop_licence, shop_bin]"),
     "services.yaml: bundle 'open_shop': field 'items': 'shop_bin' is not an item"),
    (("name: Shop licence\n", "name: Shop licence\n    time_limit: 30min\n"),
     "services.yaml: item 'shop_licence': field 'time_limit': a legal time limit is counted in "
     "working days"),
])
def test_errors_name_the_file_the_entry_and_the_field(change, message) -> None:
    text = SMALL.replace(*change)
    assert text != SMALL
    with pytest.raises(PackError) as caught:
        services_from_yaml(text.encode(), departments={"market_regulation", "city_management"})
    assert str(caught.value).startswith(message), str(caught.value)


def test_the_default_catalogue_fits_pudong_and_drops_what_a_city_lacks() -> None:
    cat = default_services(PUDONG)
    assert {b.code for b in cat.bundles} == {"open_restaurant", "newborn", "retirement",
                                             "aging_friendly_retrofit"}
    restaurant = cat.bundle_items(cat.bundle("open_restaurant"))
    assert {i.department for i in restaurant} == {"market_regulation", "fire",
                                                  "city_management"}
    assert all(i.time_limit.endswith("wd") for i in cat.items)
    small = default_services(["police", "city_management"])
    assert {i.department for i in small.items} <= {"police", "city_management"}
    assert small.bundles == []  # none keeps two items
    # Licence types stay, so materials can still be satisfied by licences held.
    assert small.licence_type("business_licence").issuer == ""


def test_search_by_name_keyword_department_in_english_and_chinese() -> None:
    cat = default_services(PUDONG)
    names = {"market_regulation": "Pudong Market Supervision Administration"}

    def found(q, **kw):
        return [(h.kind, h.code) for h in search(cat, q, names, **kw)]

    assert found("food operating")[0] == ("item", "food_operating_permit")
    assert found("食品经营")[0] == ("item", "food_operating_permit")
    assert ("bundle", "open_restaurant") in found("restaurants")
    assert found("开餐厅") == [("bundle", "open_restaurant")]
    assert ("item", "pension_application") in found("退休")
    assert {c for _, c in found("market supervision")} >= {"restaurant_business_licence",
                                                            "food_operating_permit"}
    assert found("newborn")[0] == ("bundle", "newborn")  # its name beats keywords
    assert found("food xyzzy") == []
    assert len(found("")) == len(cat.items) + len(cat.bundles)
    assert all(c != "food_operating_permit" for _, c in found("", channel="kiosk"))
    assert {c for k, c in found("", department="fire") if k == "item"} == {
        "fire_safety_inspection"}
