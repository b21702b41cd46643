"""Aging-friendly home retrofit: what the on-site assessment finds, the works it calls for,
and the subsidy.

The citizen applies through the one-stop "one thing" bundle (an on-site assessment, the
works, the subsidy; one form). An assessor of the civil-affairs department visits and records
findings: a hazard from the list below, the room, a note, a quantity. The works follow from
the findings (one works item per hazard, at its unit price times the quantity), and the
subsidy from the works and the household.

Unit prices and subsidy rules are an assumption modelled on Shanghai district programmes for
elderly homes (a fixed list of items, a subsidy capped per household, full for households in
hardship): a city states its own figures by changing these tables.
"""

from __future__ import annotations

import msgspec

from cityops.domain.seniorcare.admission import Hardship
from cityops.domain.seniorcare.errors import CareInvalid

# hazard -> (works item, unit price in CNY)
WORKS: dict[str, tuple[str, int]] = {
    "no_grab_bar": ("grab_bars", 300),
    "slippery_floor": ("non_slip_flooring", 400),
    "door_threshold": ("threshold_ramp", 250),
    "high_bed": ("bed_rail", 350),
    "dark_path": ("night_lights", 150),
    "no_shower_seat": ("shower_seat", 200),
    "gas_unwatched": ("gas_alarm", 300),
    "fall_unnoticed": ("emergency_call", 500),
}
MAX_FINDINGS = 40
MAX_QUANTITY = 20
CAP_HARDSHIP = 3000  # CNY a household: hardship households paid in full up to this
CAP_OTHER = 1500
SHARE_OTHER = 0.5  # others: half the works, up to CAP_OTHER


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    hazard: str
    room: str = ""
    quantity: int = 1
    note: str = ""


class WorksItem(msgspec.Struct, frozen=True, kw_only=True):
    item: str
    hazard: str
    room: str
    quantity: int
    unit_price: int
    cost: int


class Assessment(msgspec.Struct, frozen=True, kw_only=True):
    submission: str  # the one-stop submission it belongs to
    application: str  # the assessment item's application
    citizen: str
    area: str
    assessor: str
    assessed_at: float
    hardship: Hardship
    findings: list[Finding]
    works: list[WorksItem]
    works_cost: int
    subsidy: int
    own_share: int
    note: str = ""


def works_of(findings: list[Finding]) -> list[WorksItem]:
    if not findings:
        raise CareInvalid("findings: at least one hazard (a home with none needs no works: "
                          "the department rejects the application, saying so)")
    if len(findings) > MAX_FINDINGS:
        raise CareInvalid(f"findings: at most {MAX_FINDINGS}")
    out = []
    for n, f in enumerate(findings):
        if f.hazard not in WORKS:
            raise CareInvalid(f"findings[{n}].hazard: {f.hazard!r} is not one of "
                              f"{', '.join(WORKS)}")
        if not 1 <= f.quantity <= MAX_QUANTITY:
            raise CareInvalid(f"findings[{n}].quantity: 1 to {MAX_QUANTITY}")
        item, price = WORKS[f.hazard]
        out.append(WorksItem(item=item, hazard=f.hazard, room=f.room, quantity=f.quantity,
                             unit_price=price, cost=price * f.quantity))
    return out


def subsidy(works_cost: int, hardship: Hardship) -> int:
    if hardship is Hardship.NONE:
        return min(int(works_cost * SHARE_OTHER), CAP_OTHER)
    return min(works_cost, CAP_HARDSHIP)


def assess(*, submission: str, application: str, citizen: str, area: str, assessor: str,
           now: float, hardship: Hardship, findings: list[Finding], note: str = ""
           ) -> Assessment:
    works = works_of(findings)
    cost = sum(w.cost for w in works)
    paid = subsidy(cost, hardship)
    return Assessment(submission=submission, application=application, citizen=citizen,
                      area=area, assessor=assessor, assessed_at=now, hardship=hardship,
                      findings=list(findings), works=works, works_cost=cost, subsidy=paid,
                      own_share=cost - paid, note=note)


def summary(a: Assessment) -> str:
    """The assessment's result as the application's result note reads it."""
    items = ", ".join(f"{w.item} x{w.quantity}" for w in a.works)
    return (f"on-site assessment: {items}; works {a.works_cost} CNY, subsidy {a.subsidy} CNY, "
            f"own share {a.own_share} CNY")
