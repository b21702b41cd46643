"""Sample records for the store tests."""

from __future__ import annotations

import random

from cityops.domain.alerts import Alert, Evidence
from cityops.domain.city import AreaCodes, Device
from cityops.store.base import ApiKeyRecord, AuditEntry, DeadLetter, Record

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


SCENARIOS = ("flood", "noise", "air")
# Two towns in one district, one in another; the fifth "place" is an alert with no areas.
VILLAGES = ("310115001001", "310115001002", "310115002001", "310116001001", None)


def alert(n: int, **changes: object) -> Alert:
    """Alert number `n`: pairs share a first_seen (ties go by id), and ids do not follow `n`."""
    village = VILLAGES[n % len(VILLAGES)]
    scenario = SCENARIOS[n % len(SCENARIOS)]
    first_seen = 1_700_000_000.0 + (n // 2) * 60.5
    fields: dict[str, object] = {
        "id": f"{scenario}.r{n % 2}:{(n * 7919) % 10007:05d}",
        "scenario": scenario,
        "rule": f"{scenario}.r{n % 2}",
        "category": "env",
        "severity": ("minor", "moderate", "severe")[n % 3],
        "urgency": "expected",
        "departments": ["city_management"] if n % 2 else ["police", "fire"],
        "subject": f"dev-{n:05d}",
        "title": f"alert {n} \u4e2d",
        "detail": "with detail" if n % 4 == 0 else "",
        "areas": AreaCodes(village[:6], village[:9], village) if village else None,
        "cell": f"8930{n:011x}" if n % 3 == 0 else None,
        "lat": 31.2 + n / 1e4,
        "lon": 121.4 + n / 1e4,
        "first_seen": first_seen,
        "last_seen": first_seen + 30.25,
        "active": n % 4 != 1,
        "cleared_at": None if n % 4 != 1 else first_seen + 90.0,
        "value": n * 0.5 if n % 5 else None,
        "updates": n % 6,
        "evidence": [Evidence(f"dev-{n:05d}", "level", first_seen + i, i * 1.5) for i in range(3)],
        "state": "emergency" if n % 7 == 0 else "daily",
        "auto_register": n % 9 != 0,
    }
    fields.update(changes)
    return Alert(**fields)  # type: ignore[arg-type]


def audit(n: int, **changes: object) -> AuditEntry:
    fields: dict[str, object] = {
        "actor": "system" if n % 3 == 0 else f"k_{n % 5:04d}",
        "action": "area.state" if n % 2 else "alert.ack",
        "subject": f"area:31011500{n % 3}",
        "before": None if n % 4 == 0 else "daily",
        "after": "emergency" if n % 2 else None,
        "reason": f"reason #{n} \u4e2d",
        "at": 1_700_000_000.0 + n * 1.25,
    }
    fields.update(changes)
    return AuditEntry(**fields)  # type: ignore[arg-type]


# `list_alerts` filters that must be answered off an index, newest first, without a sort.
LIST_FILTERS: list[dict[str, object]] = [
    {},
    {"scenario": "air"},
    {"area": "310115"},
    {"area": "310115001"},
    {"area": "310115001001"},
    {"active": True},
    {"active": False},
    {"before": (1_700_030_000.0, "m")},
    {"scenario": "air", "area": "310115001", "active": True, "before": (1_700_030_000.0, "m")},
]


def list_filter_args(filters: dict[str, object]) -> dict[str, object]:
    """All of `list_alerts`'s arguments, as the adapters' query builders take them."""
    return {"scenario": None, "area": None, "active": None, "limit": 100, "before": None, **filters}


def record(n: int) -> Record:
    """Open311 requests of fifty owners, one a second."""
    return Record(kind="open311.request", id=f"r{n:05d}", doc=b'{"n":%d}' % n,
                  owner=f"citizen:c-{n % 50}", created=float(n), updated=float(n))
