"""Being built."""

from __future__ import annotations

from cityops.api.route import Endpoint

ROUTES: list[Endpoint] = []
