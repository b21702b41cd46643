"""Masking phone and ID numbers in free text and in loosely shaped data, without touching the
numbers CityOps prints itself."""

from __future__ import annotations

from cityops.domain.privacy import mask_data, mask_text


def test_phone_and_id_numbers_in_text_are_masked() -> None:
    assert mask_text("call 13812345678 now") == "call 138****5678 now"
    assert mask_text("+86 138-1234-5678") == "+86 138****5678"
    assert mask_text("86 138 1234 5678") == "86 138****5678"
    assert mask_text("office 021-62345678") == "office 021****5678"
    assert mask_text("(212) 555-1234, 212-555-1234, 212.555.1234") == \
        "212***1234, 212***1234, 212***1234"
    assert mask_text("ID 310115198001011234 / 31011519800101123x / 310115800101123") == \
        "ID 310115********1234 / 310115********123x / 310115*****1123"


def test_what_cityops_prints_itself_is_left_alone() -> None:
    text = ("area 310115001001 town 310115001 at 1795395000.5 (1795395000123 ms) "
            "2026-11-23 10:00:00 noise-000123 inc-13a8f0 order 20261123-K7Q2MX4P 130102001001")
    assert mask_text(text) == text


def test_fields_named_like_a_phone_or_id_are_masked_whole() -> None:
    data = {"phone": "13812345678", "contact": {"mobile_phone": 13812345678,
                                                 "ID_number": "310115198001011234"},
            "text": "ring 13912345678", "photos": ["a.jpg"], "n": 3, "ok": True,
            "list": [{"tel": "021-62345678"}]}
    assert mask_data(data) == {
        "phone": "138****5678",
        "contact": {"mobile_phone": "138****5678", "ID_number": "310115********1234"},
        "text": "ring 139****5678", "photos": ["a.jpg"], "n": 3, "ok": True,
        "list": [{"tel": "021****5678"}]}


def test_field_names_are_matched_as_words() -> None:
    assert mask_data({"hotel": "Grand", "satellite": "x", "identity": "Li"}) == \
        {"hotel": "Grand", "satellite": "x", "identity": "Li"}
    assert mask_data({"cell": "13812345678", "contactPhone": "13812345678"}) == \
        {"cell": "138****5678", "contactPhone": "138****5678"}
