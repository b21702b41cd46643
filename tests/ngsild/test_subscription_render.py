"""How subscriptions render their notifications: the short path for plain entities (the
devices' entities notified for readings) gives what compact_entity gives."""

from __future__ import annotations


def _plain_cases():
    from cityops.domain.city import Device
    from cityops.domain.kinds import BUILTIN_KINDS
    from cityops.domain.lifecycle import Lifecycle
    from cityops.ngsild import sdm

    for kind in sorted(BUILTIN_KINDS):
        channels = [c.name for c in BUILTIN_KINDS[kind].channels]
        latest = sdm.Latest([1_717_000_000_000_000] * len(channels), [0.0] * len(channels))
        device = Device(f"{kind}-1", kind, 31.2, 121.5, name="a", lifecycle=Lifecycle.ACTIVE)
        yield sdm.device_entity(device, channels, latest)
        vehicle = sdm.Vehicle("v", "P", "bus", device.id) if kind == "gps" else None
        whole = sdm.domain_entity(device, channels, latest, period_s=60, vehicle=vehicle)
        if whole is not None:
            yield whole


def test_plain_entities_are_compacted_as_compact_entity_does():
    from cityops.ngsild.contexts import DEFAULT_CONTEXT_URL, resolve
    from cityops.ngsild.entity import compact_entity, expand_entity
    from cityops.ngsild.subscriptions import plain_compact
    from tests.ngsild.ngsild_kit import building

    shown = 0
    for terms in (resolve(DEFAULT_CONTEXT_URL), resolve(None)):
        cases = [*_plain_cases(), expand_entity(building(1, name="Tower", floors=3), terms),
                 expand_entity({"id": "urn:x:1", "type": ["A", "B"],
                                "at": {"type": "Relationship", "object": "urn:y"}}, terms)]
        for entity in cases:
            names = [k for k in entity if k not in ("id", "type")]
            for attrs in (None, set(names[:1]), set(names[1::2])):
                for fmt in ("normalized", "keyValues", "concise"):
                    got = plain_compact(entity, terms, attrs, fmt)
                    assert got is not None, (entity["id"], fmt)
                    for sys_attrs in (False, True):
                        assert got == compact_entity(
                            entity, terms, attrs=attrs, key_values=fmt == "keyValues",
                            sys_attrs=sys_attrs, concise=fmt == "concise"), (entity, fmt)
                    shown += 1
    assert shown > 100


def test_entities_with_more_than_plain_instances_are_left_to_compact_entity():
    from cityops.ngsild.contexts import resolve
    from cityops.ngsild.entity import expand_entity
    from cityops.ngsild.subscriptions import plain_compact

    terms = resolve(None)
    base = {"id": "urn:x:1", "type": "T"}
    for extra in ({"a": {"type": "Property", "value": 1, "sub": {"type": "Property",
                                                                   "value": 2}}},
                  {"a": {"type": "Property", "value": 1, "datasetId": "urn:d:1"}},
                  {"a": [{"type": "Property", "value": 1},
                         {"type": "Property", "value": 2, "datasetId": "urn:d:2"}]},
                  {"a": {"type": "LanguageProperty", "languageMap": {"en": "x"}}},
                  {"scope": "/town"}):
        entity = expand_entity({**base, **extra}, terms)
        assert plain_compact(entity, terms, None, "normalized") is None, extra
    stamped = {**expand_entity({**base, "a": 1}, terms), "createdAt": "2024-01-01T00:00:00Z"}
    assert plain_compact(stamped, terms, None, "normalized") is None
