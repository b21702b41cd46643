"""The Smart Data Models mapping: every kind's type, attributes, units, ids, place and times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityops.domain.alerts import Alert
from cityops.domain.city import AreaCodes, Device, Vehicle
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.lifecycle import Lifecycle
from cityops.ngsild import sdm
from cityops.ngsild.sdm import NEVER, TERMS, Latest

T0 = 1_717_000_000  # 2024-05-29T16:26:40Z
US = 1_000_000

# kind -> (domain type, {SDM attribute: (channel, UN/CEFACT code)})
EXPECTED = {
    "noise": ("NoiseLevelObserved", {"LAeq": ("laeq", "2N")}),
    "water_depth": ("FloodMonitoring", {"currentLevel": ("depth", "CMT")}),
    "rainfall": ("WeatherObserved", {"precipitation": ("intensity", "H67")}),
    "wind": ("WeatherObserved", {"windSpeed": ("speed", "MTS"),
                                 "windDirection": ("direction", "DD")}),
    "air_quality": ("AirQualityObserved", {"pm25": ("pm25", "GQ"), "pm10": ("pm10", "GQ"),
                                           "no2": ("no2", "GQ"), "o3": ("o3", "GQ")}),
    "bin_fill": ("WasteContainer", {"fillingLevel": ("fill", "C62")}),
    "street_lamp": ("Streetlight", {"powerConsumption": ("power", "WTT")}),
    "gps": ("Vehicle", {"speed": ("speed", "KMH"), "heading": ("heading", "DD")}),
    "kpi": ("KeyPerformanceIndicator", {"kpiValue": ("value", "C62")}),
}
DEVICE_ONLY = {"smoke": "H99", "manhole_tilt": "DD", "water_meter": "L2", "camera": None}


def _device(kind: str, **kw) -> Device:
    return Device(f"{kind}-1", kind, 31.2, 121.5, name=f"a {kind}",
                  lifecycle=Lifecycle.ACTIVE, **kw)


def _latest(kind: str, values: dict[str, float], at: int = T0) -> tuple[list[str], Latest]:
    channels = [c.name for c in BUILTIN_KINDS[kind].channels]
    ts = [at * US if c in values else NEVER for c in channels]
    return channels, Latest(ts, [values.get(c, float("nan")) for c in channels])


def test_every_builtin_kind_is_mapped():
    assert set(sdm.MODELS) == set(BUILTIN_KINDS)
    for model in sdm.MODELS.values():
        names = [c.name for c in BUILTIN_KINDS[model.kind].channels]
        for measure in model.measures:
            assert measure.channel in names, (model.kind, measure.channel)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_domain_entity_of_each_kind(kind):
    type_term, attrs = EXPECTED[kind]
    values = {ch: 12.5 for ch, _ in attrs.values()}
    if kind == "gps":
        values |= {"lat": 31.25, "lon": 121.55}
    channels, latest = _latest(kind, values)
    vehicle = Vehicle("v1", "沪A12345", "muck_truck", "gps-1") if kind == "gps" else None
    e = sdm.domain_entity(_device(kind), channels, latest, period_s=60, vehicle=vehicle)
    assert e is not None
    assert e["type"] == [TERMS[type_term]]
    assert e["id"] == f"urn:ngsi-ld:{type_term}:{kind}-1"
    assert e[TERMS["refDevice"]] == [{"type": "Relationship",
                                      "object": f"urn:ngsi-ld:Device:{kind}-1"}]
    where = e[TERMS["location"]][0]
    assert where["type"] == "GeoProperty" and where["value"]["type"] == "Point"
    # A mover is where its newest fix puts it, anything else where it was registered.
    assert where["value"]["coordinates"] == ([121.55, 31.25] if kind == "gps" else [121.5, 31.2])
    for attr, (_, unit) in attrs.items():
        prop = e[TERMS[attr]][0]
        assert prop["type"] == "Property"
        assert prop["unitCode"] == unit
        assert prop["observedAt"] == "2024-05-29T16:26:40Z"
        expected = 0.125 if kind == "bin_fill" else 12.5  # SDM fills 0..1
        assert prop["value"] == pytest.approx(expected)


def test_schema_extras():
    channels, latest = _latest("noise", {"laeq": 70.0})
    noise = sdm.domain_entity(_device("noise"), channels, latest, period_s=60)
    assert noise[TERMS["dateObservedFrom"]][0]["value"]["@value"] == "2024-05-29T16:25:40Z"
    assert noise[TERMS["dateObservedTo"]][0]["value"]["@value"] == "2024-05-29T16:26:40Z"
    channels, latest = _latest("street_lamp", {"power": 0.0})
    lamp = sdm.domain_entity(_device("street_lamp"), channels, latest, period_s=300)
    assert lamp[TERMS["powerState"]][0]["value"] == "off"
    channels, latest = _latest("gps", {"speed": 0.0, "heading": 90.0})
    truck = sdm.domain_entity(_device("gps"), channels, latest, period_s=10,
                              vehicle=Vehicle("v1", "P-1", "muck_truck", "gps-1"))
    assert truck[TERMS["heading"]][0]["value"] == -1  # standing: no direction of travel
    assert truck[TERMS["vehicleType"]][0]["value"] == "lorry"
    assert truck[TERMS["vehiclePlateIdentifier"]][0]["value"] == "P-1"


def _facts_of(kind: str, values: dict[str, float], period_s: float = 60):
    channels, latest = _latest(kind, values)
    vehicle = Vehicle("v1", "P-1", "muck_truck", f"{kind}-1") if kind == "gps" else None
    return sdm.facts(_device(kind), channels, period_s=period_s, vehicle=vehicle), latest


@pytest.mark.parametrize("kind", sorted(BUILTIN_KINDS))
def test_an_entity_of_chosen_attributes_is_the_whole_one_cut_down(kind):
    # Standing still (speed 0), so the truck's heading is the derived -1; a lamp's 0 W reads
    # as powerState off: the derived attributes come out right without what they derive from.
    values = {c.name: (0.0 if c.name in ("speed", "power") else 3.0)
              for c in BUILTIN_KINDS[kind].channels}
    f, latest = _facts_of(kind, values)
    for whole, build in ((sdm.domain_entity_of(f, latest), sdm.domain_entity_of),
                         (sdm.device_entity_of(f, latest), sdm.device_entity_of)):
        if whole is None:
            assert f.domain is None and build(f, latest, {TERMS["location"]}) is None
            continue
        names = [k for k in whole if k not in ("id", "type")]
        for n in range(len(names)):
            for chosen in ({names[n], names[(n + 2) % len(names)], "https://example.org/x"},
                           {names[n]}):
                for given in (chosen, frozenset(chosen)):  # frozen: the planned short path
                    cut = build(f, latest, given)
                    assert cut == {k: v for k, v in whole.items()
                                   if k in ("id", "type") or k in chosen}, (kind, chosen)
        for nothing in (set(), frozenset()):
            assert build(f, latest, nothing) == {"id": whole["id"], "type": whole["type"]}


def test_the_whole_entity_of_facts_is_the_entity_of_the_device():
    f, latest = _facts_of("gps", {"lat": 31.25, "lon": 121.55, "speed": 12.0, "heading": 9.0})
    channels = list(f.channels)
    assert sdm.domain_entity_of(f, latest) == sdm.domain_entity(
        f.device, channels, latest, period_s=60, vehicle=f.vehicle)
    assert sdm.device_entity_of(f, latest) == sdm.device_entity(f.device, channels, latest)
    assert f.place(latest) == (31.25, 121.55) and f.moves


def test_what_a_reading_of_each_channel_changes():
    def changed(kind, type_iri, channel):
        names = [c.name for c in BUILTIN_KINDS[kind].channels]
        return sdm.changed_by(sdm.MODELS[kind], names, type_iri, names.index(channel))

    noise = TERMS["NoiseLevelObserved"]
    assert changed("noise", noise, "laeq") == {
        TERMS[t] for t in ("LAeq", "dateObservedFrom", "dateObservedTo", "dateObserved")}
    assert changed("noise", sdm.DEVICE, "laeq") == {TERMS["value"],
                                                    TERMS["dateLastValueReported"]}
    assert changed("noise", TERMS["Vehicle"], "laeq") == set()  # not this kind's type
    assert TERMS["powerState"] in changed("street_lamp", TERMS["Streetlight"], "power")
    vehicle = TERMS["Vehicle"]
    assert changed("gps", vehicle, "lat") == {TERMS["location"]}
    assert changed("gps", vehicle, "speed") == {TERMS["speed"], TERMS["heading"],
                                                TERMS["observationDateTime"]}
    assert TERMS["location"] in changed("gps", sdm.DEVICE, "lon")
    assert TERMS["location"] not in changed("gps", sdm.DEVICE, "speed")
    assert changed("smoke", sdm.DEVICE, "obscuration") == {TERMS["value"],
                                                           TERMS["dateLastValueReported"]}


def test_times_are_written_alike_whether_just_formatted_or_kept():
    for ts in (T0 * US, T0 * US + 250_000, float(T0 * US), T0 * US + 1):
        first, again = sdm.rfc3339(ts), sdm.rfc3339(ts)
        assert first == again
    assert sdm.rfc3339(T0 * US + 250_000) == "2024-05-29T16:26:40.250Z"
    assert sdm.rfc3339(T0 * US) == "2024-05-29T16:26:40Z"


def test_a_persons_tracker_and_device_only_kinds_have_no_domain_entity():
    channels, latest = _latest("gps", {"lat": 31.0, "lon": 121.0})
    assert sdm.domain_entity(_device("gps"), channels, latest, period_s=10) is None
    for kind in DEVICE_ONLY:
        channels, latest = _latest(kind, {})
        assert sdm.domain_entity(_device(kind), channels, latest, period_s=60) is None


@pytest.mark.parametrize("kind", sorted(BUILTIN_KINDS))
def test_every_device_is_a_device_entity(kind):
    channels, latest = _latest(kind, {channel: 3.0 for channel in
                                      [c.name for c in BUILTIN_KINDS[kind].channels]})
    e = sdm.device_entity(_device(kind), channels, latest)
    assert e["id"] == f"urn:ngsi-ld:Device:{kind}-1"
    assert e["type"] == [TERMS["Device"]]
    assert e[TERMS["deviceState"]][0]["value"] == "active"
    assert e[TERMS["dateLastValueReported"]][0]["value"] == {
        "@type": "DateTime", "@value": "2024-05-29T16:26:40Z"}
    assert e[TERMS["location"]][0]["type"] == "GeoProperty"
    value = e[TERMS["value"]][0]
    assert value["observedAt"] == "2024-05-29T16:26:40Z"
    if len(channels) == 1:
        assert value["value"] == 3.0
        assert value["unitCode"] == sdm.MODELS[kind].measures[0].unit
    else:
        assert value["value"] == ";".join(f"{c}=3" for c in channels)
        assert sdm.device_value_readings(value["value"], channels) == {c: 3.0 for c in channels}
    if kind in DEVICE_ONLY and DEVICE_ONLY[kind]:
        assert value["unitCode"] == DEVICE_ONLY[kind]


def test_a_device_never_heard_has_no_value_or_last_report():
    channels, latest = _latest("noise", {})
    e = sdm.device_entity(_device("noise"), channels, latest)
    assert TERMS["value"] not in e and TERMS["dateLastValueReported"] not in e


def test_device_value_text_is_read_strictly():
    assert sdm.device_value_readings(4, ["tilt"]) == {"tilt": 4.0}
    assert "channel" in sdm.device_value_readings(4, ["event", "dwell"])
    assert "not a number" in sdm.device_value_readings("event=x", ["event", "dwell"])
    assert "event, dwell" in sdm.device_value_readings("speed=1", ["event", "dwell"])
    assert "boolean" in sdm.device_value_readings(True, ["tilt"])


def test_other_spellings_of_a_term_are_its_canonical_iri():
    laeq = TERMS["LAeq"]
    for other in ("https://uri.etsi.org/ngsi-ld/default-context/LAeq",
                  "https://smart-data-models.github.io/data-models/terms.jsonld#/definitions/LAeq",
                  "https://smartdatamodels.org/dataModel.Environment/LAeq"):
        assert sdm.canonical(other) == laeq
    assert sdm.canonical("https://smartdatamodels.org/dataModel.Weather/refDevice") == \
        TERMS["refDevice"]
    assert sdm.canonical("https://example.org/LAeq") == "https://example.org/LAeq"
    assert sdm.canonical("https://uri.etsi.org/ngsi-ld/default-context/Parking") == \
        "https://uri.etsi.org/ngsi-ld/default-context/Parking"
    assert sdm.is_mapped("https://uri.etsi.org/ngsi-ld/default-context/NoiseLevelObserved")
    assert sdm.is_mapped(TERMS["Device"])
    assert not sdm.is_mapped(TERMS["Alert"]) and sdm.is_view(TERMS["Alert"])
    assert sdm.is_view(TERMS["service_requests"])  # SDM's own name of the type


def test_shipped_context_holds_exactly_the_terms():
    path = Path(sdm.__file__).parent / "contexts" / "cityops-sdm.jsonld"
    shipped = json.loads(path.read_text())["@context"]
    assert shipped == {t: i for t, i in TERMS.items() if not i.startswith(sdm.NGSI)}


def test_official_contexts_expand_to_what_cityops_understands():
    from cityops.ngsild import contexts

    for subject in sdm.SUBJECTS:
        url = (f"https://raw.githubusercontent.com/smart-data-models/dataModel.{subject}"
               f"/master/context.jsonld")
        terms = contexts.resolve(url)
        for model in sdm.MODELS.values():
            if TERMS[model.type].startswith(f"{sdm.SDM}dataModel.{subject}/"):
                assert sdm.canonical(terms.expand(model.type)) == model.type_iri
                for m in model.measures:
                    assert sdm.canonical(terms.expand(m.attr)) == m.iri, (subject, m.attr)


def _alert(**kw) -> Alert:
    base = dict(id="a1", scenario="flood", rule="flood.deep_water",
                category="event.emergency.waterlogging", severity="major", urgency="urgent",
                departments=["water_affairs"], subject="wd-1", title="Deep water",
                detail="42 cm at the underpass", lat=31.2, lon=121.5, first_seen=T0,
                last_seen=T0 + 60, areas=AreaCodes("310115", "310115001", "310115001001"))
    return Alert(**(base | kw))


def test_alert_entity():
    e = sdm.alert_entity(_alert(), devices={"wd-1": 0})
    assert e["id"] == "urn:ngsi-ld:Alert:a1" and e["type"] == [TERMS["Alert"]]
    assert e[TERMS["category"]][0]["value"] == "weather"
    assert e[TERMS["subCategory"]][0]["value"] == "flood"
    assert e[TERMS["severity"]][0]["value"] == "high"
    assert e[TERMS["dateIssued"]][0]["value"]["@value"] == "2024-05-29T16:26:40Z"
    assert e[TERMS["validFrom"]][0]["value"]["@value"] == "2024-05-29T16:26:40Z"
    assert TERMS["validTo"] not in e
    assert e[TERMS["alertSource"]][0] == {"type": "Relationship",
                                          "object": "urn:ngsi-ld:Device:wd-1"}
    assert e[TERMS["location"]][0]["value"]["coordinates"] == [121.5, 31.2]
    assert e[TERMS["description"]][0]["value"] == "42 cm at the underpass"
    data = e[TERMS["data"]][0]["value"]
    assert data["category"] == "event.emergency.waterlogging" and data["area"] == "310115001001"
    cleared = sdm.alert_entity(_alert(subject="area:310115", cleared_at=T0 + 600, active=False))
    assert cleared[TERMS["validTo"]][0]["value"]["@value"] == "2024-05-29T16:36:40Z"
    assert cleared[TERMS["alertSource"]][0]["object"] == \
        "urn:ngsi-ld:ScenarioRule:flood.deep_water"


def test_alert_categories_fall_back_by_major_part():
    assert sdm.alert_category("event.environment.noise_nuisance") == ("environment", None)
    assert sdm.alert_category("event.social_services.elderly_welfare_check") == ("health", None)
    assert sdm.alert_category("component.iot_device.fault") == ("security", None)


def test_service_request_entity():
    view = {"service_request_id": "1042", "status": "open", "service_code": "garbage",
            "service_name": "Garbage", "description": "Bins overflowing", "address": "Lane 3",
            "requested_datetime": "2024-05-29T08:00:00+08:00", "updated_datetime": None,
            "lat": 31.2, "long": 121.5, "media_url": None, "agency_responsible": "Sanitation"}
    e = sdm.service_request_entity(view)
    assert e["id"] == "urn:ngsi-ld:ServiceRequest:1042"
    assert e["type"] == [TERMS["ServiceRequest"]] == [TERMS["service_requests"]]
    assert e[TERMS["status"]][0]["value"] == "open"
    assert e[TERMS["address_string"]][0]["value"] == "Lane 3"
    assert e[TERMS["requested_datetime"]][0]["value"]["@value"] == "2024-05-29T08:00:00+08:00"
    assert TERMS["updated_datetime"] not in e and TERMS["media_url"] not in e
    assert e[TERMS["location"]][0]["value"]["coordinates"] == [121.5, 31.2]
