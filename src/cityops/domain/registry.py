"""The device registry: id <-> dense index, kinds and channel ranges as arrays for batch checks."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cityops.domain.city import Device, DeviceKind
from cityops.domain.kinds import MAX_CHANNELS


class UnknownKind(ValueError):
    pass


class DeviceRegistry:
    """Devices by dense index. Indices are never reused: a device is never removed, so an index
    written to the history log keeps naming the same device across restarts."""

    def __init__(self, kinds: dict[str, DeviceKind]) -> None:
        self.kinds: list[DeviceKind] = list(kinds.values())
        self.kind_index: dict[str, int] = {k.name: i for i, k in enumerate(self.kinds)}
        shape = (len(self.kinds), MAX_CHANNELS)
        # NaN bounds make every comparison false, so a channel a kind lacks is always invalid.
        self.ch_min = np.full(shape, np.nan)
        self.ch_max = np.full(shape, np.nan)
        for k, kind in enumerate(self.kinds):
            for c, channel in enumerate(kind.channels):
                self.ch_min[k, c] = channel.min
                self.ch_max[k, c] = channel.max
        self.devices: list[Device] = []
        self.index: dict[str, int] = {}
        self._kind_of = np.zeros(1024, dtype=np.int16)

    def __len__(self) -> int:
        return len(self.devices)

    @property
    def kind_of(self) -> np.ndarray:
        return self._kind_of[: len(self.devices)]

    def kind(self, name: str) -> DeviceKind:
        try:
            return self.kinds[self.kind_index[name]]
        except KeyError:
            raise self._unknown(name) from None

    def _unknown(self, name: str) -> UnknownKind:
        known = ", ".join(sorted(self.kind_index))
        return UnknownKind(f"unknown device kind {name!r} (known: {known})")

    def add(self, devices: Iterable[Device]) -> list[int]:
        """Register or update devices; returns their indices."""
        out = []
        for device in devices:
            k = self.kind_index.get(device.kind)
            if k is None:
                raise self._unknown(device.kind)
            i = self.index.get(device.id)
            if i is None:
                i = len(self.devices)
                self.devices.append(device)
                self.index[device.id] = i
                if i >= self._kind_of.shape[0]:
                    self._kind_of = np.resize(self._kind_of, self._kind_of.shape[0] * 2)
            else:
                self.devices[i] = device
            self._kind_of[i] = k
            out.append(i)
        return out

    def get(self, device_id: str) -> Device | None:
        i = self.index.get(device_id)
        return None if i is None else self.devices[i]

    def channel_name(self, device_index: int, channel: int) -> str:
        return self.kinds[int(self._kind_of[device_index])].channels[channel].name

    def channel_names(self) -> list[list[str]]:
        return [[c.name for c in k.channels] for k in self.kinds]
