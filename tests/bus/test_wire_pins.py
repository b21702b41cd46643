"""The wire format is a promise to messages already in a stream: bytes one version of the node
published must decode the same in the next. Each subject has one message pinned here as the
bytes it encoded to when pinned; a change that alters them breaks running clusters (or needs
a new codec version), so the pins are never regenerated to make this pass."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from cityops.bus import subjects
from cityops.bus.messages import IncidentChange
from cityops.bus.subjects import codec_for
from cityops.domain.alerts import Alert, AlertEvent, Evidence
from cityops.domain.city import AreaCodes
from cityops.domain.incidents.model import Incident, Status
from cityops.domain.readings import (
    CHANNEL_DTYPE,
    DEVICE_DTYPE,
    TS_DTYPE,
    VALUE_DTYPE,
    ReadingBatch,
)

T0_US = 1_700_000_000_000_000


def _batch(source: str) -> ReadingBatch:
    # received_ns 0 means "not measured" and crosses as 0: no clock in the bytes.
    return ReadingBatch(
        np.array([7, 40_001, 7], DEVICE_DTYPE), np.array([0, 3, 1], CHANNEL_DTYPE),
        np.array([T0_US, T0_US + 1000, T0_US + 2000], TS_DTYPE),
        np.array([12.5, -3.25, 1e6], VALUE_DTYPE), 0, source, {"gateway": "gw-7"})


_ALERT = Alert(
    id="noise.loud:000001", scenario="noise", rule="noise.loud", category="env.noise",
    severity="moderate", urgency="expected", departments=["ecology"], subject="noise-000001",
    title="loud \u4e2d", areas=AreaCodes("310115", "310115001", "310115001001"),
    first_seen=1_700_000_000.0, last_seen=1_700_000_060.0, value=72.5,
    evidence=[Evidence("noise-000001", "laeq", 1_700_000_000.0, 72.5)])

_INCIDENT = Incident(
    id="inc-00001", category="event.sanitation.exposed_garbage", kind="event",
    title="garbage", source="sensor", status=Status.DISPATCHED, reported_at=1000.0,
    updated_at=1001.0, alert_id="noise.loud:000001", version=3)

MESSAGES = {
    "readings": _batch("http"),
    "rejections": _batch("mqtt"),
    "alerts": [AlertEvent("raised", _ALERT), AlertEvent("cleared", _ALERT)],
    "incidents": IncidentChange("dispatch", _INCIDENT),
}

PINNED = {
    "readings": (
        "4352420116000000940300a46874747081a767617465776179a467772d37000000401e18240a0600e8431e18"
        "240a0600d0471e18240a060000000000000029400000000000000ac00000000080842e4107000000419c0000"
        "07000000000301"
    ),
    "rejections": (
        "4352420116000000940300a46d71747481a767617465776179a467772d37000000401e18240a0600e8431e18"
        "240a0600d0471e18240a060000000000000029400000000000000ac00000000080842e4107000000419c0000"
        "07000000000301"
    ),
    "alerts": (
        "9283a66368616e6765a6726169736564a5616c657274de0017a26964b16e6f6973652e6c6f75643a30303030"
        "3031a87363656e6172696fa56e6f697365a472756c65aa6e6f6973652e6c6f7564a863617465676f7279a965"
        "6e762e6e6f697365a87365766572697479a86d6f646572617465a7757267656e6379a86578706563746564ab"
        "6465706172746d656e747391a765636f6c6f6779a77375626a656374ac6e6f6973652d303030303031a57469"
        "746c65a86c6f756420e4b8ada664657461696ca0a5617265617383a86469737472696374a6333130313135a4"
        "746f776ea9333130313135303031a776696c6c616765ac333130313135303031303031a463656c6cc0a36c61"
        "74c0a36c6f6ec0aa66697273745f7365656ecb41d954fc40000000a96c6173745f7365656ecb41d954fc4f00"
        "0000aa636c65617265645f6174c0a6616374697665c3a576616c7565cb4052200000000000a7757064617465"
        "7300a865766964656e63659194ac6e6f6973652d303030303031a46c616571cb41d954fc40000000cb405220"
        "0000000000a57374617465a56461696c79ad6175746f5f7265676973746572c3ac7075626c69736865645f6e"
        "730083a66368616e6765a7636c6561726564a5616c657274de0017a26964b16e6f6973652e6c6f75643a3030"
        "30303031a87363656e6172696fa56e6f697365a472756c65aa6e6f6973652e6c6f7564a863617465676f7279"
        "a9656e762e6e6f697365a87365766572697479a86d6f646572617465a7757267656e6379a865787065637465"
        "64ab6465706172746d656e747391a765636f6c6f6779a77375626a656374ac6e6f6973652d303030303031a5"
        "7469746c65a86c6f756420e4b8ada664657461696ca0a5617265617383a86469737472696374a63331303131"
        "35a4746f776ea9333130313135303031a776696c6c616765ac333130313135303031303031a463656c6cc0a3"
        "6c6174c0a36c6f6ec0aa66697273745f7365656ecb41d954fc40000000a96c6173745f7365656ecb41d954fc"
        "4f000000aa636c65617265645f6174c0a6616374697665c3a576616c7565cb4052200000000000a775706461"
        "74657300a865766964656e63659194ac6e6f6973652d303030303031a46c616571cb41d954fc40000000cb40"
        "52200000000000a57374617465a56461696c79ad6175746f5f7265676973746572c3ac7075626c6973686564"
        "5f6e7300"
    ),
    "incidents": (
        "82a66368616e6765a86469737061746368a8696e636964656e74de0025a26964a9696e632d3030303031a863"
        "617465676f7279d9206576656e742e73616e69746174696f6e2e6578706f7365645f67617262616765a46b69"
        "6e64a56576656e74a57469746c65a767617262616765ab6465736372697074696f6ea0a6736f75726365a673"
        "656e736f72a6737461747573aa64697370617463686564a7757267656e6379a66e6f726d616ca87365766572"
        "697479a0a36c6174c0a36c6f6ec0a56172656173c0a463656c6cc0ab7265706f727465645f6174cb408f4000"
        "00000000aa757064617465645f6174cb408f480000000000ad726567697374657265645f6174c0ad64697370"
        "6174636865645f6174c0ab61636365707465645f6174c0aa68616e646c65645f6174c0ab7665726966696564"
        "5f6174c0a9636c6f7365645f6174c0ac63616e63656c6c65645f6174c0ac64697370617463685f647565c0b0"
        "64697370617463685f6f766572647565c2a9636c6f73655f647565c0a77265706f72747301ae6c6173745f72"
        "65706f72745f6174c0a66f726465727390b364656661756c745f6465706172746d656e747390a77265776f72"
        "6b7300a772657475726e7300a872656f70656e656400a6766f69646564c2a87061726b65645f73cb00000000"
        "00000000a8616c6572745f6964b16e6f6973652e6c6f75643a303030303031a6726561736f6ea0a776657273"
        "696f6e03"
    ),
}


def test_every_declared_subject_has_a_pin():
    assert set(PINNED) == set(subjects.SUBJECTS)


@pytest.mark.parametrize("subject", sorted(PINNED))
def test_pinned_bytes_decode_to_the_message(subject):
    back = codec_for(subject).decode(bytes.fromhex(PINNED[subject]))
    want = MESSAGES[subject]
    if isinstance(want, ReadingBatch):
        for name in ("device", "channel", "ts", "value"):
            np.testing.assert_array_equal(getattr(back, name), getattr(want, name))
            assert getattr(back, name).dtype == getattr(want, name).dtype
        assert (back.received_ns, back.source, back.meta) == (0, want.source, want.meta)
    else:
        assert back == want


@pytest.mark.parametrize("subject", sorted(PINNED))
def test_the_message_encodes_to_the_pinned_bytes(subject):
    assert codec_for(subject).encode(MESSAGES[subject]).hex() == PINNED[subject]



def _is_a(message: object, kind: object) -> bool:
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        return isinstance(message, list) and all(isinstance(m, item) for m in message)
    return isinstance(message, kind)  # type: ignore[arg-type]


def test_each_subject_declares_the_type_that_travels_on_it():
    for name, declared in subjects.SUBJECTS.items():
        assert declared.name == name
        assert _is_a(MESSAGES[name], declared.message), name
    # Device-keyed partitions only where the message is a ReadingBatch to split.
    assert subjects.PARTITIONED == {n for n, d in subjects.SUBJECTS.items()
                                    if d.message is ReadingBatch}
