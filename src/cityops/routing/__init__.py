"""Street-network travel times for proposing field staff (the optional `routing` extra).

Built from an OpenStreetMap extract (PBF). OSM data is © OpenStreetMap contributors, available
under the Open Database License (ODbL); a product that shows results derived from it must say
so.
"""

from cityops.routing.network import StreetNetwork
from cityops.routing.rerank import DEFAULT_ROUTED, rerank_by_travel_time

__all__ = ["DEFAULT_ROUTED", "StreetNetwork", "rerank_by_travel_time"]
