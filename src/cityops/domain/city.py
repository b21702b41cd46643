"""The city model: three-level areas, departments, device kinds and devices."""

from __future__ import annotations

import datetime
import enum
from typing import Any

import msgspec

from cityops.domain.incidents.categories import Category
from cityops.domain.lifecycle import Lifecycle
from cityops.domain.onestop.catalogue import Catalogue
from cityops.domain.onestop.policies import Policy


class Level(enum.StrEnum):
    DISTRICT = "district"
    TOWN = "town"
    VILLAGE = "village"


LEVELS: tuple[Level, ...] = (Level.DISTRICT, Level.TOWN, Level.VILLAGE)

# Grid codes as Chinese urban grids write them: 6-digit district, +3 street/town, +3 community.
CODE_LENGTH = {Level.DISTRICT: 6, Level.TOWN: 9, Level.VILLAGE: 12}


def name_in(thing: Any, language: str) -> str:
    """A pack thing's name (area, department, category, city) in `language`: its `names`
    entry, else its own `name`; "" for None."""
    if thing is None:
        return ""
    return str((thing.names or {}).get(language) or thing.name)


def level_of_code(code: str) -> Level:
    for level, length in CODE_LENGTH.items():
        if len(code) == length and code.isdigit():
            return level
    raise ValueError(f"area code {code!r} is not 6, 9 or 12 digits")


class Area(msgspec.Struct, frozen=True):
    code: str
    name: str
    level: Level
    parent: str | None
    geometry: dict[str, Any]  # GeoJSON geometry (Polygon or MultiPolygon), RFC 7946 lon/lat
    # The area's identifier in the data it came from (e.g. a New York NTA code "BK0301"),
    # so that records keyed the source's way can be joined; empty for synthetic areas.
    ref: str = ""
    # The name in other languages, by BCP 47 tag ({"zh-CN": "陆家嘴街道"}): `name` stays the
    # pack's own, and a pack without translations works as before (docs/i18n.md).
    names: dict[str, str] = {}


class AreaCodes(msgspec.Struct, frozen=True):
    district: str
    town: str
    village: str

    def within(self, scope_code: str) -> bool:
        """True when this place lies inside the area with `scope_code` (any level)."""
        return self.village.startswith(scope_code)


class Department(msgspec.Struct, frozen=True):
    code: str  # snake_case, e.g. "police", "fire", "city_management"
    name: str
    hotline: str | None = None
    service_areas: list[str] = []  # area codes it serves; a district code means city-wide
    names: dict[str, str] = {}  # the name in other languages, as Area.names


class ChannelSpec(msgspec.Struct, frozen=True):
    name: str
    unit: str
    min: float
    max: float


class DeviceKind(msgspec.Struct, frozen=True):
    name: str  # snake_case: noise, water_depth, rainfall, ...
    title: str
    channels: list[ChannelSpec]  # the first channel is what a plain `value` reports
    period_s: float  # nominal reporting period
    mobile: bool = False

    @property
    def primary(self) -> ChannelSpec:
        return self.channels[0]

    def channel_index(self, name: str) -> int:
        for i, channel in enumerate(self.channels):
            if channel.name == name:
                return i
        raise KeyError(name)


class Device(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    kind: str
    lat: float
    lon: float
    name: str = ""
    owner: str | None = None  # department code responsible for the device
    areas: AreaCodes | None = None  # resolved once, at registration
    cell: str | None = None  # H3 cell at the city's resolution, resolved at registration
    meta: dict[str, Any] = {}
    # Where the device is in its life (domain/lifecycle.py) and since when (epoch s; 0: not
    # yet stamped). A device never heard of is commissioning, never "offline"; stored docs
    # without these fields decode as such.
    lifecycle: Lifecycle = Lifecycle.COMMISSIONING
    lifecycle_at: float = 0.0


class Staff(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    name: str
    department: str
    device_id: str  # the GPS device the person carries
    home_area: str  # village or town code of the person's beat
    skills: list[str] = []


class Vehicle(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    plate: str
    role: str  # muck_truck, bus, patrol_car ...
    device_id: str
    company: str = ""


class CityInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    timezone: str
    center: tuple[float, float]  # lat, lon
    h3_resolution: int = 9
    country: str = ""
    version: int = 1
    generator: dict[str, Any] = {}
    names: dict[str, str] = {}  # the city's name in other languages, as Area.names
    # The language the node writes to people in (notifications, SMS), a BCP 47 tag the
    # server has messages for ("en", "zh-CN"); a citizen's own language, when known, wins.
    language: str = "en"


class WorkPeriod(msgspec.Struct, frozen=True):
    start: datetime.time
    end: datetime.time


def _default_working_hours() -> list[WorkPeriod]:
    return [
        WorkPeriod(datetime.time(9, 0), datetime.time(12, 0)),
        WorkPeriod(datetime.time(13, 30), datetime.time(18, 0)),
    ]


class WorkCalendar(msgspec.Struct, frozen=True, kw_only=True):
    """When the city's offices work: time limits of cases are counted on it (SPEC section 4)."""

    timezone: str  # IANA name, e.g. "Asia/Shanghai"
    working_hours: list[WorkPeriod] = msgspec.field(default_factory=_default_working_hours)
    weekend: list[int] = msgspec.field(default_factory=lambda: [6, 7])  # ISO: Monday 1 .. Sunday 7
    holidays: list[datetime.date] = []  # public holidays: days off even on a weekday
    # Weekend days declared working days; China moves weekends around its public holidays.
    working_days: list[datetime.date] = []


class Zone(msgspec.Struct, frozen=True, omit_defaults=True):
    """A named place rules refer to: a muck trucks' forbidden zone or approved route, a fire
    lane, a park. Polygons for zones, LineStrings for routes (GeoJSON, lon/lat)."""

    id: str
    kind: str  # muck_forbidden, muck_route, fire_lane ...
    name: str
    geometry: dict[str, Any]
    meta: dict[str, Any] = {}  # e.g. {"hours": "07:00-22:00"} for a zone closed at those hours


class CityPack(msgspec.Struct, kw_only=True):
    """A whole city as data, as loaded from a city-pack folder (see docs/city-packs.md)."""

    info: CityInfo
    areas: list[Area]
    departments: list[Department]
    kinds: dict[str, DeviceKind]
    devices: list[Device]
    staff: list[Staff] = []
    vehicles: list[Vehicle] = []
    cell_owners: dict[str, str] = {}  # H3 cell -> responsible unit (department code)
    calendar: WorkCalendar | None = None  # load_pack fills a default when the file is absent
    zones: list[Zone] = []
    categories: list[Category] = []  # load_pack fills the default set when the file is absent
    # One-stop services and eligibility policies; None (no services.yaml / policies.yaml): the
    # default sets fitted to the departments, see packs/services_file.services_of.
    services: Catalogue | None = None
    policies: list[Policy] | None = None
