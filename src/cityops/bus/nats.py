"""The NATS JetStream bus: the `Bus` protocol between processes, for cluster mode.

One stream per deployment (`stream`, default CITYOPS) holds every subject as
`<prefix>.<subject>.<partition>` (the prefix defaults to the stream name in lower case, so two
deployments on one server never overlap). Messages travel in the wire format their subject
declares (`subjects.py`).

Partitions. A subject declared as keyed by device (`readings`, `rejections`) is split over
`partitions` subjects (default 8) with a fixed hash of the device index, so one device's
readings always land on the same partition. Detection keeps per-device window state (rates,
windows, absence timers, episodes) in the worker that sees the device; if a device's readings
were spread over workers, each would hold a fragment of its windows and raise or miss alerts
on partial data. Every worker of a group therefore owns whole partitions (`share()` deals them
out); changing `partitions` moves devices between partitions, so change it only with the
consumers drained. Other subjects have one partition.

Publishing. `publish()` returns once JetStream has stored and acknowledged every part of the
message (the ingest answers its client only then). Parts go out through `publish_async`, with
at most `max_in_flight` awaiting their acks; a publish waits for a free slot beyond that, and
`has_room()` says whether one would have to. An unacknowledged part is sent again with the same
`Nats-Msg-Id`, so a retry after a lost ack is dropped as a duplicate by the stream (within
`duplicate_window`); after `publish_timeout` the publish fails with `BusUnavailable`.
Within a partition, order is publication order unless a part had to be retried.

Consuming. Each subscription reads through durable pull consumers, one per partition, named
`<group>-<subject>-<partition>`. Subscriptions with the same group share the messages (each is
delivered to one of them); different groups each get every message, so each component that
reads a subject (detection, the alert intake, a view) needs a group of its own: unlike the
in-process bus, two subscriptions with the bus's default group split a subject between them. A
new group starts at the moment it first subscribes; an existing one resumes where it left off.
Each subscription buffers at most `maxsize` messages and `buffer_bytes` of them locally (an
equal share per partition); pull requests ask only for what fits, by count and by size. The stream keeps messages by limits (`max_age`,
`max_bytes`), whoever has read them: a group that falls further behind loses the oldest.

Delivery is at-least-once. A message is acknowledged only after it was handed over by
`get_batch` *and* the consumer came back for the next batch (or called `ack()`, or closed the
subscription): a consumer that dies while working on a batch, or with messages still in its
local buffer, has them redelivered by the server after `ack_wait` to whoever pulls next. Consumers
must therefore tolerate repeats (alerts are keyed by rule, subject and first reading time, so a
repeat updates the same alert). Messages held longer than half of `ack_wait` are marked
in-progress so that a slow consumer does not get them redelivered under its feet.

Reconnects. The client reconnects by itself for as long as the bus is open, waiting longer
after each failed attempt (up to `reconnect_wait_max`); publishes retry with backoff meanwhile,
pull requests are sent again on reconnect, and durable consumers (file storage) survive a
server restart. `healthy` and `status()` report the connection for readiness checks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import random
import re
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Any

import nats
import nats.aio.client
import nats.errors
import nats.js.errors
import numpy as np
from nats.js import api

from cityops.bus.codec import CodecError
from cityops.bus.subjects import PARTITIONED, codec_for
from cityops.domain.readings import ReadingBatch

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 8
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_HEADROOM = 1024  # bytes of a NATS message left for headers within max_payload


class BusUnavailable(RuntimeError):
    """JetStream did not acknowledge in time (server down, stream missing): answer 503."""


class MessageTooLarge(ValueError):
    pass


# -- partitions -------------------------------------------------------------------------------


def partition_of(device: np.ndarray | int, partitions: int) -> np.ndarray | int:
    """The partition of each device index: a Fibonacci (multiplicative) hash, so that devices
    numbered in runs (the registry numbers them kind by kind) still spread evenly. Pure
    arithmetic, the same in every process and every version of Python."""
    scalar = np.isscalar(device)
    d = np.asarray(device, dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = (d * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    out = (mixed % np.uint64(partitions)).astype(np.int64)
    return int(out) if scalar else out


def split_by_partition(batch: ReadingBatch, partitions: int) -> list[tuple[int, ReadingBatch]]:
    """Rows of `batch` per partition, in their original order within each."""
    if partitions <= 1 or not len(batch):
        return [(0, batch)] if len(batch) else []
    return split_by_key(batch, partition_of(batch.device, partitions), partitions)


def split_by_key(batch: ReadingBatch, key: np.ndarray,
                 partitions: int) -> list[tuple[int, ReadingBatch]]:
    """Rows of `batch` per partition `key` (one per row), in their original order within
    each; the cluster's router gives its own keys to the same split."""
    if partitions <= 256:
        key = key.astype(np.uint8)  # numpy sorts 8-bit keys by radix: 4x faster than int64
    counts = np.bincount(key, minlength=partitions)
    if counts.max() == len(batch):
        return [(int(np.argmax(counts)), batch)]
    order = np.argsort(key, kind="stable")
    out = []
    end = 0
    for p in range(partitions):
        start, end = end, end + int(counts[p])
        if end > start:
            out.append((p, batch.take(order[start:end])))
    return out


def share(member: int, members: int, partitions: int = DEFAULT_PARTITIONS) -> list[int]:
    """The partitions worker `member` (0-based) of `members` takes: every `members`-th one."""
    if not 0 <= member < members:
        raise ValueError(f"member {member} is not one of {members}")
    return [p for p in range(partitions) if p % members == member]


# -- helpers ----------------------------------------------------------------------------------


class _Backoff:
    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def reset(self) -> None:
        self._next = self.first

    def delay(self) -> float:
        # Jitter keeps many clients that lost the same server from coming back in step.
        d = self._next * (0.5 + random.random())
        self._next = min(self._next * 2, self.cap)
        return d


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _status_of(msg: Any) -> tuple[str | None, str]:
    """A pull request's status message (no payload, a Status header) or (None, "")."""
    headers = msg.headers
    if not headers:
        return None, ""
    status = headers.get(api.Header.STATUS)
    return status, headers.get(api.Header.DESCRIPTION, "") if status else ""


class _Held:
    __slots__ = ("msg", "message", "partition", "since", "size")

    def __init__(self, msg: Any, message: Any, partition: int, since: float) -> None:
        self.msg = msg
        self.message = message
        self.partition = partition
        self.since = since
        self.size = len(msg.data)


class _Pull:
    """One partition's pull state: what was asked for and is still to come."""

    __slots__ = ("partition", "durable", "subject", "outstanding", "open_until", "done", "lost",
                 "trouble", "held", "quota", "held_bytes", "byte_quota", "room", "inbox", "sub",
                 "backlog")

    def __init__(self, partition: int, durable: str, subject: str, quota: int,
                 byte_quota: int) -> None:
        self.partition = partition
        self.durable = durable
        self.subject = subject
        self.outstanding = 0
        self.open_until = 0.0  # monotonic time the last request expires, while it may be open
        self.done = asyncio.Event()
        self.lost = False  # the server says the consumer is gone: create it again
        self.trouble = ""  # why the server ended the last request early, if it did
        self.held = 0  # messages of this partition in the local buffer
        self.quota = quota
        self.held_bytes = 0  # and their encoded size
        self.byte_quota = byte_quota
        self.room = asyncio.Event()
        self.inbox = ""
        self.sub: Any = None
        self.backlog = 0  # messages the server has for the group and has not delivered yet


# -- the subscription -------------------------------------------------------------------------


class NatsSubscription:
    """A bounded local buffer fed by pull consumers, one per owned partition."""

    def __init__(self, bus: NatsBus, subject: str, group: str, partitions: list[int],
                 maxsize: int) -> None:
        self.subject = subject
        self.group = group
        self.partitions = partitions
        self.maxsize = maxsize
        self._bus = bus
        self._codec = codec_for(subject)
        self._start = dt.datetime.fromtimestamp(time.time() - bus.start_slack, dt.UTC)
        # Each partition gets an equal share of the buffer, so an idle partition's open pull
        # request never holds room a busy one needs.
        quota = max(1, maxsize // len(partitions))
        byte_quota = max(1, bus.buffer_bytes // len(partitions))
        self._pulls = {p: _Pull(p, bus.durable_name(group, subject, p),
                                bus.nats_subject(subject, p), quota, byte_quota)
                       for p in partitions}
        self._buffer: deque[_Held] = deque()
        self._handed: list[_Held] = []
        self._arrived = asyncio.Event()
        self._ready = asyncio.Event()
        self._closed = False
        self.stats = {"delivered": 0, "redelivered": 0, "acked": 0, "undecodable": 0,
                      "late": 0, "pull_errors": 0}
        self._tasks = [asyncio.get_running_loop().create_task(self._pull_loop(pull),
                                                              name=f"nats-pull-{pull.durable}")
                       for pull in self._pulls.values()]
        self._tasks.append(asyncio.get_running_loop().create_task(
            self._keeper(), name=f"nats-keeper-{group}-{subject}"))

    # -- the Subscription protocol ------------------------------------------------------------

    async def get_batch(self, max_items: int = 64, timeout: float | None = None) -> list[Any]:
        """Acknowledge the batch handed over last time, then wait for at least one message (or
        until `timeout`) and take up to `max_items`."""
        await self.ack()
        if self._closed:
            return []
        if not self._buffer:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                return []
            if self._closed:
                return []
        taken = [self._buffer.popleft() for _ in range(min(max_items, len(self._buffer)))]
        for held in taken:
            pull = self._pulls[held.partition]
            pull.held -= 1
            pull.held_bytes -= held.size
            pull.room.set()
        self._handed = taken
        return [held.message for held in taken]

    def depth(self) -> int:
        """Messages waiting for this subscription: in the local buffer, plus those the server
        still holds for the group (as of the last look, every few seconds)."""
        return len(self._buffer) + sum(p.backlog for p in self._pulls.values())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._arrived.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Stop listening before giving messages back: the server would otherwise hand them
        # straight back to this subscription's pull request, which outlives it until expiry.
        for pull in self._pulls.values():
            if pull.sub is not None:
                try:
                    await pull.sub.unsubscribe()
                except Exception:
                    pass
        try:
            if self._bus.connected:
                await self._bus._nc.flush(timeout=2)
        except Exception:
            pass
        await self.ack()
        # Buffered messages were never seen by the consumer: give them back now rather than
        # after ack_wait, so another worker of the group takes them soon.
        for held in self._buffer:
            await self._give_back(self._pulls[held.partition], held.msg)
        self._buffer.clear()
        self._bus._forget(self)

    async def _give_back(self, pull: _Pull, msg: Any) -> None:
        # While this subscription's last pull request may still be open on the server, a
        # message given back would be delivered to it again, to no one; and nats-server 2.9
        # then also skipped a message and sent another twice. So the redelivery is delayed
        # until that request has expired.
        delay = max(0.0, pull.open_until - time.monotonic())
        try:
            await msg.nak(delay=delay + 0.25 if delay else None)
        except Exception:  # disconnected: the server redelivers after ack_wait anyway
            pass

    # -- beyond the protocol ------------------------------------------------------------------

    async def ack(self) -> None:
        """Acknowledge every message handed over so far (get_batch does it on the next call)."""
        handed, self._handed = self._handed, []
        for held in handed:
            try:
                await held.msg.ack()
                self.stats["acked"] += 1
            except nats.errors.MsgAlreadyAckdError:
                pass
            except Exception as exc:  # not sent: the server will redeliver it (at least once)
                log.warning("ack of %s failed: %s", self.subject, exc)

    async def ready(self, timeout: float | None = None) -> None:
        """Wait until every partition's consumer exists and is being pulled from."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    def status(self) -> dict:
        return {"subject": self.subject, "group": self.group, "partitions": self.partitions,
                "buffered": len(self._buffer), "handed": len(self._handed),
                "buffered_bytes": sum(p.held_bytes for p in self._pulls.values()),
                "backlog": sum(p.backlog for p in self._pulls.values()),
                "ready": self._ready.is_set(), **self.stats}

    # -- pulling ------------------------------------------------------------------------------

    def _wake(self) -> None:
        for pull in self._pulls.values():
            pull.done.set()
            pull.room.set()

    async def _pull_loop(self, pull: _Pull) -> None:
        bus = self._bus
        backoff = _Backoff(0.05, 5.0)
        ensured = False
        while not self._closed:
            try:
                await bus._wait_connected()
                nc = bus._nc
                if not ensured or pull.lost:
                    await bus._ensure_consumer(pull.durable, pull.subject, self._start)
                    ensured, pull.lost = True, False
                if pull.sub is None:
                    pull.inbox = nc.new_inbox()
                    # Unbounded here, bounded by what the pull requests ask for.
                    pull.sub = await nc.subscribe(
                        pull.inbox, cb=functools.partial(self._take, pull),
                        pending_msgs_limit=0, pending_bytes_limit=0)
                    if all(p.sub is not None for p in self._pulls.values()):
                        self._ready.set()
                # Room for one more message at least, by count and by size: the buffer is
                # bounded in memory whatever size the publishers' batches are.
                largest = nc.max_payload
                while (pull.held >= pull.quota or (
                        pull.held and pull.held_bytes + largest > pull.byte_quota)) \
                        and not self._closed:
                    pull.room.clear()
                    await pull.room.wait()
                want = min(bus.fetch_batch, pull.quota - pull.held)
                pull.outstanding = want
                pull.open_until = time.monotonic() + bus.fetch_wait
                pull.done.clear()
                request = {"batch": want, "expires": _ns(bus.fetch_wait),
                           "max_bytes": max(pull.byte_quota - pull.held_bytes, largest)}
                await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{bus.stream}.{pull.durable}",
                                 json.dumps(request).encode(), reply=pull.inbox)
                # Messages flow into the buffer as they come; the request ends when all came,
                # when the server says it expired (or cannot be served), or on a reconnect.
                try:
                    await asyncio.wait_for(pull.done.wait(), bus.fetch_wait + 1.0)
                except TimeoutError:
                    pass
                pull.outstanding = 0
                if pull.trouble:
                    # Refused rather than expired (JetStream still starting, a consumer being
                    # moved): ask again, but not in a tight loop.
                    self.stats["pull_errors"] += 1
                    bus._note_error(RuntimeError(f"pull on {pull.durable}: {pull.trouble}"))
                    pull.trouble = ""
                    await asyncio.sleep(backoff.delay())
                else:
                    backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats["pull_errors"] += 1
                bus._note_error(exc)
                if isinstance(exc, nats.js.errors.NotFoundError):
                    ensured = False
                log.warning("pulling %s failed (%s); retrying", pull.durable, exc)
                await asyncio.sleep(backoff.delay())

    async def _take(self, pull: _Pull, msg: Any) -> None:
        status, description = _status_of(msg)
        if status is not None:
            if status == "100":  # idle heartbeat
                return
            # 404 no messages, 408 request expired, 409 "Message Size Exceeds MaxBytes" (the
            # request's share of the buffer is full): the normal end of a request. Others (409
            # consumer deleted / leadership changed, 503 ...) end it too, as trouble.
            if status not in ("404", "408") and not (
                    status == "409" and "maxbytes" in description.lower().replace(" ", "")):
                pull.trouble = f"{status} {description}".strip()
                if status == "409" and "deleted" in description.lower():
                    pull.lost = True
            pull.open_until = 0.0
            pull.done.set()
            return
        if pull.outstanding > 0:
            pull.outstanding -= 1
            if pull.outstanding == 0:
                pull.open_until = 0.0
                pull.done.set()
        else:
            self.stats["late"] += 1  # for a request already given up: still ours to deliver
        if self._closed:
            await self._give_back(pull, msg)  # arrived as we closed
            return
        try:
            message = self._codec.decode(msg.data)
        except CodecError as exc:
            self.stats["undecodable"] += 1
            log.error("dropping an undecodable %s message: %s", self.subject, exc)
            try:
                await msg.term()  # redelivering it would fail the same way
            except Exception:
                pass
            return
        self.stats["delivered"] += 1
        try:
            if msg.metadata.num_delivered > 1:
                self.stats["redelivered"] += 1
        except Exception:
            pass
        held = _Held(msg, message, pull.partition, time.monotonic())
        self._buffer.append(held)
        pull.held += 1
        pull.held_bytes += held.size
        self._arrived.set()

    async def _keeper(self) -> None:
        """Keeps held messages from being redelivered while they wait, and looks up how far
        behind the group is."""
        bus = self._bus
        every = max(0.2, min(bus.ack_wait / 3, 5.0))
        while True:
            await asyncio.sleep(every)
            if not bus.connected:
                continue
            now = time.monotonic()
            for held in [*self._buffer, *self._handed]:
                if now - held.since > bus.ack_wait / 2:
                    try:
                        await held.msg.in_progress()
                        held.since = now
                    except Exception:
                        break
            for pull in self._pulls.values():
                try:
                    info = await bus._jsm.consumer_info(bus.stream, pull.durable, timeout=2.0)
                    pull.backlog = int(info.num_pending or 0)
                except Exception:
                    pass


# -- the bus ----------------------------------------------------------------------------------


class NatsBus:
    """`Bus` on NATS JetStream. `await bus.start()` (or `await NatsBus.open(url, ...)`) before
    use; `await bus.close()` after."""

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "CITYOPS",
        prefix: str | None = None,
        group: str = "cityops",
        partitions: int = DEFAULT_PARTITIONS,
        max_in_flight: int = 512,
        max_age: float = 3600.0,
        max_bytes: int = 2 * 1024**3,
        storage: str = "file",
        replicas: int = 1,
        duplicate_window: float = 120.0,
        ack_wait: float = 30.0,
        max_deliver: int = 20,
        max_ack_pending: int = 20_000,
        ack_timeout: float = 5.0,
        publish_timeout: float = 30.0,
        fetch_batch: int = 64,
        fetch_wait: float = 5.0,
        buffer_bytes: int = 64 * 1024**2,
        start_slack: float = 1.0,
        connect_timeout: float = 10.0,
        reconnect_wait: float = 0.1,
        reconnect_wait_max: float = 5.0,
        name: str = "cityops",
    ) -> None:
        for label, value in (("stream", stream), ("group", group)):
            if not _NAME.match(value):
                raise ValueError(f"{label} {value!r}: use letters, digits, '-' and '_' only")
        if partitions < 1 or max_in_flight < 1:
            raise ValueError("partitions and max_in_flight must be at least 1")
        if not 0 < fetch_wait < ack_wait:
            # A dead worker's last pull request must expire before its messages come due for
            # redelivery, or the server hands them to that request (see _give_back).
            raise ValueError(f"fetch_wait ({fetch_wait}) must be shorter than ack_wait "
                             f"({ack_wait})")
        self.url = url
        self.stream = stream
        self.prefix = prefix or stream.lower()
        self.group = group
        self.partitions = partitions
        self.max_in_flight = max_in_flight
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.storage = api.StorageType(storage)
        self.replicas = replicas
        self.duplicate_window = duplicate_window
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.max_ack_pending = max_ack_pending
        self.ack_timeout = ack_timeout
        self.publish_timeout = publish_timeout
        self.fetch_batch = fetch_batch
        self.fetch_wait = fetch_wait
        self.buffer_bytes = buffer_bytes  # encoded bytes one subscription holds locally
        self.start_slack = start_slack
        self.connect_timeout = connect_timeout
        self.reconnect_wait = reconnect_wait
        self.reconnect_wait_max = reconnect_wait_max
        self.name = name

        self._nc: Any = None
        self._js: Any = None
        self._jsm: Any = None
        self._connected = asyncio.Event()
        self._closed = False
        self._stream_ok = False
        self._stream_lock = asyncio.Lock()
        self._subs: dict[str, list[NatsSubscription]] = defaultdict(list)
        self._in_flight = 0
        self._waiting = 0
        self._slots = asyncio.Semaphore(max_in_flight)
        self._retrying = 0  # parts past their first failed attempt
        self._msg_ids = 0
        self._id_prefix = f"{int(time.time() * 1000):x}-{random.getrandbits(48):012x}"
        self.stats = {"published": 0, "messages": 0, "acked": 0, "duplicates": 0,
                      "retries": 0, "failed": 0, "disconnects": 0, "reconnects": 0}
        self.last_error = ""
        self._last_error_at = 0.0

    @classmethod
    async def open(cls, url: str = "nats://127.0.0.1:4222", **options: Any) -> NatsBus:
        bus = cls(url, **options)
        await bus.start()
        return bus

    # -- connection ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and make sure the stream exists with this bus's settings."""
        nc = nats.aio.client.Client()
        try:
            await asyncio.wait_for(nc.connect(
                servers=[self.url], name=self.name, allow_reconnect=True,
                max_reconnect_attempts=-1, reconnect_time_wait=self.reconnect_wait,
                connect_timeout=2, error_cb=self._on_error,
                disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected,
                pending_size=8 * 1024 * 1024), self.connect_timeout)
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            try:
                await nc.close()
            except Exception:
                pass
            raise BusUnavailable(f"cannot reach NATS at {self.url}: {exc!r}") from exc
        self._nc = nc
        # Our own slots bound what is in flight; the client's limit only has to stay out of
        # the way (its slot is freed a moment after ours).
        self._js = nc.jetstream(timeout=self.ack_timeout,
                                publish_async_max_pending=self.max_in_flight * 2)
        self._jsm = nc.jsm(timeout=self.ack_timeout)
        self._connected.set()
        await self._ensure_stream()

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def healthy(self) -> bool:
        """Connected, the stream is there, and no publish is currently failing."""
        return (not self._closed and self.connected and self._stream_ok
                and self._retrying == 0)

    async def _wait_connected(self) -> None:
        if self._nc is None or not self._nc.is_connected:
            self._connected.clear()
        await self._connected.wait()

    async def _on_error(self, exc: Exception) -> None:
        self._note_error(exc)
        nc = self._nc
        if nc is not None and not nc.is_connected:
            # The client waits a fixed time between attempts; grow it while the server stays
            # away, back to the minimum once it is back.
            options = nc.options
            options["reconnect_time_wait"] = min(
                self.reconnect_wait_max, options["reconnect_time_wait"] * 2)

    async def _on_disconnected(self) -> None:
        self._connected.clear()
        if not self._closed:
            self.stats["disconnects"] += 1
            log.warning("disconnected from NATS at %s", self.url)

    async def _on_reconnected(self) -> None:
        self.stats["reconnects"] += 1
        if self._nc is not None:
            self._nc.options["reconnect_time_wait"] = self.reconnect_wait
        log.info("reconnected to NATS at %s", self._nc.connected_url if self._nc else self.url)
        self._connected.set()
        for subs in self._subs.values():
            for sub in subs:
                sub._wake()  # their pull requests died with the old connection

    def _note_error(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._last_error_at = time.time()

    # -- stream and consumers -----------------------------------------------------------------

    def nats_subject(self, subject: str, partition: int = 0) -> str:
        return f"{self.prefix}.{subject}.{partition}"

    def partitions_of(self, subject: str) -> int:
        return self.partitions if subject in PARTITIONED else 1

    def durable_name(self, group: str, subject: str, partition: int) -> str:
        name = f"{group}-{subject}-{partition}"
        if not _NAME.match(name):
            raise ValueError(f"consumer name {name!r}: use letters, digits, '-' and '_' only")
        return name

    def _stream_config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.stream, subjects=[f"{self.prefix}.>"],
            retention=api.RetentionPolicy.LIMITS, discard=api.DiscardPolicy.OLD,
            max_age=self.max_age, max_bytes=self.max_bytes, storage=self.storage,
            num_replicas=self.replicas, duplicate_window=self.duplicate_window)

    async def _ensure_stream(self) -> None:
        async with self._stream_lock:
            wanted = self._stream_config()
            try:
                info = await self._jsm.stream_info(self.stream)
            except nats.js.errors.NotFoundError:
                await self._jsm.add_stream(wanted)
            else:
                have = info.config
                if (have.subjects != wanted.subjects or have.max_age != wanted.max_age
                        or have.max_bytes != wanted.max_bytes
                        or have.duplicate_window != wanted.duplicate_window):
                    # Retention limits are settings: the last node started with new ones wins.
                    await self._jsm.update_stream(wanted)
            self._stream_ok = True

    async def _ensure_consumer(self, durable: str, subject: str, start: dt.datetime) -> None:
        try:
            await self._jsm.consumer_info(self.stream, durable)
            return
        except nats.js.errors.NotFoundError:
            pass
        config = api.ConsumerConfig(
            name=durable, durable_name=durable, filter_subject=subject,
            deliver_policy=api.DeliverPolicy.BY_START_TIME, opt_start_time=start,
            ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.ack_wait,
            max_deliver=self.max_deliver, max_ack_pending=self.max_ack_pending)
        try:
            await self._jsm.add_consumer(self.stream, config)
        except nats.js.errors.NotFoundError:
            self._stream_ok = False
            await self._ensure_stream()
            await self._jsm.add_consumer(self.stream, config)
        except nats.js.errors.BadRequestError:
            # Another worker of the group created it a moment ago; if not, this raises.
            await self._jsm.consumer_info(self.stream, durable)

    async def delete_stream(self) -> None:
        """Drop the stream with everything in it (tests, decommissioning a deployment)."""
        try:
            await self._jsm.delete_stream(self.stream)
        except nats.js.errors.NotFoundError:
            pass
        self._stream_ok = False

    async def stream_messages(self) -> int:
        """Messages the stream holds now."""
        info = await self._jsm.stream_info(self.stream)
        return int(info.state.messages)

    # -- publishing ---------------------------------------------------------------------------

    def has_room(self, subject: str) -> bool:
        """Whether a publish on `subject` would get its in-flight slots now without waiting."""
        need = self.partitions_of(subject)
        return (self._waiting == 0
                and self._in_flight + min(need, self.max_in_flight) <= self.max_in_flight)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def publish(self, subject: str, message: Any) -> None:
        """Store `message` in the stream; returns once JetStream acknowledged all of it."""
        if self._closed:
            raise BusUnavailable("the bus is closed")
        if self._js is None:
            raise RuntimeError("NatsBus.start() first")
        parts = self._encode(subject, message)
        sends = []
        try:
            for nats_subject, data in parts:
                await self._acquire()
                sends.append(asyncio.ensure_future(self._send(nats_subject, data)))
            results = await asyncio.gather(*sends, return_exceptions=True)
        except BaseException:
            for send in sends:
                send.cancel()
            raise
        self.stats["published"] += 1
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _encode(self, subject: str, message: Any) -> list[tuple[str, bytes]]:
        codec = codec_for(subject)
        partitions = self.partitions_of(subject)
        if partitions > 1:
            if not isinstance(message, ReadingBatch):
                raise CodecError(f"{subject}: expected a ReadingBatch, got "
                                 f"{type(message).__name__}")
            pieces = split_by_partition(message, partitions)
        else:
            pieces = [(0, message)]
        limit = (self._nc.max_payload if self._nc is not None else 1024 * 1024) - _HEADROOM
        out = []
        for partition, piece in pieces:
            target = self.nats_subject(subject, partition)
            out.extend((target, data) for data in _fit(codec, piece, limit))
        return out

    async def _acquire(self) -> None:
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        self._in_flight += 1

    def _next_id(self) -> str:
        self._msg_ids += 1
        return f"{self._id_prefix}-{self._msg_ids}"

    async def _send(self, subject: str, data: bytes) -> None:
        """One part, already holding its slot: publish until acknowledged or out of time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout
        msg_id = self._next_id()
        backoff = _Backoff(0.05, 2.0)
        failed = False
        self.stats["messages"] += 1
        try:
            while True:
                try:
                    future = await self._js.publish_async(
                        subject, data, stream=self.stream, headers={"Nats-Msg-Id": msg_id})
                    ack = await asyncio.wait_for(future, self.ack_timeout)
                    self.stats["acked"] += 1
                    if ack.duplicate:
                        self.stats["duplicates"] += 1
                    self._stream_ok = True
                    return
                except nats.js.errors.BadRequestError:
                    self.stats["failed"] += 1
                    raise
                except (TimeoutError, nats.errors.Error, OSError) as exc:
                    self._note_error(exc)
                    if self._closed or (self._nc is not None and self._nc.is_closed):
                        self.stats["failed"] += 1
                        raise BusUnavailable(f"publish on {subject}: the bus closed") from exc
                    if not failed:
                        failed = True
                        self._retrying += 1
                    wait = backoff.delay()
                    if loop.time() + wait > deadline:
                        self.stats["failed"] += 1
                        raise BusUnavailable(
                            f"JetStream did not acknowledge {subject} within "
                            f"{self.publish_timeout:g} s: {exc!r}") from exc
                    self.stats["retries"] += 1
                    await asyncio.sleep(wait)
                    if isinstance(exc, nats.js.errors.NoStreamResponseError) and self.connected:
                        # No stream listens: it may be gone (a memory stream after a restart).
                        try:
                            await self._ensure_stream()
                        except Exception as again:
                            self._note_error(again)
        finally:
            if failed:
                self._retrying -= 1
            self._in_flight -= 1
            self._slots.release()

    # -- subscribing --------------------------------------------------------------------------

    def subscribe(self, subject: str, *, maxsize: int = 1024, group: str | None = None,
                  partitions: Iterable[int] | None = None) -> NatsSubscription:
        """Read `subject` as a member of `group` (default: the bus's group), taking the given
        `partitions` (default: all of the subject's; see `share()`)."""
        if self._closed:
            raise BusUnavailable("the bus is closed")
        group = group or self.group
        if not _NAME.match(group):
            raise ValueError(f"group {group!r}: use letters, digits, '-' and '_' only")
        count = self.partitions_of(subject)
        owned = sorted(set(range(count) if partitions is None else partitions))
        if not owned or not all(0 <= p < count for p in owned):
            raise ValueError(f"{subject} has partitions 0..{count - 1}, not {owned}")
        sub = NatsSubscription(self, subject, group, owned, maxsize)
        self._subs[subject].append(sub)
        return sub

    def _forget(self, sub: NatsSubscription) -> None:
        subs = self._subs.get(sub.subject, [])
        if sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.subject]

    def depths(self) -> dict[str, int]:
        return {f"{subject}#{i}": sub.depth()
                for subject, subs in self._subs.items() for i, sub in enumerate(subs)}

    def status(self) -> dict:
        return {
            "kind": "nats", "url": self.url, "stream": self.stream, "prefix": self.prefix,
            "group": self.group, "partitions": self.partitions,
            "connected": self.connected, "healthy": self.healthy, "stream_ok": self._stream_ok,
            "in_flight": self._in_flight, "max_in_flight": self.max_in_flight,
            "retrying": self._retrying, **self.stats,
            "last_error": self.last_error,
            "last_error_at": self._last_error_at or None,
            "subscriptions": [s.status() for subs in self._subs.values() for s in subs],
        }

    async def close(self) -> None:
        """Close the subscriptions (acking what they handed over), let the publishes in flight
        finish for up to `ack_timeout`, then disconnect."""
        if self._closed:
            return
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.close()
        deadline = time.monotonic() + self.ack_timeout
        # The client's callbacks change the count: polled, with the deadline as the bound.
        while self._in_flight and self.connected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        self._closed = True
        nc = self._nc
        if nc is not None:
            if nc.is_connected:
                try:
                    await nc.flush(timeout=2)  # the last acks
                except Exception:
                    pass
            try:
                await nc.close()
            except Exception:
                pass
        self._connected.set()  # release anyone waiting for a connection; they see _closed


def _fit(codec: Any, message: Any, limit: int) -> list[bytes]:
    """Encode `message`, halving it (a batch's rows, a list's items) until each part fits in
    one NATS message."""
    data = codec.encode(message)
    if len(data) <= limit:
        return [data]
    if isinstance(message, ReadingBatch) and len(message) > 1:
        half = len(message) // 2
        return (_fit(codec, message.take(slice(0, half)), limit)
                + _fit(codec, message.take(slice(half, None)), limit))
    if isinstance(message, list) and len(message) > 1:
        half = len(message) // 2
        return _fit(codec, message[:half], limit) + _fit(codec, message[half:], limit)
    raise MessageTooLarge(f"a message of {len(data)} bytes does not fit in {limit}")
