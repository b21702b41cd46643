"""Record kinds for the generated route-by-role scope test (tests/api/test_route_scope.py).

Each module here defines `KINDS: dict[str, Kind]`, one entry per record kind that a route of
the table names (its guard's kind, or `Endpoint.kind`). A route added later on an existing
kind is covered with no new test; a new kind fails the scope test until its maker is here."""

from __future__ import annotations

import importlib
import pkgutil

from tests.api.scope_kinds.base import Kind, World

__all__ = ["Kind", "World", "all_kinds"]


def all_kinds() -> dict[str, Kind]:
    found: dict[str, Kind] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, kind in getattr(module, "KINDS", {}).items():
            if name in found:
                raise ValueError(f"record kind {name!r} is defined twice")
            found[name] = kind
    return found
