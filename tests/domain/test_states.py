import pytest

from cityops.domain.geo import CityMap
from cityops.domain.registry import DeviceRegistry
from cityops.domain.scenarios.context import Places
from cityops.domain.states import CITY, check_state, device_states, state_at
from cityops.packs.grid import generate


def places():
    city = generate(devices={"noise": 40})
    registry = DeviceRegistry(city.kinds)
    registry.add(CityMap.from_pack(city).resolve_devices(city.devices)[0])
    return registry, Places.build(registry, city)


def test_the_most_specific_setting_wins():
    areas = {CITY: "special", "990001002": "emergency", "990001002001": "daily"}
    assert state_at(areas, ["990001", "990001001", "990001001002"]) == ("special", CITY)
    assert state_at(areas, ["990001", "990001002", "990001002002"]) == ("emergency", "990001002")
    assert state_at(areas, ["990001", "990001002", "990001002001"]) == ("daily", "990001002001")
    assert state_at({}, ["990001"]) == ("daily", "")


def test_device_states_follow_their_areas():
    registry, p = places()
    states = device_states({"990001001": "special", "990001001001": "emergency"}, p)
    for device, code in zip(registry.devices, states.tolist()):
        expected = 2 if device.areas.village == "990001001001" else (
            1 if device.areas.town == "990001001" else 0)
        assert code == expected
    assert set(device_states({CITY: "emergency"}, p).tolist()) == {2}


def test_unknown_states_are_refused():
    assert check_state("special") == 1
    with pytest.raises(ValueError, match="not one of daily, special, emergency"):
        check_state("alarm")
