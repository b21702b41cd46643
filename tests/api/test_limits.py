"""check_depth: the nesting bound of decoded bodies, at its edge and through every container."""

from __future__ import annotations

import msgspec
import pytest

from cityops.api.errors import ApiError
from cityops.api.limits import check_depth


def nested(levels: int, leaf: object = 1) -> object:
    value = leaf
    for n in range(levels):
        value = {"k": value} if n % 2 else [value, "x", 2.5, None, True]
    return value


class Holder(msgspec.Struct):
    inner: object
    name: str = "h"


@pytest.mark.parametrize("limit", [0, 1, 5, 32])
def test_the_limit_is_the_deepest_container_allowed(limit):
    check_depth(nested(limit + 1), limit=limit)  # the root is depth 0: limit + 1 containers
    with pytest.raises(ApiError) as refused:
        check_depth(nested(limit + 2), "fields", limit=limit)
    assert refused.value.status == 400
    assert f"fields nests deeper than {limit} levels" in refused.value.error


def test_tuples_structs_and_scalars():
    check_depth("text")
    check_depth(Holder(inner=(1, 2)), limit=1)
    with pytest.raises(ApiError):
        check_depth(Holder(inner=({"a": [1]},)), limit=2)
    # A wide body at the limit passes: width is not depth.
    check_depth([{"id": str(n), "v": {"value": n}} for n in range(2_000)], limit=2)
