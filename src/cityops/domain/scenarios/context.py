"""What evaluators may look at besides the readings: where each device is, which operating
state applies to it, the city's local clock and zones. Arrays are indexed by device index."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from cityops.domain.calendar import LocalClock
from cityops.domain.city import CityPack, Staff, Zone
from cityops.domain.registry import DeviceRegistry

STATE_CODES = {"daily": 0, "special": 1, "emergency": 2}


@dataclass
class Places:
    """Per device: coordinates, and integer ids of its cell, village, town and district (-1
    when unresolved) with the code tables to turn them back into strings."""

    lat: np.ndarray
    lon: np.ndarray
    cell: np.ndarray
    village: np.ndarray
    town: np.ndarray
    district: np.ndarray
    cells: list[str]
    villages: list[str]
    towns: list[str]
    districts: list[str]
    roles: np.ndarray  # object array: vehicle role ("muck_truck"), "staff", or "" per device
    # The gateway a device reaches the platform through (`meta.gateway`), where the city
    # pack knows it: what an outage of the network is judged by, beside the areas.
    gateway: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gateways: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, registry: DeviceRegistry, pack: CityPack | None = None,
              staff: Iterable[Staff] | None = None) -> Places:
        """`staff`: the people whose trackers are the "staff" role (the pack's when None; a
        node passes its roster's active people, which administrators change)."""
        devices = registry.devices
        n = len(devices)
        tables: dict[str, dict[str, int]] = {"cell": {}, "village": {}, "town": {}, "district": {},
                                             "gateway": {}}

        def code(table: str, value: str | None) -> int:
            if value is None:
                return -1
            ids = tables[table]
            return ids.setdefault(value, len(ids))

        lat = np.fromiter((d.lat for d in devices), np.float64, n)
        lon = np.fromiter((d.lon for d in devices), np.float64, n)
        cell = np.fromiter((code("cell", d.cell) for d in devices), np.int64, n)
        village = np.fromiter((code("village", d.areas.village if d.areas else None)
                               for d in devices), np.int64, n)
        town = np.fromiter((code("town", d.areas.town if d.areas else None) for d in devices),
                           np.int64, n)
        district = np.fromiter((code("district", d.areas.district if d.areas else None)
                                for d in devices), np.int64, n)
        gateway = np.fromiter((code("gateway", _gateway_of(d.meta)) for d in devices),
                              np.int64, n)
        roles = np.full(n, "", dtype=object)
        if pack is not None:
            index = registry.index
            for vehicle in pack.vehicles:
                if vehicle.device_id in index:
                    roles[index[vehicle.device_id]] = vehicle.role
            for person in pack.staff if staff is None else staff:
                if person.device_id in index:
                    roles[index[person.device_id]] = "staff"
        return cls(lat, lon, cell, village, town, district,
                   list(tables["cell"]), list(tables["village"]), list(tables["town"]),
                   list(tables["district"]), roles, gateway, list(tables["gateway"]))

    def group(self, per: str) -> tuple[np.ndarray, list[str]]:
        """Group ids per device and their names, for window aggregates `per` device/cell/..."""
        if per == "cell":
            return self.cell, self.cells
        if per == "village":
            return self.village, self.villages
        if per == "town":
            return self.town, self.towns
        if per == "district":
            return self.district, self.districts
        if per == "gateway":
            return self.gateway, self.gateways
        raise ValueError(f"cannot group per {per!r}")


def _gateway_of(meta: dict[str, object]) -> str | None:
    value = meta.get("gateway") if meta else None
    return value if isinstance(value, str) and value else None


@dataclass
class Context:
    registry: DeviceRegistry
    places: Places
    clock: LocalClock  # local time and calendar conditions
    now_us: int = 0
    state: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # per device
    zones: list[Zone] = field(default_factory=list)
    last_seen_us: np.ndarray | None = None  # per device: newest reading time (any channel)

    def device_id(self, index: int) -> str:
        return self.registry.devices[index].id
