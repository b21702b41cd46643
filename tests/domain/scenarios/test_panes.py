"""Panes: the two ways of adding rows (sorting the rows' slots, or one pass over every slot
for a big add such as a switch-over) must leave exactly the same panes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityops.domain.scenarios.primitives.common import NEVER, Panes, WindowStore

US = 1_000_000
SPAN = 300 * US


def _filled(dense: bool, adds, monkeypatch) -> Panes:
    # DENSE_FROM 0 never takes the one-pass way; a huge one always does.
    monkeypatch.setattr(Panes, "DENSE_FROM", 10**9 if dense else 0)
    panes = Panes(SPAN)
    for group, ts, value in adds:
        panes.add(group, ts, value)
    return panes


rows = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3 * 3600), st.floats(-50, 150)),
                min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(st.lists(rows, min_size=1, max_size=4))
def test_both_ways_of_adding_leave_the_same_panes(batches):
    adds = [(np.array([g for g, _, _ in b]), np.array([t * US for _, t, _ in b], np.int64),
             np.array([v for _, _, v in b])) for b in batches]
    with pytest.MonkeyPatch.context() as mp:
        sorted_way = _filled(False, adds, mp)
    with pytest.MonkeyPatch.context() as mp:
        one_pass = _filled(True, adds, mp)
    for name in ("pane", "count", "sum", "low", "high"):
        a, b = getattr(sorted_way, name), getattr(one_pass, name)
        assert a.shape == b.shape
        if name == "sum":
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)
        else:
            np.testing.assert_array_equal(a, b)


def test_a_switch_over_keeps_every_groups_counts():
    """A store past its exact limit turns its rows into panes: every row still counted."""
    store = WindowStore(SPAN, capacity=1 << 12, exact_limit=8)
    groups = 500
    rng = np.random.default_rng(3)
    ts = np.sort(rng.integers(0, 250, (groups, 8)), axis=1).astype(np.int64) * US + 10**15
    group = np.repeat(np.arange(groups), 8)
    flat_ts = ts.ravel()
    value = rng.normal(50, 5, flat_ts.size)
    ask = (np.arange(groups), np.full(groups, 10**15), np.full(groups, 10**15 + SPAN))
    store.add_and_query((group, flat_ts, value, group), np.zeros(group.size, np.int64), ask)
    assert store.exact
    one_more = (np.array([0]), np.array([10**15 + 260 * US]), np.array([55.0]), np.array([0]))
    count, sums, _, _ = store.add_and_query(one_more, np.zeros(1, np.int64),
                                            (np.array([0, 1]), ask[1][:2], ask[2][:2]))
    assert not store.exact  # nine rows in group 0: panes from now on
    assert count.tolist() == [9, 8]
    assert sums[1] == pytest.approx(value[8:16].sum())
    assert (store.panes.pane != NEVER).any(axis=1).all()
