from cityops.domain.registry import DeviceRegistry
from cityops.domain.scenarios.episodes import Episodes, alert_id
from cityops.domain.scenarios.signals import Signal
from cityops.domain.scenarios.spec import Category, ScenarioPack, Threshold
from cityops.packs.grid import generate

US = 1_000_000
T0 = 1_800_000_000 * US


def setup():
    city = generate(devices={"noise": 3})
    registry = DeviceRegistry(city.kinds)
    from cityops.domain.geo import CityMap

    cmap = CityMap.from_pack(city)
    resolved, _ = cmap.resolve_devices(city.devices)
    registry.add(resolved)
    rule = Threshold(id="night", kind="noise", above=55, severity="major", title="Night noise")
    pack = ScenarioPack(name="noise", version=1, title="Noise nuisance",
                        category=Category("event.environment.noise", "event", "01", "0105",
                                          "Noise"),
                        departments=["environment"], urgency="normal", rules=[rule])
    episodes = Episodes({"noise.night": (pack, rule)}, registry,
                        lambda lat, lon: (cmap.resolve(lat, lon), cmap.cell_of(lat, lon)))
    return episodes, registry


def sig(active, ts, value=60.0, subject="noise-000000", device=0, **kw):
    return Signal("noise.night", subject, active, ts, device=device, value=value,
                  evidence=[(device, 0, ts, value)], **kw)


def test_an_episode_is_raised_once_updated_and_cleared():
    episodes, registry = setup()
    raised = episodes.apply([sig(True, T0)], lambda d: 0)
    assert [e.change for e in raised] == ["raised"]
    alert = raised[0].alert
    assert alert.id == alert_id("noise.night", "noise-000000", T0)
    assert alert.areas == registry.devices[0].areas and alert.cell == registry.devices[0].cell
    assert alert.severity == "major" and alert.departments == ["environment"]
    assert alert.evidence[0].device_id == "noise-000000" and alert.evidence[0].channel == "laeq"

    updated = episodes.apply([sig(True, T0 + 60 * US, 63.0), sig(True, T0 + 120 * US, 64.0)],
                             lambda d: 0)
    assert [e.change for e in updated] == ["updated"]  # one event per alert per apply
    assert updated[0].alert.id == alert.id
    assert updated[0].alert.value == 64.0 and updated[0].alert.updates == 2
    assert len(updated[0].alert.evidence) == 3

    cleared = episodes.apply([sig(False, T0 + 600 * US, 49.0)], lambda d: 0)
    assert cleared[0].change == "cleared" and not cleared[0].alert.active
    assert cleared[0].alert.cleared_at == (T0 + 600 * US) / US
    # Past the flap window, firing again is a new episode (within it, see the flapping test).
    again = episodes.apply([sig(True, T0 + 1201 * US)], lambda d: 0)
    assert again[0].change == "raised" and again[0].alert.id != alert.id


def test_flapping_stays_one_episode():
    """Raised and cleared again and again within the flap window: one alert, resumed each
    time (told as updated, so the act side files nothing new), counting its flaps."""
    episodes, _ = setup()
    first = episodes.apply([sig(True, T0)], lambda d: 0)[0].alert
    t = T0
    for flap in range(1, 6):
        t += 120 * US
        assert [e.change for e in episodes.apply([sig(False, t)], lambda d: 0)] == ["cleared"]
        t += 240 * US
        back = episodes.apply([sig(True, t)], lambda d: 0)
        assert [(e.change, e.alert.id) for e in back] == [("updated", first.id)]
        assert back[0].alert.active and back[0].alert.cleared_at is None
        assert back[0].alert.flaps == flap
    episodes.apply([sig(False, t + 60 * US)], lambda d: 0)
    episodes.forget_cleared(t + 60 * US + 601 * US)
    later = episodes.apply([sig(True, t + 700 * US)], lambda d: 0)
    assert later[0].change == "raised" and later[0].alert.id != first.id


def test_a_rule_may_set_its_flap_window_or_have_none():
    episodes, _ = setup()
    _, rule = episodes.rules["noise.night"]
    rule.flap = "0s"
    first = episodes.apply([sig(True, T0)], lambda d: 0)[0].alert
    episodes.apply([sig(False, T0 + 60 * US)], lambda d: 0)
    again = episodes.apply([sig(True, T0 + 61 * US)], lambda d: 0)
    assert again[0].change == "raised" and again[0].alert.id != first.id
    rule.flap = "1h"
    episodes.apply([sig(False, T0 + 120 * US)], lambda d: 0)
    back = episodes.apply([sig(True, T0 + 3000 * US)], lambda d: 0)
    assert back[0].change == "updated" and back[0].alert.id == again[0].alert.id


def test_alerts_carry_their_group_key():
    from cityops.domain.scenarios.spec import Group

    episodes, registry = setup()
    alert = episodes.apply([sig(True, T0)], lambda d: 0)[0].alert
    village = registry.devices[0].areas.village
    assert alert.group == f"event.environment.noise|{village}"
    assert alert.group_within_s == 600.0
    pack, rule = episodes.rules["noise.night"]
    rule.group = Group(by=["rule", "device", "town"], within="30m")
    other = episodes.apply([sig(True, T0, subject="noise-000001", device=1)], lambda d: 0)
    assert other[0].alert.group == \
        f"noise.night|noise-000001|{registry.devices[1].areas.town}"
    assert other[0].alert.group_within_s == 1800.0
    rule.group = Group(off=True)
    alone = episodes.apply([sig(True, T0, subject="noise-000002", device=2)], lambda d: 0)
    assert alone[0].alert.group == ""


def test_a_clear_without_an_open_episode_says_nothing():
    episodes, _ = setup()
    assert episodes.apply([sig(False, T0)], lambda d: 0) == []


def test_subjects_are_separate_episodes_and_movers_are_located_by_their_fix():
    episodes, registry = setup()
    other = registry.devices[1]
    events = episodes.apply([sig(True, T0), sig(True, T0, subject="noise-000001", device=1,
                                                 lat=other.lat, lon=other.lon)], lambda d: 1)
    assert len(events) == 2
    assert events[1].alert.areas == other.areas and events[1].alert.state == "special"


def test_restored_episodes_continue_or_expire():
    episodes, _ = setup()
    alert = episodes.apply([sig(True, T0)], lambda d: 0)[0].alert
    fresh, _ = setup()
    fresh.restore([alert], now_us=T0 + 10 * US, grace_s=60)
    continued = fresh.apply([sig(True, T0 + 20 * US)], lambda d: 0)
    assert continued[0].change == "updated" and continued[0].alert.id == alert.id
    assert fresh.expire_unconfirmed(T0 + 1000 * US) == []  # confirmed by the new signal

    stale, _ = setup()
    stale.restore([alert], now_us=T0, grace_s=60)
    assert stale.expire_unconfirmed(T0 + 30 * US) == []
    expired = stale.expire_unconfirmed(T0 + 61 * US)
    assert expired[0].change == "cleared" and "not confirmed" in expired[0].alert.detail
