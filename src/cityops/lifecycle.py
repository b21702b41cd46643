"""Device lifecycles kept in the store: moves asked for by people (the API, the CLI), first
readings saved in batches, and what a node does with them at start.

The rules of the lifecycle itself are in `cityops.domain.lifecycle`; the per-device arrays the
rules read are the registry's. What is here is I/O: a change is written to the store's
devices (one write for a whole bulk change), audited once per device, and announced by a new
DEVICES_VERSION, which every cluster node follows (`Node.reload_devices`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from cityops.domain.city import Device
from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.lifecycle import Lifecycle, check_moves, never_reported
from cityops.services import DEVICES_VERSION
from cityops.store.base import AuditEntry, Store

if TYPE_CHECKING:
    from cityops.domain.registry import DeviceRegistry
    from cityops.node import Node

log = logging.getLogger(__name__)

NEVER = np.iinfo(np.int64).min


class UnknownSelector(ValueError):
    """A device, kind or area a change names that does not exist (or is not the caller's):
    `field` says which part of the request."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = str(self)


def select(devices: Sequence[Device], *, ids: Sequence[str] | None = None,
           area: str | None = None, kind: str | None = None) -> list[Device]:
    """The devices a change names: by id (in the order given, repeats once), or every device
    in `area` (any level) and/or of `kind`. An unknown id raises `UnknownSelector`."""
    if ids:
        by_id = {d.id: d for d in devices}
        out: dict[str, Device] = {}
        for i, device_id in enumerate(ids):
            found = by_id.get(device_id)
            if found is None:
                raise UnknownSelector(f"devices[{i}]", f"no device {device_id!r}")
            out[found.id] = found
        return list(out.values())
    return [d for d in devices
            if (kind is None or d.kind == kind)
            and (area is None or (d.areas is not None and d.areas.within(area)))]


def plan(devices: Sequence[Device], to: Lifecycle, at: float) -> list[tuple[Device, Device]]:
    """(before, after) of every device that moves; devices already in `to` stay as they are.
    Refuses the whole change (`RefusedMove` naming the device) if any one move is not
    allowed, before anything is written."""
    check_moves((d.id, d.lifecycle, to) for d in devices)
    return [(d, msgspec.structs.replace(d, lifecycle=to, lifecycle_at=at))
            for d in devices if d.lifecycle is not to]


async def apply(store: Store, moves: Sequence[tuple[Device, Device]], *, actor: str,
                reason: str, at: float) -> str | None:
    """Write the moved devices, one audit entry each, and tell the other nodes; returns the
    new DEVICES_VERSION (None when nothing moved)."""
    if not moves:
        return None
    await store.upsert_devices([after for _, after in moves])
    await store.append_audit([
        AuditEntry(actor=actor, action="device.lifecycle", subject=f"device:{before.id}",
                   before=before.lifecycle.value, after=after.lifecycle.value, reason=reason,
                   at=at)
        for before, after in moves])
    version = uuid.uuid4().hex
    await store.set_meta(DEVICES_VERSION, version)
    return version


def counts(devices: Sequence[Device]) -> dict[str, int]:
    """Devices per lifecycle state, every state named (0 when none)."""
    found = Counter(d.lifecycle.value for d in devices)
    return {state.value: found.get(state.value, 0) for state in Lifecycle}


def waiting(devices: Sequence[Device], now: float, window_s: float) -> list[Device]:
    """Commissioning devices not heard within their commissioning window, longest first."""
    late = [d for d in devices if never_reported(d.lifecycle, d.lifecycle_at, now, window_s)]
    return sorted(late, key=lambda d: (d.lifecycle_at, d.id))


# -- a node's part ------------------------------------------------------------------------------


def heard_at(registry: DeviceRegistry, latest_ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Devices with any reading in a latest-values table (per series, MAX_CHANNELS a device)
    and their newest reading time in epoch seconds."""
    n = len(registry)
    have = min(n, latest_ts.shape[0] // MAX_CHANNELS)
    newest = latest_ts[: have * MAX_CHANNELS].reshape(have, MAX_CHANNELS).max(axis=1)
    heard = np.flatnonzero(newest != NEVER)
    return heard, newest[heard] / 1e6


async def on_start(node: Node) -> None:
    """Once the history is open: devices without a lifecycle time get the node's now (their
    commissioning window starts here), and devices with readings in the latest values are
    active from their newest one, so a restarted node, or a store from before lifecycles,
    does not see them as never heard."""
    registry = node.registry
    registry.stamp(node.clock())
    heard, at = heard_at(registry, node.history.state.latest_ts)
    registry.activate(heard, at)
    await save_unsaved(node)


async def follow_store(node: Node) -> None:
    """Read the store's devices again if another process changed them (a lifecycle move made
    through another node or the CLI)."""
    version = await node.store.get_meta(DEVICES_VERSION)
    if version != node.devices_version:
        node.devices_version = version
        await node.reload_devices()


def _wrote(node: Node, version: str) -> None:
    # A single node is the only writer besides the CLI: it need not read back its own change.
    # A cluster node does (in _follow_store), or it could miss another's made meanwhile.
    if not node.cluster:
        node.devices_version = version


async def save_unsaved(node: Node) -> int:
    """Write the devices whose lifecycle changed on this node (first readings, stamps) in one
    store write; returns how many the store took. A move made by another process (into
    maintenance, say) wins over a first reading here: the store's devices are read first
    when another process changed them, and the write itself takes only devices nobody moved
    meanwhile (`Store.settle_devices`), for a move can land between that read and the write.
    The store's state of the others is taken here at once."""
    registry = node.registry
    if not registry.unsaved:
        return 0
    await follow_store(node)
    devices = registry.take_unsaved()
    if not devices:
        return 0
    version = uuid.uuid4().hex
    try:
        settled = await node.store.settle_devices(devices)
        # Even when the store took none: after a failed announcement the retry finds them
        # settled already, and the other nodes must still be told.
        await node.store.set_meta(DEVICES_VERSION, version)
    except BaseException:
        registry.restore_unsaved(devices)
        raise
    if len(settled) < len(devices):
        # No longer unsaved, so following the store replaces what this node made of them.
        # The version is not taken as read: the next follow looks at the store once more.
        await node.reload_devices()
    else:
        _wrote(node, version)
    return len(settled)


async def keep_saved(node: Node, every_s: float) -> None:
    """First readings are saved every `every_s`, not one store write per reading. A single
    node also follows the store here, for changes made with the CLI while it runs (cluster
    nodes follow it in cityops.cluster.compose)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            if not node.cluster:
                await follow_store(node)
            await save_unsaved(node)
        except Exception:
            log.exception("saving device lifecycles failed; will retry")


async def move(node: Node, devices: Sequence[Device], to: Lifecycle, *, actor: str,
               reason: str) -> list[tuple[Device, Device]]:
    """A bulk move on a running node: planned whole, written, audited and applied to this
    node's registry at once (the others follow the store)."""
    at = node.clock()
    moves = plan(devices, to, at)
    version = await apply(node.store, moves, actor=actor, reason=reason, at=at)
    registry = node.registry
    registry.add([after for _, after in moves])
    for _, after in moves:
        registry.unsaved.discard(registry.index[after.id])
    if version is not None:
        _wrote(node, version)
    return moves


