"""categories.yaml: the case categories of a city (see `cityops.domain.incidents.categories`).

A pack without the file gets the default set (`packs/categories.yaml`, the typical values of
SPEC section 4), fitted to the pack's departments: a department the city does not have is
left out of a category's list, and a category left with none goes to the city's catch-all
(city management, else the citizen hotline, else the first department).

The file is either the plain list of categories, or a mapping with that list under
`categories:` and a `related:` section: groups of categories that describe one component's
troubles (a manhole tilted, its cover missing), and when two reports are about the same
component (the same device, the same component id, or within some metres). Reports of a
group's categories about one component merge into one case.
"""

from __future__ import annotations

import functools

import msgspec

from cityops.domain.incidents.categories import (
    Category,
    CategoryError,
    Related,
    check_categories,
    check_related,
    related_groups,
    with_related,
)
from cityops.packs.codec import describe, dump_yaml, load_yaml
from cityops.packs.errors import PackError
from cityops.packs.items_file import bundled, items_from_yaml

NAME = "categories.yaml"
CATCH_ALL = ("city_management", "hotline_12345")


SECTIONS = ("categories", "related")


def categories_from_yaml(data: bytes, name: str = NAME) -> list[Category]:
    doc = load_yaml(data, name)
    groups: list[Related] = []
    if isinstance(doc, dict):
        unknown = [k for k in doc if k not in SECTIONS]
        if unknown:
            raise PackError(f"{name}: unknown section {unknown[0]!r}; a categories file has "
                            f"{' and '.join(SECTIONS)}")
        groups = _related_of(doc.get("related"), name)
        doc = doc.get("categories")
    items = msgspec.json.encode(doc if doc is not None else [])
    categories = items_from_yaml(items, name, Category, noun="category", label="code",
                                 check=lambda c: None, errors=CategoryError)
    for c in categories:
        if c.related:
            raise PackError(f"{name}: category {c.code!r}: field 'related' is not set on a "
                            "category; declare the group in the file's related: section")
    try:
        check_related(groups, {c.code for c in categories})
        check_categories(with_related(categories, groups))
    except CategoryError as error:
        raise PackError(f"{name}: {error}") from None
    return with_related(categories, groups)


def _related_of(raw: object, name: str) -> list[Related]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PackError(f"{name}: related: must be a list of groups")
    groups = []
    for i, item in enumerate(raw):
        tag = item.get("name") if isinstance(item, dict) else None
        where = f"{name}: related group {i}" + (f" ({tag})" if isinstance(tag, str) else "")
        try:
            groups.append(msgspec.convert(item, Related))
        except msgspec.ValidationError as error:
            raise PackError(f"{where}: {describe(error)}") from None
    return groups


def categories_to_yaml(categories: list[Category]) -> bytes:
    plain = [msgspec.to_builtins(c) for c in categories]
    for item in plain:
        item.pop("related", None)
        if not item.get("names"):
            item.pop("names", None)  # packs without translations keep their bytes
    groups = related_groups(categories)
    if not groups:
        return dump_yaml(plain)
    return dump_yaml({"categories": plain, "related": [msgspec.to_builtins(g) for g in groups]})


@functools.cache
def _defaults() -> tuple[Category, ...]:
    return tuple(categories_from_yaml(*bundled(NAME)))


def default_categories(departments: list[str]) -> list[Category]:
    """The default set, fitted to a city with these department codes."""
    have = set(departments)
    fallback = next((d for d in CATCH_ALL if d in have), departments[0] if departments else None)
    out = []
    for c in _defaults():
        kept = [d for d in c.departments if d in have]
        if not kept and fallback is not None:
            kept = [fallback]
        out.append(msgspec.structs.replace(c, departments=kept))
    return out
