"""Replay NYC 311 service requests as CityOps incidents on the New York pack.

Every request with a place is filed through the same door as any report,
`IncidentDesk.async_report`: source "open311", its `unique_key` as the report key, at its
`created_date` read as New York local time. So merging, routing and time limits are the
node's own, from the pack's category table (`cityops.packs.nyc_categories`).

The file holds two times per request, created and (for some) closed, and nothing in between.
A request NYC closed is driven through its case's life at its closing time: the unit accepts
and reports it done (the resolution text is the evidence), the centre verifies and closes.
Only the first report of a case does this; a later report of the same case merged into it
and its own closing is not replayed, since CityOps closes the case once. Events run in time
order, so a report that comes after its case was closed opens a new case, as it would have.

Rows that cannot be filed (no coordinates, a place outside the city, an unreadable time, a
repeated key) are collected with their line number and reason; nothing stops the replay.
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import math
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec

from cityops.act.desk import IncidentDesk
from cityops.act.side import rules_for
from cityops.domain.access import Role, Scope
from cityops.domain.city import CityPack
from cityops.domain.evaluation import Figures, evaluate
from cityops.domain.geo import CityMap
from cityops.domain.incidents.facts import facts_of
from cityops.domain.incidents.model import Incident, OrderStatus, Report, Status
from cityops.domain.incidents.workflow import Actor, Refused
from cityops.notify.memory import MemoryNotifier
from cityops.packs.nyc import department_for_agency
from cityops.packs.nyc_categories import category_for

NEW_YORK = ZoneInfo("America/New_York")
SOURCE = "open311"
REQUIRED = ("unique_key", "created_date", "closed_date", "agency", "complaint_type", "status",
            "latitude", "longitude")
CENTRE = Actor("nyc311:centre", Role.OPERATOR, Scope(), "NYC 311 replay")

_FILE, _CLOSE = 0, 1  # at the same second a report is filed before a case is closed


class ReplayError(ValueError):
    """The file as a whole cannot be replayed (missing, unreadable, wrong columns)."""


class Request(msgspec.Struct, frozen=True):
    """One usable 311 row."""

    line: int  # in the file; the header is line 1
    key: str
    created: float  # epoch seconds
    agency: str
    complaint_type: str
    descriptor: str
    status: str
    resolution: str
    address: str
    channel: str
    lat: float
    lon: float
    closed: float | None = None  # when NYC closed it, if the row says so usably


class Problem(msgspec.Struct, frozen=True):
    line: int
    key: str
    reason: str


class Parsed(msgspec.Struct):
    rows: int
    requests: list[Request]
    skipped: list[Problem]  # not filed
    unclosed: list[Problem]  # filed, but their closing cannot be replayed


class Routed(msgspec.Struct, frozen=True):
    """One cell of the confusion table: reports of an agency routed to these departments."""

    agency: str
    agency_department: str | None  # the agency as a CityOps department; None: the pack has none
    departments: str  # where CityOps sent the case, joined by "+"
    reports: int


class CategoryRouting(msgspec.Struct, frozen=True):
    category: str
    reports: int
    cases: int
    agree: int  # reports whose NYC agency is among the departments CityOps routed to
    agreement: float


class LargestCase(msgspec.Struct, frozen=True):
    incident: str
    category: str
    address: str
    reports: int
    status: str


class Summary(msgspec.Struct):
    file: str
    rows: int
    filed: int  # reports the desk took: opened + merged
    opened: int  # new cases
    merged: int  # reports that joined an open case
    skipped: list[Problem]
    unclosed: list[Problem]
    closed: int  # cases driven to closed
    closures_folded: int  # rows NYC closed that merged into a case: closed with the case, once
    open_with_closed_report: int  # cases left open whose merged reports NYC had closed
    agreement: float  # of filed reports, the share routed to the NYC agency's department
    comparable: int  # filed reports whose agency has a CityOps department
    agreement_comparable: float
    routing: list[Routed]
    categories: list[CategoryRouting]
    largest: list[LargestCase]
    period: list[str]  # [first day, last day], New York dates
    evaluation: Figures
    by_department: list[Figures]
    by_category: list[Figures]


class ReplayClock:
    """The time the desk takes for now; the replay sets it to each record's real time."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- reading -----------------------------------------------------------------------------------


def local_epoch(text: str) -> float:
    """311 times are New York wall-clock times without an offset ("2024-05-26T23:10:10.000")."""
    t = dt.datetime.fromisoformat(text.strip())
    if t.tzinfo is None:
        t = t.replace(tzinfo=NEW_YORK)
    return t.timestamp()


def read_requests(path: Path | str) -> Parsed:
    path = Path(path)
    try:
        # A stray byte in a free-text field costs that character, not the rest of the file.
        f = path.open(newline="", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from None
    with f:
        reader = csv.DictReader(f)
        try:
            header = reader.fieldnames or []
        except csv.Error as exc:
            raise ReplayError(f"{path}: not a readable CSV file: {exc}") from None
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ReplayError(f"{path}: not a NYC 311 export; missing columns: "
                              + ", ".join(missing))
        parsed = Parsed(rows=0, requests=[], skipped=[], unclosed=[])
        stuck_at = -1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                # The csv reader starts afresh on the next line, so a broken record costs only
                # itself; should it not move on, stop rather than loop.
                line = reader.reader.line_num
                parsed.rows += 1
                parsed.skipped.append(Problem(line, "", f"unreadable CSV record: {exc}"))
                if line == stuck_at:
                    break
                stuck_at = line
                continue
            parsed.rows += 1
            # The line the record ends on: for the one-line records of 311 exports, its line.
            _take(row, reader.line_num, parsed)
    return parsed


def _take(row: dict, line: int, parsed: Parsed) -> None:
    def field(name: str) -> str:
        value = row.get(name)
        return value.strip() if isinstance(value, str) else ""

    key = field("unique_key")
    if not key:
        parsed.skipped.append(Problem(line, "", "no unique_key"))
        return
    try:
        created = local_epoch(field("created_date"))
    except ValueError:
        parsed.skipped.append(Problem(line, key, f"created_date {field('created_date')!r} is "
                                      "not a date and time"))
        return
    lat_text, lon_text = field("latitude"), field("longitude")
    if not lat_text or not lon_text:
        parsed.skipped.append(Problem(line, key, "no coordinates (latitude/longitude empty)"))
        return
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        lat = lon = math.nan
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        parsed.skipped.append(Problem(line, key, f"coordinates ({lat_text}, {lon_text}) are not "
                                      "a latitude and longitude"))
        return
    status, closed_text = field("status"), field("closed_date")
    closed = None
    if closed_text:
        try:
            closed = local_epoch(closed_text)
        except ValueError:
            parsed.unclosed.append(Problem(line, key, f"closed_date {closed_text!r} is not a "
                                           "date and time"))
        else:
            if closed < created:
                parsed.unclosed.append(Problem(line, key, f"closed_date {closed_text} is before "
                                               f"created_date {field('created_date')}"))
                closed = None
            elif status != "Closed":
                parsed.unclosed.append(Problem(line, key, f"status is {status!r} but a "
                                               "closed_date is given"))
                closed = None
    elif status == "Closed":
        parsed.unclosed.append(Problem(line, key, "status is 'Closed' but no closed_date"))
    parsed.requests.append(Request(
        line=line, key=key, created=created, agency=field("agency"),
        complaint_type=field("complaint_type"), descriptor=field("descriptor"), status=status,
        resolution=field("resolution_description"), address=field("incident_address"),
        channel=field("open_data_channel_type"), lat=lat, lon=lon, closed=closed))


# -- replaying ---------------------------------------------------------------------------------


def open_desk(pack: CityPack, store, clock: ReplayClock, *,
              city: CityMap | None = None) -> IncidentDesk:
    """A desk like a node's (`ActSide`), without the rest of the node: the same rules."""
    city = city or CityMap.from_pack(pack)
    rules = rules_for(types.SimpleNamespace(pack=pack, city=city))
    return IncidentDesk(store, rules, MemoryNotifier(), city=city, clock=clock)


class _Case(msgspec.Struct):
    category: str
    address: str
    reports: list[Request] = []


async def replay(parsed: Parsed, desk: IncidentDesk, clock: ReplayClock, *, file: str = "",
                 progress: Callable[[int], None] | None = None) -> Summary:
    """File every request in time order on `desk` (whose clock must be `clock`), close what
    NYC closed, and sum up."""
    skipped, unclosed = list(parsed.skipped), list(parsed.unclosed)
    cases: dict[str, _Case] = {}
    routed: Counter[tuple[str, str]] = Counter()
    per_category: Counter[tuple[str, bool]] = Counter()
    first_line: dict[str, int] = {}
    opened = merged = closures_folded = 0
    queue: list[tuple[float, int, int, Request, str]] = [
        (r.created, _FILE, r.line, r, "") for r in parsed.requests]
    heapq.heapify(queue)
    while queue:
        at, kind, line, req, case_id = heapq.heappop(queue)
        clock.now = at
        if kind == _CLOSE:
            why = await _close(desk, case_id, req)
            if why:
                unclosed.append(Problem(req.line, req.key, why))
            continue
        if progress is not None:
            progress(1)
        if desk.city is not None and desk.city.resolve(req.lat, req.lon) is None:
            skipped.append(Problem(line, req.key, f"({req.lat}, {req.lon}) lies outside "
                                   f"{desk.city.name}"))
            continue
        category = category_for(req.complaint_type)
        try:
            result = await desk.async_report(_report(req), category, title=_title(req))
        except Refused as refused:
            skipped.append(Problem(line, req.key, f"not filed: {refused.reason}"))
            continue
        if result.repeated:
            where = (f"line {first_line[req.key]}" if req.key in first_line
                     else "before this replay")
            skipped.append(Problem(line, req.key, f"unique_key {req.key} was filed already "
                                   f"({where})"))
            continue
        first_line[req.key] = line
        inc = result.incident
        if result.merged:
            merged += 1
            closures_folded += req.closed is not None
        else:
            opened += 1
            if inc.status is Status.COLLECTED:  # a category that waits for the centre's check
                inc = await desk.async_act(inc.id, "register", CENTRE)
                inc = await desk.async_act(inc.id, "dispatch", CENTRE)
            if req.closed is not None:
                heapq.heappush(queue, (req.closed, _CLOSE, line, req, inc.id))
        # A merge may join a case the store held before this replay: it is summed up too.
        cases.setdefault(inc.id, _Case(category, req.address)).reports.append(req)
        departments = inc.departments or inc.default_departments
        routed[(req.agency, "+".join(departments))] += 1
        per_category[(category, department_for_agency(req.agency) in departments)] += 1
    return await _summary(parsed, desk, file, cases, routed, per_category, skipped, unclosed,
                          opened, merged, closures_folded)


def _report(req: Request) -> Report:
    data = {"agency": req.agency, "complaint_type": req.complaint_type,
            "descriptor": req.descriptor, "status": req.status, "channel": req.channel}
    if req.address:
        data["address"] = req.address
    return Report(key=req.key, source=SOURCE, at=req.created, text=_title(req), lat=req.lat,
                  lon=req.lon, data=data)


def _title(req: Request) -> str:
    what = req.complaint_type or "311 request"
    if req.descriptor and req.descriptor not in ("N/A", what):
        what += f": {req.descriptor}"
    return f"{what} at {req.address}" if req.address else what


async def _close(desk: IncidentDesk, case_id: str, req: Request) -> str:
    """Accept, finish, verify and close at the request's closing time; the reason it could
    not be done, or ""."""
    try:
        inc = await desk.get(case_id)
        if not inc.is_open:
            return f"case {case_id} is {inc.status} already"
        note = req.resolution or f"closed by {req.agency or 'the agency'} (no resolution text)"
        for order in inc.live_orders():
            unit = Actor(f"nyc311:{order.department}", Role.DEPARTMENT,
                         Scope(department=order.department), req.agency)
            if order.status is OrderStatus.DISPATCHED:
                await desk.async_act_on_order(order.id, "accept", unit)
            if order.status in (OrderStatus.DISPATCHED, OrderStatus.ACCEPTED):
                await desk.async_act_on_order(order.id, "finish", unit, note=note)
        await desk.async_act(case_id, "verify", CENTRE, note="closed by the agency in NYC 311")
        await desk.async_act(case_id, "close", CENTRE, note=note)
    except Refused as refused:
        return f"case {case_id} could not be closed: {refused.reason}"
    return ""


async def _summary(parsed: Parsed, desk: IncidentDesk, file: str, cases: dict[str, _Case],
                   routed: Counter, per_category: Counter, skipped: list[Problem],
                   unclosed: list[Problem], opened: int, merged: int,
                   closures_folded: int) -> Summary:
    final: dict[str, Incident] = {}
    for case_id in cases:
        final[case_id] = await desk.get(case_id)
    filed = opened + merged
    agree = sum(n for (category, ok), n in per_category.items() if ok)
    comparable = sum(n for (agency, _), n in routed.items() if department_for_agency(agency))
    rows = [Routed(agency, department_for_agency(agency), departments, n)
            for (agency, departments), n in routed.items()]
    rows.sort(key=lambda r: (-r.reports, r.agency, r.departments))
    by_code: dict[str, list[int]] = {}
    for (category, ok), n in per_category.items():
        by_code.setdefault(category, [0, 0])[0] += n
        by_code[category][1] += n if ok else 0
    opened_per = Counter(c.category for c in cases.values())
    categories = sorted(
        (CategoryRouting(code, n, opened_per[code], ok, ok / n) for code, (n, ok)
         in by_code.items()), key=lambda c: (-c.reports, c.category))
    largest = sorted(cases, key=lambda i: (-final[i].reports, final[i].reported_at, i))[:5]
    open_with_closed = sum(
        1 for i, c in cases.items()
        if final[i].is_open and any(r.closed is not None for r in c.reports))

    created = [r.created for c in cases.values() for r in c.reports]
    first = dt.datetime.fromtimestamp(min(created), NEW_YORK).date() if created else None
    last = dt.datetime.fromtimestamp(max(created), NEW_YORK).date() if created else None
    evaluation, by_department, by_category = _evaluate(desk, list(final.values()), first, last)
    return Summary(
        file=file, rows=parsed.rows, filed=filed, opened=opened, merged=merged,
        skipped=sorted(skipped, key=lambda p: p.line),
        unclosed=sorted(unclosed, key=lambda p: p.line),
        closed=sum(1 for inc in final.values() if inc.status is Status.CLOSED),
        closures_folded=closures_folded, open_with_closed_report=open_with_closed,
        agreement=agree / filed if filed else 0.0, comparable=comparable,
        agreement_comparable=agree / comparable if comparable else 0.0,
        routing=rows, categories=categories,
        largest=[LargestCase(i, cases[i].category, cases[i].address, final[i].reports,
                             final[i].status.value) for i in largest],
        period=[first.isoformat(), last.isoformat()] if first and last else [],
        evaluation=evaluation, by_department=by_department, by_category=by_category)


def _evaluate(desk: IncidentDesk, incidents: list[Incident], first: dt.date | None,
              last: dt.date | None) -> tuple[Figures, list[Figures], list[Figures]]:
    """The figures of the whole New York days the requests were made on, as
    `GET /api/v1/evaluation?period=FIRST..LAST` gives them on a node holding only these."""
    if first is None or last is None:
        first = last = dt.date(1970, 1, 1)
    start = dt.datetime.combine(first, dt.time(), NEW_YORK).timestamp()
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), NEW_YORK).timestamp()
    facts = [facts_of(inc) for inc in incidents]
    departments = sorted(desk.rules.departments or ())
    return (evaluate(facts, start, end)[0],
            evaluate(facts, start, end, "department", groups=departments),
            evaluate(facts, start, end, "category"))


async def replay_file(path: Path | str, pack: CityPack, *, store=None,
                      progress: Callable[[int], None] | None = None,
                      on_parsed: Callable[[Parsed], None] | None = None) -> Summary:
    """Read `path` and replay it on `pack` with a desk of its own (on `store`, else in
    memory); the store is opened and closed here."""
    from cityops.store.memory import MemoryStore

    parsed = read_requests(path)
    if on_parsed is not None:
        on_parsed(parsed)
    store = store if store is not None else MemoryStore()
    clock = ReplayClock()
    await store.open()
    try:
        desk = open_desk(pack, store, clock)
        return await replay(parsed, desk, clock, file=str(path), progress=progress)
    finally:
        await store.close()
