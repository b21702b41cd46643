"""Frigate intake: a real NVR's object-detection events, as camera readings.

Frigate publishes one message per change of a tracked object on `<topic_prefix>/events`:
`type` (new, update, end) and the object `before` and `after` the change (`id`, `camera`,
`label`, `sub_label`, `score`/`top_score`, `current_zones`, `start_time`, `end_time`,
`has_snapshot`, `has_clip`, `stationary` ...). The city pack's frigate.yaml
(packs/frigate_file.py) says which camera and zone is which CityOps camera device, and which
objects in a zone mean which camera event. This module keeps the objects each mapped camera is
tracking and turns them into what a CityOps camera reports: the `event` code its zones now
show and the `dwell`, seconds the event has lasted. Those readings go through
`Ingestor.ingest(..., source="frigate")` like any others: validation, the WAL, detection.

What a device reports is worked out from all the objects in its zones, not message by
message: two cars in a fire lane are one event that lasts until the last one leaves; a crowd
is an event while at least `min_count` people are in the zone, lasting from when the count was
first reached. A reading is sent when the event changes (`end`, or the object leaving the
zone, sends event 0 once nothing else is there, so the episode clears) and every `report_s`
while it lasts: Frigate says nothing while a parked car stands still, and the rules need to
see the dwell grow. Dwell counts from when the object was first reported in the zone; for an
object first seen there, from its `start_time`.

Time is the node's clock (a replay's or a test's own), so readings are in the node's time
base and an NVR whose clock is off does not move them; Frigate's own times are used only as
differences (how long before a message its object appeared).

Bad input never stops the intake: a message that is not JSON, lacks a field, has a wrong type,
names a camera frigate.yaml does not know, or is too large becomes a dead letter with the
reason (source "frigate"). Memory is bounded: at most `max_events` objects are followed (the
least recently heard from is let go, as if it had ended), and one not heard from for `stale_s`
is let go too (an NVR restarted without sending `end`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

import aiomqtt
import msgspec

from cityops.background import Background
from cityops.domain.kinds import CAMERA_EVENTS
from cityops.ingest.deadletters import DeadLetterSink
from cityops.ingest.decode import Reading
from cityops.ingest.mqtt import show_payload
from cityops.ingest.mqtt_link import BrokerIntake, payload_bytes
from cityops.ingest.pipeline import IngestResult, Overloaded
from cityops.packs.frigate_file import ANYWHERE, CameraMap, FrigateMap, ServerMap, ZoneMap
from cityops.store.base import DeadLetter

log = logging.getLogger(__name__)

SOURCE = "frigate"
MAX_PAYLOAD = 64 * 1024  # Frigate's event messages are 1-3 KB
MAX_DWELL_S = 86400.0  # the camera kind's dwell channel range
OVERLOAD_TRIES = 20
CAUSES_KEPT = 8  # per device: recent events an alert may be matched to

Ingest = Callable[..., Awaitable[IngestResult]]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Zones = Annotated[list[Annotated[str, msgspec.Meta(max_length=128)]],
                  msgspec.Meta(max_length=64)]
Seconds = Annotated[float, msgspec.Meta(ge=0.0)]


class FrigateObject(msgspec.Struct, frozen=True):
    """One tracked object as Frigate reports it; fields this intake does not use (box, region,
    area, attributes ...) are let through unread, so newer Frigate versions still decode."""

    id: Text
    camera: Text
    label: Text
    start_time: Seconds
    frame_time: Seconds | None = None
    end_time: Seconds | None = None
    # A string before Frigate 0.14, [name, score] since; null when there is none.
    sub_label: str | list[str | float] | None = None
    score: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    top_score: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    current_zones: Zones = []
    entered_zones: Zones = []
    has_snapshot: bool = False
    has_clip: bool = False
    stationary: bool = False
    false_positive: bool = False

    @property
    def sub_name(self) -> str | None:
        if isinstance(self.sub_label, list):
            first = self.sub_label[0] if self.sub_label else None
            return first if isinstance(first, str) else None
        return self.sub_label

    @property
    def best_score(self) -> float:
        return self.top_score if self.top_score is not None else self.score


class FrigateMessage(msgspec.Struct, frozen=True):
    type: Literal["new", "update", "end"]
    after: FrigateObject
    before: FrigateObject | None = None


_decoder = msgspec.json.Decoder(FrigateMessage)


class BadMessage(ValueError):
    """A message this intake cannot take; its text is the dead letter's reason."""


def decode_message(payload: bytes, max_payload: int = MAX_PAYLOAD) -> FrigateMessage:
    if len(payload) > max_payload:
        raise BadMessage(f"payload of {len(payload)} bytes is over the {max_payload} byte limit")
    try:
        message = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise BadMessage(f"not a Frigate event: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadMessage(f"payload is not valid JSON ({exc})") from None
    after = message.after
    for name in ("start_time", "frame_time", "end_time"):
        value = getattr(after, name)
        if value is not None and not math.isfinite(value):
            raise BadMessage(f"after.{name} must be a finite number of seconds, got {value}")
    if message.before is not None and message.before.id != after.id:
        raise BadMessage(f"before.id {message.before.id!r} and after.id {after.id!r} differ: "
                         f"one message is about one tracked object")
    return message


@dataclass(frozen=True, slots=True)
class Cause:
    """The Frigate event behind what a device reports: what the evidence of its alert is."""

    device: str
    event: str  # CityOps camera event name
    at: float  # node time it began to be reported
    frigate_event: str
    server: str
    server_url: str
    camera: str  # Frigate's camera name
    zone: str
    label: str
    sub_label: str | None = None

    @property
    def snapshot_url(self) -> str:
        return f"{self.server_url.rstrip('/')}/api/events/{self.frigate_event}/snapshot.jpg"

    @property
    def clip_url(self) -> str:
        return f"{self.server_url.rstrip('/')}/api/events/{self.frigate_event}/clip.mp4"


@dataclass(slots=True)
class _Tracked:
    event_id: str
    server: ServerMap
    camera: CameraMap
    label: str
    sub_label: str | None
    score: float
    zones: dict[str, float]  # mapped zone -> node time the object was first seen in it
    heard_at: float


@dataclass(slots=True)
class _Device:
    code: int = 0
    since: float = 0.0
    last_ts: float = 0.0  # newest reading time given: each next one is later
    reported_at: float = 0.0
    counts: dict[tuple[str, str, str, int], float] = field(default_factory=dict)
    causes: deque[Cause] = field(default_factory=lambda: deque(maxlen=CAUSES_KEPT))


Emit = tuple[str, float, int, float]  # device, ts, event code, dwell


class FrigateTracker:
    """The objects each mapped camera follows and what each device reports: pure state, fed
    decoded messages and the node's time, answering the readings to send."""

    def __init__(self, mapping: FrigateMap, *, max_events: int = 10_000,
                 stale_s: float = 6 * 3600.0, report_s: float = 30.0) -> None:
        self.mapping = mapping
        self.max_events = max_events
        self.stale_s = stale_s
        self.report_s = report_s
        self.events: OrderedDict[str, _Tracked] = OrderedDict()
        self.devices: dict[str, _Device] = {}
        self.evicted = 0  # let go over max_events
        self.expired = 0  # let go after stale_s without a word
        # device -> the zones that report as it; (server, camera) -> the objects it follows
        self.zones_of: dict[str, list[tuple[ServerMap, CameraMap, ZoneMap]]] = {}
        for (server_name, _), camera in mapping.cameras.items():
            server = mapping.servers[server_name]
            for zone in camera.zones:
                device = zone.device or camera.device
                self.zones_of.setdefault(device, []).append((server, camera, zone))
        self.by_camera: dict[tuple[str, str], set[str]] = {}

    def take(self, topic: str, message: FrigateMessage, now: float) -> list[Emit]:
        """The readings a message calls for (maybe none). Raises BadMessage for a camera the
        mapping does not know."""
        after = message.after
        found = self.mapping.camera(topic, after.camera)
        if found is None:
            raise BadMessage(f"unknown camera {after.camera!r}: frigate.yaml maps no camera "
                             f"of that name to a CityOps device for {topic}")
        server, camera = found
        ended = message.type == "end" or after.end_time is not None or after.false_positive
        tracked = self.events.get(after.id)
        touched: set[str] = set()
        if tracked is not None:
            touched.update(self._devices_of(tracked))
        if ended:
            if tracked is not None:
                self._forget(after.id)
            return self._settle(touched, now)
        first = tracked is None
        if tracked is None:
            tracked = _Tracked(after.id, server, camera, after.label, after.sub_name,
                               after.best_score, {}, now)
            self.events[after.id] = tracked
            self.by_camera.setdefault((server.name, camera.name), set()).add(after.id)
        else:
            self.events.move_to_end(after.id)
            tracked.label, tracked.sub_label = after.label, after.sub_name
            tracked.score = max(tracked.score, after.best_score)
            tracked.heard_at = now
        # How long before this message the object appeared, in Frigate's own time.
        age = 0.0
        if first and after.frame_time is not None:
            age = min(max(after.frame_time - after.start_time, 0.0), MAX_DWELL_S)
        inside = set(after.current_zones)
        zones: dict[str, float] = {}
        for zone in camera.zones:
            if zone.name == ANYWHERE or zone.name in inside:
                zones[zone.name] = tracked.zones.get(zone.name, now - age)
        tracked.zones = zones
        touched.update(self._devices_of(tracked))
        emits = self._settle(touched, now)
        while len(self.events) > self.max_events:
            oldest = next(iter(self.events))
            self.evicted += 1
            gone = self._devices_of(self.events[oldest])
            self._forget(oldest)
            emits += self._settle(gone, now)
        return emits

    def tick(self, now: float) -> list[Emit]:
        """Let go of objects not heard from for `stale_s`; report the dwell of every device
        whose event lasts and was last reported `report_s` ago or more."""
        touched: set[str] = set()
        for event_id in [e for e, t in self.events.items() if now - t.heard_at >= self.stale_s]:
            touched.update(self._devices_of(self.events[event_id]))
            self._forget(event_id)
            self.expired += 1
        emits = self._settle(touched, now)
        settled = {e[0] for e in emits}
        for device, state in self.devices.items():
            if state.code and device not in settled and now - state.reported_at >= self.report_s:
                emits.append(self._emit(device, state, now))
        return emits

    def cause_for(self, device: str, at: float) -> Cause | None:
        """The event a device's alert raised at `at` (node time) came from: the newest that
        began at or before it."""
        state = self.devices.get(device)
        if state is None:
            return None
        for cause in reversed(state.causes):
            if cause.at <= at + 1e-3:
                return cause
        return None

    def current(self, device: str) -> tuple[int, float] | None:
        state = self.devices.get(device)
        return None if state is None else (state.code, state.since)

    # -- inside ---------------------------------------------------------------------------------

    def _devices_of(self, tracked: _Tracked) -> set[str]:
        return {(z.device or tracked.camera.device) for z in tracked.camera.zones
                if z.name in tracked.zones}

    def _forget(self, event_id: str) -> None:
        tracked = self.events.pop(event_id)
        key = (tracked.server.name, tracked.camera.name)
        followed = self.by_camera.get(key)
        if followed is not None:
            followed.discard(event_id)
            if not followed:
                del self.by_camera[key]

    def _settle(self, devices: set[str], now: float) -> list[Emit]:
        emits = []
        for device in sorted(devices):
            state = self.devices.get(device)
            if state is None:
                state = self.devices[device] = _Device()
            code, since, cause = self._judge(device, state, now)
            if code == state.code and (code == 0 or since == state.since):
                state.since = since
                continue
            changed = code != state.code
            state.code, state.since = code, since
            if changed and cause is not None:
                state.causes.append(cause)
            emits.append(self._emit(device, state, now))
        return emits

    def _emit(self, device: str, state: _Device, now: float) -> Emit:
        ts = max(now, state.last_ts + 1e-3)
        state.last_ts = ts
        state.reported_at = now
        dwell = min(max(ts - state.since, 0.0), MAX_DWELL_S) if state.code else 0.0
        return device, ts, state.code, dwell

    def _judge(self, device: str, state: _Device, now: float) -> tuple[int, float, Cause | None]:
        """The event a device's zones show now, since when, and the object behind it. The
        event already reported wins while it lasts (a second event does not cut it short);
        otherwise the one that has lasted longest."""
        best: tuple[int, float, Cause] | None = None
        keep: tuple[int, float, Cause] | None = None
        live_counts = set()
        for server, camera, zone in self.zones_of.get(device, ()):
            ids = self.by_camera.get((server.name, camera.name), ())
            inside = [self.events[e] for e in ids if zone.name in self.events[e].zones]
            for index, mapping in enumerate(zone.events):
                matching = [t for t in inside
                            if mapping.takes(t.label, t.sub_label, t.score)]
                key = (server.name, camera.name, zone.name, index)
                if len(matching) < mapping.min_count:
                    continue
                oldest = min(matching, key=lambda t: t.zones[zone.name])
                if mapping.min_count > 1:
                    live_counts.add(key)
                    since = state.counts.setdefault(key, now)
                else:
                    since = oldest.zones[zone.name]
                cause = Cause(device, mapping.event, now, oldest.event_id, server.name,
                              server.url, camera.name, zone.name, oldest.label,
                              oldest.sub_label)
                found = (mapping.code, since, cause)
                if best is None or since < best[1]:
                    best = found
                if mapping.code == state.code and (keep is None or since < keep[1]):
                    keep = found
        for key in [k for k in state.counts if k not in live_counts]:
            del state.counts[key]
        chosen = keep or best
        if chosen is None:
            return 0, 0.0, None
        return chosen


class FrigateStats(msgspec.Struct):
    connected: bool
    messages: int
    handled: int  # messages done with: their readings ingested, or dead-lettered
    readings: int  # sent to ingest
    accepted: int
    dead_letters: int
    followed: int  # objects followed now
    evicted: int  # let go over the cap
    expired: int  # let go for silence
    reconnects: int
    dropped: int  # messages that found the local queue full
    failed_batches: int


class FrigateIntake(BrokerIntake):
    """Subscribes to each mapped server's events topic and feeds the node's ingest."""

    def __init__(
        self,
        mapping: FrigateMap,
        url: str,
        ingest: Ingest,
        sink: DeadLetterSink,
        clock: Callable[[], float] = time.time,
        *,
        report_s: float = 30.0,
        tick_s: float = 1.0,
        max_events: int = 10_000,
        stale_s: float = 6 * 3600.0,
        max_payload: int = MAX_PAYLOAD,
        queue: int = 10_000,
        client_id: str | None = None,
        backoff_s: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        super().__init__("Frigate intake", "frigate-intake", url, mapping.topics,
                         client_id=client_id, backoff_s=backoff_s)
        self.mapping = mapping
        self.ingest = ingest
        self.sink = sink
        self.clock = clock
        self.tick_s = tick_s
        self.max_payload = max_payload
        self.queue = queue
        self.tracker = FrigateTracker(mapping, max_events=max_events, stale_s=stale_s,
                                      report_s=report_s)
        self._ticker = Background("frigate-ticker", self._tick_loop)
        self._lock = asyncio.Lock()  # readings leave in the order their times were given
        self._messages = 0
        self._handled = 0
        self._readings = 0
        self._accepted = 0
        self._dead = 0
        self._failed = 0

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        self._ticker.start()

    async def stop(self) -> None:
        await self._ticker.stop()
        await super().stop()

    @property
    def stats(self) -> FrigateStats:
        return FrigateStats(
            connected=self.connected, messages=self._messages, handled=self._handled,
            readings=self._readings,
            accepted=self._accepted, dead_letters=self._dead,
            followed=len(self.tracker.events), evicted=self.tracker.evicted,
            expired=self.tracker.expired, reconnects=self._reconnects, dropped=self._dropped,
            failed_batches=self._failed)

    # -- MQTT -------------------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        return self._new_client(self.queue)

    async def _consume(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            await self.take(message.topic.value, payload_bytes(message))

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.tick()
            except Exception:  # the ticker must outlive a failed round
                log.exception("Frigate intake: reporting dwell times failed")

    # -- the work ---------------------------------------------------------------------------

    async def take(self, topic: str, payload: bytes) -> None:
        """One message from Frigate: readings to ingest, or a dead letter."""
        self._messages += 1
        try:
            await self._take(topic, payload)
        finally:
            self._handled += 1

    async def _take(self, topic: str, payload: bytes) -> None:
        received = time.time()
        try:
            message = decode_message(payload, self.max_payload)
            emits = self.tracker.take(topic, message, self.clock())
        except BadMessage as exc:
            self._letter(topic, payload, str(exc), received)
            return
        except Exception as exc:  # nothing an NVR sends may stop the intake
            log.exception("unexpected error taking a Frigate message on %s", topic)
            self._letter(topic, payload, f"could not be read: {type(exc).__name__}: {exc}",
                         received)
            return
        await self._send(emits, topic, payload, received)

    async def tick(self) -> None:
        """Report the dwell of lasting events (called every `tick_s`; tests call it after
        moving their clock)."""
        emits = self.tracker.tick(self.clock())
        await self._send(emits, "(dwell report)", b"", time.time())

    async def _send(self, emits: list[Emit], topic: str, payload: bytes,
                    received: float) -> None:
        if not emits:
            return
        readings = [(i, Reading(device, ts, None, {"event": float(code), "dwell": dwell}))
                    for i, (device, ts, code, dwell) in enumerate(emits)]
        async with self._lock:
            result = await self._ingest(readings)
        if result is None:
            self._letter(topic, payload, "ingest failed; see the node's log", received)
            return
        self._readings += len(readings)
        self._accepted += result.accepted
        for rejection in result.rejected:
            device = emits[rejection.index][0]
            self._letter(topic, payload, f"device {device!r}: {rejection.error}", received)

    async def _ingest(self, readings: list[tuple[int, Reading]]) -> IngestResult | None:
        for _ in range(OVERLOAD_TRIES):
            try:
                return await self.ingest(readings, source=SOURCE)
            except Overloaded as exc:
                await asyncio.sleep(exc.retry_after)
            except Exception:
                self._failed += 1
                log.exception("ingest failed for %d Frigate readings", len(readings))
                return None
        self._failed += 1
        log.warning("node overloaded for %d tries; %d Frigate readings dead-lettered",
                    OVERLOAD_TRIES, len(readings))
        return None

    def _letter(self, topic: str, payload: bytes, reason: str, received: float) -> None:
        self._dead += 1
        self.sink.add_nowait(DeadLetter(source=SOURCE, where=topic, reason=reason,
                                        payload=show_payload(payload), received_at=received))


def event_name(code: int) -> str:
    return CAMERA_EVENTS.get(code, f"event {code}")
