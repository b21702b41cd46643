"""zones.geojson in a city pack: round trip, optional, and errors that name feature and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely

from cityops.domain.city import Area, CityInfo, CityPack, Department, Device, Level, Zone
from cityops.domain.geo import to_geojson_geometry
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.packs.categories_file import default_categories
from cityops.packs.format import PackError, load_pack, save_pack

SQUARE = to_geojson_geometry(shapely.box(121.0, 31.0, 121.02, 31.01))


def zones() -> list[Zone]:
    return [
        Zone("core", "muck_forbidden", "Core", to_geojson_geometry(
            shapely.box(121.002, 31.002, 121.004, 31.004)), {"hours": "07:00-22:00"}),
        Zone("route-1", "muck_route", "Site 1 to the tip",
             {"type": "LineString", "coordinates": [[121.001, 31.001], [121.019, 31.009]]},
             {"vehicles": ["gps-truck-0001"]}),
        Zone("lane-1", "fire_lane", "Lane", to_geojson_geometry(
            shapely.box(121.010, 31.005, 121.011, 31.0052))),
    ]


def pack_with_zones() -> CityPack:
    return CityPack(
        info=CityInfo("Box City", "Asia/Shanghai", (31.005, 121.01)),
        areas=[
            Area("100000", "Box District", Level.DISTRICT, None, SQUARE),
            Area("100000001", "Only Town", Level.TOWN, "100000", SQUARE),
            Area("100000001001", "Only Village", Level.VILLAGE, "100000001", SQUARE),
        ],
        departments=[Department("police", "Police", "110", ["100000"])],
        kinds=dict(BUILTIN_KINDS),
        devices=[Device("gps-truck-0001", "gps", 31.008, 121.018)],
        zones=zones(),
        categories=default_categories(["police"]),
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    save_pack(pack_with_zones(), tmp_path / "box")
    return tmp_path / "box"


def test_zones_round_trip(folder: Path) -> None:
    pack = load_pack(folder)
    assert pack.zones == zones()


def test_the_file_is_a_feature_collection_with_id_kind_name_meta(folder: Path) -> None:
    doc = json.loads((folder / "zones.geojson").read_text())
    assert doc["type"] == "FeatureCollection"
    first = doc["features"][0]
    assert first["id"] == "core"
    assert first["properties"] == {"id": "core", "kind": "muck_forbidden", "name": "Core",
                                   "meta": {"hours": "07:00-22:00"}}
    assert doc["features"][1]["geometry"]["type"] == "LineString"


def test_zones_are_optional_and_a_stale_file_is_removed(folder: Path) -> None:
    pack = pack_with_zones()
    pack.zones = []
    save_pack(pack, folder)
    assert not (folder / "zones.geojson").exists()
    assert load_pack(folder).zones == []


def test_saving_twice_gives_the_same_bytes(folder: Path, tmp_path: Path) -> None:
    save_pack(load_pack(folder), tmp_path / "again")
    assert (tmp_path / "again" / "zones.geojson").read_bytes() == \
        (folder / "zones.geojson").read_bytes()


def edit(folder: Path, change) -> None:
    path = folder / "zones.geojson"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def props(i: int, **values):
    def change(doc):
        doc["features"][i]["properties"].update(values)
    return change


def geometry(i: int, value):
    def change(doc):
        doc["features"][i]["geometry"] = value
    return change


@pytest.mark.parametrize(("change", "message"), [
    (lambda doc: doc.update(type="Feature"), "zones.geojson: must be a GeoJSON FeatureCollection"),
    (lambda doc: doc.update(features={}), "zones.geojson: 'features' must be a list"),
    (lambda doc: doc["features"].__setitem__(0, 5),
     "zones.geojson: feature 0: must be a GeoJSON Feature"),
    (props(1, id=""), "zones.geojson: feature 1: property 'id' must be a non-empty string"),
    (props(1, kind=3), "zones.geojson: feature 1 (route-1): property 'kind' must be a string"),
    (props(0, kind="Muck Forbidden"),
     "zones.geojson: feature 0 (core): property 'kind' must be snake_case"),
    (props(0, name=None), "zones.geojson: feature 0 (core): property 'name' must be a string"),
    (props(0, meta=[1]), "zones.geojson: feature 0 (core): property 'meta' must be an object"),
    (props(0, mta={}), "zones.geojson: feature 0 (core): unknown property 'mta'"),
    (props(2, id="core"),
     "zones.geojson: feature 2 (core): property 'id' is already used by feature 0"),
    (props(0, meta={"hours": "7-22h"}),
     "zones.geojson: feature 0 (core): property 'meta.hours': '7-22h' is not a period"),
    (props(1, meta={"vehicles": ["gps-truck-0009"]}),
     "zones.geojson: feature 1 (route-1): property 'meta.vehicles': 'gps-truck-0009' is not "
     "in devices.jsonl"),
    (props(1, meta={"vehicles": "gps-truck-0001"}),
     "property 'meta.vehicles' must be a list of device ids"),
    (geometry(0, {"type": "Point", "coordinates": [121.0, 31.0]}),
     "zones.geojson: feature 0 (core): 'geometry' must be a Polygon, MultiPolygon, LineString "
     "or MultiLineString, got 'Point'"),
    (geometry(1, {"type": "LineString", "coordinates": [[121.0, 31.0]]}),
     "feature 1 (route-1): geometry 'coordinates': a line needs at least 2 positions"),
    (geometry(1, {"type": "LineString", "coordinates": [[31.0, 121.0], [31.0, 121.1]]}),
     "position [31.0, 121.0] is outside lon -180..180, lat -90..90 (GeoJSON is [lon, lat])"),
    (geometry(1, {"type": "LineString", "coordinates": [[121.0, 31.0], [121.0, 31.0]]}),
     "zones.geojson: feature 1 (route-1): 'geometry' is invalid"),
    (geometry(0, {"type": "Polygon", "coordinates": [[[121.0, 31.0], [121.01, 31.01],
                                                      [121.01, 31.0], [121.0, 31.01],
                                                      [121.0, 31.0]]]}),
     "zones.geojson: feature 0 (core): 'geometry' is invalid: Self-intersection"),
    (geometry(0, {"type": "Polygon", "coordinates": [[[121.0, 31.0], [121.01, 31.01],
                                                      [121.01, 31.0]]]}),
     "a ring needs at least 4 positions"),
])
def test_zone_errors(folder: Path, change, message: str) -> None:
    edit(folder, change)
    with pytest.raises(PackError) as error:
        load_pack(folder)
    assert message in str(error.value)


def test_not_json_at_all(folder: Path) -> None:
    (folder / "zones.geojson").write_text("{features: ")
    with pytest.raises(PackError, match=r"^zones.geojson: not valid JSON"):
        load_pack(folder)


def test_saving_a_pack_with_a_bad_zone_is_refused(tmp_path: Path) -> None:
    pack = pack_with_zones()
    pack.zones = [*zones(), zones()[0]]
    with pytest.raises(PackError, match="property 'id' is already used by feature 0"):
        save_pack(pack, tmp_path / "bad")
