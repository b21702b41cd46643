"""Cluster mode: the pieces a node needs when its parts run in other processes.

A cluster node talks to the others only through NATS JetStream (the bus) and PostgreSQL (the
store). Which parts it builds follows from its roles (see `Node`); this package holds what
the single process never needed, one module per concern:

- `roles`: the roles, the consumer groups they read in, what a node without a part answers;
- `bus`: the NATS bus from the `--bus` URL, one component's view of it (`BusView`: its own
  consumer group, its worker's share of the partitions), consumer groups prepared before
  they subscribe (`prepare_group`: from the start of the retained stream, rewound to the last
  acknowledged message after a worker died holding unacknowledged ones);
- `routing`: which partition each device's readings go to (`SpanPlan`, `Router`) and which
  of them a worker owns;
- `history`: the history of a node that keeps none (`StreamHistory`: the stream is the
  durable log), readings from the stream into the history log or a node's latest values
  (`HistoryFeeder`, `LatestFollower`), history reads by partition (`ShardReader`, `NoReader`);
- `ingest`: ingest refusing (503) while detection is too far behind (`StreamLag`,
  `IngestBus`), and `NoIngest`;
- `detect`: what one detect worker speaks for (`DetectShare`).

What was imported from the single module `cityops.cluster` is re-exported here.
"""

from cityops.bus.subjects import REJECTIONS
from cityops.cluster.bus import (
    BusView,
    bus_options,
    is_nats,
    open_bus,
    prepare_group,
    replay_window,
)
from cityops.cluster.detect import DetectShare
from cityops.cluster.history import (
    HistoryFeeder,
    LatestFollower,
    NoReader,
    ShardReader,
    StreamHistory,
)
from cityops.cluster.ingest import IngestBus, NoIngest, StreamLag, bus_unavailable_as_overload
from cityops.cluster.roles import ACT_GROUP, DETECT_GROUP, HISTORY_GROUP, ROLES, parse_roles
from cityops.cluster.routing import (
    Router,
    SpanPlan,
    owned_devices,
    owned_partitions,
    owns_alert,
    owns_subject,
    routed_bus_class,
    router_for,
)

__all__ = ["ACT_GROUP", "DETECT_GROUP", "HISTORY_GROUP", "REJECTIONS", "ROLES", "BusView",
           "DetectShare", "HistoryFeeder", "IngestBus", "LatestFollower", "NoIngest", "NoReader",
           "Router", "ShardReader", "SpanPlan", "StreamHistory", "StreamLag", "bus_options",
           "bus_unavailable_as_overload", "is_nats", "open_bus", "owned_devices",
           "owned_partitions", "owns_alert", "owns_subject", "parse_roles", "prepare_group",
           "replay_window", "routed_bus_class", "router_for"]
