"""The one error a city pack raises: it names the file, the record and the field at fault."""

from __future__ import annotations


class PackError(ValueError):
    """A city pack that cannot be loaded or saved, e.g.
    "areas.geojson: feature 12: property 'code' must be a string of 6, 9 or 12 digits"."""
