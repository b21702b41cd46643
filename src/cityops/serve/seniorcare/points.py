"""The nursing homes are the elderly-care service points the 15-minute circle measures: the
city's care file when the node was given one, else the pack's generated points. Read once per
node (off the event loop: a Pudong pack's points come with its homes' sampling) and kept."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from cityops.analytics import care_file
from cityops.packs.care import CarePoint, care_data

_points: weakref.WeakKeyDictionary[Any, asyncio.Future[dict[str, CarePoint]]] = \
    weakref.WeakKeyDictionary()


def load_points(node: Any) -> dict[str, CarePoint]:
    own = getattr(node.settings, "care_file", None)
    data = care_file.load(own, node.city) if own is not None else care_data(node.pack)
    return {p.id: p for p in data.points}


async def care_points(node: Any) -> dict[str, CarePoint]:
    made = _points.get(node)
    if made is None or (made.done() and made.exception() is not None):
        made = _points[node] = asyncio.ensure_future(asyncio.to_thread(load_points, node))
    return await asyncio.shield(made)
