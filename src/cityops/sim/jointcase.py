"""The seed's joint-disposal case, staged by the demo and measured on its own timeline.

An afternoon after the national day, a turning truck overturns at an expressway entrance by a
village of Zhoupu Town; its load of inflammables spills and burns. The village's linkage
station sees it on the live video and connects the district centre, which sends police, fire,
ambulance and city management at the same time: 40 minutes from discovery to done, where it
used to take an hour and a half (seeds/pudong-2019-return-visit.txt).

`stage` files that report on a running node for `Fieldwork` to work through like any case,
with the four departments at once. `compare` reads the case's timeline afterwards: discovery
to done as it happened, and the same case as it used to go, one department after another:
each unit's own times (taking the job up and travelling, working on site) exactly as
measured, but each next unit called only once the one before is on site and has sized up the
scene and phoned the next through the town (`RELAY_S`), and the same check and close at the
end (cityops.domain.incidents.joint, which GET /api/v1/incidents/{id}/joint serves to the big
screen's panel). Simulated time throughout: the node's clock.
"""

from __future__ import annotations

from typing import Any

from cityops.domain.incidents import joint
from cityops.domain.incidents.joint import RELAY_S, Comparison
from cityops.domain.incidents.model import Event, Incident, Report
from cityops.sim.fieldplan import rng_for
from cityops.sim.fieldwork import CENTRE, Fieldwork, Staged

CATEGORY = "event.emergency.vehicle_fire"
DEPARTMENTS = ["police", "fire", "ambulance", "city_management"]
MARK = "joint_disposal"  # report.data["staged"]: how the screen finds the case
# On site, by unit: the police hold the road and move people away until the scene is clear,
# firefighters put the fire out and cool the load, the ambulance crew treat and take the
# driver, city management clear the spilled load from the road.
WORK_MIN = {"police": (24.0, 30.0), "fire": (16.0, 22.0), "ambulance": (10.0, 15.0),
            "city_management": (18.0, 24.0)}
TITLE = "Overturned truck on fire at the expressway entrance, inflammables spilled"
# The demo's screen and console are shown in Chinese too: the centre's title, in both.
TITLES = {"zh-CN": "高速入口货车侧翻起火，易燃物泄漏"}


def site(node: Any, seed: int) -> tuple[float, float]:
    """By a village of Zhoupu Town when the city has one, else of its first town; a spot
    drawn inside the village."""
    from cityops.domain.city import Level
    from cityops.sim.places import finest_places, point_in_place

    towns = [a for a in node.pack.areas if a.level is Level.TOWN]
    town = next((a for a in towns if "zhoupu" in a.name.lower()), towns[0] if towns else None)
    places = finest_places(node.pack)
    inside = [p for p in places if town is not None and p.code.startswith(town.code)] or places
    rng = rng_for(seed, "joint case site")
    place = inside[int(rng.random() * len(inside))]
    lat, lon = point_in_place(place, *rng.random(3))
    return round(float(lat), 6), round(float(lon), 6)


async def stage(work: Fieldwork, *, key: str, where: tuple[float, float] | None = None) -> str:
    """File the village station's report; returns the case id. The same `key` files nothing
    twice (a restarted demo names a new one)."""
    node = work.node
    lat, lon = where or site(node, work.seed)
    report = Report(key=f"demo:{key}", source="video", at=work.clock(),
                    text="Seen on the live video at the village linkage station: a truck "
                    "turning into the expressway entrance overturned, its load burning",
                    lat=lat, lon=lon, reporter="village linkage station",
                    data={"staged": MARK, "departments": DEPARTMENTS, "relay_s": RELAY_S})
    result = await work.desk.async_report(report, CATEGORY, actor=CENTRE, title=TITLE,
                                          titles=TITLES, auto_register=False)
    # The station's video call puts the centre onto it at once.
    work.staged[result.incident.id] = Staged(list(DEPARTMENTS), dict(WORK_MIN), (45.0, 90.0))
    return result.incident.id


def compare(incident: Incident, timeline: list[Event], relay_s: float = RELAY_S) -> Comparison:
    """Discovery to done, joint as it happened and one department after another (the units
    in the order the seed's story calls them)."""
    return joint.compare(incident, timeline, relay_s, DEPARTMENTS)
