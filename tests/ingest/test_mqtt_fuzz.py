"""Fuzzed MQTT payloads against the real Mosquitto: random bytes, huge bodies, deeply nested
JSON, wrong types and shapes. Every one lands as a dead letter with a reason; the intake keeps
taking good readings in between."""

from __future__ import annotations

import json
import random

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_mqtt import NOISE, eventually, harness, reading

pytestmark = pytest.mark.services

# Each strategy makes payloads that can never be a valid reading batch.
random_bytes = st.binary(min_size=1, max_size=2048).filter(lambda b: not b.strip().startswith(
    (b"[", b"{")))
deep = st.integers(min_value=200, max_value=20_000).map(lambda n: b"[" * n + b"]" * n)
deep_objects = st.integers(min_value=200, max_value=5_000).map(
    lambda n: ('{"a":' * n + "1" + "}" * n).encode())
huge = st.integers(min_value=300_000, max_value=1_500_000).map(
    lambda n: b'[{"device_id":"' + b"x" * n + b'"}]')
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                   st.text(max_size=20))
wrong_types = st.fixed_dictionaries({
    "device_id": st.one_of(st.integers(), st.lists(scalar, max_size=3), st.none()),
    "ts": scalar,
    "value": st.one_of(st.text(min_size=1, max_size=5), st.lists(st.integers(), max_size=2)),
}).map(lambda d: msgspec.json.encode([d]))
wrong_shapes = st.one_of(
    st.lists(scalar, min_size=1, max_size=5).map(lambda v: json.dumps([v]).encode()),
    st.dictionaries(st.text(max_size=8), scalar, max_size=4).filter(
        lambda d: "device_id" not in d).map(lambda d: json.dumps([d]).encode()),
)
FUZZ = st.one_of(random_bytes, deep, deep_objects, huge, wrong_types, wrong_shapes)


@pytest.mark.timeout(300)
async def test_fuzzed_payloads_all_become_dead_letters(mqtt_url):
    payloads: list[bytes] = []

    @given(FUZZ)
    @settings(max_examples=150, database=None, suppress_health_check=list(HealthCheck),
              deadline=None)
    def collect(payload: bytes) -> None:
        payloads.append(payload)

    collect()
    random.Random(7).shuffle(payloads)
    async with harness(mqtt_url) as h:
        good = 0
        for i, payload in enumerate(payloads):
            await h.publish("batch", payload)
            if i % 25 == 0:  # a good reading now and then: the intake must still take them
                await h.publish(NOISE, reading(value=40.0 + good % 10))
                good += 1
        letters = await h.letters(len(payloads))
        await eventually(lambda: len(h.recorder.taken) == good, timeout=30)
        assert len(letters) == len(payloads) >= 100
        assert all(letter.reason for letter in letters)
        assert all(len(letter.payload) <= 4096 + 40 for letter in letters)  # kept, but cut
        assert h.intake.stats.connected
