"""The city-pack folder format: round trips, defaults, and errors that name file and field."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import h3
import msgspec
import pytest
import shapely
import yaml

from cityops.domain.city import (
    Area,
    ChannelSpec,
    CityInfo,
    CityPack,
    Department,
    Device,
    DeviceKind,
    Level,
    Staff,
    Vehicle,
    WorkCalendar,
    WorkPeriod,
)
from cityops.domain.geo import to_geojson_geometry
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.packs.categories_file import default_categories
from cityops.packs.format import PackError, load_pack, save_pack


def box(x0: float, y0: float, x1: float, y1: float) -> dict:
    return to_geojson_geometry(shapely.box(121.0 + x0 / 100, 31.0 + y0 / 100,
                                           121.0 + x1 / 100, 31.0 + y1 / 100))


def small_pack() -> CityPack:
    areas = [
        Area("100000", "Box District", Level.DISTRICT, None, box(0, 0, 2, 1)),
        Area("100000001", "Only Town", Level.TOWN, "100000", box(0, 0, 2, 1), ref="T-1"),
        Area("100000001001", "West", Level.VILLAGE, "100000001", box(0, 0, 1, 1)),
        Area("100000001002", "East", Level.VILLAGE, "100000001", box(1, 0, 2, 1)),
    ]
    tide = DeviceKind("tide", "Tide gauge", [ChannelSpec("level", "cm", -500.0, 1500.0)], 120.0)
    return CityPack(
        info=CityInfo("Box City", "Asia/Shanghai", (31.005, 121.01), country="CN",
                      generator={"preset": "test"}),
        areas=areas,
        departments=[Department("police", "Police", "110", ["100000"]),
                     Department("greening", "Parks", None, ["100000001001"])],
        kinds={**BUILTIN_KINDS, "tide": tide},
        devices=[
            Device("noise-000001", "noise", 31.005, 121.005, name="Noise, West", owner="police",
                   meta={"floor": 2}),
            Device("tide-000001", "tide", 31.005, 121.015),
            Device("gps-staff-0001", "gps", 31.002, 121.002),
            Device("gps-truck-0001", "gps", 31.008, 121.018),
        ],
        staff=[Staff("staff-0001", "Li Wei", "greening", "gps-staff-0001", "100000001001",
                     ["tree_care"])],
        vehicles=[Vehicle("truck-0001", "沪D·12345", "muck_truck", "gps-truck-0001", "Haulage Co.")],
        cell_owners={h3.latlng_to_cell(31.005, 121.005, 9): "greening"},
        calendar=WorkCalendar(
            timezone="Asia/Shanghai",
            working_hours=[WorkPeriod(datetime.time(9), datetime.time(12)),
                           WorkPeriod(datetime.time(13, 30), datetime.time(18))],
            holidays=[datetime.date(2025, 1, 1)],
            working_days=[datetime.date(2025, 1, 26)],
        ),
        categories=default_categories(["police", "greening"]),
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    save_pack(small_pack(), tmp_path / "box")
    return tmp_path / "box"


def test_round_trip_gives_the_same_pack(folder: Path) -> None:
    assert load_pack(folder) == small_pack()


def test_saving_twice_gives_the_same_bytes(folder: Path, tmp_path: Path) -> None:
    save_pack(load_pack(folder), tmp_path / "again")
    for path in sorted(folder.iterdir()):
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_citys_language_is_written_only_when_it_is_not_english(tmp_path: Path) -> None:
    english = small_pack()
    save_pack(english, tmp_path / "en")
    assert "language" not in yaml.safe_load((tmp_path / "en" / "city.yaml").read_text())
    chinese = msgspec.structs.replace(
        english, info=msgspec.structs.replace(english.info, language="zh-CN"))
    save_pack(chinese, tmp_path / "zh")
    assert yaml.safe_load((tmp_path / "zh" / "city.yaml").read_text())["language"] == "zh-CN"
    assert load_pack(tmp_path / "zh").info.language == "zh-CN"


def test_only_kinds_beyond_the_builtins_are_written(folder: Path) -> None:
    kinds = yaml.safe_load((folder / "kinds.yaml").read_text())
    assert [k["name"] for k in kinds] == ["tide"]


def test_the_files_are_what_the_docs_say(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        "city.yaml", "areas.geojson", "departments.yaml", "kinds.yaml", "devices.jsonl",
        "staff.jsonl", "vehicles.jsonl", "cell_owners.json", "calendar.yaml", "categories.yaml"])
    collection = json.loads((folder / "areas.geojson").read_text())
    assert collection["type"] == "FeatureCollection"
    first = collection["features"][0]
    assert first["properties"] == {"code": "100000", "name": "Box District",
                                   "level": "district", "parent": None}
    assert collection["features"][1]["properties"]["ref"] == "T-1"
    # RFC 7946: exterior rings counter-clockwise
    assert shapely.LinearRing(first["geometry"]["coordinates"][0]).is_ccw
    calendar = yaml.safe_load((folder / "calendar.yaml").read_text())
    assert calendar["working_hours"] == ["09:00-12:00", "13:30-18:00"]
    assert calendar["weekend"] == ["saturday", "sunday"]
    line = json.loads((folder / "devices.jsonl").read_text().splitlines()[0])
    assert line == {"id": "noise-000001", "kind": "noise", "lat": 31.005, "lon": 121.005,
                    "name": "Noise, West", "owner": "police", "meta": {"floor": 2}}


def test_optional_files_may_be_left_out(folder: Path) -> None:
    for name in ["kinds.yaml", "staff.jsonl", "vehicles.jsonl", "cell_owners.json",
                 "calendar.yaml", "categories.yaml"]:
        (folder / name).unlink()
    (folder / "devices.jsonl").write_text(
        '{"id":"noise-000001","kind":"noise","lat":31.005,"lon":121.005}\n\n')
    pack = load_pack(folder)
    assert pack.kinds == BUILTIN_KINDS
    assert pack.staff == [] and pack.vehicles == [] and pack.cell_owners == {}
    assert pack.calendar == WorkCalendar(timezone="Asia/Shanghai")  # 09-12, 13:30-18, Sat+Sun
    assert [d.id for d in pack.devices] == ["noise-000001"]


def test_a_stale_kinds_file_is_removed_when_the_pack_has_none(folder: Path) -> None:
    pack = small_pack()
    pack.kinds = dict(BUILTIN_KINDS)
    pack.devices = [d for d in pack.devices if d.kind != "tide"]
    save_pack(pack, folder)
    assert not (folder / "kinds.yaml").exists()
    assert load_pack(folder).kinds == BUILTIN_KINDS


def test_saving_over_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(PackError, match="exists and is not a folder"):
        save_pack(small_pack(), tmp_path / "file")


def test_saving_an_inconsistent_pack_is_refused(tmp_path: Path) -> None:
    pack = small_pack()
    pack.devices.append(Device("x-1", "unknown_kind", 31.0, 121.0))
    with pytest.raises(PackError, match="devices.jsonl: line 5: field 'kind'"):
        save_pack(pack, tmp_path / "bad")


# -- errors name the file, the record and the field ------------------------------------------


def edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def edit_yaml(path: Path, change) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def edit_lines(path: Path, number: int, change) -> None:
    lines = path.read_text().splitlines()
    record = json.loads(lines[number - 1])
    change(record)
    lines[number - 1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")


def props(i: int, **values):
    def change(doc):
        doc["features"][i]["properties"].update(values)
    return change


@pytest.mark.parametrize(("change", "message"), [
    (props(2, code=100000001001),
     "areas.geojson: feature 2: property 'code' must be a string of 6, 9 or 12 digits, got "
     "100000001001"),
    (props(2, code="10000000100A"), "feature 2: property 'code' must be a string of"),
    (props(2, level="hamlet"),
     "areas.geojson: feature 2 (100000001001): property 'level' must be one of district, town, "
     "village, got 'hamlet'"),
    (props(2, level="town"), "feature 2 (100000001001): property 'code' has 12 digits but a "
                             "town code has 9"),
    (props(3, parent="100000009"), "areas.geojson: feature 3 (100000001002): property 'parent' "
                                   "'100000009' is not the code of any area"),
    (props(3, parent="100000"), "feature 3 (100000001002): property 'parent' 100000 is a "
                                "district; a village's parent must be a town"),
    (props(3, code="100000001001"), "feature 3: property 'code' 100000001001 is already used by "
                                    "feature 2"),
    (props(1, name=""), "feature 1 (100000001): property 'name' must be a non-empty string"),
    (props(0, parent="100000"), "feature 0 (100000): property 'parent' must be null"),
    (lambda doc: doc["features"][3]["properties"].update(code="200000001002", parent=None,
                                                          level="village"),
     "feature 3 (200000001002): property 'parent' None is not the code of any area"),
    (lambda doc: doc["features"][2]["geometry"].update(
        coordinates=[[[121.0, 31.0], [121.01, 31.01], [121.01, 31.0], [121.0, 31.01],
                      [121.0, 31.0]]]),
     "areas.geojson: feature 2 (100000001001): 'geometry' is invalid: Self-intersection"),
    (lambda doc: doc["features"][2]["geometry"].update(
        coordinates=[[[31.0, 121.0], [31.0, 121.01], [31.01, 121.01], [31.0, 121.0]]]),
     "feature 2 (100000001001): geometry 'coordinates': position [31.0, 121.0] is outside"),
    (lambda doc: doc["features"][2]["geometry"].update(type="Point"),
     "feature 2 (100000001001): 'geometry' must be a Polygon or MultiPolygon, got 'Point'"),
    (lambda doc: doc["features"][2]["geometry"]["coordinates"][0].pop(),
     "feature 2 (100000001001): geometry 'coordinates': a ring must end where it starts"),
    (lambda doc: doc.update(type="Feature"), "areas.geojson: must be a GeoJSON FeatureCollection"),
])
def test_area_errors(folder: Path, change, message: str) -> None:
    edit_json(folder / "areas.geojson", change)
    with pytest.raises(PackError) as caught:
        load_pack(folder)
    assert message in str(caught.value)


def test_a_village_code_not_under_its_parent(folder: Path) -> None:
    edit_json(folder / "areas.geojson", props(3, code="100000002002"))
    with pytest.raises(PackError, match=r"feature 3 \(100000002002\): property 'code' must start "
                                        r"with its parent's code 100000001"):
        load_pack(folder)


@pytest.mark.parametrize(("line", "change", "message"), [
    (2, lambda r: r.update(kind="nosie"),
     "devices.jsonl: line 2: field 'kind': unknown device kind 'nosie' (known: air_quality"),
    (1, lambda r: r.update(lat="31.0"), "devices.jsonl: line 1: field 'lat': expected float, "
                                        "got str"),
    (1, lambda r: r.pop("lon"), "devices.jsonl: line 1: field 'lon' is missing"),
    (3, lambda r: r.update(id="noise-000001"),
     "devices.jsonl: line 3: field 'id' 'noise-000001' is already used on line 1"),
    (1, lambda r: r.update(owner="polise"),
     "devices.jsonl: line 1: field 'owner': 'polise' is not a department code"),
    (1, lambda r: r.update(lat=131.0), "devices.jsonl: line 1: fields 'lat', 'lon': (131.0, "),
])
def test_device_errors(folder: Path, line: int, change, message: str) -> None:
    edit_lines(folder / "devices.jsonl", line, change)
    with pytest.raises(PackError) as caught:
        load_pack(folder)
    assert message in str(caught.value)


def test_malformed_json_lines_are_located(folder: Path) -> None:
    path = folder / "devices.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:-5]
    path.write_text("\n".join(lines))
    with pytest.raises(PackError, match="devices.jsonl: line 3: not valid JSON"):
        load_pack(folder)


def test_staff_and_vehicle_errors(folder: Path) -> None:
    edit_lines(folder / "staff.jsonl", 1, lambda r: r.update(device_id="gps-staff-9999"))
    with pytest.raises(PackError, match="staff.jsonl: line 1: field 'device_id': "
                                        "'gps-staff-9999' is not in devices.jsonl"):
        load_pack(folder)
    edit_lines(folder / "staff.jsonl", 1, lambda r: r.update(device_id="gps-staff-0001",
                                                              home_area="123"))
    with pytest.raises(PackError, match="staff.jsonl: line 1: field 'home_area'"):
        load_pack(folder)
    edit_lines(folder / "staff.jsonl", 1, lambda r: r.update(home_area="100000001001",
                                                              department="fire"))
    with pytest.raises(PackError, match="staff.jsonl: line 1: field 'department': 'fire'"):
        load_pack(folder)
    edit_lines(folder / "staff.jsonl", 1, lambda r: r.update(department="greening"))
    edit_lines(folder / "vehicles.jsonl", 1, lambda r: r.update(device_id="nope"))
    with pytest.raises(PackError, match="vehicles.jsonl: line 1: field 'device_id': 'nope'"):
        load_pack(folder)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("timezone"), "city.yaml: field 'timezone' is missing"),
    (lambda d: d.update(timezone="Asia/Shangai"),
     "city.yaml: field 'timezone': 'Asia/Shangai' is not an IANA time zone name"),
    (lambda d: d.update(h3_resoluton=8), "city.yaml: unknown field 'h3_resoluton'"),
    (lambda d: d.update(center=[31.0]), "city.yaml: field 'center': expected array of length 2"),
    (lambda d: d.update(h3_resolution=16), "city.yaml: field 'h3_resolution' must be 0..15"),
])
def test_city_file_errors(folder: Path, change, message: str) -> None:
    edit_yaml(folder / "city.yaml", change)
    with pytest.raises(PackError) as caught:
        load_pack(folder)
    assert message in str(caught.value)


def test_yaml_syntax_errors_give_the_line(folder: Path) -> None:
    (folder / "city.yaml").write_text("name: Box City\ntimezone: [Asia/Shanghai\ncenter: 1\n")
    with pytest.raises(PackError, match=r"city.yaml: line \d+: not valid YAML"):
        load_pack(folder)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d[0].update(service_areas=["999999"]),
     "departments.yaml: department 0 (police): field 'service_areas': '999999' is not the code "
     "of any area"),
    (lambda d: d[1].update(code="police"),
     "departments.yaml: department 1 (police): field 'code' 'police' appears twice"),
    (lambda d: d[1].update(code="Parks Dept"), "department 1 (Parks Dept): field 'code' must be "
                                               "snake_case"),
    (lambda d: d[0].update(hotline=110), "department 0 (police): field 'hotline': expected str"),
])
def test_department_errors(folder: Path, change, message: str) -> None:
    edit_yaml(folder / "departments.yaml", change)
    with pytest.raises(PackError) as caught:
        load_pack(folder)
    assert message in str(caught.value)


def test_kind_errors(folder: Path) -> None:
    edit_yaml(folder / "kinds.yaml", lambda d: d[0]["channels"][0].update(min=2000.0))
    with pytest.raises(PackError, match="kinds.yaml: kind 'tide': channel 'level': 'min' must be "
                                        "below 'max'"):
        load_pack(folder)
    edit_yaml(folder / "kinds.yaml", lambda d: d[0].pop("period_s"))
    with pytest.raises(PackError, match=r"kinds.yaml: kind 0 \(tide\): field 'period_s' is "
                                        r"missing"):
        load_pack(folder)


@pytest.mark.parametrize(("owners", "message"), [
    ({h3.latlng_to_cell(31.005, 121.005, 8): "greening"}, "is at H3 resolution 8, the city uses 9"),
    ({"89xyz": "greening"}, "cell_owners.json: '89xyz' is not an H3 cell"),
    ({h3.latlng_to_cell(31.005, 121.005, 9): "gardening"},
     "owner 'gardening' is neither a department code nor a local authority"),
    ({h3.latlng_to_cell(31.005, 121.005, 9): "station:100000001"},
     "owner 'station:100000001' is neither"),
])
def test_cell_owner_errors(folder: Path, owners: dict, message: str) -> None:
    (folder / "cell_owners.json").write_text(json.dumps(owners))
    with pytest.raises(PackError) as caught:
        load_pack(folder)
    assert message in str(caught.value)


def test_local_authorities_may_own_cells(folder: Path) -> None:
    cell = h3.latlng_to_cell(31.005, 121.005, 9)
    (folder / "cell_owners.json").write_text(json.dumps({cell: "station:100000001002"}))
    assert load_pack(folder).cell_owners == {cell: "station:100000001002"}


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(working_hours=["9-12"]),
     "calendar.yaml: field 'working_hours[0]': '9-12' is not a period like \"09:00-12:00\""),
    (lambda d: d.update(working_hours=["13:00-12:00"]), "'13:00-12:00' ends before it starts"),
    (lambda d: d.update(working_hours=["09:00-12:00", "11:00-13:00"]),
     "'11:00-13:00' overlaps or precedes the period before it"),
    (lambda d: d.update(weekend=["caturday"]), "field 'weekend': 'caturday' is not a day name"),
    (lambda d: d.update(holidays=["2025-02-30"]), "field 'holidays': '2025-02-30' is not a date"),
    (lambda d: d.update(timezone="Mars/Olympus"), "calendar.yaml: field 'timezone'"),
    (lambda d: d.update(weekends=["sunday"]), "calendar.yaml: unknown field 'weekends'"),
])
def test_calendar_errors(folder: Path, change, message: str) -> None:
    edit_yaml(folder / "calendar.yaml", change)
    with pytest.raises(PackError) as caught:
        load_pack(folder)
    assert message in str(caught.value)


def test_required_files_must_exist(folder: Path, tmp_path: Path) -> None:
    (folder / "areas.geojson").unlink()
    with pytest.raises(PackError, match="areas.geojson: missing"):
        load_pack(folder)
    with pytest.raises(PackError, match="not a city-pack folder"):
        load_pack(tmp_path / "nowhere")


def test_categories_default_to_the_typical_set_fitted_to_the_departments(folder: Path) -> None:
    (folder / "categories.yaml").unlink()
    pack = load_pack(folder)
    by_code = {c.code: c for c in pack.categories}
    # The default set knows fire lanes; this city has no fire brigade or city management.
    assert by_code["event.street_order.fire_lane_blocked"].departments == ["police"]
    assert by_code["event.greening.maintenance"].departments == ["greening"]
    assert by_code["event.sanitation.exposed_garbage"].departments == ["police"]  # first dept
    assert by_code["event.sanitation.exposed_garbage"].limits.finish == "4wh"


def test_a_bad_category_is_named_with_its_field(folder: Path) -> None:
    text = (folder / "categories.yaml").read_text()
    (folder / "categories.yaml").write_text(text.replace("departments:\n  - police", "departments:\n  - navy", 1))
    with pytest.raises(PackError, match=r"categories.yaml: category '.*': unknown department 'navy'"):
        load_pack(folder)
    (folder / "categories.yaml").write_text("- code: event.x.y\n  name: X\n  kind: event\n  major: x\n  minor: y\n  departments: [police]\n  urgency: soon\n")
    with pytest.raises(PackError, match="urgency 'soon'"):
        load_pack(folder)
