"""The city's vital signs as KPI series: one `kpi` device per KPI and area, fed hourly (or
daily) through the same intake as any sensor, so baselines and dashboards read them alike.

Hourly: 110 police calls, 120 emergency visits, traffic accidents and 12345 hotline orders,
for the district and for every street/town. Daily: garbage-sorting accuracy per community.
"""

from __future__ import annotations

import shapely

from cityops.domain.city import Area, Device, Level
from cityops.domain.geo import geometry_of

# kpi name -> (title, owning department, area levels it is kept for)
HOURLY = {
    "calls_110": ("110 police calls per hour", "police"),
    "visits_120": ("120 emergency visits per hour", "ambulance"),
    "traffic_accidents": ("Traffic accidents per hour", "transport"),
    "orders_12345": ("12345 hotline orders per hour", "hotline_12345"),
}
DAILY = {"sorting_accuracy": ("Garbage-sorting accuracy (%, daily)", "sanitation")}


def series(areas: list[Area]) -> list[Device]:
    """KPI devices, placed at a point inside their area; `meta` says which KPI, level, area."""
    out = []
    for area in areas:
        if area.level is Level.VILLAGE:
            wanted = DAILY
        else:
            wanted = HOURLY
        spot = shapely.point_on_surface(geometry_of(area))
        for kpi, (title, owner) in wanted.items():
            out.append(Device(
                id=f"kpi-{kpi}-{area.code}", kind="kpi", lat=round(spot.y, 6),
                lon=round(spot.x, 6), name=f"{title}, {area.name}", owner=owner,
                meta={"kpi": kpi, "level": area.level.value, "area": area.code},
            ))
    return out
