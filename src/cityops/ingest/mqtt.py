"""MQTT intake: readings from a broker, micro-batched into the ingest pipeline.

Topics are `<prefix>/<device_id>` (one reading, or an array, per message; a single reading may
leave out `device_id`, which the topic then gives) and `<prefix>/batch` (arrays). A reading on a
device's topic must be that device's: the broker lets a device key publish only to its own
devices' topics (broker_accounts.py), so a reading naming another device there is refused, as a
dead letter, rather than taken on the topic's authority. Messages are
gathered for up to `batch_ms` or `batch_max` readings and ingested in one call; every message
that cannot be taken, or every element of an array that cannot, becomes a dead letter with the
reason. Nothing a device sends can stop the subscriber.

Flow control is the broker's: the subscription is QoS 1 over MQTT 5, messages are acknowledged
only once ingested (or dead-lettered), and the connection announces a Receive Maximum, so the
broker never has more than that many unacknowledged messages out to us. When the node is
overloaded the intake stops acknowledging and the backlog waits in the broker, not in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiomqtt
import msgspec
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityops.ingest.deadletters import DeadLetterSink
from cityops.ingest.mqtt_link import BrokerIntake, payload_bytes
# The broker address is parsed where the connection is kept; importers of it here stay working.
from cityops.ingest.mqtt_link import MqttAddress as MqttAddress
from cityops.ingest.mqtt_link import parse_mqtt_url as parse_mqtt_url
from cityops.ingest.decode import AwareDatetime, BodyError, Reading, decode_array
from cityops.ingest.pipeline import IngestResult, Overloaded
from cityops.store.base import DeadLetter

log = logging.getLogger(__name__)

DEFAULT_TOPIC_PREFIX = "cityops/readings"
DEFAULT_TOPIC_FILTER = f"{DEFAULT_TOPIC_PREFIX}/+"
BATCH_TOPIC = "batch"
MAX_PAYLOAD = 256 * 1024
SHOWN_PAYLOAD = 4096  # characters of a bad payload kept in its dead letter

Ingest = Callable[..., Awaitable[IngestResult]]


class _TopicReading(msgspec.Struct, frozen=True, omit_defaults=True):
    """A reading on a device's own topic, where `device_id` may be left to the topic."""

    ts: AwareDatetime | float
    device_id: str | None = None
    value: float | None = None
    values: dict[str, float] | None = None


_topic_reading = msgspec.json.Decoder(_TopicReading)
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


def show_payload(payload: bytes, limit: int = SHOWN_PAYLOAD) -> str:
    """Payload text for a dead letter: UTF-8 as is, anything else as hex; cut to `limit` bytes."""
    cut = len(payload) > limit
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        cut = len(payload) > limit // 2
        text = "hex:" + payload[: limit // 2].hex()
    else:
        # Cutting may split a character; dropping its stray bytes keeps the text valid.
        text = payload[:limit].decode("utf-8", "ignore")
    return f"{text}…[{len(payload)} bytes in all]" if cut else text


class IntakeStats(msgspec.Struct):
    connected: bool
    messages: int
    readings: int  # decoded and passed to ingest
    accepted: int
    duplicates: int
    dead_letters: int  # letters made: bad messages, and bad elements of arrays
    batches: int
    failed_batches: int  # ingest raised something other than Overloaded
    overloaded_retries: int
    reconnects: int
    dropped: int  # QoS 0 messages that found the local queue full


@dataclass(slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float
    is_array: bool = False
    first: int = 0  # index of its first reading in the micro-batch
    count: int = 0


@dataclass(slots=True)
class _Batch:
    messages: list[_Message] = field(default_factory=list)
    readings: list[tuple[int, Reading]] = field(default_factory=list)
    origin: list[tuple[int, int]] = field(default_factory=list)  # per reading: message, element


class MqttIntake(BrokerIntake):
    def __init__(
        self,
        url: str,
        ingest: Ingest,
        sink: DeadLetterSink,
        *,
        topic: str = DEFAULT_TOPIC_FILTER,
        topic_prefix: str | None = None,
        batch_max: int = 5000,
        batch_ms: float = 50.0,
        max_payload: int = MAX_PAYLOAD,
        receive_maximum: int = 10_000,
        client_id: str | None = None,
        session_expiry_s: int = 0,
        backoff_s: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        # `topic_prefix` is the shorthand for the usual filter `<prefix>/+`.
        self.topic_filter = f"{topic_prefix.strip('/')}/+" if topic_prefix else topic
        super().__init__("MQTT intake", "mqtt-intake", url, [self.topic_filter],
                         client_id=client_id, backoff_s=backoff_s)
        self.ingest = ingest
        self.sink = sink
        self.batch_max = batch_max
        self.batch_s = batch_ms / 1000.0
        self.max_payload = max_payload
        self.receive_maximum = max(1, min(receive_maximum, 65535))
        self.session_expiry_s = session_expiry_s
        self._messages = 0
        self._readings = 0
        self._accepted = 0
        self._duplicates = 0
        self._dead = 0
        self._batches = 0
        self._failed = 0
        self._overloaded = 0

    @property
    def stats(self) -> IntakeStats:
        return IntakeStats(
            connected=self._ready.is_set(),
            messages=self._messages,
            readings=self._readings,
            accepted=self._accepted,
            duplicates=self._duplicates,
            dead_letters=self._dead,
            batches=self._batches,
            failed_batches=self._failed,
            overloaded_retries=self._overloaded,
            reconnects=self._reconnects,
            dropped=self._dropped,
        )

    # -- connection ---------------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = self.receive_maximum
        persistent = self.client_id is not None and self.session_expiry_s > 0
        if persistent:
            props.SessionExpiryInterval = self.session_expiry_s
        client = self._new_client(
            # QoS 1 is bounded by Receive Maximum; the margin is for QoS 0 bursts.
            self.receive_maximum + self.batch_max,
            protocol=aiomqtt.ProtocolVersion.V5,
            properties=props,
            clean_start=False if persistent else True,
        )
        # aiomqtt has no public switch for paho's application-controlled acknowledgements yet
        # (empicano/aiomqtt#345); without them a QoS 1 message would be acknowledged before it
        # is stored, and lost if the node stopped in between.
        client._client.manual_ack_set(True)  # noqa: SLF001
        return client

    # -- consuming ----------------------------------------------------------------------------

    async def _consume(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        loop = asyncio.get_running_loop()
        while True:
            batch = _Batch()
            self._take(await anext(messages), batch)
            deadline = loop.time() + self.batch_s
            try:
                queue = self._queue
                assert queue is not None  # made by the client this connection uses
                while len(batch.readings) < self.batch_max:
                    # Under load the queue is never empty: drain it without a task per message.
                    while not queue.empty():
                        self._take(queue.get_nowait(), batch)
                        if len(batch.readings) >= self.batch_max:
                            break
                    remaining = deadline - loop.time()
                    if len(batch.readings) >= self.batch_max or remaining <= 0:
                        break
                    # Wait on the queue itself, not on `messages`: cancelling aiomqtt's
                    # iterator at the timeout can drop a message it had just taken, while
                    # a cancelled Queue.get leaves the item in the queue. A disconnect in this
                    # short wait is noticed by the next `anext`.
                    try:
                        self._take(await asyncio.wait_for(queue.get(), remaining), batch)
                    except TimeoutError:
                        break
            except aiomqtt.MqttError:
                # The connection went while gathering: still ingest what arrived.
                await self._process(client, batch)
                raise
            await self._process(client, batch)

    def _take(self, message: aiomqtt.Message, batch: _Batch) -> None:
        self._messages += 1
        m = _Message(
            message.topic.value, payload_bytes(message), message.mid, message.qos, time.time()
        )
        batch.messages.append(m)
        try:
            self._decode(m, batch, len(batch.messages) - 1)
        except Exception as exc:  # the subscriber must outlive anything a device sends
            log.exception("unexpected error decoding a message on %s", m.topic)
            self._dead_nowait(m, f"could not be read: {type(exc).__name__}: {exc}")

    def _decode(self, m: _Message, batch: _Batch, message_no: int) -> None:
        if len(m.payload) > self.max_payload:
            self._dead_nowait(
                m, f"payload of {len(m.payload)} bytes is over the {self.max_payload} byte limit"
            )
            return
        device = m.topic.rsplit("/", 1)[-1]
        head = m.payload.lstrip()[:1]
        if head == b"{" and device != BATCH_TOPIC:
            self._decode_on_device_topic(m, batch, message_no, device)
            return
        try:
            good, bad = decode_array(m.payload)
        except BodyError as exc:
            self._dead_nowait(m, str(exc))
            return
        m.is_array = head == b"["
        if device != BATCH_TOPIC:
            good = self._own_device_only(m, good, device)
        for rejection in bad:
            if m.is_array:
                self._dead_nowait(
                    m, rejection.error, index=rejection.index, payload=_element(m, rejection.index)
                )
            else:
                self._dead_nowait(m, rejection.error)
        m.first = len(batch.readings)
        for index, reading in good:
            batch.origin.append((message_no, index))
            batch.readings.append((len(batch.readings), reading))
        m.count = len(good)

    def _own_device_only(self, m: _Message, good: list[tuple[int, Reading]], device: str):
        kept = []
        for index, reading in good:
            if reading.device_id == device:
                kept.append((index, reading))
            elif m.is_array:
                self._dead_nowait(m, _not_the_topics(reading.device_id, device), index=index,
                                  payload=_element(m, index))
            else:
                self._dead_nowait(m, _not_the_topics(reading.device_id, device))
        return kept

    def _decode_on_device_topic(self, m: _Message, batch: _Batch, message_no: int, device: str):
        try:
            r = _topic_reading.decode(m.payload)
        except msgspec.ValidationError as exc:
            self._dead_nowait(m, str(exc))
            return
        except msgspec.DecodeError as exc:
            self._dead_nowait(m, f"payload is not valid JSON ({exc})")
            return
        if r.device_id is not None and r.device_id != device:
            self._dead_nowait(m, _not_the_topics(r.device_id, device))
            return
        m.first = len(batch.readings)
        m.count = 1
        batch.origin.append((message_no, 0))
        batch.readings.append((len(batch.readings), Reading(device, r.ts, r.value, r.values)))

    async def _process(self, client: aiomqtt.Client, batch: _Batch) -> None:
        if batch.readings:
            self._readings += len(batch.readings)
            self._batches += 1
            result = await self._ingest(batch)
            if result is not None:
                self._accepted += result.accepted
                self._duplicates += result.duplicates
                for rejection in result.rejected:
                    message_no, element = batch.origin[rejection.index]
                    m = batch.messages[message_no]
                    self._dead_nowait(
                        m,
                        rejection.error,
                        index=element if m.is_array else None,
                        payload=_element(m, element) if m.is_array else None,
                    )
        # Acknowledge only now: every message is stored or dead-lettered.
        paho = client._client  # noqa: SLF001 (see _client)
        for m in batch.messages:
            if m.qos > 0:
                paho.ack(m.mid, m.qos)

    async def _ingest(self, batch: _Batch) -> IngestResult | None:
        """Ingest the batch, waiting out overload; None when ingest failed (dead-lettered)."""
        while True:
            try:
                return await self.ingest(batch.readings, source="mqtt")
            except Overloaded as exc:
                self._overloaded += 1
                log.info("node overloaded (%s); retrying MQTT batch in %.2f s", exc.reason,
                         exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except Exception as exc:
                self._failed += 1
                log.exception("ingest failed for a batch of %d MQTT readings", len(batch.readings))
                reason = f"ingest failed: {type(exc).__name__}: {exc}"
                for m in batch.messages:
                    if m.count:
                        self._dead_nowait(m, reason)
                return None

    # -- dead letters -------------------------------------------------------------------------

    def _letter(self, m: _Message, reason: str, index: int | None, payload: str | None):
        self._dead += 1
        return DeadLetter(
            source="mqtt",
            where=m.topic,
            reason=reason,
            payload=show_payload(m.payload) if payload is None else payload,
            received_at=m.received_at,
            index=index,
        )

    def _dead_nowait(
        self, m: _Message, reason: str, index: int | None = None, payload: str | None = None
    ) -> None:
        # The sink is bounded and counts what it must drop, so adding never waits on the store.
        self.sink.add_nowait(self._letter(m, reason, index, payload))


def _not_the_topics(device_id: str, device: str) -> str:
    return (f"device_id {device_id!r} does not match the topic's device {device!r}: a device "
            f"topic takes only its own device's readings")


def _element(m: _Message, index: int) -> str:
    """The text of one element of an array payload (for the dead letter of that element)."""
    try:
        return show_payload(bytes(_raw_list.decode(m.payload)[index]))
    except (msgspec.MsgspecError, IndexError):
        return show_payload(m.payload)
