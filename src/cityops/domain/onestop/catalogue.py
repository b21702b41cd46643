"""The service catalogue: what a citizen or a business can apply for, which department decides,
on what conditions, with which materials and form fields, within which legal time limit and
through which channels; the e-licence types departments issue; and the "one thing" bundles
that put items of several departments behind one form.

Data, not code: a city pack carries its own catalogue in `services.yaml`; the default set is
`packs/services.yaml`, modelled on Pudong's one-stop items.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    from cityops.domain.workclock import Limit

FieldType = Literal["text", "number", "integer", "date", "boolean", "choice", "phone",
                    "id_number", "address"]
FIELD_TYPES: tuple[str, ...] = ("text", "number", "integer", "date", "boolean", "choice",
                                "phone", "id_number", "address")
Channel = Literal["online", "window", "kiosk"]  # web/app, an on-site window, a self-service kiosk
CHANNELS: tuple[str, ...] = ("online", "window", "kiosk")
# What the citizen registry holds about a person: a form can come filled in with it, and a
# material that only proves it (an ID card copy) is got by data sharing instead of asked.
CITIZEN_FACTS: tuple[str, ...] = ("name", "id_number", "phone", "birth_date", "address", "area")

_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


class FormField(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    code: str  # one meaning city-wide: items asking the same code ask the same question
    label: str
    label_zh: str = ""
    type: FieldType = "text"
    required: bool = True
    choices: list[str] = []  # for type choice
    prefill: str = ""  # a CITIZEN_FACTS name: the form comes filled in from the registry

    def definition(self) -> tuple[str, str, FieldType, tuple[str, ...], str]:
        """What two items must agree on to share the field (`required` may differ)."""
        return (self.label, self.label_zh, self.type, tuple(self.choices), self.prefill)


class Material(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    code: str
    name: str
    name_zh: str = ""
    licence: str = ""  # an e-licence of this type satisfies it: attached, never asked
    shared: str = ""  # a CITIZEN_FACTS name the registry holds: got by data sharing
    required: bool = True

    def definition(self) -> tuple[str, str, str, str]:
        return (self.name, self.name_zh, self.licence, self.shared)


class LicenceType(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    code: str
    name: str  # "Food operating permit": reasons read "your food operating permit expired ..."
    name_zh: str = ""
    issuer: str = ""  # the department that issues it


class Issues(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """An approved application's result is an e-licence of this type, put into the store."""

    type: str
    valid_years: int = 0  # 0: valid without an end date


class ServiceItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    code: str
    name: str
    department: str
    name_zh: str = ""
    description: str = ""
    keywords: list[str] = []
    conditions: list[str] = []  # who may apply, in words the window staff read out
    materials: list[Material] = []
    fields: list[FormField] = []
    time_limit: str = "20wd"  # the legal limit, counted on the working-hours clock
    channels: list[Channel] = msgspec.field(default_factory=lambda: ["online", "window"])
    issues: Issues | None = None

    @property
    def limit(self) -> Limit:
        return _parse_limit(self.time_limit)


class Bundle(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One thing, done once: items of several departments behind one form and one notice."""

    code: str
    name: str
    items: list[str]
    name_zh: str = ""
    description: str = ""
    keywords: list[str] = []


class Catalogue(msgspec.Struct, dict=True, omit_defaults=True):
    licences: list[LicenceType] = []
    items: list[ServiceItem] = []
    bundles: list[Bundle] = []

    @functools.cached_property
    def _items(self) -> dict[str, ServiceItem]:
        return {i.code: i for i in self.items}

    @functools.cached_property
    def _bundles(self) -> dict[str, Bundle]:
        return {b.code: b for b in self.bundles}

    @functools.cached_property
    def _licences(self) -> dict[str, LicenceType]:
        return {t.code: t for t in self.licences}

    def item(self, code: str) -> ServiceItem | None:
        return self._items.get(code)

    def bundle(self, code: str) -> Bundle | None:
        return self._bundles.get(code)

    def licence_type(self, code: str) -> LicenceType | None:
        return self._licences.get(code)

    def licence_name(self, code: str) -> str:
        t = self.licence_type(code)
        return t.name if t is not None else code.replace("_", " ")

    def bundle_items(self, bundle: Bundle) -> list[ServiceItem]:
        return [self._items[c] for c in bundle.items if c in self._items]

    def fitted(self, departments: set[str]) -> Catalogue:
        """Only what a city with these departments can run: an item of a department it lacks
        is left out, and so is a bundle left with fewer than two items; licence types stay."""
        items = [i for i in self.items if i.department in departments]
        kept = {i.code for i in items}
        bundles = []
        for b in self.bundles:
            left = [c for c in b.items if c in kept]
            if len(left) >= 2:
                bundles.append(msgspec.structs.replace(b, items=left))
        # Materials still name every licence type; one whose issuer the city lacks is issued
        # outside it (a licence may still be in the store, put there by an admin).
        licences = [t if not t.issuer or t.issuer in departments
                    else msgspec.structs.replace(t, issuer="") for t in self.licences]
        return Catalogue(licences=licences, items=items, bundles=bundles)


class CatalogueError(ValueError):
    pass


def check_catalogue(cat: Catalogue, departments: set[str] | None = None) -> None:
    """Refuse a catalogue a window could not work with, naming the entry and field."""
    types: set[str] = set()
    for t in cat.licences:
        where = f"licence type {t.code!r}"
        _code(t.code, where)
        if t.code in types:
            raise CatalogueError(f"{where}: listed twice")
        types.add(t.code)
        if departments is not None and t.issuer and t.issuer not in departments:
            raise CatalogueError(f"{where}: field 'issuer': unknown department {t.issuer!r}")
    codes: set[str] = set()
    fields: dict[str, tuple[str, FormField]] = {}
    materials: dict[str, tuple[str, Material]] = {}
    for item in cat.items:
        where = f"item {item.code!r}"
        _code(item.code, where)
        if item.code in codes:
            raise CatalogueError(f"{where}: listed twice")
        codes.add(item.code)
        if not item.name.strip():
            raise CatalogueError(f"{where}: field 'name' must not be empty")
        if departments is not None and item.department not in departments:
            raise CatalogueError(f"{where}: field 'department': unknown department "
                                 f"{item.department!r}")
        try:
            limit = _parse_limit(item.time_limit)
        except ValueError as error:
            raise CatalogueError(f"{where}: field 'time_limit': {error}") from None
        if limit.wall_clock:
            raise CatalogueError(f"{where}: field 'time_limit': a legal time limit is counted in "
                                 f"working days or hours, not {item.time_limit!r}")
        if not item.channels or len(set(item.channels)) != len(item.channels):
            raise CatalogueError(f"{where}: field 'channels' must list each channel once, at "
                                 f"least one of {', '.join(CHANNELS)}")
        if item.issues is not None:
            if item.issues.type not in types:
                raise CatalogueError(f"{where}: field 'issues.type': {item.issues.type!r} is not "
                                     "a licence type of this catalogue")
            if item.issues.valid_years < 0:
                raise CatalogueError(f"{where}: field 'issues.valid_years' must not be negative")
        _check_fields(item, fields)
        _check_materials(item, materials, types)
    bundles: set[str] = set()
    for b in cat.bundles:
        where = f"bundle {b.code!r}"
        _code(b.code, where)
        if b.code in bundles or b.code in codes:
            raise CatalogueError(f"{where}: the code is already used by an item or bundle")
        bundles.add(b.code)
        if len(b.items) < 2 or len(set(b.items)) != len(b.items):
            raise CatalogueError(f"{where}: field 'items' must list at least two different items")
        unknown = [c for c in b.items if c not in codes]
        if unknown:
            raise CatalogueError(f"{where}: field 'items': {unknown[0]!r} is not an item")


def _parse_limit(text: str) -> Limit:
    # Imported here: the city model imports the catalogue, and the clock imports the city model.
    from cityops.domain.workclock import Limit

    return Limit.parse(text)


def _code(code: str, where: str) -> None:
    if not _CODE.match(code):
        raise CatalogueError(f"{where}: field 'code' must be snake_case, like food_permit")


def _check_fields(item: ServiceItem, seen: dict[str, tuple[str, FormField]]) -> None:
    own: set[str] = set()
    for f in item.fields:
        where = f"item {item.code!r}: field {f.code!r}"
        _code(f.code, where)
        if f.code in own:
            raise CatalogueError(f"{where}: asked twice in one item")
        own.add(f.code)
        if (f.type == "choice") != bool(f.choices):
            raise CatalogueError(f"{where}: 'choices' are given exactly when the type is choice")
        if f.prefill and f.prefill not in CITIZEN_FACTS:
            raise CatalogueError(f"{where}: 'prefill' {f.prefill!r} is not one of "
                                 f"{', '.join(CITIZEN_FACTS)}")
        other = seen.get(f.code)
        if other is None:
            seen[f.code] = (item.code, f)
        elif other[1].definition() != f.definition():
            # A merged form asks each code once, so one code must mean one question.
            raise CatalogueError(
                f"{where}: defined differently by item {other[0]!r} "
                f"(there: {_describe_field(other[1])}; here: {_describe_field(f)})")


def _describe_field(f: FormField) -> str:
    extra = f", choices {f.choices}" if f.choices else ""
    prefill = f", prefill {f.prefill}" if f.prefill else ""
    return f"{f.type} {f.label!r}{extra}{prefill}"


def _check_materials(item: ServiceItem, seen: dict[str, tuple[str, Material]],
                     types: set[str]) -> None:
    own: set[str] = set()
    for m in item.materials:
        where = f"item {item.code!r}: material {m.code!r}"
        _code(m.code, where)
        if m.code in own:
            raise CatalogueError(f"{where}: listed twice in one item")
        own.add(m.code)
        if m.licence and m.licence not in types:
            raise CatalogueError(f"{where}: 'licence' {m.licence!r} is not a licence type of "
                                 "this catalogue")
        if m.shared and m.shared not in CITIZEN_FACTS:
            raise CatalogueError(f"{where}: 'shared' {m.shared!r} is not one of "
                                 f"{', '.join(CITIZEN_FACTS)}")
        other = seen.get(m.code)
        if other is None:
            seen[m.code] = (item.code, m)
        elif other[1].definition() != m.definition():
            raise CatalogueError(f"{where}: defined differently by item {other[0]!r}")


# -- search ------------------------------------------------------------------------------------


class Hit(msgspec.Struct, frozen=True):
    kind: Literal["item", "bundle"]
    code: str
    score: int


def search(cat: Catalogue, query: str, department_names: dict[str, str] | None = None,
           *, department: str | None = None, channel: str | None = None) -> list[Hit]:
    """Items and bundles matching every word of `query` (case-insensitive, as substrings, so
    Chinese without spaces matches too): names weigh most, then keywords, then the department
    and the description. Best first; at equal scores a bundle (the "one thing" people come
    for) before an item, then catalogue order. An empty query matches all."""
    names = department_names or {}
    words = [w for w in query.lower().split() if w]
    hits: list[tuple[int, int, int, Hit]] = []
    position = 0
    for item in cat.items:
        position += 1
        if department and item.department != department:
            continue
        if channel and channel not in item.channels:
            continue
        texts: tuple[tuple[str, ...], ...] = (
            (item.name, item.name_zh, item.code.replace("_", " ")),
            tuple(item.keywords),
            (item.department, item.department.replace("_", " "), names.get(item.department, "")),
            (item.description,),
        )
        score = _score(words, texts)
        if score is not None:
            hits.append((-score, 1, position, Hit("item", item.code, score)))
    for b in cat.bundles:
        position += 1
        members = cat.bundle_items(b)
        if department and all(i.department != department for i in members):
            continue
        if channel and any(channel not in i.channels for i in members):
            continue
        depts = [i.department for i in members]
        texts = (
            (b.name, b.name_zh, b.code.replace("_", " ")),
            tuple(b.keywords),
            tuple(depts) + tuple(names.get(d, "") for d in depts),
            (b.description,) + tuple(i.name for i in members) + tuple(i.name_zh for i in members),
        )
        score = _score(words, texts)
        if score is not None:
            hits.append((-score, 0, position, Hit("bundle", b.code, score)))
    hits.sort(key=lambda h: h[:3])
    return [h[3] for h in hits]


_WEIGHTS = (8, 4, 2, 1)


def _score(words: list[str], groups: tuple[tuple[str, ...], ...]) -> int | None:
    lowered = [" ".join(t for t in group if t).lower() for group in groups]
    total = 0
    for word in words:
        forms = {word}
        if len(word) > 3 and word.endswith("s"):  # "restaurants" finds "restaurant"
            forms.add(word[:-1])
        best = max((w for text, w in zip(lowered, _WEIGHTS, strict=True)
                    if any(f in text for f in forms)), default=0)
        if not best:
            return None
        total += best
    return total
