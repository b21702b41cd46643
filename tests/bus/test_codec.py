"""The wire codecs: every bus message type survives the round trip; reading batches decode
without copying; partitions are a fixed function of the device."""

from __future__ import annotations

import time

import msgspec
import numpy as np
import pytest

from cityops.bus import subjects
from cityops.bus.codec import CodecError, ReadingBatchCodec
from cityops.bus.subjects import codec_for
from cityops.bus.nats import partition_of, share, split_by_partition
from cityops.domain.readings import ReadingBatch

from . import samples


def test_reading_batch_round_trip_is_exact_and_zero_copy():
    batch = samples.batch(5000)
    batch.meta = {"gateway": "gw-7", "n": 3}
    batch.received_ns = time.monotonic_ns() - 250_000_000  # arrived 250 ms ago
    data = subjects.encode("readings", batch)
    assert len(data) < 5000 * 21 + 64  # the columns and a small header, nothing per row
    back = subjects.decode("readings", data)
    for name in ("device", "channel", "ts", "value"):
        column = getattr(back, name)
        assert column.dtype == getattr(batch, name).dtype
        np.testing.assert_array_equal(column, getattr(batch, name))
        assert np.shares_memory(column, np.frombuffer(data, np.uint8))  # no copy made
        assert not column.flags.writeable and column.flags.aligned
    assert (back.source, back.meta) == ("http", {"gateway": "gw-7", "n": 3})
    # The arrival instant crosses as wall-clock time: the age is kept, within clock noise.
    age_ms = (time.monotonic_ns() - back.received_ns) / 1e6
    assert 249 < age_ms < 1000


def test_reading_batch_edge_cases():
    empty = subjects.decode("rejections", subjects.encode("rejections", ReadingBatch.empty()))
    assert len(empty) == 0 and empty.received_ns == 0
    # Columns of another width are converted to the wire's types.
    wide = samples.batch(10)
    wide.device = wide.device.astype(np.int64)
    np.testing.assert_array_equal(subjects.decode("readings", subjects.encode("readings", wide)).device,
                                  wide.device)
    # A non-contiguous view encodes as its values.
    strided = samples.batch(20)
    strided = ReadingBatch(strided.device[::2], strided.channel[::2], strided.ts[::2],
                           strided.value[::2])
    assert samples.rows_of([subjects.decode("readings", subjects.encode("readings", strided))]) == \
        samples.rows_of([strided])


@pytest.mark.parametrize("damage", ["truncate", "magic", "rows", "empty"])
def test_a_damaged_reading_batch_is_refused(damage):
    data = bytearray(subjects.encode("readings", samples.batch(100)))
    if damage == "truncate":
        data = data[:-5]
    elif damage == "magic":
        data[0:3] = b"XYZ"
    elif damage == "rows":
        data[8] ^= 0x01  # the header's first field is the row count
    else:
        data = bytearray()
    with pytest.raises(CodecError):
        subjects.decode("readings", bytes(data))


def test_mismatched_columns_are_refused():
    bad = samples.batch(10)
    bad.value = bad.value[:5]
    with pytest.raises(CodecError):
        ReadingBatchCodec().encode(bad)
    with pytest.raises(CodecError):
        subjects.encode("readings", [1, 2, 3])


def test_alert_events_round_trip():
    events = samples.events(7, count=3)
    back = subjects.decode("alerts", subjects.encode("alerts", events))
    assert [msgspec.structs.replace(e, published_ns=0) for e in back] == \
        [msgspec.structs.replace(e, published_ns=0) for e in events]
    # published_ns is a monotonic instant; it comes back as one on this machine's clock.
    for sent, got in zip(events, back):
        assert abs(got.published_ns - sent.published_ns) < 50_000_000


def test_incident_change_round_trip():
    change = samples.incident_change(4)
    assert subjects.decode("incidents", subjects.encode("incidents", change)) == change
    with pytest.raises(CodecError):
        subjects.decode("incidents", subjects.encode("alerts", samples.events(1)))


def test_undeclared_subjects_have_no_codec():
    with pytest.raises(CodecError, match="no wire codec"):
        codec_for("nobody-declared-this")
    with pytest.raises(CodecError, match="no wire codec"):
        subjects.encode("test-pings", {"n": 3})


def test_a_subject_builds_its_codec_once():
    assert codec_for("alerts") is codec_for("alerts")
    assert codec_for("readings") is not codec_for("rejections")  # each its own, same kind


def test_reading_codec_throughput():
    """Loose floor (the measured rate is ~100x higher): a regression to per-row work would
    fail it; ordinary machine load would not."""
    batch = samples.batch(5000)
    c = codec_for("readings")
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(100):
            c.decode(c.encode(batch))
        best = min(best, (time.perf_counter() - t) / 100)
    assert 5000 / best > 5_000_000, f"{5000 / best:,.0f} readings/s"


# -- partitions ------------------------------------------------------------------------------


def test_partition_of_is_a_fixed_function_of_the_device():
    # Pinned: a change here moves devices between detect workers (see nats.py). The reference
    # is the same hash in plain integers.
    def reference(d: int) -> int:
        return (((d * 0x9E3779B97F4A7C15) % 2**64) >> 32) % 8

    assert [partition_of(d, 8) for d in range(8)] == [0, 1, 2, 4, 5, 7, 0, 2]
    for d in (59_999, 123_456, 2**31 - 1):
        assert partition_of(d, 8) == reference(d)
    devices = np.arange(100_000, dtype=np.int32)
    parts = partition_of(devices, 8)
    np.testing.assert_array_equal(parts, partition_of(devices.copy(), 8))
    assert [partition_of(int(d), 8) for d in devices[:1000]] == parts[:1000].tolist()
    counts = np.bincount(parts, minlength=8)
    assert counts.min() > 0.95 * counts.mean()  # runs of device indices spread evenly
    assert set(partition_of(devices, 1).tolist()) == {0}


def test_split_by_partition_keeps_every_row_in_order():
    batch = samples.batch(3000, devices=500)
    pieces = split_by_partition(batch, 8)
    assert sum(len(b) for _, b in pieces) == 3000
    assert samples.rows_of([b for _, b in pieces]) == samples.rows_of([batch])
    for p, piece in pieces:
        assert (partition_of(piece.device, 8) == p).all()
        assert (np.diff(piece.ts) > 0).all()  # the original order within a partition
    one_device = samples.batch(10, devices=1)
    assert split_by_partition(one_device, 8) == [(partition_of(0, 8), one_device)]
    assert split_by_partition(ReadingBatch.empty(), 8) == []


def test_share_deals_out_every_partition_once():
    assert share(0, 3, 8) == [0, 3, 6] and share(2, 3, 8) == [2, 5]
    for members in (1, 2, 3, 8):
        dealt = [p for m in range(members) for p in share(m, members, 8)]
        assert sorted(dealt) == list(range(8))
    with pytest.raises(ValueError):
        share(2, 2, 8)
