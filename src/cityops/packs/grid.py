"""A small square city laid out as a grid: for tests, benchmarks and trying things out.

The district is a square split into `towns` columns, each split into `villages` rows, with
devices of the chosen kinds spread evenly across it. Everything is deterministic.
"""

from __future__ import annotations

import numpy as np

from cityops.domain.city import Area, CityInfo, CityPack, Department, Device, Level
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.packs.categories_file import default_categories

DISTRICT = "990001"
ZH = "zh-CN"


def _square(lon0: float, lat0: float, lon1: float, lat1: float) -> dict:
    ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
    return {"type": "Polygon", "coordinates": [ring]}


def generate(
    *,
    towns: int = 2,
    villages: int = 2,
    devices: dict[str, int] | None = None,
    center: tuple[float, float] = (31.2, 121.5),
    size_deg: float = 0.2,
    seed: int = 0,
) -> CityPack:
    devices = {"noise": 10} if devices is None else devices
    lat_c, lon_c = center
    lon0, lat0 = lon_c - size_deg / 2, lat_c - size_deg / 2
    # Chinese names beside the English ones, so the pages can be tried in both languages.
    areas = [Area(DISTRICT, "Grid District", Level.DISTRICT, None,
                  _square(lon0, lat0, lon0 + size_deg, lat0 + size_deg), names={ZH: "网格区"})]
    w = size_deg / towns
    h = size_deg / villages
    for t in range(towns):
        town = f"{DISTRICT}{t + 1:03d}"
        x0 = lon0 + t * w
        areas.append(Area(town, f"Town {t + 1}", Level.TOWN, DISTRICT,
                          _square(x0, lat0, x0 + w, lat0 + size_deg),
                          names={ZH: f"第{t + 1}街镇"}))
        for v in range(villages):
            y0 = lat0 + v * h
            areas.append(Area(f"{town}{v + 1:03d}", f"Town {t + 1} Village {v + 1}",
                              Level.VILLAGE, town, _square(x0, y0, x0 + w, y0 + h),
                              names={ZH: f"第{t + 1}街镇第{v + 1}居村"}))
    rng = np.random.default_rng(seed)
    out: list[Device] = []
    margin = size_deg * 1e-3  # keep devices off the borders so each has one obvious area
    for kind, count in devices.items():
        lats = rng.uniform(lat0 + margin, lat0 + size_deg - margin, count)
        lons = rng.uniform(lon0 + margin, lon0 + size_deg - margin, count)
        out.extend(Device(f"{kind}-{i:06d}", kind, round(float(la), 6), round(float(lo), 6))
                   for i, (la, lo) in enumerate(zip(lats, lons)))
    departments = [
        Department("police", "Police", "110", [DISTRICT], {ZH: "公安"}),
        Department("city_management", "City management", None, [DISTRICT], {ZH: "城市管理"}),
        Department("environment", "Environment", None, [f"{DISTRICT}001"], {ZH: "生态环境"}),
    ]
    return CityPack(
        info=CityInfo(name="Grid City", timezone="Asia/Shanghai", center=center,
                      names={ZH: "网格市"}),
        areas=areas,
        departments=departments,
        kinds=dict(BUILTIN_KINDS),
        devices=out,
        categories=default_categories([d.code for d in departments]),
    )
