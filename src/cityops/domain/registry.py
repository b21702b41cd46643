"""The device registry: id <-> dense index, kinds and channel ranges as arrays for batch checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
import numpy as np

from cityops.domain import lifecycle as life
from cityops.domain.city import Device, DeviceKind
from cityops.domain.kinds import MAX_CHANNELS

US = 1_000_000


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
        # Per device, for the vectorised rules: its lifecycle code (domain/lifecycle.py) and
        # when it entered that state (epoch microseconds).
        self._life = np.zeros(1024, dtype=np.int8)
        self._life_at = np.zeros(1024, dtype=np.int64)
        # Where each is registered (a mover's registered place, not its latest fix): spatial
        # filters over thousands of devices read these instead of the Device structs.
        self._lat = np.zeros(1024, dtype=np.float64)
        self._lon = np.zeros(1024, dtype=np.float64)
        # Devices whose lifecycle changed here and is not yet in the store (see `activate`).
        self.unsaved: set[int] = set()
        # Counts changes into or out of the states rules skip (maintenance, decommissioned):
        # the detect engine rebuilds its device masks when it moves.
        self.lifecycle_version = 0
        self._commissioning = 0  # how many: none, and a batch's activation check is skipped

    def __len__(self) -> int:
        return len(self.devices)

    @property
    def kind_of(self) -> np.ndarray:
        return self._kind_of[: len(self.devices)]

    @property
    def lat(self) -> np.ndarray:
        return self._lat[: len(self.devices)]

    @property
    def lon(self) -> np.ndarray:
        return self._lon[: len(self.devices)]

    @property
    def lifecycle(self) -> np.ndarray:
        """Per device, its lifecycle code (int8)."""
        return self._life[: len(self.devices)]

    @property
    def lifecycle_at_us(self) -> np.ndarray:
        """Per device, when it entered its lifecycle state (epoch microseconds)."""
        return self._life_at[: len(self.devices)]

    def evaluated(self, n: int) -> np.ndarray:
        """Per device of the first `n`, whether rules read its readings: not in maintenance,
        not decommissioned (devices beyond the registry: yes, as before they existed)."""
        out = np.ones(n, bool)
        k = min(n, len(self.devices))
        out[:k] = self._life[:k] < life.MAINTENANCE
        return out

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
            new = i is None
            if i is None:
                i = len(self.devices)
                self.devices.append(device)
                self.index[device.id] = i
                if i >= self._kind_of.shape[0]:
                    size = self._kind_of.shape[0] * 2
                    self._kind_of = np.resize(self._kind_of, size)
                    self._life = np.resize(self._life, size)
                    self._life_at = np.resize(self._life_at, size)
                    self._lat = np.resize(self._lat, size)
                    self._lon = np.resize(self._lon, size)
            else:
                self.devices[i] = device
            self._kind_of[i] = k
            self._lat[i] = device.lat
            self._lon[i] = device.lon
            self._set_life(i, device, new)
            out.append(i)
        return out

    def _set_life(self, i: int, device: Device, new: bool) -> None:
        code = life.CODES[device.lifecycle]
        was = None if new else int(self._life[i])
        if (was is not None and was >= life.MAINTENANCE) != (code >= life.MAINTENANCE):
            self.lifecycle_version += 1
        self._commissioning += (code == life.COMMISSIONING) - (was == life.COMMISSIONING)
        self._life[i] = code
        self._life_at[i] = int(device.lifecycle_at * US)

    # -- lifecycle --------------------------------------------------------------------------

    def activate(self, devices: np.ndarray, at_s: float | np.ndarray) -> int:
        """Devices (indices, repeats allowed) just heard: those commissioning become active
        at `at_s` (epoch s, one for all or one per entry). Returns how many did. Called for
        every accepted batch, so the common case (nobody commissioning among them) is one
        gather and one comparison."""
        if not devices.size or not self._commissioning:
            return 0
        inside = devices < len(self.devices)
        fresh = inside.copy()
        fresh[inside] = self._life[devices[inside]] == life.COMMISSIONING
        if not fresh.any():
            return 0
        when = np.broadcast_to(np.asarray(at_s, np.float64), devices.shape)[fresh]
        which, first = np.unique(devices[fresh], return_index=True)
        when = when[first]
        self._life[which] = life.ACTIVE
        self._commissioning -= int(which.size)
        self._life_at[which] = (when * US).astype(np.int64)
        replace = msgspec.structs.replace
        for i, at in zip(which.tolist(), when.tolist(), strict=True):
            self.devices[i] = replace(self.devices[i], lifecycle=life.Lifecycle.ACTIVE,
                                      lifecycle_at=at)
            self.unsaved.add(i)
        return int(which.size)

    def stamp(self, at_s: float) -> int:
        """Devices with no lifecycle time yet (registered before lifecycles existed, or from
        a city pack) get `at_s`: their commissioning window counts from there."""
        stale = np.flatnonzero(self._life_at[: len(self.devices)] == 0)
        replace = msgspec.structs.replace
        for i in stale.tolist():
            self.devices[i] = replace(self.devices[i], lifecycle_at=at_s)
            self._life_at[i] = int(at_s * US)
            self.unsaved.add(i)
        return int(stale.size)

    def take_unsaved(self) -> list[Device]:
        """The devices changed here since the last take, to be written to the store; give
        them back with `restore_unsaved` if that fails."""
        taken = sorted(self.unsaved)
        self.unsaved.clear()
        return [self.devices[i] for i in taken]

    def restore_unsaved(self, devices: Sequence[Device]) -> None:
        self.unsaved.update(self.index[d.id] for d in devices if d.id in self.index)

    def follow(self, stored: Sequence[Device]) -> int:
        """Take the store's devices (in the store's order, which this registry's first
        entries follow) as they are now: content changed elsewhere (a lifecycle move made
        through another node, a device moved) replaces what is held here. A lifecycle change
        made here and not yet saved (a first reading, a stamp) survives while the store still
        says commissioning: it is newer than what the store holds. Returns how many
        devices changed."""
        changed = []
        replace = msgspec.structs.replace
        for i, device in enumerate(stored[: len(self.devices)]):
            held = self.devices[i]
            if device == held:
                self.unsaved.discard(i)
                continue
            if i in self.unsaved and device.lifecycle is life.Lifecycle.COMMISSIONING:
                device = replace(device, lifecycle=held.lifecycle,
                                 lifecycle_at=held.lifecycle_at)
                if device == held:
                    continue
            else:
                self.unsaved.discard(i)
            changed.append(device)
        self.add(changed)
        self.add(stored[len(self.devices):])
        return len(changed)

    def get(self, device_id: str) -> Device | None:
        i = self.index.get(device_id)
        return None if i is None else self.devices[i]

    def channel_name(self, device_index: int, channel: int) -> str:
        return self.kinds[int(self._kind_of[device_index])].channels[channel].name

    def channel_names(self) -> list[list[str]]:
        return [[c.name for c in k.channels] for k in self.kinds]
