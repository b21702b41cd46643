"""categories.yaml: the case categories of a city (see `cityops.domain.incidents.categories`).

A pack without the file gets the default set (`packs/categories.yaml`, the typical values of
SPEC section 4), fitted to the pack's departments: a department the city does not have is
left out of a category's list, and a category left with none goes to the city's catch-all
(city management, else the citizen hotline, else the first department).
"""

from __future__ import annotations

import functools
from importlib import resources

import msgspec

from cityops.domain.incidents.categories import Category, CategoryError, check_categories
from cityops.packs.codec import dump_yaml, load_yaml
from cityops.packs.errors import PackError

NAME = "categories.yaml"
CATCH_ALL = ("city_management", "hotline_12345")


def categories_from_yaml(data: bytes, name: str = NAME) -> list[Category]:
    doc = load_yaml(data, name)
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise PackError(f"{name}: must be a list of categories")
    out = []
    for i, item in enumerate(doc):
        label = item.get("code") if isinstance(item, dict) else None
        where = f"{name}: category {i}" + (f" ({label})" if isinstance(label, str) else "")
        try:
            out.append(msgspec.convert(item, Category))
        except msgspec.ValidationError as error:
            raise PackError(f"{where}: {error}") from None
    try:
        check_categories(out)
    except CategoryError as error:
        raise PackError(f"{name}: {error}") from None
    return out


def categories_to_yaml(categories: list[Category]) -> bytes:
    return dump_yaml([msgspec.to_builtins(c) for c in categories])


@functools.cache
def _defaults() -> tuple[Category, ...]:
    data = resources.files("cityops.packs").joinpath(NAME).read_bytes()
    return tuple(categories_from_yaml(data, f"cityops/packs/{NAME}"))


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
