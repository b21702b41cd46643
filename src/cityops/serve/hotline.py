"""12345 hotline orders on the records store (kind "hotline_order", id = the order number).

Every move reads the order, lets `domain.hotline` decide, and saves with the version it read;
a concurrent move makes it read again and retry, never overwrite. Notices go out only after
the save. The record's `due` is the soonest deadline not yet flagged, so the scheduler asks
the store only for orders that have just gone overdue.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import msgspec

from cityops.domain import hotline
from cityops.domain.hotline import HotlineOrder, NotAllowed, Outcome, Refused
from cityops.domain.incidents.model import Report
from cityops.domain.incidents.workflow import CREATE, SYSTEM, Actor
from cityops.domain.privacy import mask_text
from cityops.domain.workclock import WorkClock
from cityops.serve.notices import tell_all
from cityops.store.base import DuplicateKey, Record, Store
from cityops.store.update import RecordDecision, UpdateGaveUp, update_record

KIND = "hotline_order"
RETRIES = 5
# Crockford's base32: no I, L, O or U to misread over the phone. 8 characters are 40 bits,
# so with the date an order number cannot be guessed from another one.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TOKEN = 8


class NotFound(LookupError):
    pass


class Invalid(ValueError):
    """A request the hotline cannot take as it is (HTTP 400)."""


def new_token() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(_TOKEN))


def decode(rec: Record) -> HotlineOrder:
    return msgspec.json.decode(rec.doc, type=HotlineOrder)


class HotlineService:
    def __init__(self, store: Store, clock: WorkClock, *, now: Callable[[], float] = time.time,
                 notifier=None, desk=None, citizens=None, city=None,
                 departments: set[str] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.now = now
        self.notifier = notifier
        self.desk = desk
        self.citizens = citizens
        self.city = city
        self.departments = departments
        self.zone = ZoneInfo(clock.calendar.timezone)

    def _record(self, order: HotlineOrder, now: float) -> Record:
        return Record(kind=KIND, id=order.number, doc=msgspec.json.encode(order),
                      owner=order.citizen_id, status=order.status.value,
                      due=hotline.next_due(order), created=order.created, updated=now)

    def _check_department(self, department: str) -> None:
        if department and self.departments is not None and department not in self.departments:
            raise Invalid(f"department {department!r} is not one of this city's: "
                          f"{', '.join(sorted(self.departments))}")

    async def create(self, actor: Actor, *, type: str, title: str, content: str = "",
                     caller_name: str = "", phone: str = "", citizen_id: str = "",
                     area: str = "", address: str = "", lat: float | None = None,
                     lon: float | None = None, department: str = "",
                     within: Callable[[str], bool] | None = None) -> HotlineOrder:
        """`within`: whether the taker's scope covers the order's area, asked once the area
        is known (given, from lat/lon, or the caller's residence)."""
        now = self.now()
        if citizen_id and self.citizens is not None:
            citizen = await self.citizens.get(citizen_id)
            if citizen is None:
                raise Invalid(f"citizen {citizen_id!r} is not registered")
            phone = phone or citizen.phone
            caller_name = caller_name or citizen.name
            area = area or citizen.area
        if phone and sum(ch.isdigit() for ch in phone) < 7:
            raise Invalid(f"phone {phone!r} is not a phone number")
        if len(title) > 200 or len(content) > 5000:
            raise Invalid("title is at most 200 characters and content 5000")
        if (lat is None) != (lon is None):
            raise Invalid("give both lat and lon, or neither")
        if lat is not None and self.city is not None:
            areas = self.city.resolve(lat, lon)
            if areas is None:
                raise Invalid(f"({lat}, {lon}) lies outside this city")
            area = areas.village or areas.town or areas.district or area
        if within is not None and not within(area):
            raise NotAllowed(f"area {area or '(none)'} is outside this key's scope: an order "
                             "is taken for a place the key covers")
        self._check_department(department)
        day = dt.datetime.fromtimestamp(now, self.zone).date()
        for _ in range(RETRIES):
            out = hotline.new_order(
                hotline.order_number(day, new_token()), type, title, now=now, clock=self.clock,
                actor=actor, content=content, caller_name=caller_name, phone=phone,
                citizen_id=citizen_id, area=area, address=address, lat=lat, lon=lon,
                department=department)
            try:
                await self.store.put_record(self._record(out.order, now))
            except DuplicateKey:
                continue  # 40 random bits clashed on the same day: draw again
            await tell_all(self.notifier, out.tells, now, order=out.order.number)
            return out.order
        raise RuntimeError("could not draw a free order number")

    async def get(self, number: str) -> HotlineOrder:
        rec = await self.store.get_record(KIND, number)
        if rec is None:
            raise NotFound(f"no hotline order {number!r}")
        return decode(rec)

    async def act(self, number: str, action: str, actor: Actor, **args) -> HotlineOrder:
        if action == "assign":
            self._check_department(args.get("department") or "")
        incident = args.pop("incident", None)
        if action == "handle" and incident:
            args["incident_id"] = await self._open_incident(number, actor, incident, args)
        return await self._move(number, lambda order, now: hotline.act(
            order, action, actor, now, self.clock, **args))

    async def _move(self, number: str,
                    decide: Callable[[HotlineOrder, float], Outcome | None]) -> HotlineOrder:
        """`decide` returning None leaves the order as it is (nothing saved)."""
        def step(rec: Record | None) -> RecordDecision[tuple[HotlineOrder, Outcome | None,
                                                             float]]:
            if rec is None:
                raise NotFound(f"no hotline order {number!r}")
            now = self.now()
            order = decode(rec)
            out = decide(order, now)
            if out is None:
                return None, (order, None, now)
            return self._record(out.order, now), (out.order, out, now)

        try:
            order, out, now = await update_record(self.store, KIND, number, step,
                                                  tries=RETRIES)
        except UpdateGaveUp:
            raise Refused(f"order {number} kept changing while this move was made; "
                          "try again") from None
        if out is not None:
            await tell_all(self.notifier, out.tells, now, order=number)
        return order

    async def _open_incident(self, number: str, actor: Actor, spec: dict, args: dict) -> str:
        """An incident for a problem in the field, filed once per order (the report key is
        the order's), after checking the move itself would be allowed."""
        if self.desk is None:
            raise Invalid("this node does not run the incident desk: no incident can be opened")
        order = await self.get(number)
        hotline.act(order, "handle", actor, self.now(), self.clock, **args)  # refuses early
        category = spec.get("category")
        lat = order.lat if spec.get("lat") is None else spec["lat"]
        lon = order.lon if spec.get("lon") is None else spec["lon"]
        if not category or lat is None or lon is None:
            raise Invalid("an incident needs a category, and lat/lon unless the order has them")
        if category not in self.desk.rules.categories:
            raise Invalid(f"category {category!r} is not in this city's category table")
        now = self.now()
        # The incident is an operator view with no citizen's key behind it: no numbers in it.
        text = mask_text(order.content or order.title)
        report = Report(key=f"hotline:{number}", source="hotline", at=now,
                        text=text, lat=float(lat), lon=float(lon),
                        reporter=order.citizen_id or f"12345:{number}",
                        data={"hotline_order": number})
        # A department handling the order files through the hotline, which may report.
        filer = actor if actor.role in CREATE else SYSTEM
        result = await self.desk.async_report(report, category, actor=filer,
                                              title=mask_text(order.title), description=text,
                                              auto_register=False)
        return result.incident.id

    async def list(self, *, status: str | None = None, citizen: str | None = None,
                   keep: Callable[[HotlineOrder], bool] = lambda o: True, limit: int = 100,
                   before: tuple[float, str] | None = None,
                   max_scan: int = 5000) -> tuple[list[HotlineOrder], tuple[float, str] | None]:
        """Newest first; `keep` filters what the store cannot (department, overdue, scope).
        Returns the page and the cursor of the next one (None at the end)."""
        found: list[HotlineOrder] = []
        scanned = 0
        cursor = before
        while len(found) < limit and scanned < max_scan:
            page = await self.store.find_records(KIND, owner=citizen, status=status,
                                                 limit=200, before=cursor)
            if not page:
                return found, None
            for rec in page:
                scanned += 1
                cursor = (rec.created, rec.id)
                order = decode(rec)
                if keep(order):
                    found.append(order)
                    if len(found) == limit:
                        return found, cursor
            if len(page) < 200:
                return found, None
        return found, cursor

    async def scan_overdue(self, now: float | None = None, limit: int = 500) -> int:
        """Flag orders whose deadline has passed; returns how many were flagged."""
        now = self.now() if now is None else now
        flagged = 0
        for rec in await self.store.find_records(KIND, due_before=now, limit=limit):
            made: list[bool] = []

            def flag(order: HotlineOrder, at: float) -> Outcome | None:
                out = hotline.flag_overdue(order, now)
                made[:] = [out is not None]  # noqa: B023 (flag runs within this iteration)
                return out

            try:
                await self._move(rec.id, flag)
            except (NotFound, Refused):
                continue
            flagged += bool(made and made[0])
        return flagged
