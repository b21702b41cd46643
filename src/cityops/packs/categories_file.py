"""categories.yaml: the case categories of a city (see `cityops.domain.incidents.categories`).

A pack without the file gets the default set (`packs/categories.yaml`, the typical values of
SPEC section 4), fitted to the pack's departments: a department the city does not have is
left out of a category's list, and a category left with none goes to the city's catch-all
(city management, else the citizen hotline, else the first department).
"""

from __future__ import annotations

import functools

import msgspec

from cityops.domain.incidents.categories import Category, CategoryError, check_categories
from cityops.packs.items_file import bundled, items_from_yaml, items_to_yaml

NAME = "categories.yaml"
CATCH_ALL = ("city_management", "hotline_12345")


def categories_from_yaml(data: bytes, name: str = NAME) -> list[Category]:
    return items_from_yaml(data, name, Category, noun="category", label="code",
                           check=check_categories, errors=CategoryError)


def categories_to_yaml(categories: list[Category]) -> bytes:
    return items_to_yaml(categories)


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
