"""Cabinet rules: which codes are drawn, how they are hashed, compartments, single use,
the 7-day limit and the guessing guard."""

from __future__ import annotations

import pytest

from cityops.domain import cabinets
from cityops.domain.cabinets import Expired, Guard, ItemStatus, Refused

NOW = 1_795_000_000.0


def cabinet(n=3, cabinet_id="cab-1", salt="00" * 16):
    return cabinets.new_cabinet(cabinet_id, "Lobby", "Centre 1", n, salt=salt)


def test_codes_are_six_digits_and_never_the_obvious_ones() -> None:
    for bad in ("000000", "999999", "123456", "234567", "987654", "890123", "12345", "12a456"):
        assert not cabinets.acceptable_code(bad), bad
    for good in ("000123", "482913", "112233"):
        assert cabinets.acceptable_code(good)
    drawn = iter([111111, 123456, 42])
    assert cabinets.draw_code(lambda n: next(drawn)) == "000042"


def test_only_a_salted_slow_hash_is_kept() -> None:
    a, b = cabinet(), cabinet(cabinet_id="cab-2")
    h = cabinets.code_hash(a, "482913")
    assert h == cabinets.code_hash(a, "482913") and "482913" not in h and len(h) == 64
    assert h != cabinets.code_hash(b, "482913")  # same salt, other cabinet
    assert h != cabinets.code_hash(cabinet(salt="11" * 16), "482913")
    item = cabinets.drop("it-1", a, 1, "482913", now=NOW, dropped_by="k", dropped_by_role="x",
                         phone="13812345678")
    assert "482913" not in repr(item) and item.code_hash == h


def test_compartments_fill_and_free() -> None:
    cab = cabinets.new_cabinet("c", "n", "centre", ["small", "large"], salt="00")
    cab, no = cabinets.place(cab, "it-1", "large")
    assert no == 2 and cab.compartment(2).item == "it-1"
    with pytest.raises(Refused, match="no free large compartment"):
        cabinets.place(cab, "it-2", "large")
    cab, no = cabinets.place(cab, "it-2")
    with pytest.raises(Refused, match="no free compartment"):
        cabinets.place(cab, "it-3")
    assert cabinets.release(cab, 2, "it-other") is None  # not that item's compartment
    freed = cabinets.release(cab, 2, "it-1")
    assert freed is not None and freed.free() == [freed.compartment(2)]
    with pytest.raises(Refused):
        cabinets.new_cabinet("c", "n", "centre", ["huge"], salt="00")
    with pytest.raises(Refused):
        cabinets.new_cabinet("c", "n", "centre", 0, salt="00")


def test_a_code_opens_once_and_only_within_seven_days() -> None:
    cab = cabinet()
    with pytest.raises(Refused, match="needs a recipient"):
        cabinets.drop("it-0", cab, 1, "482913", now=NOW, dropped_by="k", dropped_by_role="x")
    item = cabinets.drop("it-1", cab, 1, "482913", now=NOW, dropped_by="k",
                         dropped_by_role="operator", recipient_citizen="c-1",
                         phone="13812345678")
    assert item.expires == NOW + 7 * 86400
    tells = cabinets.dropoff_tells(item, cab, "482913")
    assert tells[0].sms and tells[0].recipient == "13812345678"
    assert "482913" in tells[0].body and "482913" not in tells[0].subject
    got = cabinets.collect(item, NOW + 3600, "k_citizen")
    assert got.status is ItemStatus.COLLECTED
    with pytest.raises(Refused, match="collected"):
        cabinets.collect(got, NOW + 3700, "k_citizen")
    with pytest.raises(Expired):
        cabinets.collect(item, item.expires, "k_citizen")
    assert cabinets.flag_uncollected(item, item.expires - 1) is None
    flagged, tells = cabinets.flag_uncollected(item, item.expires)
    assert flagged.status is ItemStatus.RETURN_DUE
    assert [t.kind for t in tells] == ["cabinet.return_due", "cabinet.expired"]
    with pytest.raises(Expired):
        cabinets.collect(flagged, item.expires + 1, "k")
    returned = cabinets.return_item(flagged, item.expires + 60, "staff 1")
    assert returned.status is ItemStatus.RETURNED
    with pytest.raises(Refused):
        cabinets.return_item(returned, item.expires + 70, "staff 1")


def test_five_wrong_codes_lock_for_fifteen_minutes() -> None:
    guard = Guard()
    for i in range(4):
        guard = cabinets.after_failure(guard, NOW + i, cabinets.CALLER_MAX_WRONG)
        assert cabinets.retry_after(guard, NOW + i) == 0
    guard = cabinets.after_failure(guard, NOW + 4, cabinets.CALLER_MAX_WRONG)
    assert cabinets.retry_after(guard, NOW + 4) == 15 * 60
    assert cabinets.retry_after(guard, NOW + 4 + 15 * 60) == 0
    assert guard.lockouts == 1 and guard.failures == []
    # Wrong codes spread wider than the window do not add up.
    slow = Guard()
    for i in range(10):
        slow = cabinets.after_failure(slow, NOW + i * 16 * 60, cabinets.CALLER_MAX_WRONG)
    assert cabinets.retry_after(slow, NOW + 9 * 16 * 60) == 0
