"""The q language and geo-queries over internal entities."""

from __future__ import annotations

import pytest

from cityops.ngsild.contexts import core
from cityops.ngsild.entity import expand_entity
from cityops.ngsild.errors import NgsiError
from cityops.ngsild.query import haversine_m, parse_geoquery, parse_q, scope_matches

T = core()
CAR = expand_entity({
    "id": "urn:ngsi-ld:Car:1", "type": "Car", "brand": "Volvo", "tags": ["a", "b"],
    "speed": {"type": "Property", "value": 80, "observedAt": "2024-01-01T10:00:00Z",
              "accuracy": {"type": "Property", "value": 0.5}},
    "address": {"type": "Property", "value": {"city": "Pudong", "zip": 200120}},
    "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
    "name": {"type": "LanguageProperty", "languageMap": {"en": "Blue", "zh": "蓝"}},
    "location": {"type": "GeoProperty", "value": {"type": "Point",
                                                  "coordinates": [121.5, 31.2]}},
}, T)


@pytest.mark.parametrize(("q", "expected"), [
    ("speed", True), ("!speed", False), ("!nothing", True),
    ("speed==80", True), ("speed!=80", False), ("speed>79.5", True), ("speed<=79", False),
    ("speed==70..90", True), ("speed==81..90", False), ("speed==1,80,3", True),
    ('brand=="Volvo"', True), ('brand=="Audi","Volvo"', True), ('brand!="Volvo"', False),
    ('brand~="^Vo"', True), ('brand!~="^Vo"', False), ('brand~="(?i)volvo"', True),
    ('tags=="b"', True), ('owner=="urn:ngsi-ld:Person:1"', True),
    ("speed.accuracy<1", True), ("speed.observedAt>2024-01-01T09:00:00Z", True),
    ("speed.observedAt>=2024-01-02T00:00:00Z", False),
    ('address[city]=="Pudong"', True), ("address[zip]>200000", True),
    ('name=="Blue"', True),
    ('speed>100|brand=="Volvo"', True), ('speed>100;brand=="Volvo"', False),
    ('(speed>100|brand=="Volvo");owner=="urn:ngsi-ld:Person:2"', False),
    ('brand==Volvo', True),  # a bare word is taken as a string
    ("speed>\"80\"", False),  # a string never orders against a number
])
def test_q_matches(q: str, expected: bool) -> None:
    assert parse_q(q).matches(CAR, T) is expected


@pytest.mark.parametrize(("q", "kind", "fragment"), [
    ("speed>", "BadRequestData", "missing"), ("(speed", "BadRequestData", "not closed"),
    ('brand=="x', "BadRequestData", "quoted"), ("speed>1..3", "BadRequestData", "range"),
    ("brand~=\"(\"", "BadRequestData", "regular expression"), ("", "BadRequestData", "empty"),
    ("(" * 9 + "a" + ")" * 9, "TooComplexQuery", "parentheses"),
    (";".join(["a"] * 101), "TooComplexQuery", "terms"), ("a" * 5000, "TooComplexQuery", "longer"),
])
def test_q_refusals_name_the_parameter(q: str, kind: str, fragment: str) -> None:
    with pytest.raises(NgsiError) as caught:
        parse_q(q)
    assert caught.value.kind == kind
    assert caught.value.detail.startswith("q:") and fragment in caught.value.detail


def test_a_pathological_regex_runs_in_linear_time() -> None:
    doc = expand_entity({"id": "urn:x:1", "type": "T", "s": "a" * 5000 + "b"}, T)
    assert parse_q('s~="(a+)+$"').matches(doc, T) is False  # RE2: no backtracking


def test_geoqueries() -> None:
    near = parse_geoquery("near;maxDistance==1000", "Point", "[121.505,31.2]")
    assert near.matches(CAR)  # ~476 m
    assert not parse_geoquery("near;maxDistance==400", "Point", "[121.505,31.2]").matches(CAR)
    assert parse_geoquery("near;minDistance==400", "Point", [121.505, 31.2]).matches(CAR)
    square = "[[[121,31],[122,31],[122,32],[121,32],[121,31]]]"
    assert parse_geoquery("within", "Polygon", square).matches(CAR)
    assert parse_geoquery("intersects", "Polygon", square).matches(CAR)
    assert not parse_geoquery("disjoint", "Polygon", square).matches(CAR)
    line = "[[121.4,31.2],[121.6,31.2]]"
    assert parse_geoquery("near;maxDistance==1", "LineString", line).matches(CAR)
    assert not parse_geoquery("within", "Point", "[0,0]", "elsewhere").matches(CAR)


@pytest.mark.parametrize(("args", "param"), [
    (("near", "Point", "[1,2]"), "georel"), (("close", "Point", "[1,2]"), "georel"),
    (("near;maxDistance==-1", "Point", "[1,2]"), "georel"),
    (("within;maxDistance==1", "Point", "[1,2]"), "georel"),
    (("within", "Circle", "[1,2]"), "geometry"), (("within", None, "[1,2]"), "geometry"),
    (("within", "Point", "[1,2"), "coordinates"), (("within", "Point", "[500,2]"), "coordinates"),
    ((None, "Point", "[1,2]"), "georel"), (("within", "Point", None), "coordinates"),
])
def test_geoquery_refusals_name_the_parameter(args: tuple, param: str) -> None:
    with pytest.raises(NgsiError) as caught:
        parse_geoquery(*args)
    assert caught.value.kind == "BadRequestData" and caught.value.detail.startswith(param)


def test_haversine_and_scopes() -> None:
    assert haversine_m(31.2, 121.5, 31.2, 121.505) == pytest.approx(475.8, abs=1)
    assert scope_matches(["/Shanghai/Pudong"], "/Shanghai/#")
    assert scope_matches(["/Shanghai/Pudong"], "/Shanghai/+")
    assert not scope_matches(["/Shanghai/Pudong"], "/Beijing/#,/Shanghai")
    assert not scope_matches(None, "/#")


def test_a_polygon_crossing_itself_is_taken_as_the_areas_it_outlines() -> None:
    """Hand-drawn areas often cross themselves a little; the query means the area outlined
    (GEOS's make_valid: a bow-tie is its two triangles), not an error."""
    bow_tie = parse_geoquery("within", "Polygon", "[[[0,0],[1,1],[1,0],[0,1],[0,0]]]")
    inside = {"id": "urn:x:1", "type": ["T"], "https://uri.etsi.org/ngsi-ld/location": [
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [0.1, 0.5]}}]}
    outside = {**inside, "https://uri.etsi.org/ngsi-ld/location": [
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [0.5, 0.9]}}]}
    assert bow_tie.matches(inside) and not bow_tie.matches(outside)


def test_scope_queries_join_all_with_semicolon_and_any_with_comma() -> None:
    scopes = ["/Madrid/Gardens/ParqueNorte", "/CompanyA/OrganizationB/UnitC"]
    assert scope_matches(scopes, "/Madrid/Gardens/ParqueNorte;/CompanyA/#")
    assert not scope_matches(["/Madrid/Gardens/ParqueNorte"],
                             "/Madrid/Gardens/ParqueNorte;/CompanyA/#")
    assert scope_matches(["/Madrid/Gardens/ParqueNorte"], "/Nowhere,/Madrid/+/ParqueNorte")
