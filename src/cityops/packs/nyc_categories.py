"""New York City's case categories, as city-pack data: what NYC 311 complaint types become,
who works them, how urgent they are, how long each step may take, and when repeated reports
are the same case.

Routing follows how New York divides the work as we understand it, not what any sample of 311
records says: the police (NYPD) answer the night-time quality-of-life complaints (noise of
neighbours, streets, bars, cars and parks; parking; fireworks; encampments), Housing
Preservation (HPD, in `housing_construction`) the conditions of rented homes, Transportation
(DOT) streets, sidewalks and street lights, Sanitation (DSNY) dirt, dumping, collection and,
since 2023, street vending, Environmental Protection (DEP) the water system and the noise code
it enforces (construction, equipment, animals), Parks (DPR) parks and street trees.

Where CityOps has no department for the agency NYC uses, it routes differently, on purpose:

| complaint | NYC agency | CityOps | why |
|---|---|---|---|
| Rodent | DOHMH (Health) | sanitation | no health department in the pack; rats follow garbage |
| For Hire Vehicle, Taxi | TLC | transport | the TLC is a transport regulator |
| Homeless Person Assistance | DHS | hotline_12345 | no social services department |
| Encampment | NYPD, at times DHS | police | the police answer encampment calls |
| anything else (Food Establishment, Consumer Complaint ...) | various | hotline_12345 | 311 |

Time limits use the working-hours clock on the New York calendar (09:00-17:00 on weekdays,
federal holidays off): "wh" and "wd" for office work (inspections, repairs), wall-clock "h" and
"min" for the police, who answer at night and on holidays. NYPD tells 311 callers to expect a
response to a quality-of-life complaint within hours (we give 8 h); repairs and inspections
take days. Merging: reports of one category within `merge_radius_m` of an open case whose
latest report is at most `merge_window_s` old join it. A party, a loud bar or a car stereo is
heard by several neighbours within minutes; a pothole or a dark lamp is reported again for
weeks.
"""

from __future__ import annotations

from cityops.domain.incidents.categories import (
    Category,
    StepLimits,
    related_groups,
    with_related,
)
from cityops.packs.categories_file import default_categories

HOUR = 3600.0
DAY = 86400.0

# NYPD: dispatched at once by 311, answered within the night.
POLICE = StepLimits(dispatch="15min", accept="1h", finish="8h", verify="1h")
POLICE_QUICK = StepLimits(dispatch="10min", accept="30min", finish="2h", verify="1h")
# Office units: inspections and repairs on working time; dispatch by 311 within a working hour.
INSPECTION = StepLimits(dispatch="1wh", accept="1wd", finish="10wd", verify="2wd")
CLEANING = StepLimits(dispatch="1wh", accept="1wd", finish="3wd", verify="1wd")
REPAIR = StepLimits(dispatch="1wh", accept="1wd", finish="10wd", verify="2wd")
SLOW = StepLimits(dispatch="1wh", accept="2wd", finish="20wd", verify="5wd")

FALLBACK = "event.general.other_311"


def _category(code: str, name: str, departments: list[str], *, limits: StepLimits,
              radius_m: float, window_s: float, urgency: str = "normal") -> Category:
    kind, major, minor = code.split(".")
    # 311 sends every request to its agency at once: there is no supervision-centre check.
    return Category(code=code, name=name, kind=kind, major=major, minor=minor,  # type: ignore
                    departments=departments, urgency=urgency, limits=limits,
                    merge_radius_m=radius_m, merge_window_s=window_s, auto_register=True)


NYC_311_CATEGORIES: list[Category] = [
    # -- noise, answered by the police at night
    # One building: the flat below and the one next door hear the same party.
    _category("event.noise.residential", "Noise from a home (music, party, banging)", ["police"],
              limits=POLICE, radius_m=50, window_s=3 * HOUR),
    # A block: a street gathering or loud music outside is heard up and down the street.
    _category("event.noise.street", "Noise on a street or sidewalk", ["police"],
              limits=POLICE, radius_m=100, window_s=3 * HOUR),
    # One bar, club or shop.
    _category("event.noise.commercial", "Noise from a bar, club or shop", ["police"],
              limits=POLICE, radius_m=50, window_s=3 * HOUR),
    # A car stereo or an idling truck: it may move along, and soon leaves.
    _category("event.noise.vehicle", "Noise from a vehicle (car music, idling engine)", ["police"],
              limits=POLICE, radius_m=100, window_s=2 * HOUR),
    # Parks are large: a gathering in one is heard from its edges.
    _category("event.noise.park", "Noise in a park", ["police"],
              limits=POLICE, radius_m=200, window_s=3 * HOUR),
    # The noise code DEP enforces: construction out of hours, equipment, boats, animals.
    _category("event.noise.noise_code", "Noise from construction, equipment or animals",
              ["environment"], limits=INSPECTION, radius_m=50, window_s=2 * DAY),
    # Heard far away, and reported from wherever the caller stands.
    _category("event.public_order.illegal_fireworks", "Illegal fireworks", ["police"],
              limits=POLICE_QUICK, radius_m=300, window_s=2 * HOUR, urgency="high"),

    # -- street order, police
    # One car, one driveway: the next address is another car.
    _category("event.street_order.illegal_parking", "Illegal parking", ["police"],
              limits=POLICE, radius_m=25, window_s=4 * HOUR),
    _category("event.street_order.blocked_driveway", "Blocked driveway", ["police"],
              limits=POLICE, radius_m=15, window_s=4 * HOUR),
    _category("event.street_order.abandoned_vehicle", "Abandoned vehicle", ["police"],
              limits=StepLimits(dispatch="1h", accept="1wd", finish="5wd", verify="1wd"),
              radius_m=25, window_s=14 * DAY),
    _category("event.street_order.traffic", "Traffic (gridlock, truck route, drag racing)",
              ["police"], limits=POLICE, radius_m=200, window_s=2 * HOUR),
    _category("event.public_order.police_matter",
              "Non-emergency police matter (drinking, drugs, panhandling, animal abuse)",
              ["police"], limits=POLICE, radius_m=50, window_s=3 * HOUR),
    _category("event.public_order.encampment", "Encampment", ["police"],
              limits=StepLimits(dispatch="1h", accept="2h", finish="24h", verify="1wd"),
              radius_m=100, window_s=2 * DAY),

    # -- streets and their furniture, DOT
    # A pothole or a dark lamp is reported again and again until it is fixed.
    _category("event.transport.street_condition", "Pothole or damaged roadway", ["transport"],
              limits=REPAIR, radius_m=30, window_s=30 * DAY),
    _category("event.transport.sidewalk_condition", "Damaged sidewalk", ["transport"],
              limits=SLOW, radius_m=30, window_s=30 * DAY),
    _category("component.public_facility.street_lamp", "Street light out or damaged",
              ["transport"], limits=REPAIR, radius_m=30, window_s=30 * DAY),
    _category("component.public_facility.traffic_signal", "Traffic signal out or damaged",
              ["transport"], limits=StepLimits(dispatch="15min", accept="1h", finish="4h",
                                               verify="1h"),
              radius_m=50, window_s=DAY, urgency="high"),
    _category("event.transport.for_hire_vehicle", "Taxi or for-hire vehicle complaint",
              ["transport"], limits=SLOW, radius_m=0, window_s=0),

    # -- water and sewers, DEP
    _category("component.water.water_system", "Water system (hydrant running, leak, pressure)",
              ["environment"], limits=StepLimits(dispatch="1h", accept="2h", finish="24h",
                                                 verify="1wd"),
              radius_m=50, window_s=2 * DAY, urgency="high"),
    _category("component.water.sewer", "Sewer (backup, catch basin, odour)", ["environment"],
              limits=StepLimits(dispatch="1h", accept="2h", finish="24h", verify="1wd"),
              radius_m=50, window_s=2 * DAY),

    # -- rented homes, HPD
    # Heat and hot water: the heating season runs to 31 May; a cold home cannot wait days.
    _category("event.housing.heat_hot_water", "No heat or hot water", ["housing_construction"],
              limits=StepLimits(dispatch="1h", accept="4h", finish="24h", verify="1wd"),
              radius_m=10, window_s=2 * DAY, urgency="high"),
    # One building: tenants of one landlord report the same neglect.
    _category("event.housing.building_condition",
              "Unsafe or unsanitary home (leaks, plumbing, paint, electric, pests inside)",
              ["housing_construction"], limits=INSPECTION, radius_m=10, window_s=7 * DAY),
    _category("event.housing.building_safety",
              "Fire safety in a home (fire escape, smoke detector, sprinkler)",
              ["housing_construction"], limits=StepLimits(dispatch="1wh", accept="1wd",
                                                          finish="3wd", verify="1wd"),
              radius_m=10, window_s=7 * DAY, urgency="high"),
    _category("event.construction.illegal_construction",
              "Illegal construction or use of a building", ["housing_construction"],
              limits=INSPECTION, radius_m=30, window_s=14 * DAY),

    # -- sanitation, DSNY
    _category("event.sanitation.street_cleaning", "Dirty street or lot", ["sanitation"],
              limits=CLEANING, radius_m=50, window_s=3 * DAY),
    _category("event.sanitation.illegal_dumping", "Illegal dumping", ["sanitation"],
              limits=CLEANING, radius_m=30, window_s=3 * DAY),
    _category("event.sanitation.missed_collection", "Missed or improper collection",
              ["sanitation"], limits=CLEANING, radius_m=30, window_s=2 * DAY),
    _category("event.sanitation.garbage", "Litter basket missing or overflowing",
              ["sanitation"], limits=CLEANING, radius_m=30, window_s=3 * DAY),
    _category("event.sanitation.dead_animal", "Dead animal", ["sanitation"],
              limits=StepLimits(dispatch="1wh", accept="1wd", finish="2wd", verify="1wd"),
              radius_m=30, window_s=3 * DAY),
    _category("event.sanitation.graffiti", "Graffiti", ["sanitation"],
              limits=SLOW, radius_m=20, window_s=30 * DAY),
    # Rats: NYC sends inspectors from Health (DOHMH); the pack has no health department.
    _category("event.sanitation.rodent", "Rats or mice outdoors", ["sanitation"],
              limits=INSPECTION, radius_m=50, window_s=14 * DAY),
    # Street vending enforcement moved to Sanitation in 2023.
    _category("event.street_order.street_vending", "Street vending without a licence",
              ["sanitation"], limits=CLEANING, radius_m=50, window_s=DAY),

    # -- parks and trees, DPR
    _category("event.greening.maintenance", "Park facility needs maintenance or securing",
              ["greening"], limits=INSPECTION, radius_m=100, window_s=3 * DAY),
    _category("event.greening.street_tree", "Street tree (damaged, dead, requested)",
              ["greening"], limits=SLOW, radius_m=15, window_s=30 * DAY),
    _category("event.greening.park_rules", "Violation of park rules", ["greening"],
              limits=POLICE, radius_m=200, window_s=3 * HOUR),

    # -- people, handed over by 311: there is no social services department in the pack
    _category("event.social_services.homeless_outreach", "Homeless person needs assistance",
              ["hotline_12345"], limits=StepLimits(dispatch="30min", accept="2h",
                                                   finish="24h", verify="1wd"),
              radius_m=50, window_s=6 * HOUR),

    # -- the rest: triaged by 311; never merged, since nothing says two of them are one thing
    _category(FALLBACK, "Other 311 request (triaged by 311)", ["hotline_12345"],
              limits=StepLimits(dispatch="1wh", accept="1wd", finish="5wd", verify="1wd"),
              radius_m=0, window_s=0, urgency="low"),
]

# complaint_type as NYC 311 writes it -> category code. Types not listed go to FALLBACK.
COMPLAINT_CATEGORIES: dict[str, str] = {
    "Noise - Residential": "event.noise.residential",
    "Noise - Street/Sidewalk": "event.noise.street",
    "Noise - Commercial": "event.noise.commercial",
    "Noise - House of Worship": "event.noise.commercial",
    "Noise - Vehicle": "event.noise.vehicle",
    "Noise - Park": "event.noise.park",
    "Noise": "event.noise.noise_code",
    "Illegal Fireworks": "event.public_order.illegal_fireworks",
    "Illegal Parking": "event.street_order.illegal_parking",
    "Blocked Driveway": "event.street_order.blocked_driveway",
    "Abandoned Vehicle": "event.street_order.abandoned_vehicle",
    "Traffic": "event.street_order.traffic",
    "Non-Emergency Police Matter": "event.public_order.police_matter",
    "Drinking": "event.public_order.police_matter",
    "Drug Activity": "event.public_order.police_matter",
    "Panhandling": "event.public_order.police_matter",
    "Animal-Abuse": "event.public_order.police_matter",
    "Urinating in Public": "event.public_order.police_matter",
    "Disorderly Youth": "event.public_order.police_matter",
    "Encampment": "event.public_order.encampment",
    "Street Condition": "event.transport.street_condition",
    "Sidewalk Condition": "event.transport.sidewalk_condition",
    "Street Light Condition": "component.public_facility.street_lamp",
    "Traffic Signal Condition": "component.public_facility.traffic_signal",
    "For Hire Vehicle Complaint": "event.transport.for_hire_vehicle",
    "Taxi Complaint": "event.transport.for_hire_vehicle",
    "Water System": "component.water.water_system",
    "Sewer": "component.water.sewer",
    "HEAT/HOT WATER": "event.housing.heat_hot_water",
    "UNSANITARY CONDITION": "event.housing.building_condition",
    "PAINT/PLASTER": "event.housing.building_condition",
    "PLUMBING": "event.housing.building_condition",
    "WATER LEAK": "event.housing.building_condition",
    "ELECTRIC": "event.housing.building_condition",
    "DOOR/WINDOW": "event.housing.building_condition",
    "FLOORING/STAIRS": "event.housing.building_condition",
    "GENERAL": "event.housing.building_condition",
    "APPLIANCE": "event.housing.building_condition",
    "SAFETY": "event.housing.building_safety",
    "Building/Use": "event.construction.illegal_construction",
    "General Construction/Plumbing": "event.construction.illegal_construction",
    "Illegal Conversion": "event.construction.illegal_construction",
    "Dirty Condition": "event.sanitation.street_cleaning",
    "Illegal Dumping": "event.sanitation.illegal_dumping",
    "Missed Collection": "event.sanitation.missed_collection",
    "Commercial Disposal Complaint": "event.sanitation.missed_collection",
    "Litter Basket Request": "event.sanitation.garbage",
    "Litter Basket Complaint": "event.sanitation.garbage",
    "Dead Animal": "event.sanitation.dead_animal",
    "Graffiti": "event.sanitation.graffiti",
    "Rodent": "event.sanitation.rodent",
    "Vendor Enforcement": "event.street_order.street_vending",
    "Maintenance or Facility": "event.greening.maintenance",
    "Damaged Tree": "event.greening.street_tree",
    "Dead/Dying Tree": "event.greening.street_tree",
    "Illegal Tree Damage": "event.greening.street_tree",
    "New Tree Request": "event.greening.street_tree",
    "Overgrown Tree/Branches": "event.greening.street_tree",
    "Violation of Park Rules": "event.greening.park_rules",
    "Homeless Person Assistance": "event.social_services.homeless_outreach",
}

_BY_FOLDED = {k.casefold(): v for k, v in COMPLAINT_CATEGORIES.items()}


def category_for(complaint_type: str | None) -> str:
    """The category code of a 311 complaint type (NYC writes some in capitals, some not)."""
    return _BY_FOLDED.get((complaint_type or "").strip().casefold(), FALLBACK)


def nyc_categories(departments: list[str]) -> list[Category]:
    """The table of a New York pack: the 311 categories above, then the shared defaults for
    what sensors and scenario packs raise (floods, fires, noise meters ...), fitted to the
    pack's departments; where both have a code, New York's entry wins."""
    own = {c.code for c in NYC_311_CATEGORIES}
    shared = [c for c in default_categories(departments) if c.code not in own]
    # The shared related groups take New York's entries of their codes in too.
    table = [*NYC_311_CATEGORIES, *shared]
    return with_related(table, related_groups(table))
