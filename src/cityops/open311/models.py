"""The shapes of Open311 GeoReport v2 answers and of a posted request, as types: the route
table documents them (and the fuzz tests hold the answers to them). They keep the spec's field
names, `long` included."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Short = Annotated[str, msgspec.Meta(max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Stamp = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]


class Open311Service(msgspec.Struct, omit_defaults=True):
    service_code: str
    service_name: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    description: str = ""
    keywords: str = ""
    group: str = ""


class Open311AttributeValue(msgspec.Struct):
    key: str
    name: str


class Open311Attribute(msgspec.Struct, omit_defaults=True):
    variable: bool
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist",
                      "multivaluelist"]
    required: bool
    order: int
    description: str
    datatype_description: str | None = None
    values: list[Open311AttributeValue] = []


class Open311ServiceDefinition(msgspec.Struct):
    service_code: str
    attributes: list[Open311Attribute]


class Open311Request(msgspec.Struct, omit_defaults=True):
    service_request_id: str
    status: Literal["open", "closed"]
    service_code: str
    requested_datetime: Stamp
    status_notes: str = ""
    service_name: str = ""
    description: str = ""
    agency_responsible: str = ""
    service_notice: str = ""
    updated_datetime: Stamp | None = None
    expected_datetime: Stamp | None = None
    address: str = ""
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None


class Open311Created(msgspec.Struct):
    service_request_id: str
    token: str = ""
    service_notice: str = ""
    account_id: str | None = None


class Open311Token(msgspec.Struct):
    service_request_id: str
    token: str


class Open311Problem(msgspec.Struct):
    code: int
    description: str


class Open311NewRequest(msgspec.Struct, kw_only=True):
    """The form fields of POST requests.{fmt} (form-encoded; attribute[CODE]=value besides)."""

    service_code: Short
    api_key: Short = ""
    jurisdiction_id: Short = ""
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    long: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    address_string: Short = ""
    address_id: Short = ""
    email: Short = ""
    device_id: Short = ""
    account_id: Short = ""
    first_name: Short = ""
    last_name: Short = ""
    phone: Short = ""
    description: Text = ""
    media_url: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class Open311Listing(msgspec.Struct, kw_only=True):
    """The query of GET requests.{fmt}."""

    service_request_id: Annotated[str, msgspec.Meta(
        max_length=4000, description="Comma-separated ids; overrides every other filter")] = ""
    service_code: Annotated[str, msgspec.Meta(
        max_length=2000, description="Comma-separated service codes")] = ""
    start_date: Annotated[str, msgspec.Meta(
        max_length=40, description="W3C datetime; with end_date at most 90 days apart")] = ""
    end_date: Annotated[str, msgspec.Meta(
        max_length=40, description="W3C datetime; default: the most recent 90 days")] = ""
    status: Annotated[str, msgspec.Meta(
        max_length=20, description="open, closed or both, comma-separated")] = ""
    jurisdiction_id: Annotated[str, msgspec.Meta(
        max_length=200, description="Optional; this city's id, the slug of its name")] = ""


class Open311Jurisdiction(msgspec.Struct, kw_only=True):
    jurisdiction_id: Annotated[str, msgspec.Meta(
        max_length=200, description="Optional; this city's id, the slug of its name")] = ""
