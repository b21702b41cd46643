"""Service requests: filed through the incident desk, read back with the incident's status.

A posted request gets its own id (and a token that names it), and goes to the desk as a report
keyed `open311:<id>`: it opens an incident, or joins an open one of the same category close by.
The request is kept as a record of the store (kind `open311.request`) with what GET answers
from it, owned by whoever filed it (`owner_of`), whose own list of requests reads it back; its
status, notes, agency and deadline are read from the incident it belongs to, so they follow
every move the case makes. The caller's contact details are kept in the request's record,
sealed at rest with the rest of its personal data (`cityops.serve.pii`), for the citizen's
export and erasure; the case gets the request's text and contact with phone and ID numbers
masked, since no staff view shows more of them.

What GET publishes has phone and ID numbers masked wherever people wrote them (a description,
an address, a department's note): Open311 reads need no key. Only the citizen's own list of
requests shows their own words whole.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

import msgspec

from cityops.domain.access import Principal, Role, Scope, can_see_place
from cityops.domain.city import AreaCodes, Level
from cityops.domain.incidents.model import Event, Incident, Report, Status
from cityops.domain.incidents.workflow import Actor, NotAllowed, OutOfScope, Refused
from cityops.domain.privacy import mask_data, mask_text
from cityops.open311.formats import Open311Error
from cityops.open311.services import MAX_TEXT, Catalogue, Service, check_attributes, parse_w3c
from cityops.serve.report_photos import PATH as PHOTO_PATH
from cityops.serve.report_photos import NotYours, ReportPhotos
from cityops.serve.reviews import FINISHED_INCIDENTS
from cityops.store.record_rows import Record

log = logging.getLogger(__name__)

KIND = "open311.request"
REPORT_PREFIX = "open311:"
SOURCE = "open311"
# Who may post: citizens, and every role that may report a case through the JSON API.
POSTERS = frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR, Role.FIELD})
# The workflow lets only staff roles open cases; a citizen's request is filed by this intake
# on the citizen's behalf (as alerts are by the alert intake), and the report names the key.
INTAKE = Actor("open311", Role.ADMIN, Scope(), "Open311 intake")
WINDOW_S = 90 * 86400.0  # the spec's default and longest span of GET requests
LIST_LIMIT = 1000  # the most requests one GET returns, newest first
MAX_IDS = 1000
PAGE = 500
CONTACT = ("email", "device_id", "account_id", "first_name", "last_name", "phone")
MAX_FIELD = 254
# A request's record is owned by the citizen a citizen key names, so that every key of theirs
# (a new phone, a key reissued after a loss) finds it; by the filing key otherwise. The prefix
# keeps a citizen id from ever reading as a key id. The store's schema 5 migration wrote this
# same form over the key ids of older requests (store/record_sql.py).
CITIZEN_OWNER = "citizen:"

# Timeline moves whose reason or note tells the public something; the rest (escalations,
# offers to staff, returns between units) are the city's internal business.
PUBLIC_NOTES = frozenset({"register", "cancel", "close", "verify", "rework", "reopen",
                          "order.accept", "order.finish", "order.on_site", "order.en_route",
                          "order.resume"})
STATUS_NOTES = {
    Status.COLLECTED: "Received; waiting to be checked by the city's supervision centre.",
    Status.REGISTERED: "Accepted as a case; being sent to the responsible department.",
    Status.DISPATCHED: "Sent to the responsible department.",
    Status.ACCEPTED: "The responsible department is working on it.",
    Status.HANDLED: "Reported done by the department; waiting to be checked on site.",
    Status.VERIFIED: "Checked on site as solved.",
    Status.CLOSED: "Closed.",
    Status.CANCELLED: "Cancelled.",
}


class RequestDoc(msgspec.Struct, omit_defaults=True, kw_only=True):
    """What the store keeps of a request beside the report. `contact` (what the form's contact
    fields said) is never published; the store seals its phone number at rest."""

    service_request_id: str
    token: str
    service_code: str
    category: str
    incident_id: str
    merged: bool = False  # joined a case that was already open
    lat: float | None = None
    lon: float | None = None
    address: str = ""  # as the caller wrote it (address_string)
    address_id: str = ""
    village: str = ""
    description: str = ""
    media_url: str = ""
    account_id: str = ""
    contact: dict[str, str] = {}


class Place(msgspec.Struct, frozen=True):
    areas: AreaCodes
    lat: float | None = None
    lon: float | None = None
    address: str = ""
    address_id: str = ""


def new_request_id() -> str:
    """Twelve digits, never starting with 0: Open311 clients and people read them as numbers."""
    return str(10**11 + secrets.randbelow(9 * 10**11))


def owner_of(who: Principal) -> str:
    if who.role is Role.CITIZEN and who.name:
        return CITIZEN_OWNER + who.name
    return who.key_id


def jurisdiction_of(city_name: str) -> str:
    """'New York City' -> 'new-york-city'."""
    slug = "".join(ch if ch.isalnum() else "-" for ch in city_name.lower())
    return "-".join(part for part in slug.split("-") if part)


def _field(fields: Mapping[str, str], name: str, limit: int = MAX_FIELD) -> str:
    value = (fields.get(name) or "").strip()
    if len(value) > limit:
        raise Open311Error(400, f"{name} is longer than {limit} characters")
    return value


def _coordinate(fields: Mapping[str, str], name: str, bound: float) -> float:
    raw = (fields.get(name) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise Open311Error(400, f"{name} {raw!r} is not a number") from None
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise Open311Error(400, f"{name} {raw!r} is not between {-bound:g} and {bound:g}")
    return value


class Requests:
    """Filing and reading requests on one node."""

    def __init__(self, node, catalogue: Catalogue) -> None:
        self.node = node
        self.store = node.store
        self.city = node.city
        self.catalogue = catalogue
        self.tz = ZoneInfo(node.pack.info.timezone)
        self.city_name = node.pack.info.name

    # -- where ---------------------------------------------------------------------------------

    def locate(self, fields: Mapping[str, str]) -> Place:
        """lat/long, else address_id (an area code of the city), else address_string naming one
        of its villages. CityOps has no street geocoder: an address it cannot place is refused
        rather than filed nowhere."""
        address = _field(fields, "address_string", 1000)
        address_id = _field(fields, "address_id")
        has_lat, has_long = bool((fields.get("lat") or "").strip()), \
            bool((fields.get("long") or "").strip())
        if has_lat or has_long:
            if not (has_lat and has_long):
                raise Open311Error(400, "lat and long must be given together")
            lat = _coordinate(fields, "lat", 90)
            lon = _coordinate(fields, "long", 180)
            areas = self.city.resolve(lat, lon)
            if areas is None:
                raise Open311Error(400, f"({lat}, {lon}) lies outside {self.city_name}")
            return Place(areas, lat, lon, address, address_id)
        if address_id:
            if address_id not in self.city:
                raise Open311Error(400, f"address_id {address_id!r} is not an area code of "
                                        f"{self.city_name}")
            return Place(self._village(address_id, f"address_id {address_id!r}"), None, None,
                         address, address_id)
        if address:
            folded = address.casefold()
            found = [a for a in self.city.areas_at(Level.VILLAGE) if a.name.casefold() == folded]
            if len(found) != 1:
                why = "names no neighbourhood" if not found else f"names {len(found)} places"
                raise Open311Error(400, f"address_string {address!r} {why} of {self.city_name}; "
                                        "send lat and long")
            return Place(self._village(found[0].code, "address_string"), None, None, address)
        raise Open311Error(400, "a location is required: lat and long, address_string or "
                                "address_id")

    def _village(self, code: str, what: str) -> AreaCodes:
        area = self.city.area(code)
        if area.level is not Level.VILLAGE:
            raise Open311Error(400, f"{what} is a whole {area.level.value} ({area.name}); "
                                    "send lat and long, or a neighbourhood")
        town = self.city.area(area.parent)
        return AreaCodes(district=town.parent, town=town.code, village=code)

    # -- filing --------------------------------------------------------------------------------

    async def file(self, who: Principal, fields: Mapping[str, str],
                   attributes: Mapping[str, list[str]]) -> tuple[RequestDoc, Service]:
        act = self.node.act
        if act is None:
            raise Open311Error(503, "this node does not run the incident desk")
        service = self.catalogue.require(_field(fields, "service_code"))
        place = self.locate(fields)
        answers = check_attributes(service, attributes, self.tz)
        description = _field(fields, "description", MAX_TEXT)
        media_url = _field(fields, "media_url", 2048)
        # A photo sent to this node is named by its path when the node has no public URL.
        if media_url and not media_url.lower().startswith(("http://", "https://")) \
                and not media_url.startswith(PHOTO_PATH):
            raise Open311Error(400, f"media_url {media_url[:80]!r} is not an http(s) URL")
        photos = ReportPhotos(self.store, self.node.clock)
        try:
            photo = await photos.claim(media_url, who.name if who.role is Role.CITIZEN
                                       else "") if media_url else None
        except NotYours as error:
            raise Open311Error(400, str(error)) from None
        contact = {name: value for name in CONTACT if (value := _field(fields, name))}
        if "email" in contact and "@" not in contact["email"]:
            raise Open311Error(400, f"email {contact['email']!r} is not an e-mail address")
        if not can_see_place(who, place.areas):
            raise Open311Error(403, "the place lies outside the area of this api_key")
        for _ in range(5):
            request_id = new_request_id()
            if await self.store.get_record(KIND, request_id) is not None:
                continue
            now = self.node.clock()
            data: dict[str, object] = {
                "service_request_id": request_id, "service_code": service.code,
                "attributes": answers, "key": who.key_id,
                **({"address": place.address} if place.address else {}),
                **({"address_id": place.address_id} if place.address_id else {}),
                **({"media_url": media_url} if media_url else {}),
                **({"contact": mask_data(contact)} if contact else {}),
            }
            # The case is read by staff only, who see phone and ID numbers masked: it is
            # given nothing more, and the whole text stays with the request's sealed record.
            public_text = mask_text(description)
            report = Report(key=REPORT_PREFIX + request_id, source=SOURCE, at=now,
                            text=public_text, lat=place.lat, lon=place.lon,
                            reporter=who.name or who.key_id, data=data)
            try:
                # Whether the case is registered and dispatched at once or waits for the
                # centre's check is the category table's word (auto_register).
                result = await act.desk.async_report(report, service.category.code,
                                                     actor=INTAKE, description=public_text,
                                                     areas=place.areas)
            except (OutOfScope, NotAllowed) as error:
                raise Open311Error(403, str(error)) from None
            except Refused as error:
                raise Open311Error(503, f"{error.reason}; try again",
                                   {"Retry-After": "1"}) from None
            if result.repeated:  # an id drawn twice: that report is another request's
                continue
            if photo and not await photos.attach(photo, result.incident.id):
                # The case is filed: failing the request now would have it filed twice by a
                # retry. Its staff just cannot open the photo.
                log.warning("photo %s could not be linked to incident %s", photo,
                            result.incident.id)
            doc = RequestDoc(
                service_request_id=request_id, token=secrets.token_hex(16),
                service_code=service.code, category=service.category.code,
                incident_id=result.incident.id, merged=result.merged, lat=place.lat,
                lon=place.lon, address=place.address, address_id=place.address_id,
                village=place.areas.village, description=description, media_url=media_url,
                account_id=contact.get("account_id", ""), contact=contact)
            await self.store.put_record(Record(
                kind=KIND, id=request_id, doc=msgspec.json.encode(doc), owner=owner_of(who),
                unique=doc.token, created=now, updated=now))
            return doc, service
        raise Open311Error(503, "no free request id was found; try again", {"Retry-After": "1"})

    # -- reading -------------------------------------------------------------------------------

    async def get(self, request_id: str) -> Record | None:
        return await self.store.get_record(KIND, request_id)

    async def by_token(self, token: str) -> Record | None:
        found = await self.store.find_records(KIND, unique=token, limit=1)
        return found[0] if found else None

    def window(self, start_raw: str | None, end_raw: str | None) -> tuple[float, float]:
        """The spec's rule: at most 90 days, the most recent 90 when neither end is given."""
        now = self.node.clock()
        start = parse_w3c(start_raw, self.tz, "start_date").timestamp() if start_raw else None
        end = parse_w3c(end_raw, self.tz, "end_date").timestamp() if end_raw else None
        if start is None and end is None:
            return now - WINDOW_S, now
        if start is None:
            return end - WINDOW_S, end
        if end is None:
            return start, start + WINDOW_S
        if end < start:
            raise Open311Error(400, "end_date is before start_date")
        if end - start > WINDOW_S:
            raise Open311Error(400, "start_date to end_date may not span more than 90 days")
        return start, end

    async def find(self, start: float, end: float, codes: Sequence[str],
                   statuses: Sequence[str]) -> list[dict]:
        """Requests made in [start, end], newest first, at most LIST_LIMIT of them."""
        reader = _Reader(self)
        out: list[dict] = []
        before: tuple[float, str] | None = (end, "~")  # "~" sorts after every digit id
        while len(out) < LIST_LIMIT:
            page = await self.store.find_records(KIND, limit=PAGE, before=before)
            for rec in page:
                if rec.created < start:
                    return out
                doc = msgspec.json.decode(rec.doc, type=RequestDoc)
                if codes and doc.service_code not in codes:
                    continue
                view = await reader.view(rec, doc)
                if statuses and view["status"] not in statuses:
                    continue
                out.append(view)
                if len(out) >= LIST_LIMIT:
                    break
            if len(page) < PAGE:
                break
            before = (page[-1].created, page[-1].id)
        return out

    async def of_owner(self, who: Principal, limit: int, before: tuple[float, str] | None
                       ) -> tuple[list[dict], tuple[float, str] | None]:
        """The caller's own requests, newest first, off the records' owner index, each with
        the case it joined; and where the next page starts (None at the end)."""
        found = await self.store.find_records(KIND, owner=owner_of(who), limit=limit + 1,
                                              before=before)
        page = found[:limit]
        reader = _Reader(self)
        items = [await reader.with_case(rec, msgspec.json.decode(rec.doc, type=RequestDoc))
                 for rec in page]
        more = (page[-1].created, page[-1].id) if len(found) > limit else None
        return items, more

    async def views(self, records: Sequence[Record]) -> list[dict]:
        reader = _Reader(self)
        return [await reader.view(rec, msgspec.json.decode(rec.doc, type=RequestDoc))
                for rec in records]

    # -- rendering helpers ---------------------------------------------------------------------

    def when(self, ts: float | None) -> str | None:
        if ts is None:
            return None
        return dt.datetime.fromtimestamp(ts, self.tz).isoformat(timespec="seconds")

    def address_of(self, doc: RequestDoc) -> str:
        if doc.address:
            return doc.address
        if not doc.village or doc.village not in self.city:
            return ""
        chain = [*reversed(self.city.ancestors(doc.village))]
        return ", ".join([self.city.area(doc.village).name, *(a.name for a in chain)])

    def notice(self, service: Service | None, doc: RequestDoc) -> str:
        text = service.notice if service is not None else ""
        if doc.merged:
            text = "This was already reported: your request joined the open case. " + text
        return text.strip()


class _Reader:
    """Reads each incident and its timeline once per call, however many requests joined it."""

    def __init__(self, requests: Requests) -> None:
        self.r = requests
        self._cases: dict[str, tuple[Incident | None, list[Event]]] = {}

    async def _case(self, incident_id: str) -> tuple[Incident | None, list[Event]]:
        if incident_id not in self._cases:
            store = self.r.store
            inc = await store.get_incident(incident_id)
            events = await store.incident_events(incident_id) if inc is not None else []
            self._cases[incident_id] = (inc, events)
        return self._cases[incident_id]

    async def view(self, rec: Record, doc: RequestDoc, *, own: bool = False) -> dict:
        """What Open311 publishes of a request; `own` for the citizen who filed it, who sees
        their own words whole (a note from the city stays masked: it may name others)."""
        r = self.r
        mine = (lambda text: text) if own else mask_text
        inc, events = await self._case(doc.incident_id)
        service = r.catalogue.get(doc.service_code)
        is_open = inc is None or inc.is_open
        if inc is not None:
            departments = inc.departments or inc.default_departments
            agency = r.catalogue.agencies(departments)
            updated = max(inc.updated_at, rec.created)
        else:
            agency, updated = "", rec.created
        return {
            "service_request_id": doc.service_request_id,
            "status": "open" if is_open else "closed",
            "status_notes": mask_text(status_notes(inc, events)),
            "service_name": service.category.name if service else doc.service_code,
            "service_code": doc.service_code,
            "description": mine(doc.description),
            "agency_responsible": agency,
            "service_notice": r.notice(service, doc),
            "requested_datetime": r.when(rec.created),
            "updated_datetime": r.when(updated),
            "expected_datetime": r.when(inc.close_due if inc is not None else None),
            "address": mine(r.address_of(doc)),
            "address_id": doc.address_id or None,
            "zipcode": None,
            "lat": doc.lat,
            "long": doc.lon,
            "media_url": doc.media_url or None,
        }

    async def with_case(self, rec: Record, doc: RequestDoc) -> dict:
        """The public view, and what only the one who filed it is shown: the case it joined,
        so that they can follow and rate it."""
        inc, _ = await self._case(doc.incident_id)
        return {**await self.view(rec, doc, own=True), "incident_id": doc.incident_id,
                "incident_status": inc.status.value if inc is not None else None,
                "title": mask_text(inc.title) if inc is not None else "",
                "titles": dict(inc.titles or {}) if inc is not None else {},
                "finished": inc is not None and inc.status in FINISHED_INCIDENTS}


def status_notes(inc: Incident | None, events: Sequence[Event]) -> str:
    """What the status means, and the latest reason or note the public may read."""
    if inc is None:
        return ""
    text = STATUS_NOTES.get(inc.status, "")
    for event in reversed(events):
        if event.action in PUBLIC_NOTES and event.reason.strip():
            return f"{text} Note: {event.reason.strip()}"
    return text
