import numpy as np

from cityops.domain.readings import ReadingBatch
from cityops.history.state import RING, SeriesState


def batch(dev, ts, ch=None, val=None):
    n = len(dev)
    return ReadingBatch(np.asarray(dev, np.int32),
                        np.zeros(n, np.int8) if ch is None else np.asarray(ch, np.int8),
                        np.asarray(ts, np.int64),
                        np.arange(n, dtype=float) if val is None else np.asarray(val, float))


def store(state, b):
    fresh, _ = state.new_rows(b)
    kept = b.take(np.flatnonzero(fresh))
    state.commit(kept)
    return fresh


def test_repeats_within_a_batch_keep_the_first():
    s = SeriesState(4)
    fresh = store(s, batch([0, 0, 1, 0], [10, 10, 10, 11]))
    assert fresh.tolist() == [True, False, True, True]


def test_a_retried_batch_is_all_duplicate():
    s = SeriesState(4)
    b = batch([0, 1, 2, 0], [10, 10, 10, 20])
    assert store(s, b).all()
    assert not store(s, b).any()


def test_late_readings_are_new_but_their_retries_are_not():
    s = SeriesState(2)
    store(s, batch([0], [100]))
    late = batch([0], [50])
    assert store(s, late).all()  # older than latest, never seen: a late delivery
    assert not store(s, late).any()


def test_channels_are_separate_series():
    s = SeriesState(2)
    assert store(s, batch([0, 0], [10, 10], ch=[0, 1])).all()


def test_latest_is_the_newest_by_time_not_arrival():
    s = SeriesState(2)
    store(s, batch([0, 0], [20, 10], val=[2.0, 1.0]))
    ts, val = s.latest(0)
    assert ts[0] == 20 and val[0] == 2.0
    store(s, batch([0], [15], val=[9.0]))
    ts, val = s.latest(0)
    assert ts[0] == 20 and val[0] == 2.0


def test_ring_remembers_the_last_few_per_series():
    s = SeriesState(1)
    store(s, batch([0] * (RING + 3), list(range(RING + 3))))
    recent = batch([0], [RING + 2])
    assert not store(s, recent).any()


def test_dirty_series_are_handed_out_once():
    s = SeriesState(3)
    store(s, batch([0, 2], [1, 1], val=[5.0, 6.0]))
    series, ts, val = s.take_dirty()
    assert series.tolist() == [0, 16] and val.tolist() == [5.0, 6.0]
    assert s.take_dirty()[0].size == 0


def test_reserve_grows_and_keeps_state():
    s = SeriesState(1)
    store(s, batch([0], [5]))
    s.reserve(1000)
    assert s.latest(0)[0][0] == 5
    assert store(s, batch([999], [5])).all()
