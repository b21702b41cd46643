"""Entities in (normalized, concise, keyValues) and out (each form), names expanded."""

from __future__ import annotations

import pytest

from cityops.ngsild.contexts import core, resolve
from cityops.ngsild.entity import compact_entity, expand_entity, expand_fragment, now_iso
from cityops.ngsild.errors import NgsiError

T = core()
DC = "https://uri.etsi.org/ngsi-ld/default-context/"
LOC = "https://uri.etsi.org/ngsi-ld/location"
POINT = {"type": "Point", "coordinates": [121.5, 31.2]}


def test_every_input_form_gives_one_normalized_entity() -> None:
    normalized = {"id": "urn:x:1", "type": "Car",
                  "speed": {"type": "Property", "value": 3},
                  "owner": {"type": "Relationship", "object": "urn:x:2"},
                  "location": {"type": "GeoProperty", "value": POINT}}
    concise = {"id": "urn:x:1", "type": "Car", "speed": {"value": 3},
               "owner": {"object": "urn:x:2"}, "location": {"value": POINT}}
    simplified = {"id": "urn:x:1", "type": "Car", "speed": 3,
                  "owner": {"type": "Relationship", "object": "urn:x:2"}, "location": POINT}
    expected = {"id": "urn:x:1", "type": [DC + "Car"],
                DC + "speed": [{"type": "Property", "value": 3}],
                DC + "owner": [{"type": "Relationship", "object": "urn:x:2"}],
                LOC: [{"type": "GeoProperty", "value": POINT}]}
    for doc in (normalized, concise, simplified):
        assert expand_entity(doc, T) == expected


def test_compaction_forms() -> None:
    e = expand_entity({"id": "urn:x:1", "type": "Car",
                       "speed": {"type": "Property", "value": 3, "unitCode": "KMH",
                                 "accuracy": {"type": "Property", "value": 0.1}},
                       "plate": "A1", "location": POINT}, T)
    assert compact_entity(e, T, key_values=True) == {"id": "urn:x:1", "type": "Car",
                                                     "speed": 3, "plate": "A1",
                                                     "location": POINT}
    concise = compact_entity(e, T, concise=True)
    assert concise["plate"] == "A1" and concise["speed"] == {"value": 3, "unitCode": "KMH",
                                                             "accuracy": 0.1}
    assert compact_entity(e, T, attrs={DC + "plate"}) == {
        "id": "urn:x:1", "type": "Car", "plate": {"type": "Property", "value": "A1"}}


def test_a_user_context_names_attributes_but_cannot_redefine_core_terms() -> None:
    terms = resolve({"speed": "http://example.org/speed", "location": "http://example.org/x"})
    e = expand_entity({"id": "urn:x:1", "type": "Car", "speed": 1, "location": POINT}, terms)
    assert "http://example.org/speed" in e and LOC in e
    assert compact_entity(e, terms)["speed"]["value"] == 1
    assert "http://example.org/speed" in compact_entity(e, T)


def test_datasets_are_instances_of_one_attribute() -> None:
    e = expand_entity({"id": "urn:x:1", "type": "T", "temp": [
        {"type": "Property", "value": 1},
        {"type": "Property", "value": 2, "datasetId": "urn:ds:b"}]}, T)
    assert len(e[DC + "temp"]) == 2
    with pytest.raises(NgsiError, match="datasetId"):
        expand_entity({"id": "urn:x:1", "type": "T", "temp": [
            {"type": "Property", "value": 1}, {"type": "Property", "value": 2}]}, T)


@pytest.mark.parametrize(("doc", "field"), [
    ({"type": "T"}, "id"), ({"id": "x y", "type": "T"}, "id"), ({"id": "urn:x:1"}, "type"),
    ({"id": "urn:x:1", "type": ""}, "type"),
    ({"id": "urn:x:1", "type": "T", "a": None}, "a"),
    ({"id": "urn:x:1", "type": "T", "a": {"type": "Property"}}, "a"),
    ({"id": "urn:x:1", "type": "T", "a": {"type": "Thing", "value": 1}}, "a"),
    ({"id": "urn:x:1", "type": "T", "a": {"type": "Relationship", "object": 3}}, "a.object"),
    ({"id": "urn:x:1", "type": "T", "a": {"value": 1, "observedAt": "yesterday"}},
     "a.observedAt"),
    ({"id": "urn:x:1", "type": "T", "location": {"type": "Point", "coordinates": [1]}},
     "location"),
    ({"id": "urn:x:1", "type": "T", "location": {"type": "Point", "coordinates": [200, 1]}},
     "location"),
    ({"id": "urn:x:1", "type": "T", "bad name": 1}, "bad name"),
    ({"id": "urn:x:1", "type": "T", "scope": "no-slash"}, "scope"),
])
def test_refusals_name_the_field(doc: dict, field: str) -> None:
    with pytest.raises(NgsiError) as caught:
        expand_entity(doc, T, where="entities[0].")
    assert caught.value.kind == "BadRequestData"
    assert caught.value.detail.startswith(f"entities[0].{field}") or \
        caught.value.detail.startswith(field), caught.value.detail


def test_fragments_and_times() -> None:
    assert list(expand_fragment({"id": "urn:x:1", "@context": [], "a": 1}, T)) == [DC + "a"]
    assert now_iso(0) == "1970-01-01T00:00:00.000Z"
    assert now_iso(1.2345) == "1970-01-01T00:00:01.234Z"
