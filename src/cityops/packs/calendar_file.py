"""calendar.yaml: when the city's offices work, written the way people write it.

    timezone: Asia/Shanghai
    working_hours: ["09:00-12:00", "13:30-18:00"]
    weekend: [saturday, sunday]
    holidays: [2025-01-01, 2025-01-28]
    working_days: [2025-01-26]
"""

from __future__ import annotations

import datetime
from typing import Any

from cityops.domain.city import WorkCalendar, WorkPeriod
from cityops.packs.errors import PackError

NAME = "calendar.yaml"
FIELDS = ("timezone", "working_hours", "weekend", "holidays", "working_days")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def calendar_to_yaml_obj(calendar: WorkCalendar) -> dict[str, Any]:
    return {
        "timezone": calendar.timezone,
        "working_hours": [
            f"{p.start.strftime('%H:%M')}-{p.end.strftime('%H:%M')}" for p in calendar.working_hours
        ],
        "weekend": [WEEKDAYS[day - 1] for day in calendar.weekend],
        "holidays": list(calendar.holidays),
        "working_days": list(calendar.working_days),
    }


def calendar_from_yaml_obj(doc: Any, default_timezone: str) -> WorkCalendar:
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise PackError(f"{NAME}: must be a mapping of timezone, working_hours, weekend, holidays")
    unknown = sorted(str(key) for key in doc if key not in FIELDS)
    if unknown:
        raise PackError(f"{NAME}: unknown field '{unknown[0]}'")
    timezone = doc.get("timezone", default_timezone)
    if not isinstance(timezone, str):
        raise PackError(
            f"{NAME}: field 'timezone' must be an IANA time zone name, got {timezone!r}"
        )
    fields: dict[str, Any] = {"timezone": timezone}
    if "working_hours" in doc:
        fields["working_hours"] = _periods(doc["working_hours"])
    if "weekend" in doc:
        fields["weekend"] = _weekend(doc["weekend"])
    fields["holidays"] = _dates(doc.get("holidays") or [], "holidays")
    fields["working_days"] = _dates(doc.get("working_days") or [], "working_days")
    return WorkCalendar(**fields)


def _periods(value: Any) -> list[WorkPeriod]:
    if not isinstance(value, list) or not value:
        raise PackError(f"{NAME}: field 'working_hours' must be a list like [\"09:00-12:00\"]")
    periods = []
    for i, text in enumerate(value):
        where = f"{NAME}: field 'working_hours[{i}]'"
        try:
            parts = str(text).split("-")
            start, end = (datetime.time.fromisoformat(part.strip()) for part in parts)
        except ValueError:
            raise PackError(f"{where}: {text!r} is not a period like \"09:00-12:00\"") from None
        if start >= end:
            raise PackError(f"{where}: {text!r} ends before it starts")
        if periods and start < periods[-1].end:
            raise PackError(f"{where}: {text!r} overlaps or precedes the period before it")
        periods.append(WorkPeriod(start, end))
    return periods


def _weekend(value: Any) -> list[int]:
    if not isinstance(value, list):
        raise PackError(
            f"{NAME}: field 'weekend' must be a list of day names like [saturday, sunday]"
        )
    days = []
    for name in value:
        if not isinstance(name, str) or name.lower() not in WEEKDAYS:
            raise PackError(
                f"{NAME}: field 'weekend': {name!r} is not a day name (monday ... sunday)"
            )
        days.append(WEEKDAYS.index(name.lower()) + 1)
    return sorted(set(days))


def _dates(value: Any, field: str) -> list[datetime.date]:
    if not isinstance(value, list):
        raise PackError(f"{NAME}: field '{field}' must be a list of dates (YYYY-MM-DD)")
    dates = []
    for item in value:
        if isinstance(item, datetime.date) and not isinstance(item, datetime.datetime):
            dates.append(item)
            continue
        try:
            dates.append(datetime.date.fromisoformat(str(item)))
        except ValueError:
            raise PackError(
                f"{NAME}: field '{field}': {item!r} is not a date (YYYY-MM-DD)"
            ) from None
    return sorted(set(dates))
