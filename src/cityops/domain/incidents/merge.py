"""Whether a new report is the same problem as an open case: same category, close by, soon
after. Pure: the store supplies the candidates (open cases of the category in nearby cells)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import h3

from cityops.domain.incidents.model import Incident
from cityops.domain.nearest import haversine_m


def search_cells(lat: float, lon: float, resolution: int, radius_m: float) -> list[str]:
    """The grid cells a case within `radius_m` of the point can lie in. Two cells k rings
    apart are at least (k - 1) cell widths apart, so k = radius / width + 1 rings cover it."""
    cell = h3.latlng_to_cell(lat, lon, resolution)
    width = h3.average_hexagon_edge_length(resolution, unit="m") * math.sqrt(3)
    k = int(math.ceil(radius_m / width)) + 1
    return sorted(h3.grid_disk(cell, k))


def merge_target(
    candidates: Sequence[Incident], lat: float, lon: float, at: float, *,
    radius_m: float, window_s: float,
) -> Incident | None:
    """The nearest open candidate within `radius_m` whose latest report is at most `window_s`
    old at `at`; ties go to the older case (reports gather on the first one)."""
    best: tuple[float, float, str] | None = None
    chosen = None
    for inc in candidates:
        if not inc.is_open or inc.lat is None or inc.lon is None:
            continue
        last = inc.last_report_at or inc.reported_at
        if at - last > window_s:
            continue
        d = float(haversine_m(inc.lat, inc.lon, lat, lon))
        if d > radius_m:
            continue
        key = (d, inc.reported_at, inc.id)
        if best is None or key < best:
            best, chosen = key, inc
    return chosen
