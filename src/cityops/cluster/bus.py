"""The NATS bus of a cluster: opened from the `--bus` URL, seen by each component through
its own consumer group and share of the partitions, with consumers prepared (and rewound)
before a group subscribes."""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
from typing import TYPE_CHECKING, Any


from cityops.bus.subjects import PARTITIONED
from cityops.cluster.routing import routed_bus_class

if TYPE_CHECKING:
    from cityops.cluster.detect import DetectShare

log = logging.getLogger(__name__)


_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


_BUS_OPTIONS = {
    "stream": str, "prefix": str, "storage": str, "max_in_flight": int, "max_age": float,
    "max_bytes": int, "replicas": int, "duplicate_window": float, "ack_wait": float,
    "max_deliver": int, "max_ack_pending": int, "ack_timeout": float,
    "publish_timeout": float, "fetch_batch": int, "fetch_wait": float, "buffer_bytes": int,
}


def bus_options(url: str) -> tuple[str, dict[str, Any]]:
    """`nats://host:port?stream=CITYOPS&ack_wait=30` -> (server URL, NatsBus options)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("nats", "tls"):
        raise ValueError(f"--bus {url!r} must look like nats://host:port")
    options: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(parts.query):
        kind = _BUS_OPTIONS.get(key)
        if kind is None:
            raise ValueError(f"--bus: unknown option {key!r} (known: {', '.join(_BUS_OPTIONS)})")
        try:
            options[key] = kind(value)
        except ValueError:
            raise ValueError(f"--bus: {key}={value!r} is not a {kind.__name__}") from None
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", "")), options


def open_bus(settings):
    server, options = bus_options(settings.bus_url)
    return routed_bus_class()(server, partitions=settings.partitions,
                              name=f"cityops-{settings.node_name or 'node'}", **options)


def is_nats(bus) -> bool:
    return type(bus).__name__ in ("NatsBus", "RoutedBus")


class BusView:
    """What one component sees of the bus: subscriptions in its own consumer group and, on the
    partitioned subjects, only its worker's partitions. Publishing goes straight through.

    On the in-process bus every subscriber gets every message, so the view changes nothing
    there; on NATS two subscriptions of one group would split a subject between them."""

    def __init__(self, bus, group: str | None = None, partitions: list[int] | None = None):
        self.bus = bus
        self.group = group
        self.partitions = partitions

    def subscribe(self, subject: str, *, maxsize: int = 1024):
        if not is_nats(self.bus):
            return self.bus.subscribe(subject, maxsize=maxsize)
        owned = self.partitions if subject in PARTITIONED else None
        return self.bus.subscribe(subject, maxsize=maxsize, group=self.group, partitions=owned)

    async def publish(self, subject: str, message: Any) -> None:
        await self.bus.publish(subject, message)

    def has_room(self, subject: str) -> bool:
        return self.bus.has_room(subject)

    def depths(self) -> dict[str, int]:
        return self.bus.depths()

    def detect_share(self, node, scenarios) -> DetectShare:
        """What the detect engine reading through this view speaks for (see DetectShare)."""
        # Imported here: the share itself reads through views of this module.
        from cityops.cluster.detect import DetectShare

        return DetectShare(node, scenarios, self)


async def prepare_group(bus, group: str, subject: str, partitions: list[int], *,
                        from_start: bool, rewind: bool) -> dict[int, int]:
    """Make the group's consumers ready before it subscribes; returns, per partition whose
    consumer existed, the stream sequence of its acknowledged floor (what the group has
    finished with; reading goes on after it).

    `from_start`: a consumer made now starts at the oldest message the stream still holds, not
    at this moment (NatsBus's default), so that readings published before the first worker
    of a group ever ran are not skipped.

    `rewind`: a consumer with messages delivered but never acknowledged belongs to a worker
    that died (or was stopped) in the middle of them. JetStream would hand them out again only
    after `ack_wait`, and after newer ones; detection would then see a device's readings out of
    order and could open an episode the dead worker had already opened under another first
    reading time. So the consumer is made again from just after its acknowledged floor: the
    new worker re-reads, in order, everything the old one may not have finished (which it
    treats as new: its memory starts empty), and nothing before that. Only the worker that
    owns these partitions may do this, and only one runs per `--worker` number."""
    import nats.js.errors
    from nats.js import api

    jsm = bus._jsm  # noqa: SLF001 — the bus has no public consumer management
    floors: dict[int, int] = {}
    for p in partitions:
        durable = bus.durable_name(group, subject, p)
        try:
            info = await jsm.consumer_info(bus.stream, durable)
        except nats.js.errors.NotFoundError:
            if from_start:
                await bus._ensure_consumer(durable, bus.nats_subject(subject, p), _EPOCH)  # noqa: SLF001
            continue
        floor = int(info.ack_floor.stream_seq if info.ack_floor else 0)
        floors[p] = floor
        if not rewind or not info.num_ack_pending:
            continue
        config = info.config
        config.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = floor + 1
        config.opt_start_time = None
        await jsm.delete_consumer(bus.stream, durable)
        await jsm.add_consumer(bus.stream, config)
        log.warning("%s: %d messages were left unacknowledged by a previous worker; "
                    "reading again from stream sequence %d", durable, info.num_ack_pending,
                    floor + 1)
    return floors


async def replay_window(bus, subject: str, partition: int, floor: int, window_s: float,
                        fetch: int = 256):
    """The messages of one partition published within `window_s` before the one at stream
    sequence `floor`, up to and including it, decoded, in order (an async iterator).

    A worker that takes over partitions starts with empty rule memory: a device that was loud
    when the last worker stopped is not loud to the new one, so the quiet reading that
    follows would not clear its open alert, and the alert would swallow the device's next
    loud spell. Evaluating this window first (without publishing anything) rebuilds that
    memory. Rules that remember more than the window (hourly windows, weekly baselines) are
    rebuilt only in part; their open alerts are still restored from the store."""
    import nats.errors
    from nats.js import api

    from cityops.bus.subjects import codec_for

    if floor <= 0 or window_s <= 0:
        return
    try:
        at = (await bus._jsm.get_msg(bus.stream, floor)).time  # noqa: SLF001
    except Exception:  # gone from the stream (retention): nothing left to replay
        return
    if not isinstance(at, dt.datetime):
        at = dt.datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    codec = codec_for(subject)
    config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_TIME,
                                opt_start_time=at - dt.timedelta(seconds=window_s),
                                ack_policy=api.AckPolicy.NONE, inactive_threshold=60.0,
                                mem_storage=True)
    sub = await bus._js.pull_subscribe(bus.nats_subject(subject, partition), durable=None,  # noqa: SLF001
                                       stream=bus.stream, config=config)
    try:
        while True:
            try:
                msgs = await sub.fetch(fetch, timeout=2.0)
            except (TimeoutError, nats.errors.TimeoutError):
                return
            for msg in msgs:
                if msg.metadata.sequence.stream > floor:
                    return
                yield codec.decode(msg.data)
    finally:
        try:
            await sub.unsubscribe()
        except Exception:
            pass
