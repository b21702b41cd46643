"""Devices as the SQL stores keep them (one JSON document per device), and the one rule both
apply when a node saves the lifecycle changes it made itself."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from cityops.domain.city import Device
from cityops.domain.lifecycle import may_settle

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Device)


def settled_docs(mine: Mapping[str, Device], stored: Mapping[str, str]) -> list[tuple[str, str]]:
    """(id, new document) of each of `mine` whose stored document may take its lifecycle
    (`domain.lifecycle.may_settle`: nobody moved it since), in the order of `mine`. Only the
    lifecycle and its time change, so an edit made elsewhere (a rename) stays; a device the
    store does not hold is left out."""
    out = []
    for device_id, device in mine.items():
        doc = stored.get(device_id)
        if doc is None:
            continue
        held = _decoder.decode(doc)
        if may_settle(held.lifecycle, held.lifecycle_at, device.lifecycle):
            settled = msgspec.structs.replace(held, lifecycle=device.lifecycle,
                                              lifecycle_at=device.lifecycle_at)
            out.append((device_id, _encoder.encode(settled).decode()))
    return out
