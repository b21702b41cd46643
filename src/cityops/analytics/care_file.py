"""A city's own elderly-care data: its service points and where its residents of 60+ live, as
one GeoJSON file (`cityops serve --care FILE`), instead of the figures generated from the pack.

    {"type": "FeatureCollection", "features": [
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
       "properties": {"kind": "care_point", "id": "st-12", "name": "Huamu elderly-care station"}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
       "properties": {"kind": "home", "residents_60": 42}}, ...]}

A home is a residential building or block; each is placed in the community (village) whose
polygon holds it, and a community's residents of 60+ are the sum of its homes'. Every problem
is reported with the feature's index, before the node serves anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np

from cityops.domain.city import Level
from cityops.domain.geo import CityMap
from cityops.packs.care import CareData, CarePoint, Community

MAX_BYTES = 256 << 20
MAX_FEATURES = 2_000_000


class CareFileError(ValueError):
    """What is wrong with a care file, and where."""


class _Point(msgspec.Struct):
    type: Literal["Point"]
    coordinates: tuple[float, float]


class _Props(msgspec.Struct, forbid_unknown_fields=False):
    kind: Literal["care_point", "home"]
    id: str = ""
    name: str = ""
    residents_60: int = 0


class _Feature(msgspec.Struct, forbid_unknown_fields=False):
    geometry: _Point
    properties: _Props
    type: str = "Feature"


class _File(msgspec.Struct, forbid_unknown_fields=False):
    features: list[_Feature]
    type: Literal["FeatureCollection"] = "FeatureCollection"


def load(path: str | os.PathLike[str], city: CityMap) -> CareData:
    file = Path(path)
    if not file.is_file():
        raise CareFileError(f"{file}: not a file")
    if file.stat().st_size > MAX_BYTES:
        raise CareFileError(f"{file}: larger than {MAX_BYTES >> 20} MiB")
    try:
        doc = msgspec.json.decode(file.read_bytes(), type=_File)
    except msgspec.ValidationError as error:
        raise CareFileError(f"{file}: {error}") from None
    except msgspec.DecodeError as error:
        raise CareFileError(f"{file}: not JSON: {error}") from None
    if len(doc.features) > MAX_FEATURES:
        raise CareFileError(f"{file}: more than {MAX_FEATURES:,} features")
    return from_features(doc.features, city, str(file))


def from_features(features: list[Any], city: CityMap, where: str = "care file") -> CareData:
    villages = sorted(city.areas_at(Level.VILLAGE), key=lambda a: a.code)
    index = {a.code: i for i, a in enumerate(villages)}
    lats, lons, area, r60 = [], [], [], []
    points: list[CarePoint] = []
    ids: set[str] = set()
    for n, f in enumerate(features):
        lon, lat = f.geometry.coordinates
        place = city.resolve(lat, lon)
        if place is None or place.village not in index:
            raise CareFileError(f"{where}: feature {n}: ({lat}, {lon}) lies in no community "
                                "of this city")
        p = f.properties
        if p.kind == "care_point":
            if not p.id or p.id in ids:
                raise CareFileError(f"{where}: feature {n}: a care point needs an id of its "
                                    f"own ({p.id!r})")
            ids.add(p.id)
            points.append(CarePoint(p.id, p.name or p.id, lat, lon, place.village))
        else:
            if not 0 <= p.residents_60 <= 100_000:
                raise CareFileError(f"{where}: feature {n}: residents_60 must be 0 to 100,000")
            lats.append(lat)
            lons.append(lon)
            area.append(index[place.village])
            r60.append(p.residents_60)
    per = np.bincount(np.asarray(area, dtype=np.int64), weights=np.asarray(r60, dtype=float),
                      minlength=len(villages))
    communities = [Community(a.code, a.name, a.parent or "", 0, int(per[i]))
                   for i, a in enumerate(villages)]
    return CareData(communities, np.asarray(lats, dtype=float), np.asarray(lons, dtype=float),
                    np.asarray(area, dtype=np.int64), np.asarray(r60, dtype=np.int64), points)
