"""A synthetic Pudong-scale city, generated from a seed.

The shape of the city follows Shanghai's Pudong New Area (district code 310115): an outline
between the Huangpu river (west) and the Yangtze estuary and East China Sea (north and east),
and the real names of its 12 streets and 24 towns, each grown around its approximate real
centre. Everything inside (village and community boundaries, sensors, staff, trucks) is made
up, plausibly: the same seed gives the same city, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import h3
import numpy as np
import shapely

from cityops.domain.city import (
    Area,
    CityInfo,
    CityPack,
    Department,
    Level,
)
from cityops.domain.geo import CityMap, to_geojson_geometry
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.packs.categories_file import default_categories
from cityops.packs import pudong_kpis, pudong_people, pudong_sensors, pudong_zones
from cityops.packs.calendars import shanghai_calendar
from cityops.packs.naming import place_name_zh, place_names
from cityops.packs.tiling import (
    KM_PER_DEG_LAT,
    KM_PER_DEG_LON_AT_31N,
    disk,
    km2,
    relaxed_seeds,
    voronoi_tiling,
)

DISTRICT = "310115"
FORMAT_VERSION = 1
VILLAGE_TOTAL = 712

# lon, lat, clockwise from the mouth of the Huangpu at Wusongkou: the estuary and sea coast,
# the land border with Fengxian and Minhang, then up the Huangpu round the Lujiazui bend.
OUTLINE = [
    (121.508, 31.383), (121.545, 31.372), (121.600, 31.357), (121.655, 31.330),
    (121.705, 31.298), (121.752, 31.255), (121.795, 31.205), (121.830, 31.150),
    (121.862, 31.090), (121.893, 31.025), (121.922, 30.962), (121.940, 30.910),
    (121.926, 30.876), (121.885, 30.866), (121.835, 30.876), (121.790, 30.900),
    (121.745, 30.932), (121.695, 30.970), (121.645, 31.010), (121.595, 31.045),
    (121.548, 31.076), (121.502, 31.100), (121.470, 31.118), (121.472, 31.145),
    (121.480, 31.175), (121.490, 31.205), (121.497, 31.232), (121.505, 31.242),
    (121.520, 31.250), (121.535, 31.256), (121.545, 31.270), (121.550, 31.292),
    (121.548, 31.320), (121.530, 31.350), (121.508, 31.383),
]

COAST_VERTICES = 14  # the first vertices of OUTLINE run along the estuary and the sea

# The 12 streets (urban, all residential communities) then the 24 towns, with the approximate
# lon/lat of each one's centre. Codes 310115001..036 follow this order.
STREETS = [
    ("Weifang Xincun", 121.525, 31.228), ("Lujiazui", 121.507, 31.238),
    ("Zhoujiadu", 121.500, 31.180), ("Tangqiao", 121.515, 31.212),
    ("Shanggang Xincun", 121.487, 31.172), ("Nanmatou Road", 121.505, 31.197),
    ("Hudong Xincun", 121.560, 31.288), ("Jinyang Xincun", 121.560, 31.262),
    ("Yangjing", 121.540, 31.245), ("Puxing Road", 121.575, 31.275),
    ("Dongming Road", 121.510, 31.155), ("Huamu", 121.555, 31.210),
]
TOWNS = [
    ("Chuansha Xinzhen", 121.705, 31.190), ("Gaoqiao", 121.565, 31.345),
    ("Beicai", 121.545, 31.180), ("Heqing", 121.750, 31.225),
    ("Tangzhen", 121.660, 31.215), ("Caolu", 121.675, 31.272),
    ("Jinqiao", 121.605, 31.255), ("Gaohang", 121.595, 31.300),
    ("Gaodong", 121.630, 31.322), ("Zhangjiang", 121.600, 31.200),
    ("Sanlin", 121.495, 31.135), ("Huinan", 121.755, 31.050),
    ("Zhoupu", 121.575, 31.110), ("Xinchang", 121.650, 31.035),
    ("Datuan", 121.720, 30.975), ("Kangqiao", 121.590, 31.150),
    ("Hangtou", 121.590, 31.070), ("Zhuqiao", 121.765, 31.120),
    ("Nicheng", 121.830, 30.915), ("Xuanqiao", 121.680, 31.080),
    ("Shuyuan", 121.855, 30.990), ("Wanxiang", 121.785, 30.955),
    ("Laogang", 121.835, 31.060), ("Nanhui Xincheng", 121.910, 30.905),
]
# Their Chinese names, in the same order (a town's 镇 is part of its name, as 川沙新镇 shows).
STREETS_ZH = ["潍坊新村街道", "陆家嘴街道", "周家渡街道", "塘桥街道", "上钢新村街道", "南码头路街道",
              "沪东新村街道", "金杨新村街道", "洋泾街道", "浦兴路街道", "东明路街道", "花木街道"]
TOWNS_ZH = ["川沙新镇", "高桥镇", "北蔡镇", "合庆镇", "唐镇", "曹路镇", "金桥镇", "高行镇", "高东镇",
            "张江镇", "三林镇", "惠南镇", "周浦镇", "新场镇", "大团镇", "康桥镇", "航头镇", "祝桥镇",
            "泥城镇", "宣桥镇", "书院镇", "万祥镇", "老港镇", "南汇新城镇"]
LUJIAZUI = (121.507, 31.238)
KM_PER_DEG = np.array([KM_PER_DEG_LON_AT_31N, KM_PER_DEG_LAT])

ZH = "zh-CN"
DEPARTMENTS_ZH = {
    "police": "上海市公安局浦东分局", "fire": "浦东新区消防救援支队",
    "ambulance": "浦东新区医疗急救中心", "city_management": "浦东新区城市管理行政执法局",
    "environment": "浦东新区生态环境局", "water_affairs": "浦东新区水务局（防汛办）",
    "transport": "浦东新区交通委员会", "housing_construction": "浦东新区住房和建设委员会",
    "market_regulation": "浦东新区市场监督管理局", "civil_affairs": "浦东新区民政局",
    "sanitation": "浦东新区市容环境卫生管理局", "greening": "浦东新区绿化管理局",
    "utilities_power": "国网上海市电力公司浦东供电公司", "utilities_gas": "浦东新区燃气公司",
    "utilities_water": "浦东新区自来水公司", "hotline_12345": "浦东新区12345市民服务热线办公室",
    "health": "浦东新区卫生健康委员会", "human_resources_social_security": "浦东新区人力资源和社会保障局",
    "medical_insurance": "浦东新区医疗保障局",
}
DEPARTMENTS = [
    ("police", "Pudong Public Security Sub-bureau", "110"),
    ("fire", "Pudong Fire and Rescue Detachment", "119"),
    ("ambulance", "Pudong Emergency Medical Centre", "120"),
    ("city_management", "Pudong City Management and Law Enforcement Bureau", None),
    ("environment", "Pudong Ecology and Environment Bureau", None),
    ("water_affairs", "Pudong Water Affairs Bureau (flood control office)", None),
    ("transport", "Pudong Transport Commission", None),
    ("housing_construction", "Pudong Housing and Construction Commission", None),
    ("market_regulation", "Pudong Market Supervision Administration", None),
    ("civil_affairs", "Pudong Civil Affairs Bureau", None),
    ("sanitation", "Pudong City Appearance and Sanitation Administration", None),
    ("greening", "Pudong Landscaping and Greening Administration", None),
    ("utilities_power", "State Grid Shanghai Pudong Power Supply Company", "95598"),
    ("utilities_gas", "Pudong Gas Company", None),
    ("utilities_water", "Pudong Water Supply Company", None),
    ("hotline_12345", "Pudong 12345 Citizen Service Hotline Office", "12345"),
    # The one-stop services' own departments: birth certificates, pensions, medical insurance.
    ("health", "Pudong Health Commission", None),
    ("human_resources_social_security", "Pudong Human Resources and Social Security Bureau",
     None),
    ("medical_insurance", "Pudong Medical Security Bureau", None),
]


@dataclass(slots=True)
class Village:
    """A village or residential community while the city is being made."""

    code: str
    name: str
    town: str
    shape: shapely.Geometry
    name_zh: str
    community: bool  # a residential community (urban) rather than a rural village
    urban_street: bool


Progress = Callable[[str], None]


def generate(seed: int, progress: Progress | None = None) -> CityPack:
    """The synthetic Pudong city for `seed`. `progress` is told the name of each step."""
    step = progress or (lambda _: None)
    rng = np.random.default_rng([seed, 310115])
    district = shapely.Polygon(OUTLINE)

    step("towns")
    towns = _towns(rng, district)
    step("villages and communities")
    villages = _villages(rng, towns)
    areas = _areas(district, towns, villages)
    city = CityMap(areas, name="Pudong (synthetic)")

    step("sensors and cameras")
    coast = shapely.LineString(OUTLINE[:COAST_VERTICES])
    sensors, road_cameras = pudong_sensors.place(rng, district, coast, villages, city)
    step("field staff and muck trucks")
    staff, staff_gps = pudong_people.field_staff(rng, villages)
    vehicles, truck_gps = pudong_people.muck_trucks(rng, villages)
    step("grid cell owners")
    cell_owners = _cell_owners(rng, city, villages, road_cameras)
    step("zones")
    zones, devices = pudong_zones.zones(seed, district, villages, sensors + staff_gps + truck_gps)
    step("gateways")
    devices = pudong_sensors.gateways(devices, city)
    step("vital-sign series")
    devices = devices + pudong_kpis.series(areas)

    return CityPack(
        info=CityInfo(
            name="Pudong New Area (synthetic)",
            timezone="Asia/Shanghai",
            center=(31.221, 121.544),
            h3_resolution=9,
            country="CN",
            version=FORMAT_VERSION,
            generator={"preset": "pudong", "seed": seed},
            names={ZH: "浦东新区（模拟）"},
            language=ZH,
        ),
        areas=areas,
        departments=[
            Department(code, name, hotline, [DISTRICT], {ZH: DEPARTMENTS_ZH[code]})
            for code, name, hotline in DEPARTMENTS
        ],
        kinds=dict(BUILTIN_KINDS),
        devices=devices,
        staff=staff,
        vehicles=vehicles,
        cell_owners=cell_owners,
        calendar=shanghai_calendar(),
        zones=zones,
        categories=default_categories([code for code, _, _ in DEPARTMENTS]),
    )


def _towns(rng: np.random.Generator, district: shapely.Polygon) -> list[shapely.Geometry]:
    centres = np.array([(lon, lat) for _, lon, lat in STREETS + TOWNS])
    # A jitter of about 150 m moves boundaries from seed to seed without moving a town away
    # from where it belongs.
    seeds = centres + rng.normal(0.0, 0.0014, centres.shape)
    outside = ~shapely.contains_xy(district, seeds[:, 0], seeds[:, 1])
    seeds[outside] = centres[outside]
    return voronoi_tiling(district, seeds)


def _village_counts(towns: list[shapely.Geometry]) -> list[int]:
    urban = np.array([i < len(STREETS) for i in range(len(towns))])
    # Dense urban streets hold many small communities; rural towns fewer, larger villages.
    weight = np.array([km2(t) for t in towns]) ** 0.6 * np.where(urban, 2.2, 1.0)
    counts = np.maximum(8, np.floor(VILLAGE_TOTAL * weight / weight.sum())).astype(int)
    order = np.argsort(-weight, kind="stable")
    i = 0
    while counts.sum() != VILLAGE_TOTAL:
        t = order[i % len(order)]
        if counts.sum() < VILLAGE_TOTAL:
            counts[t] += 1
        elif counts[t] > 8:
            counts[t] -= 1
        i += 1
    return counts.tolist()


def _villages(rng: np.random.Generator, towns: list[shapely.Geometry]) -> list[Village]:
    names = iter(place_names(rng, VILLAGE_TOTAL))
    villages: list[Village] = []
    for t, (town, count) in enumerate(zip(towns, _village_counts(towns), strict=True)):
        town_code = f"{DISTRICT}{t + 1:03d}"
        urban_street = t < len(STREETS)
        seeds = relaxed_seeds(rng, town, count)
        cells = voronoi_tiling(town, seeds)
        anchor = np.array((STREETS + TOWNS)[t][1:])
        distance = np.linalg.norm(seeds - anchor, axis=1)
        # Towns are urbanised round their centre and nearer Lujiazui; the rest is countryside.
        from_lujiazui_km = float(np.linalg.norm((anchor - LUJIAZUI) * KM_PER_DEG))
        share = 1.0 if urban_street else float(np.clip(1.1 - from_lujiazui_km / 35.0, 0.25, 0.85))
        community = np.zeros(count, dtype=bool)
        community[np.argsort(distance, kind="stable")[: max(1, round(share * count))]] = True
        # As Chinese statistical codes do: communities numbered from 001, villages from 201,
        # each run north to south, then west to east.
        for is_community, first in ((True, 1), (False, 201)):
            members = [i for i in range(count) if community[i] == is_community]
            members.sort(key=lambda i: (-round(seeds[i, 1], 3), seeds[i, 0]))
            for n, i in enumerate(members):
                base = next(names)
                villages.append(Village(
                    code=f"{town_code}{first + n:03d}",
                    name=f"{base} {'Community' if is_community else 'Village'}",
                    town=town_code,
                    shape=cells[i],
                    name_zh=place_name_zh(base) + ("社区" if is_community else "村"),
                    community=is_community,
                    urban_street=urban_street,
                ))
    return villages


def _areas(district: shapely.Polygon, towns: list, villages: list[Village]) -> list[Area]:
    names = [name for name, _, _ in STREETS + TOWNS]
    areas = [Area(DISTRICT, "Pudong New Area", Level.DISTRICT, None, to_geojson_geometry(district),
                  names={ZH: "浦东新区"})]
    for t, (town, name, zh) in enumerate(zip(towns, names, STREETS_ZH + TOWNS_ZH, strict=True)):
        kind = "Street" if t < len(STREETS) else "Town"
        areas.append(Area(f"{DISTRICT}{t + 1:03d}", f"{name} {kind}", Level.TOWN, DISTRICT,
                          to_geojson_geometry(town), names={ZH: zh}))
    areas.extend(
        Area(v.code, v.name, Level.VILLAGE, v.town, to_geojson_geometry(v.shape),
             names={ZH: v.name_zh})
        for v in villages
    )
    return areas


def _cell_owners(
    rng: np.random.Generator, city: CityMap, villages: list[Village], road_cameras: np.ndarray
) -> dict[str, str]:
    """Parks belong to greening; a cell where a camera watches a main road, to transport.
    Every other cell falls to the station of its village (and is not listed)."""
    owners: dict[str, str] = {}
    for park in _parks(rng, villages):
        for cell in sorted(h3.geo_to_cells(park, city.h3_resolution)):
            owners[cell] = "greening"
    for cell in city.cells_of(road_cameras[:, 1], road_cameras[:, 0]):
        owners[cell] = "transport"
    return dict(sorted(owners.items()))


def _parks(rng: np.random.Generator, villages: list[Village]) -> list[shapely.Geometry]:
    """Century Park (about 1.4 km2, where the real one is) and, in one community in nine, a
    park of 5 to 50 hectares inside it."""
    parks = [disk(121.551, 31.217, 0.67)]
    for village in [v for v in villages if v.community][::9]:
        centre = village.shape.representative_point()
        park = shapely.intersection(village.shape, disk(centre.x, centre.y, rng.uniform(0.13, 0.4)))
        parks.extend(p for p in shapely.get_parts(park) if p.geom_type == "Polygon")
    return parks
