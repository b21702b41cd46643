"""Re-ranking great-circle candidates by travel time on the street network."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from cityops.domain.nearest import Candidate
from cityops.routing.network import StreetNetwork

# Streets in a city are rarely more than about 1.5 times longer than the straight line, so the
# fastest person is almost always among the ten closest by air; routing everyone else would
# cost a Dijkstra that only confirms they are farther.
DEFAULT_ROUTED = 10


def rerank_by_travel_time(network: StreetNetwork, candidates: Sequence[Candidate],
                          target_lat: float, target_lon: float,
                          k: int = DEFAULT_ROUTED) -> list[Candidate]:
    """The first `k` candidates (already ranked by great-circle distance) routed to the target
    with one Dijkstra and re-ordered by travel time (ties by distance, then id); those the
    network cannot bring to the target follow in their original order without `travel_s`, and
    the candidates beyond `k` come last, unrouted, as they were."""
    head, tail = list(candidates[:k]), list(candidates[k:])
    if not head:
        return tail
    seconds = network.travel_times_to(target_lat, target_lon,
                                      [c.lat for c in head], [c.lon for c in head])
    routed = [msgspec.structs.replace(c, travel_s=float(s))
              for c, s in zip(head, seconds, strict=True) if np.isfinite(s)]
    routed.sort(key=lambda c: (c.travel_s, c.distance_m, c.staff_id))
    unreachable = [c for c, s in zip(head, seconds, strict=True) if not np.isfinite(s)]
    return routed + unreachable + tail
