"""Sample records for the store tests."""

from __future__ import annotations

import random

from cityops.domain.city import AreaCodes, Device
from cityops.store.base import ApiKeyRecord, DeadLetter

KINDS = ("noise", "water_depth", "rainfall", "air_quality")


def devices(count: int, *, prefix: str = "dev", seed: int = 7) -> list[Device]:
    """`count` devices with every optional field exercised, in an order unlike id order."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        village = f"310115{rng.randrange(1000):03d}{rng.randrange(1000):03d}"
        out.append(
            Device(
                id=f"{prefix}-{rng.getrandbits(40):010x}-{i}",
                kind=KINDS[i % len(KINDS)],
                lat=31.0 + rng.random(),
                lon=121.0 + rng.random(),
                name=f"sensor {i}" if i % 3 else "",
                owner="city_management" if i % 5 == 0 else None,
                areas=AreaCodes(village[:6], village[:9], village) if i % 7 else None,
                cell=f"89309{rng.getrandbits(36):09x}" if i % 2 else None,
                meta={"install": {"year": 2020 + i % 5, "tags": ["a", "b"]}} if i % 11 == 0 else {},
            )
        )
    return out


def key(n: int, **changes: object) -> ApiKeyRecord:
    fields: dict[str, object] = {
        "id": f"k_{n:04d}",
        "hash": f"{n:064x}",
        "role": "operator",
        "scope": "*",
        "name": f"key {n}",
        "created_at": 1_700_000_000.0 + n,
    }
    fields.update(changes)
    return ApiKeyRecord(**fields)  # type: ignore[arg-type]


def dead_letter(n: int) -> DeadLetter:
    return DeadLetter(
        source="mqtt" if n % 2 else "http",
        where=f"city/readings/{n}",
        reason=f"bad value #{n}",
        payload='{"value": "x"}' if n % 3 else "ff 00 e2 \u4e2d",
        received_at=1_700_000_000.0 + n / 10,
        index=n % 4 if n % 2 else None,
    )
