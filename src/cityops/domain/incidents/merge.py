"""Whether a new report is the same problem as an open case: same category, close by, soon
after; or a related category (see `categories.Related`) about the same component. Pure: the
store supplies the candidates (open cases of the categories in nearby cells)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import h3

from cityops.domain.incidents.categories import Related
from cityops.domain.incidents.model import Incident, Report
from cityops.domain.nearest import haversine_m
from cityops.domain.privacy import mask_text


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


# -- the same component across related categories -----------------------------------------------

MAX_MARKS = 32  # a case's components kept: enough for any one component's reports
MAX_MARK = 120  # characters of one device or component id kept


def marks_of(report: Report) -> list[str]:
    """What a report is about, as the case keeps it: the device it names ("device:<id>"; a
    sensor's alert names its own), the component id it gives ("component:<id>": `component`,
    or an Open311 request's asset number), and the scenario rule that raised it
    ("rule:<pack>.<id>")."""
    out = []
    attributes = report.data.get("attributes")
    # An Open311 request names a fixture by the number on it (see open311/services.py).
    asset = attributes.get("asset_number") if isinstance(attributes, dict) else None
    for field, value in (("device", report.data.get("device")),
                         ("component", report.data.get("component") or asset),
                         ("rule", report.data.get("rule"))):
        if isinstance(value, str) and value.strip():
            # Kept on the case, which staff read: a phone number typed as a cover's number
            # is masked like any in a report's text (both sides alike, so it still matches).
            out.append(f"{field}:{mask_text(value.strip()[:MAX_MARK])}")
    return out


def with_marks(kept: Sequence[str], report: Report) -> list[str]:
    out = list(kept)
    for mark in marks_of(report):
        if mark not in out and len(out) < MAX_MARKS:
            out.append(mark)
    return out


def _marked(marks: Sequence[str], field: str) -> list[str]:
    prefix = f"{field}:"
    return [m[len(prefix):] for m in marks if m.startswith(prefix)]


def origin(incident: Incident) -> str:
    """How a merge's reason names the case a report joined: by its first report."""
    if incident.source == "sensor":
        devices = _marked(incident.components, "device")
        return f"sensor {devices[0]}'s alert" if devices else "a sensor's alert"
    return ORIGINS.get(incident.source, f"a {incident.source} report")


ORIGINS = {"citizen": "a citizen's report", "open311": "a citizen's request (Open311)",
           "inspector": "an inspector's report", "hotline": "a hotline call",
           "operator": "an operator's report", "video": "a video alert",
           "higher_level": "a higher level's referral"}


def related_target(
    candidates: Sequence[Incident], report: Report, group: Related, *, window_s: float,
) -> tuple[Incident, str] | None:
    """The open candidate (a case of another category of `group`) about the same component
    as `report`, and the reason a person reads: the same device first, then the same
    component id, then the nearest within the group's distance; ties go to the older case."""
    same = group.same
    mine = marks_of(report)
    devices = set(_marked(mine, "device")) if same.device else set()
    components = set(_marked(mine, "component")) if same.component else set()
    best: tuple[int, float, float, str] | None = None
    chosen: tuple[Incident, str] | None = None
    for inc in candidates:
        if not inc.is_open:
            continue
        if report.at - (inc.last_report_at or inc.reported_at) > window_s:
            continue
        rules = _marked(inc.components, "rule")
        if group.rules and rules and not any(r in group.rules for r in rules):
            continue  # raised for another kind of component
        d = math.inf
        if inc.lat is not None and inc.lon is not None and report.lat is not None \
                and report.lon is not None:
            d = float(haversine_m(inc.lat, inc.lon, report.lat, report.lon))
        shared_device = sorted(devices & set(_marked(inc.components, "device")))
        shared_component = sorted(components & set(_marked(inc.components, "component")))
        if shared_device:
            rank, why = 0, f"the same device {shared_device[0]} as {origin(inc)}"
        elif shared_component:
            rank, why = 1, f"component {shared_component[0]}, named by {origin(inc)} too"
        elif same.within_m > 0 and d <= same.within_m:
            rank, why = 2, f"{d:.0f} m from {origin(inc)}"
        else:
            continue
        key = (rank, d, inc.reported_at, inc.id)
        if best is None or key < best:
            best, chosen = key, (inc, f"same {group.name}: {why}")
    return chosen
