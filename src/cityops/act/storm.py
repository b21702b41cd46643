"""The storm guard: when one kind of case pours in from one area, the next ones wait for a
supervisor instead of going out one by one.

A flapping gateway, a mis-set threshold or a repeating detector can make a category's alerts
arrive by the hundred in minutes. Every one of them would otherwise be registered, dispatched
and notified on its own: hundreds of work orders for one department, which then spends its
day cancelling them. The guard counts, per category and area (the case's town by default),
the cases that would be auto-dispatched within a sliding window. Once `cases` of them went out
within `window_s`, further ones are held: the first held report opens one *storm case* (status
collected: waiting for a supervisor's check), later held reports join it, counted and listed
on its timeline. Nothing held is dispatched, no department is told one by one; the district
centre gets one notice when the storm starts. A supervisor then registers and dispatches the
storm case as one job, cancels it, or releases the held reports as separate cases.

Urgent cases are never held: a category or an alert of urgency `urgent`, and every category
of the `emergency` family (fire, flooding, injuries ...), whatever urgency a city gave it. A
case with no known area is never held either (there is no area for it to storm in).

The storm ends with hysteresis: once fewer than half the threshold arrived in the last window,
so that a rate hovering at the threshold does not switch dispatching on and off. Later cases
go out normally again; the storm case stays with the supervisor until decided.

State: counts are kept in memory by each desk; the storms themselves are records in the store
(kind "storm"), each with the moment it will end if nothing more arrives (`ends_at`), so the
API of any node lists them and a restarted node picks up an ongoing storm (`restore`).

In a cluster with several act nodes each node counts only the alerts it files itself, so a
storm is noticed when one node's share passes the threshold, and two nodes may each open a
storm case for one storm (the supervisor sees both in the list).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import math
from collections import deque
from typing import Literal

import msgspec

from cityops.act.desk import IncidentDesk, NotFound, ReportResult, incident_id_for
from cityops.domain.city import AreaCodes, name_in
from cityops.domain.incidents.categories import Category
from cityops.domain.incidents.model import Event, Incident, Report, Status
from cityops.domain.incidents.workflow import SYSTEM, Actor, Notice, Outcome, Refused
from cityops.store.base import IncidentFilter, Record, StaleVersion

log = logging.getLogger(__name__)

KIND = "storm"  # the records' kind
ACTIVE, ENDED = "active", "ended"
Level = Literal["village", "town", "district"]
LEVELS: tuple[Level, ...] = ("village", "town", "district")
NEVER_HELD_MAJORS = frozenset({"emergency"})
# The storm case's title in the languages the pages speak besides English, filled with the
# category's and the area's names in that language (a case's `titles`).
STORM_TITLES = {"zh-CN": "{area}{category}案件激增，{held}件暂挂待研判"}
RESTORE_PAGE = 500


class StormDoc(msgspec.Struct, kw_only=True):
    """One storm: what is held where, since when, in which case."""

    id: str
    category: str
    category_name: str
    area: str
    area_name: str
    level: str
    district: str
    since: float  # the first held report
    held: int = 0  # reports held in this storm, every storm case together
    incident: str = ""  # the storm case now taking held reports
    cases: list[str] = []  # every storm case of this storm, first first
    threshold: int
    window_s: float
    ends_at: float  # when it ends if nothing more arrives
    ended_at: float | None = None


class StormGuard:
    """Attached to one desk (`desk.storm`); the desk asks `hold` before auto-dispatching."""

    def __init__(self, desk: IncidentDesk, *, cases: int = 10, window_s: float = 600.0,
                 level: str = "town") -> None:
        if level not in LEVELS:
            raise ValueError(f"storm level must be one of {', '.join(LEVELS)}, not {level!r}")
        if cases < 0 or window_s <= 0:
            raise ValueError("storm cases must not be negative and the window must be positive")
        self.desk = desk
        self.cases = cases  # 0: the guard is off
        self.window_s = window_s
        self.level: Level = level  # narrowed by the check above
        # Per (category, area): the would-be auto-dispatched cases by arrival, as (time, id).
        self._arrivals: dict[tuple[str, str], deque[tuple[float, str]]] = {}
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._storms: dict[tuple[str, str], tuple[StormDoc, int]] = {}  # doc, record version
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.stats = {"held": 0, "storms": 0}

    # -- deciding ------------------------------------------------------------------------------

    def guarded(self, category: Category, urgency: str | None) -> bool:
        return (self.cases > 0 and not category.urgent and urgency != "urgent"
                and category.major not in NEVER_HELD_MAJORS)

    def area_of(self, areas: AreaCodes | None) -> str:
        return getattr(areas, self.level) if areas is not None else ""

    async def hold(self, report: Report, category: Category, incident: Incident,
                   urgency: str | None = None) -> ReportResult | None:
        """None: dispatch this new case as usual (it is counted). Otherwise the report was
        held in the storm case of its category and area, and this is the answer to file."""
        area = self.area_of(incident.areas)
        if not area or not self.guarded(category, urgency):
            return None
        key = (category.code, area)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            now = report.at
            arrivals = self._window(key, now)
            current = self._storms.get(key)
            if current is not None and len(arrivals) < self.cases / 2:
                await self._end(key, now)
                current = None
            seen = self._seen.setdefault(key, set())
            if current is None and len(arrivals) - (incident.id in seen) < self.cases:
                self._arrive(key, now, incident.id)
                return None
            self._arrive(key, now, incident.id)
            return await self._hold(key, report, category, incident, current)

    def _window(self, key: tuple[str, str], now: float) -> deque[tuple[float, str]]:
        arrivals = self._arrivals.setdefault(key, deque())
        seen = self._seen.setdefault(key, set())
        while arrivals and arrivals[0][0] <= now - self.window_s:
            seen.discard(arrivals.popleft()[1])
        return arrivals

    def _arrive(self, key: tuple[str, str], at: float, token: str) -> None:
        seen = self._seen.setdefault(key, set())
        if token in seen:  # the desk's retry of the same report
            return
        seen.add(token)
        arrivals = self._arrivals.setdefault(key, deque())
        arrivals.append((at, token))
        if len(arrivals) > 1 and arrivals[-2][0] > at:  # a late report: keep them in order
            self._arrivals[key] = deque(sorted(arrivals))

    def _ends_at(self, key: tuple[str, str]) -> float:
        """When fewer than half the threshold will be left in the window, if nothing else
        arrives: the window passing the arrival that keeps the count at half."""
        times = [t for t, _ in self._arrivals.get(key, ())]
        needed = max(1, math.ceil(self.cases / 2))
        if len(times) < needed:
            return max(times, default=0.0) + self.window_s
        return heapq.nlargest(needed, times)[-1] + self.window_s

    # -- holding -------------------------------------------------------------------------------

    async def _hold(self, key: tuple[str, str], report: Report, category: Category,
                    incident: Incident, current: tuple[StormDoc, int] | None) -> ReportResult:
        desk = self.desk
        started = current is None
        doc = current[0] if current is not None else self._new_storm(key, report, category,
                                                                     incident)
        case = await desk.store.get_incident(doc.incident) if doc.incident else None
        detail = {"report": report.key, "source": report.source, "storm": doc.id,
                  "title": incident.title,
                  **({"titles": incident.titles} if incident.titles else {}),
                  # What a release needs to file the report as the case it would have been.
                  **({"alert": incident.alert_id} if incident.alert_id else {}),
                  **({"areas": msgspec.to_builtins(incident.areas)} if incident.areas else {})}
        if case is None or case.status is not Status.COLLECTED:
            # The first held report, or the supervisor has decided the last storm case while
            # the storm goes on: the next ones wait in a new case.
            case_id = doc.id if not doc.cases else f"{doc.id}-{len(doc.cases) + 1}"
            out = desk.rules.open_incident(
                case_id, report, category, title=self._title(doc, 1),
                titles=self._titles(doc, 1), actor=SYSTEM,
                areas=self._areas(doc, incident.areas), description=self._why(doc))
            opened = msgspec.structs.replace(out.incident, lat=None, lon=None,
                                             severity=incident.severity)
            hold = Event(at=report.at, actor=SYSTEM.key_id, action="storm.hold", before="",
                         after=opened.status, reason=self._why(doc),
                         detail={**detail, "reports": 1})
            notices = [Notice("storm.started", f"centre:{doc.district}", case_id,
                              text=self._notice(doc))] if started else []
            saved = await desk._save(Outcome(opened, [*out.events, hold], notices), None,
                                     [report])
            merged = False
        else:
            out = desk.rules.merge(case, report)
            grown = msgspec.structs.replace(
                out.incident, title=self._title(doc, out.incident.reports),
                titles=self._titles(doc, out.incident.reports) or msgspec.UNSET)
            hold = Event(at=report.at, actor=SYSTEM.key_id, action="storm.hold",
                         before=case.status, after=case.status,
                         detail={**detail, "reports": grown.reports})
            saved = await desk._save(Outcome(grown, [hold], []), case.version, [report])
            merged = True
        doc = msgspec.structs.replace(
            doc, held=doc.held + 1, incident=saved.id,
            cases=doc.cases if saved.id in doc.cases else [*doc.cases, saved.id],
            ends_at=self._ends_at(key))
        version = await self._put(doc, ACTIVE, current[1] if current is not None else None)
        self._storms[key] = (doc, version)
        self.stats["held"] += 1
        if started:
            self.stats["storms"] += 1
            log.warning("storm guard: %s cases in %s held for a supervisor (storm %s)",
                        category.code, doc.area, doc.id)
        return ReportResult(saved, merged=merged)

    def _new_storm(self, key: tuple[str, str], report: Report, category: Category,
                   incident: Incident) -> StormDoc:
        code, area = key
        district = incident.areas.district if incident.areas else self.desk.rules.district
        digest = hashlib.blake2b(f"{code}|{area}|{report.at!r}".encode(),
                                 digest_size=6).hexdigest()
        return StormDoc(id=f"storm-{digest}", category=code, category_name=category.name,
                        area=area, area_name=self._area_name(area), level=self.level,
                        district=district, since=report.at, threshold=self.cases,
                        window_s=self.window_s, ends_at=report.at + self.window_s)

    def _areas(self, doc: StormDoc, areas: AreaCodes | None) -> AreaCodes:
        """The storm case lies in the storm's area as a whole, not at its first report's spot:
        the keys covering that area see it, and the one job goes to that area's unit."""
        assert areas is not None  # only cases with an area are guarded
        if self.level == "village":
            return areas
        if self.level == "town":
            return AreaCodes(areas.district, areas.town, areas.town)
        return AreaCodes(areas.district, areas.district, areas.district)

    def _area_name(self, code: str) -> str:
        city = self.desk.city
        if city is None:
            return code
        try:
            return city.area(code).name or code
        except KeyError:
            return code

    def _title(self, doc: StormDoc, held: int) -> str:
        return f"storm: {held} {doc.category_name} cases in {doc.area_name} held"

    def _titles(self, doc: StormDoc, held: int) -> dict[str, str]:
        category = self.desk.rules.categories.resolve(doc.category)
        area = None
        if self.desk.city is not None:
            try:
                area = self.desk.city.area(doc.area)
            except KeyError:
                pass
        out = {}
        for language, template in STORM_TITLES.items():
            # Without the category's name in that language the title would be half English.
            if category.names.get(language):
                place = name_in(area, language) if area else doc.area_name
                out[language] = template.format(area=place, category=category.names[language],
                                                held=held)
        return out

    def _why(self, doc: StormDoc) -> str:
        return (f"Storm guard: more than {doc.threshold} {doc.category_name} cases in "
                f"{doc.window_s / 60:g} min in {doc.area_name}; the next ones wait here for a "
                "supervisor: register and dispatch them as one job, cancel, or release them "
                "as separate cases.")

    def _notice(self, doc: StormDoc) -> str:
        return (f"Storm guard: {doc.category_name} cases in {doc.area_name} are held for a "
                f"supervisor (more than {doc.threshold} in {doc.window_s / 60:g} min)")

    async def _end(self, key: tuple[str, str], now: float) -> None:
        doc, version = self._storms.pop(key)
        ended = msgspec.structs.replace(doc, ended_at=min(now, doc.ends_at))
        await self._put(ended, ENDED, version)
        log.warning("storm guard: storm %s (%s in %s) is over after %d held", doc.id,
                    doc.category, doc.area, doc.held)

    async def _put(self, doc: StormDoc, status: str, version: int | None) -> int:
        store = self.desk.store
        rec = Record(kind=KIND, id=doc.id, doc=msgspec.json.encode(doc), owner=doc.area,
                     status=status, due=doc.ends_at, created=doc.since,
                     updated=doc.ended_at or doc.since)
        try:
            saved = await store.put_record(rec, expect_version=version)
        except StaleVersion:
            # Another desk (a cluster's other act node) wrote it since: this one's view of
            # the storm it is holding in is the one to keep.
            found = await store.get_record(KIND, doc.id)
            saved = await store.put_record(rec, expect_version=found.version if found else None)
        return saved.version

    # -- reading -------------------------------------------------------------------------------

    async def active(self, now: float) -> list[StormDoc]:
        """Storms going on at `now`, from the store (so any node answers), newest first."""
        found = await self.desk.store.find_records(KIND, status=ACTIVE, limit=1000)
        docs = [msgspec.json.decode(r.doc, type=StormDoc) for r in found]
        return [d for d in docs if d.ends_at > now]

    async def get(self, storm_id: str) -> StormDoc | None:
        rec = await self.desk.store.get_record(KIND, storm_id)
        return None if rec is None else msgspec.json.decode(rec.doc, type=StormDoc)

    # -- restarting ----------------------------------------------------------------------------

    async def restore(self, now: float | None = None) -> None:
        """Rebuild the counts from the store: the cases auto-dispatched within the last window
        and the reports held in ongoing storms, so a restart neither forgets a storm nor lets
        a flood through while it counts from zero."""
        if self.cases <= 0:
            return
        store = self.desk.store
        now = self.desk.clock() if now is None else now
        since = now - self.window_s
        for rec in await store.find_records(KIND, status=ACTIVE, limit=1000):
            doc = msgspec.json.decode(rec.doc, type=StormDoc)
            key = (doc.category, doc.area)
            if doc.ends_at <= now:
                await self._put(msgspec.structs.replace(doc, ended_at=doc.ends_at), ENDED,
                                rec.version)
                continue
            self._storms[key] = (doc, rec.version)
            for case_id in doc.cases:
                for r in await store.incident_reports(case_id):
                    if r.at > since:
                        self._arrive(key, r.at, _token(r.key))
        before = None
        while True:
            page = await store.list_incidents(IncidentFilter(), limit=RESTORE_PAGE, before=before)
            for inc in page:
                if inc.reported_at > since and self._auto_dispatched(inc):
                    self._arrive((inc.category, self.area_of(inc.areas)), inc.reported_at,
                                 inc.id)
            if len(page) < RESTORE_PAGE or page[-1].reported_at <= since:
                break
            before = (page[-1].reported_at, page[-1].id)

    def _auto_dispatched(self, inc: Incident) -> bool:
        # The desk registers and dispatches an auto case at its report's moment, in one save.
        if inc.dispatched_at is None or not self.area_of(inc.areas):
            return False
        if not inc.reported_at == inc.registered_at == inc.dispatched_at:
            return False
        return self.guarded(self.desk.rules.category(inc), inc.urgency)

    # -- the supervisor's release ----------------------------------------------------------------

    async def release(self, storm_id: str, actor: Actor) -> tuple[StormDoc, list[Incident]]:
        """Dispatch the reports held in the storm's open case one by one, as separate cases,
        and cancel the storm case (its timeline says where they went)."""
        desk = self.desk
        doc = await self.get(storm_id)
        if doc is None:
            raise NotFound(f"storm {storm_id} does not exist")
        case = await desk.get(doc.incident)
        if case.status is not Status.COLLECTED:
            raise Refused(f"storm case {case.id} is {case.status.value}: it was decided already; "
                          "nothing is left to release")
        desk.rules.check_scope(case, actor)
        titles = {e.detail.get("report"): e.detail for e in await desk.store.incident_events(
            case.id) if e.action == "storm.hold"}
        category = desk.rules.category(case)
        now = desk.clock()
        released = []
        for r in await desk.store.incident_reports(case.id):
            key = f"{r.key}#released"
            known = await desk.store.incident_of_report(key)
            if known is not None:  # a retried release: filed the first time
                released.append(await desk.get(known))
                continue
            detail = titles.get(r.key, {})
            areas = msgspec.convert(detail["areas"], AreaCodes) if "areas" in detail else None
            cell = None
            if r.lat is not None and r.lon is not None and desk.city is not None:
                areas = areas or desk.city.resolve(r.lat, r.lon)
                cell = desk.city.cell_of(r.lat, r.lon)
            out = desk.rules.open_incident(
                _token(key), msgspec.structs.replace(r, key=key), category,
                title=str(detail.get("title") or ""), titles=detail.get("titles"), actor=SYSTEM,
                areas=areas or case.areas,
                cell=cell, alert_id=detail.get("alert"))
            for action in ("register", "dispatch"):
                nxt = desk.rules.act(out.incident, action, actor, now,
                                     reason=f"released from storm {doc.id}")
                out = Outcome(nxt.incident, out.events + nxt.events, out.notices + nxt.notices)
            released.append(await desk._save(out, None, [msgspec.structs.replace(r, key=key)]))
        await desk.async_act(case.id, "cancel", actor,
                             reason=f"released as {len(released)} separate cases")
        return doc, released


def _token(report_key: str) -> str:
    return incident_id_for(report_key)
