"""Roles and the bus URL, as `cityops serve` reads them (no servers needed)."""

from __future__ import annotations

import pytest

from cityops.cluster import bus_options, owned_devices, parse_roles
from cityops.node import Node
from cityops.settings import Settings


def test_roles_repeat_or_come_as_a_list_and_all_stands_for_every_role():
    assert parse_roles(["ingest", "detect,act"]) == ["ingest", "detect", "act"]
    assert parse_roles(["web", "web"]) == ["web"]
    assert parse_roles([]) == ["all"]
    assert parse_roles(["act", "all"]) == ["all"]
    with pytest.raises(ValueError, match="unknown role 'detcet'"):
        parse_roles(["detcet"])


def test_bus_url_options_are_typed_and_unknown_ones_refused():
    url, options = bus_options("nats://10.0.0.5:4222?stream=CITY_A&ack_wait=5&max_bytes=1024")
    assert url == "nats://10.0.0.5:4222"
    assert options == {"stream": "CITY_A", "ack_wait": 5.0, "max_bytes": 1024}
    with pytest.raises(ValueError, match="unknown option"):
        bus_options("nats://h:4222?acks=5")
    with pytest.raises(ValueError, match="nats://"):
        bus_options("http://h:4222")


def test_workers_take_disjoint_shares_of_the_devices():
    shares = [owned_devices(10_000, Settings(data_dir=".", workers=3, worker=w))
              for w in range(3)]
    assert (sum(s.astype(int) for s in shares) == 1).all()
    assert all(s.sum() > 2000 for s in shares)


def test_a_role_without_a_bus_is_refused(tmp_path, grid_pack):
    with pytest.raises(ValueError, match="--bus"):
        Node(grid_pack, Settings(data_dir=tmp_path, roles=["detect"]))


def test_a_history_shard_names_the_worker_holding_a_device_it_does_not_hold():
    from cityops.api.errors import ApiError
    from cityops.bus.nats import partition_of
    from cityops.cluster import ShardReader

    class Reader:
        def device_readings(self, index, *args):
            return [index]

    settings = Settings(data_dir=".", workers=2, worker=0, partitions=8)
    reader = ShardReader(Reader(), settings)
    mine = next(i for i in range(100) if partition_of(i, 8) % 2 == 0)
    other = next(i for i in range(100) if partition_of(i, 8) % 2 == 1)
    assert reader.device_readings(mine) == [mine]
    with pytest.raises(ApiError, match="history worker 1 of 2"):
        reader.device_readings(other)
