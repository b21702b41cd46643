import msgspec
import numpy as np
import pytest

from cityops.domain.city import Device
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.registry import DeviceRegistry
from cityops.ingest.decode import decode_array
from cityops.ingest.validate import Limits, to_batch

NOW = 1_800_000_000.0


@pytest.fixture
def registry():
    r = DeviceRegistry(BUILTIN_KINDS)
    r.add([Device("n1", "noise", 31.2, 121.5), Device("aq1", "air_quality", 31.2, 121.5),
           Device("bus7", "gps", 31.2, 121.5)])
    return r


def check(registry, rows, limits=Limits()):
    readings, rejected = decode_array(msgspec.json.encode(rows))
    assert rejected == []
    return to_batch(readings, registry, int(NOW * 1e6), limits)


def test_good_readings_become_columns(registry):
    batch, rejected, origin = check(registry, [
        {"device_id": "n1", "ts": NOW - 5, "value": 48.5},
        {"device_id": "aq1", "ts": NOW, "values": {"pm25": 35, "o3": 80}},
        {"device_id": "bus7", "ts": NOW, "values": {"lat": 31.21, "lon": 121.52}},
    ])
    assert rejected == []
    assert batch.device.tolist() == [0, 1, 1, 2, 2]
    assert batch.channel.tolist() == [0, 0, 3, 0, 1]
    assert batch.value.tolist() == [48.5, 35, 80, 31.21, 121.52]
    assert batch.ts[0] == int((NOW - 5) * 1e6)
    assert origin.tolist() == [0, 1, 1, 2, 2]


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"device_id": "ghost", "ts": NOW, "value": 1}, "unknown device 'ghost'"),
        ({"device_id": "n1", "ts": NOW, "value": 151}, "outside the valid range 0..150 dB(A)"),
        ({"device_id": "n1", "ts": NOW, "value": -0.5}, "outside the valid range"),
        ({"device_id": "n1", "ts": NOW + 3600, "value": 50}, "3600 s in the future"),
        ({"device_id": "n1", "ts": NOW - 8 * 86400, "value": 50}, "late-delivery window"),
        ({"device_id": "n1", "ts": NOW * 1000, "value": 50}, "epoch seconds"),
        ({"device_id": "n1", "ts": NOW}, "neither `value` nor `values`"),
        ({"device_id": "aq1", "ts": NOW, "values": {"pm25": 1, "co2": 400}}, "got co2"),
        ({"device_id": "aq1", "ts": NOW, "values": {}}, "got none"),
        ({"device_id": "aq1", "ts": NOW, "value": 1, "values": {"pm25": 1}}, "not both"),
        ({"device_id": "aq1", "ts": NOW, "values": {"pm25": 1, "pm10": 99999}}, "pm10"),
        ({"device_id": "bus7", "ts": NOW, "values": {"lat": 91, "lon": 0}}, "-90..90 deg"),
    ],
)
def test_every_rejection_reason(registry, row, reason):
    good = {"device_id": "n1", "ts": NOW, "value": 50}
    batch, rejected, _ = check(registry, [good, row, {**good, "ts": NOW - 1}])
    assert [r.index for r in rejected] == [1]
    assert reason in rejected[0].error
    assert len(batch) == 2  # the good ones are kept
    assert batch.device.tolist() == [0, 0]


def test_exact_range_edges_are_valid(registry):
    batch, rejected, _ = check(registry, [
        {"device_id": "n1", "ts": NOW, "value": 0.0},
        {"device_id": "n1", "ts": NOW + 1, "value": 150.0},
        {"device_id": "n1", "ts": NOW + 300, "value": 1},  # exactly the skew allowance
    ])
    assert rejected == [] and len(batch) == 3


def test_non_finite_values_are_rejected(registry):
    readings, _ = decode_array(msgspec.json.encode([{"device_id": "n1", "ts": NOW, "value": 1}]))
    # JSON has no NaN; a source decoding another way could still hand one over.
    bad = [(0, msgspec.structs.replace(readings[0][1], value=float("nan")))]
    batch, rejected, _ = to_batch(bad, registry, int(NOW * 1e6))
    assert len(batch) == 0 and "outside the valid range" in rejected[0].error


def test_validation_is_columnar_at_scale(registry):
    rows = [{"device_id": "n1", "ts": NOW - i, "value": float(i % 100)} for i in range(50_000)]
    rows[123]["device_id"] = "nobody"
    batch, rejected, origin = check(registry, rows)
    assert len(batch) == 49_999 and [r.index for r in rejected] == [123]
    assert not np.isin(123, origin)
