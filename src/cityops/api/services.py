"""The service catalogue and its forms:

    GET /api/v1/services?q=&department=&channel=   search items and bundles
    GET /api/v1/services/{code}                    one item
    GET /api/v1/services/{code}/form               its form (for a citizen: filled in, with
                                                   materials attached or asked and why)
    GET /api/v1/bundles/{code}                     one "one thing" bundle
    GET /api/v1/bundles/{code}/form                its merged form, each field asked once

Every key but a device's may read the catalogue: it is what the city offers. A citizen's form
is filled in from their own record only, so the catalogue needs no scope.

The one-stop lists (applications, submissions, licences) share `narrowed`: a page of what the
key's scope covers, read off the store's newest-first order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from cityops.api.errors import ApiError
from cityops.api.params import cursor_for
from cityops.api.route import ALL_ROLES, Call, Endpoint, Scope
from cityops.domain.access import Principal, Role
from cityops.domain.onestop.catalogue import (
    CHANNELS,
    Bundle,
    Catalogue,
    Channel,
    FieldType,
    FormField,
    Material,
    ServiceItem,
    search,
)
from cityops.domain.onestop.licences import MaterialStatus
from cityops.serve.onestop import OneStop, onestop_of

READ = ALL_ROLES - {Role.DEVICE}
T = TypeVar("T")

Code = Annotated[str, msgspec.Meta(max_length=64)]


def onestop(call: Call[Any, Any]) -> OneStop:
    return onestop_of(call.node)


# -- answers ------------------------------------------------------------------------------------


class MaterialOut(Material, kw_only=True):
    licence_name: str = ""  # the licence type's name, for a material an e-licence satisfies


class IssuesOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    type: str
    valid_years: int = 0
    name: str


class ItemOut(msgspec.Struct, tag_field="kind", tag="item", kw_only=True, omit_defaults=True):
    """A service item, with its department's name."""

    code: str
    name: str
    department: str
    department_name: str
    name_zh: str = ""
    description: str = ""
    keywords: list[str] = []
    conditions: list[str] = []
    materials: list[MaterialOut] = []
    fields: list[FormField] = []
    time_limit: str
    channels: list[Channel]
    issues: IssuesOut | None = None
    score: int | None = None  # in search results: how well it matched


class BundleMember(msgspec.Struct):
    code: str
    name: str
    name_zh: str
    department: str
    department_name: str
    time_limit: str


class BundleOut(msgspec.Struct, tag_field="kind", tag="bundle", kw_only=True,
                omit_defaults=True):
    """A "one thing" bundle: its items, the departments behind them, and the channels every
    one of them is offered through."""

    code: str
    name: str
    items: list[BundleMember]
    departments: list[str]
    channels: list[Channel]
    name_zh: str = ""
    description: str = ""
    keywords: list[str] = []
    score: int | None = None


class CatalogueHits(msgspec.Struct):
    items: list[ItemOut | BundleOut]
    next: str | None = None


class FormItem(msgspec.Struct):
    code: str
    name: str
    name_zh: str
    department: str
    time_limit: str
    channels: list[Channel]


class FormFieldOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str
    label: str
    label_zh: str = ""
    type: FieldType = "text"
    required: bool
    choices: list[str] = []
    prefill: str = ""
    items: list[str]  # the items that ask it
    value: Any | msgspec.UnsetType = msgspec.UNSET  # filled in from the citizen's record


class FormMaterial(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str
    name: str
    name_zh: str = ""
    licence: str = ""
    shared: str = ""
    required: bool
    items: list[str]
    # For a citizen: how it is satisfied, and why not when it is asked.
    status: MaterialStatus | msgspec.UnsetType = msgspec.UNSET
    reason: str = ""
    licence_id: str = ""
    licence_number: str = ""
    valid_until: str = ""
    pending_item: str = ""


class FormOut(msgspec.Struct, kw_only=True):
    service: str | None
    bundle: str | None
    title: str
    items: list[FormItem]
    fields: list[FormFieldOut]
    materials: list[FormMaterial]
    asked: list[str]  # the materials the citizen still has to hand in


class CatalogueQuery(msgspec.Struct, forbid_unknown_fields=False):
    q: Annotated[str, msgspec.Meta(max_length=200)] = ""
    department: Code | None = None
    channel: Literal["online", "window", "kiosk"] | None = None


def item_out(item: ServiceItem, cat: Catalogue, names: dict[str, str],
             score: int | None = None) -> ItemOut:
    materials = [MaterialOut(**msgspec.structs.asdict(m),
                             licence_name=cat.licence_name(m.licence) if m.licence else "")
                 for m in item.materials]
    issues = (IssuesOut(type=item.issues.type, valid_years=item.issues.valid_years,
                        name=cat.licence_name(item.issues.type))
              if item.issues is not None else None)
    return ItemOut(code=item.code, name=item.name, department=item.department,
                   department_name=names.get(item.department, ""), name_zh=item.name_zh,
                   description=item.description, keywords=item.keywords,
                   conditions=item.conditions, materials=materials, fields=item.fields,
                   time_limit=item.time_limit, channels=list(item.channels), issues=issues,
                   score=score)


def bundle_out(b: Bundle, cat: Catalogue, names: dict[str, str],
               score: int | None = None) -> BundleOut:
    members = cat.bundle_items(b)
    return BundleOut(
        code=b.code, name=b.name, name_zh=b.name_zh, description=b.description,
        keywords=b.keywords, score=score,
        items=[BundleMember(i.code, i.name, i.name_zh, i.department,
                            names.get(i.department, ""), i.time_limit) for i in members],
        departments=sorted({i.department for i in members}),
        channels=[c for c in CHANNELS if all(c in i.channels for i in members)])


# -- handlers -----------------------------------------------------------------------------------


async def list_services(call: Call[None, CatalogueQuery]) -> CatalogueHits:
    side = onestop(call)
    q = call.query
    cat, names = side.catalogue, side.department_names
    hits = search(cat, q.q, names, department=q.department or None, channel=q.channel)
    items: list[ItemOut | BundleOut] = []
    for h in hits:
        if h.kind == "item":
            item = cat.item(h.code)
            if item is not None:
                items.append(item_out(item, cat, names, h.score))
        else:
            b = cat.bundle(h.code)
            if b is not None:
                items.append(bundle_out(b, cat, names, h.score))
    return CatalogueHits(items)


def _item(side: OneStop, code: str) -> ServiceItem:
    item = side.catalogue.item(code)
    if item is None:
        raise ApiError(404, f"no service item {code!r} (GET /api/v1/services lists them)")
    return item


def _bundle(side: OneStop, code: str) -> Bundle:
    b = side.catalogue.bundle(code)
    if b is None:
        raise ApiError(404, f"no bundle {code!r} (GET /api/v1/services lists them)")
    return b


async def get_service(call: Call[None, Any]) -> ItemOut:
    side = onestop(call)
    item = _item(side, call.path["code"])
    return item_out(item, side.catalogue, side.department_names)


async def get_bundle(call: Call[None, Any]) -> BundleOut:
    side = onestop(call)
    return bundle_out(_bundle(side, call.path["code"]), side.catalogue, side.department_names)


def citizen_of(who: Principal) -> str | None:
    return who.name if who.role is Role.CITIZEN and who.name else None


async def service_form(call: Call[None, Any]) -> FormOut:
    side = onestop(call)
    item = _item(side, call.path["code"])
    form = await side.desk.form([item], citizen_of(call.principal))
    return msgspec.convert({"service": item.code, "bundle": None, "title": item.name, **form},
                           FormOut)


async def bundle_form(call: Call[None, Any]) -> FormOut:
    side = onestop(call)
    b = _bundle(side, call.path["code"])
    form = await side.desk.form(side.catalogue.bundle_items(b), citizen_of(call.principal))
    return msgspec.convert({"service": None, "bundle": b.code, "title": b.name, **form},
                           FormOut)


# -- lists narrowed to a key's scope ------------------------------------------------------------

SCAN = 5000  # records read for one page at most; past it the page ends early, with a cursor


async def narrowed(fetch: Callable[[tuple[float, str] | None, int],
                                   Awaitable[list[tuple[T, float, str]]]],
                   keep: Callable[[T], Awaitable[bool]] | None, limit: int,
                   before: tuple[float, str] | None) -> tuple[list[T], str | None]:
    """One page of `limit` things that `keep` lets through, newest first, and the cursor of the
    next page. `fetch(before, n)` reads n records (thing, created, id) after `before`.

    A key scoped to one town may see few of a city's records: the page is filled from as
    many store pages as it takes, but never more than SCAN records are read for it; then it
    ends short, and its cursor goes on from the last record read."""
    if keep is None:
        page = await fetch(before, limit + 1)
        out = page[:limit]
        more = len(page) > limit and out
        return [t for t, _, _ in out], cursor_for(out[-1][1], out[-1][2]) if more else None
    kept: list[tuple[T, float, str]] = []
    read = 0
    cursor = before
    step = max(limit + 1, 100)
    while True:
        page = await fetch(cursor, step)
        for thing, created, rid in page:
            read += 1
            if await keep(thing):
                if len(kept) == limit:
                    last = kept[-1]
                    return [t for t, _, _ in kept], cursor_for(last[1], last[2])
                kept.append((thing, created, rid))
            cursor = (created, rid)
        if len(page) < step:
            return [t for t, _, _ in kept], None
        if read >= SCAN and cursor is not None:
            return [t for t, _, _ in kept], cursor_for(*cursor)


ROUTES = [
    Endpoint("GET", "/api/v1/services", list_services,
             "Search the catalogue's items and bundles, best first", READ, Scope.NONE,
             query=CatalogueQuery, response=CatalogueHits),
    Endpoint("GET", "/api/v1/services/{code}", get_service, "One service item", READ,
             Scope.NONE, response=ItemOut, errors=(404,)),
    Endpoint("GET", "/api/v1/services/{code}/form", service_form,
             "An item's form; for a citizen filled in, each material attached or asked (why)",
             READ, Scope.NONE, response=FormOut, errors=(404,)),
    Endpoint("GET", "/api/v1/bundles/{code}", get_bundle, "One \"one thing\" bundle", READ,
             Scope.NONE, response=BundleOut, errors=(404,)),
    Endpoint("GET", "/api/v1/bundles/{code}/form", bundle_form,
             "A bundle's merged form, each field asked once", READ, Scope.NONE,
             response=FormOut, errors=(404,)),
]
