"""The city's case categories as Open311 services, and the attributes each service asks for.

One service per category of the city pack's table. The service code is the category code with
dots turned into hyphens ("event.noise.residential" -> "event-noise-residential"): stable for
as long as the category is, and free of the dot that separates a resource from its format in
`services/{code}.json`. The group is the category's major.

Attributes are not pack data: they come from the kind of problem a category names (noise, a
vehicle, a street fixture, waste, a home), so every city with such categories asks the same
questions. A category of no such kind has none (`metadata: false`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from cityops.domain.city import Department
from cityops.domain.incidents.categories import Category
from cityops.domain.workclock import Limit
from cityops.open311.formats import Open311Error

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
MAX_TEXT = 4000  # characters of a free-text attribute or a description


class Value(msgspec.Struct, frozen=True):
    key: str
    name: str


class Attribute(msgspec.Struct, frozen=True):
    code: str
    datatype: str
    description: str
    required: bool = False
    variable: bool = True  # false: text shown to the person, nothing to answer
    datatype_description: str | None = None
    values: tuple[Value, ...] = ()

    def doc(self, order: int) -> dict:
        return {"variable": self.variable, "code": self.code, "datatype": self.datatype,
                "required": self.required, "datatype_description": self.datatype_description,
                "order": order, "description": self.description,
                "values": [{"key": v.key, "name": v.name} for v in self.values]}


class Service(msgspec.Struct, frozen=True):
    code: str
    category: Category
    description: str
    keywords: str
    group: str
    attributes: tuple[Attribute, ...]
    notice: str  # what the city will do: service_notice of every request of this service

    def doc(self) -> dict:
        return {"service_code": self.code, "service_name": self.category.name,
                "description": self.description, "metadata": bool(self.attributes),
                "type": "realtime", "keywords": self.keywords, "group": self.group}

    def definition(self) -> dict:
        return {"service_code": self.code,
                "attributes": [a.doc(i) for i, a in enumerate(self.attributes, 1)]}


def service_code(category_code: str) -> str:
    return category_code.replace(".", "-")


def _values(*pairs: tuple[str, str]) -> tuple[Value, ...]:
    return tuple(Value(k, n) for k, n in pairs)


NOISE = (
    Attribute("noise_source", "singlevaluelist", "What is making the noise?", required=True,
              values=_values(("music_party", "Loud music or a party"),
                             ("talking", "Loud talking or shouting"),
                             ("banging", "Banging or pounding"),
                             ("construction", "Construction or equipment"),
                             ("vehicle", "A car or truck (music, horn, engine)"),
                             ("alarm", "An alarm"),
                             ("animal", "A barking dog or other animal"),
                             ("other", "Something else"))),
    Attribute("still_going", "singlevaluelist", "Is it still going on?",
              values=_values(("yes", "Yes"), ("no", "No"))),
)
VEHICLE = (
    Attribute("vehicle_type", "singlevaluelist", "What kind of vehicle?",
              values=_values(("car", "Car"), ("van", "Van"), ("truck", "Truck"),
                             ("motorcycle", "Motorcycle or scooter"), ("bus", "Bus"),
                             ("other", "Other"))),
    Attribute("plate", "string", "Its number plate, if you can read it"),
)
FIXTURE = (
    Attribute("asset_number", "string",
              "The number on the pole, cover or hydrant, if there is one"),
)
WASTE = (
    Attribute("amount", "singlevaluelist", "How much is there?",
              values=_values(("bags", "A few bags"), ("car_load", "A car load"),
                             ("truck_load", "A truck load or more"))),
    Attribute("waste_kind", "multivaluelist", "What is it? (choose all that apply)",
              values=_values(("household", "Household rubbish"), ("furniture", "Furniture"),
                             ("construction", "Construction debris"),
                             ("hazardous", "Paint, batteries, oil or chemicals"))),
)
HOME = (
    Attribute("apartment", "string", "Flat or apartment number"),
    Attribute("homes_affected", "number", "How many homes are affected?",
              datatype_description="A number, e.g. 3"),
)

VEHICLE_MINORS = {"illegal_parking", "blocked_driveway", "abandoned_vehicle",
                  "fire_lane_blocked", "muck_truck", "vehicle_fire"}
FIXTURE_MINORS = {"street_lamp", "traffic_signal", "damaged", "manhole_cover", "fire_hydrant"}
WASTE_MINORS = {"exposed_garbage", "illegal_dumping", "garbage", "street_cleaning",
                "missed_collection"}


def attributes_for(category: Category, hotlines: Sequence[str]) -> tuple[Attribute, ...]:
    out: list[Attribute] = []
    if category.urgent:
        # Open311 is for problems that can wait for a unit; a person in danger cannot.
        call = " or ".join(hotlines) if hotlines else "the emergency number"
        out.append(Attribute("emergency", "string", f"If anyone is in danger, call {call} now.",
                             variable=False))
    if category.major == "noise" or "noise" in category.minor:
        out += NOISE
    if category.minor in VEHICLE_MINORS:
        out += VEHICLE
    if category.minor in FIXTURE_MINORS:
        out += FIXTURE
    if category.minor in WASTE_MINORS:
        out += WASTE
    if category.major == "housing":
        out += HOME
    return tuple(out)


_UNITS = {"minutes": "minute", "hours": "hour", "working_hours": "working hour",
          "working_days": "working day"}


def describe_limit(text: str) -> str:
    """'10wd' -> '10 working days', '1h' -> '1 hour'."""
    limit = Limit.parse(text)
    amount = f"{limit.amount:g}"
    unit = _UNITS.get(limit.unit, limit.unit.replace("_", " "))
    return f"{amount} {unit}" + ("" if limit.amount == 1 else "s")


class Catalogue:
    """The services of one city, from its category table and departments."""

    def __init__(self, categories: Iterable[Category], departments: Sequence[Department]):
        self.departments = {d.code: d for d in departments}
        self._by_code: dict[str, Service] = {}
        for category in categories:
            code = service_code(category.code)
            if code in self._by_code:  # two category codes differing only in . and -
                code = category.code
            self._by_code[code] = self._service(code, category)

    def agencies(self, codes: Iterable[str]) -> str:
        return ", ".join(self.departments[c].name if c in self.departments else c
                         for c in codes)

    def _service(self, code: str, category: Category) -> Service:
        agencies = self.agencies(category.departments)
        hotlines = [f"{h} ({self.departments[d].name})" for d in category.departments
                    if d in self.departments and (h := self.departments[d].hotline)]
        notice = f"Sent to {agencies}; to be dealt with within " \
                 f"{describe_limit(category.limits.finish)} of being dispatched."
        words = [category.major, *category.minor.split("_"), *category.departments]
        keywords = ", ".join(dict.fromkeys(w.replace("_", " ") for w in words if w))
        return Service(code=code, category=category,
                       description=f"{category.name}. Handled by {agencies}.",
                       keywords=keywords, group=category.major.replace("_", " "),
                       attributes=attributes_for(category, hotlines), notice=notice)

    def __iter__(self):
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: str) -> Service | None:
        return self._by_code.get(code)

    def by_category(self, category_code: str) -> Service | None:
        return self._by_code.get(service_code(category_code)) or self._by_code.get(category_code)

    def require(self, code: str | None) -> Service:
        if not code:
            raise Open311Error(400, "service_code was not provided")
        found = self._by_code.get(code)
        if found is None:
            raise Open311Error(404, f"service_code {code!r} was not found "
                                    "(GET services.json lists them)")
        return found


def parse_w3c(text: str, tz: dt.tzinfo, name: str) -> dt.datetime:
    """A W3C datetime (the ISO 8601 profile the spec names): with its offset or Z; a bare date
    or a time without offset is taken in the city's time zone."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise Open311Error(400, f"{name} {text!r} is not a W3C datetime "
                                "like 2010-01-01T00:00:00Z") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=tz)


def check_attributes(service: Service, given: Mapping[str, list[str]], tz: dt.tzinfo
                     ) -> dict[str, object]:
    """The answers posted as `attribute[code]=...` (a multivaluelist as `attribute[code][]`),
    checked against the service definition; returns them by code, lists for multivaluelists."""
    known = {a.code: a for a in service.attributes}
    unknown = sorted(set(given) - set(known))
    if unknown:
        have = ", ".join(a.code for a in service.attributes if a.variable) or "none"
        raise Open311Error(400, f"service {service.code} has no attribute {unknown[0]!r} "
                                f"(its attributes: {have})")
    out: dict[str, object] = {}
    for a in service.attributes:
        if not a.variable:
            continue
        raw = [v.strip() for v in given.get(a.code, []) if v.strip()]
        if not raw:
            if a.required:
                raise Open311Error(400, f"attribute[{a.code}] is required for service "
                                        f"{service.code}: {a.description}")
            continue
        keys = [v.key for v in a.values]
        if a.datatype == "multivaluelist":
            bad = [v for v in raw if v not in keys]
            if bad:
                raise Open311Error(400, f"attribute[{a.code}] value {bad[0]!r} is not one of: "
                                        + ", ".join(keys))
            out[a.code] = list(dict.fromkeys(raw))
            continue
        if len(raw) > 1:
            raise Open311Error(400, f"attribute[{a.code}] takes one value, not {len(raw)}")
        value = raw[0]
        if a.datatype == "singlevaluelist" and value not in keys:
            raise Open311Error(400, f"attribute[{a.code}] value {value!r} is not one of: "
                                    + ", ".join(keys))
        if a.datatype == "number":
            try:
                number = float(value)
            except ValueError:
                number = float("nan")
            if number != number or number in (float("inf"), float("-inf")):
                raise Open311Error(400, f"attribute[{a.code}] {value!r} is not a number")
            out[a.code] = number
            continue
        if a.datatype == "datetime":
            out[a.code] = parse_w3c(value, tz, f"attribute[{a.code}]").isoformat()
            continue
        if len(value) > MAX_TEXT:
            raise Open311Error(400, f"attribute[{a.code}] is longer than {MAX_TEXT} characters")
        out[a.code] = value
    return out
