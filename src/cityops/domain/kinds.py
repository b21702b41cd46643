"""The built-in catalogue of device kinds: units, valid ranges and reporting periods.

Ranges are what the instrument can physically report; anything outside them is a faulty
reading and is rejected at intake rather than fed to the scenario rules.
"""

from __future__ import annotations

from cityops.domain.city import ChannelSpec as C
from cityops.domain.city import DeviceKind

BUILTIN_KINDS: dict[str, DeviceKind] = {
    k.name: k
    for k in [
        DeviceKind("noise", "Noise level meter", [C("laeq", "dB(A)", 0.0, 150.0)], 60),
        DeviceKind("water_depth", "Water depth gauge", [C("depth", "cm", 0.0, 1000.0)], 60),
        DeviceKind("rainfall", "Rain gauge", [C("intensity", "mm/h", 0.0, 500.0)], 300),
        DeviceKind(
            "wind",
            "Anemometer",
            [C("speed", "m/s", 0.0, 90.0), C("direction", "deg", 0.0, 360.0)],
            60,
        ),
        DeviceKind("smoke", "Smoke detector", [C("obscuration", "%/m", 0.0, 100.0)], 60),
        DeviceKind("manhole_tilt", "Manhole cover tilt sensor", [C("tilt", "deg", 0.0, 180.0)], 300),
        DeviceKind("bin_fill", "Litter bin fill sensor", [C("fill", "%", 0.0, 100.0)], 600),
        DeviceKind(
            "air_quality",
            "Air quality station",
            [
                C("pm25", "ug/m3", 0.0, 1000.0),
                C("pm10", "ug/m3", 0.0, 2000.0),
                C("no2", "ug/m3", 0.0, 2000.0),
                C("o3", "ug/m3", 0.0, 1000.0),
            ],
            300,
        ),
        DeviceKind("water_meter", "Household water meter", [C("flow", "L/min", 0.0, 500.0)], 300),
        DeviceKind("street_lamp", "Street lamp controller", [C("power", "W", 0.0, 2000.0)], 300),
        # Camera analytics report discrete event codes (see CAMERA_EVENTS) and how long the
        # detected object has dwelt, so that rules can ask "dwelling > 5 min in a fire lane".
        DeviceKind(
            "camera",
            "Video analytics camera",
            [C("event", "code", 0.0, 255.0), C("dwell", "s", 0.0, 86400.0)],
            60,
        ),
        DeviceKind(
            "gps",
            "GPS tracker (staff, vehicles)",
            [
                C("lat", "deg", -90.0, 90.0),
                C("lon", "deg", -180.0, 180.0),
                C("speed", "km/h", 0.0, 250.0),
                C("heading", "deg", 0.0, 360.0),
            ],
            10,
            mobile=True,
        ),
        # City vital signs (110 calls, 120 visits, accidents, 12345 orders per hour and area)
        # are series fed through the same intake as readings of one "device" per series.
        DeviceKind("kpi", "City vital sign (KPI series)", [C("value", "count", 0.0, 1e9)], 3600),
    ]
}

# Camera analytics event codes (the `event` channel); 0 means "nothing detected". Codes are
# stored in readings and history: a code, once given, keeps its meaning (add, never renumber).
CAMERA_EVENTS: dict[int, str] = {
    0: "none",
    1: "vehicle_in_fire_lane",
    2: "repair_stall_on_carriageway",
    3: "garbage_exposed",
    4: "crowd_gathering",
    5: "illegal_parking",
    6: "smoke_or_fire",
    7: "muck_truck_uncovered",
}

# Device ids may carry at most this many channels; readings are keyed by (device, channel).
MAX_CHANNELS = 8
assert all(len(k.channels) <= MAX_CHANNELS for k in BUILTIN_KINDS.values())
