"""Smart filing cabinets (SPEC section 5): the pure rules. No I/O, no "now" of its own.

Paper materials are dropped into a free compartment of a cabinet at a service centre, by a
citizen (for a department) or by staff (for a citizen), at any hour. The drop-off draws a
6-digit pickup code, which goes to the recipient by SMS; the code opens the compartment once.
An item waits at most 7 days; after that it is flagged for return and the code no longer
opens anything.

Only a hash of a code is kept: PBKDF2-SHA256 with the cabinet's own random salt. A code is
one of 10^6, so no hash makes a stolen database safe for long; the iterations make trying all
of them cost hours per cabinet rather than a second, and the codes live 7 days at most.
Guessing through the API is limited: a caller gets 5 wrong codes per cabinet, then waits 15
minutes; a cabinet takes 30 wrong codes from everyone together in 15 minutes, then refuses
codes for 15 minutes (a flood from many keys; the price is that such a flood also keeps the
honest out for a while). At most 30 guesses per 15 minutes against, say, 50 waiting items
is a 0.15% chance per quarter hour, and every lockout is visible in the guard's record.

A citizen's key may drop off at most CITIZEN_HELD items waiting in one cabinet at a time and
CITIZEN_DAILY in any 24 hours, so no one key can fill a cabinet's compartments for the 7 days
items wait. The held count is kept in the cabinet's own record (each compartment says whose
drop-off fills it), so two drop-offs at once cannot both take the last place a citizen has.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable

import msgspec

from cityops.domain.incidents.workflow import Refused
from cityops.domain.tell import Tell

CODE_DIGITS = 6
HOLD_S = 7 * 86_400.0
CALLER_MAX_WRONG = 5
CABINET_MAX_WRONG = 30
WINDOW_S = 15 * 60.0
LOCK_S = 15 * 60.0
HASH_ITERATIONS = 50_000
SIZES = ("small", "standard", "large")
CITIZEN_HELD = 2  # items one citizen's drop-offs may keep waiting in one cabinet
CITIZEN_DAILY = 4  # drop-offs one citizen may make in 24 hours, all cabinets together
DAY_S = 86_400.0


class Expired(Refused):
    """The code was right but the item waited too long: it is kept for return (HTTP 410)."""


class HeldLimit(Refused):
    """The citizen's drop-offs already fill their share of this cabinet (HTTP 409)."""


class DailyLimit(Exception):
    """The citizen made their day's drop-offs: the next one is possible in `retry_after`
    seconds (HTTP 429)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"at most {CITIZEN_DAILY} drop-offs a day per citizen; the next is "
                         f"possible in {max(1, round(retry_after))} s")
        self.retry_after = retry_after


class Compartment(msgspec.Struct, omit_defaults=True):
    no: int
    size: str = "standard"
    item: str | None = None  # the item in it
    out_of_order: bool = False
    by: str = ""  # the citizen whose drop-off fills it (staff drop-offs are not counted)


class Cabinet(msgspec.Struct, kw_only=True):
    id: str
    name: str
    centre: str  # the service centre it stands in
    area: str = ""  # area code of the centre
    address: str = ""
    salt: str  # hex; hashes of codes for this cabinet are salted with it
    compartments: list[Compartment]
    created: float = 0.0

    def free(self, size: str | None = None) -> list[Compartment]:
        return [c for c in self.compartments if c.item is None and not c.out_of_order
                and (size is None or c.size == size)]

    def compartment(self, no: int) -> Compartment:
        for c in self.compartments:
            if c.no == no:
                return c
        raise KeyError(no)


class ItemStatus(enum.StrEnum):
    WAITING = "waiting"  # in its compartment, the code works
    COLLECTED = "collected"
    RETURN_DUE = "return_due"  # uncollected after 7 days: staff take it out and return it
    RETURNED = "returned"


class Item(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    cabinet_id: str
    compartment: int
    status: ItemStatus = ItemStatus.WAITING
    description: str = ""
    # Who collects it: a citizen (by account), a phone number, or a department.
    recipient_citizen: str = ""
    recipient_department: str = ""
    phone: str = ""  # where the code was sent
    dropped_by: str = ""  # key id
    dropped_by_role: str = ""
    dropped_at: float
    expires: float
    code_hash: str  # PBKDF2 of the code; never the code
    collected_at: float | None = None
    collected_by: str = ""
    flagged_at: float | None = None
    returned_at: float | None = None
    returned_by: str = ""
    note: str = ""


class Drops(msgspec.Struct, omit_defaults=True):
    """When one citizen dropped off within the last day."""

    at: list[float] = []


class Guard(msgspec.Struct, omit_defaults=True):
    """Wrong codes from one caller (or, for the cabinet-wide guard, from everyone)."""

    failures: list[float] = []
    locked_until: float = 0.0
    lockouts: int = 0


def new_cabinet(cabinet_id: str, name: str, centre: str, compartments: int | list[str], *,
                salt: str, area: str = "", address: str = "", now: float = 0.0) -> Cabinet:
    sizes = ["standard"] * compartments if isinstance(compartments, int) else list(compartments)
    if not 1 <= len(sizes) <= 500:
        raise Refused("a cabinet has between 1 and 500 compartments")
    bad = sorted({s for s in sizes if s not in SIZES})
    if bad:
        raise Refused(f"compartment size {bad[0]!r} is not one of: {', '.join(SIZES)}")
    if not name.strip() or not centre.strip():
        raise Refused("a cabinet needs a name and the service centre it stands in")
    return Cabinet(id=cabinet_id, name=name.strip(), centre=centre.strip(), area=area,
                   address=address, salt=salt, created=now,
                   compartments=[Compartment(no=i + 1, size=s) for i, s in enumerate(sizes)])


def acceptable_code(code: str) -> bool:
    """Six digits, and not one a person would try first: all one digit, or a run up or down
    (123456, 987654)."""
    if len(code) != CODE_DIGITS or not code.isdigit():
        return False
    if len(set(code)) == 1:
        return False
    steps = {(int(b) - int(a)) % 10 for a, b in zip(code, code[1:])}
    return steps not in ({1}, {9})


def draw_code(randbelow: Callable[[int], int]) -> str:
    """`randbelow` is `secrets.randbelow`: the rules stay pure, the randomness is the caller's."""
    while True:
        code = f"{randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        if acceptable_code(code):
            return code


def code_hash(cabinet: Cabinet, code: str) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), bytes.fromhex(cabinet.salt) +
                                 cabinet.id.encode(), HASH_ITERATIONS)
    return digest.hex()


def held_by(cabinet: Cabinet, by: str) -> int:
    return sum(1 for c in cabinet.compartments if c.item is not None and c.by == by)


def place(cabinet: Cabinet, item_id: str, size: str | None = None,
          by: str = "") -> tuple[Cabinet, int]:
    """The cabinet with `item_id` in its first free compartment (of `size`, if given);
    `by`: the citizen dropping it off, held to CITIZEN_HELD items in the cabinet."""
    if by and held_by(cabinet, by) >= CITIZEN_HELD:
        raise HeldLimit(f"{CITIZEN_HELD} items dropped off by this citizen are waiting in "
                        f"cabinet {cabinet.id}: another may go in once one is collected")
    free = cabinet.free(size)
    if not free:
        what = f"{size} compartment" if size else "compartment"
        raise Refused(f"cabinet {cabinet.id} has no free {what}")
    cabinet = msgspec.convert(msgspec.to_builtins(cabinet), Cabinet)
    slot = cabinet.compartment(free[0].no)
    slot.item, slot.by = item_id, by
    return cabinet, slot.no


def count_drop(drops: Drops, now: float) -> Drops:
    """One more drop-off by the citizen, unless they made CITIZEN_DAILY in the last day."""
    recent = [t for t in drops.at if t > now - DAY_S]
    if len(recent) >= CITIZEN_DAILY:
        raise DailyLimit(min(recent) + DAY_S - now)
    return Drops([*recent, now])


def uncount_drop(drops: Drops, at: float) -> Drops:
    """A counted drop-off that did not happen after all (no place, no recipient)."""
    kept = list(drops.at)
    if at in kept:
        kept.remove(at)
    return Drops(kept)


def release(cabinet: Cabinet, no: int, item_id: str) -> Cabinet | None:
    """The cabinet with compartment `no` emptied; None when it does not hold `item_id`."""
    try:
        if cabinet.compartment(no).item != item_id:
            return None
    except KeyError:
        return None
    cabinet = msgspec.convert(msgspec.to_builtins(cabinet), Cabinet)
    slot = cabinet.compartment(no)
    slot.item, slot.by = None, ""
    return cabinet


def drop(item_id: str, cabinet: Cabinet, compartment: int, code: str, *, now: float,
         dropped_by: str, dropped_by_role: str, description: str = "",
         recipient_citizen: str = "", recipient_department: str = "",
         phone: str = "") -> Item:
    if not (recipient_citizen or recipient_department or phone):
        raise Refused("a drop-off needs a recipient: a citizen, a phone number or a department")
    return Item(id=item_id, cabinet_id=cabinet.id, compartment=compartment,
                description=description, recipient_citizen=recipient_citizen,
                recipient_department=recipient_department, phone=phone,
                dropped_by=dropped_by, dropped_by_role=dropped_by_role, dropped_at=now,
                expires=now + HOLD_S, code_hash=code_hash(cabinet, code))


def dropoff_tells(item: Item, cabinet: Cabinet, code: str) -> list[Tell]:
    """The code goes in the body (the log notifier logs subjects only)."""
    body = (f"Materials for you are in cabinet {cabinet.name} ({cabinet.centre}), "
            f"compartment {item.compartment}. Pickup code {code}; it opens once, within 7 days.")
    # The code in the args too: the text in the reader's language is written from them.
    args: dict[str, str | int | float] = {"cabinet_name": cabinet.name,
                                          "compartment": item.compartment}
    tells = []
    if item.phone:
        tells.append(Tell("cabinet.dropoff", item.phone, "Pickup code", body, sms=True,
                          ref=f"{item.id}:sms", args={**args, "code": code}))
    if item.recipient_department:
        tells.append(Tell("cabinet.dropoff", item.recipient_department,
                          f"Materials in cabinet {cabinet.name}", body, ref=f"{item.id}:dept",
                          args={**args, "code": code}))
    return tells


def collect(item: Item, now: float, by: str) -> Item:
    """The right code was given: the item, collected. Single use: only a waiting item."""
    if item.status is ItemStatus.RETURN_DUE or (item.status is ItemStatus.WAITING
                                                and now >= item.expires):
        raise Expired(f"item {item.id} waited over 7 days and is kept for return: ask at "
                      "the service centre")
    if item.status is not ItemStatus.WAITING:
        raise Refused(f"item {item.id} is {item.status.value}")
    return msgspec.structs.replace(item, status=ItemStatus.COLLECTED, collected_at=now,
                                   collected_by=by)


def flag_uncollected(item: Item, now: float) -> tuple[Item, list[Tell]] | None:
    if item.status is not ItemStatus.WAITING or now < item.expires:
        return None
    flagged = msgspec.structs.replace(item, status=ItemStatus.RETURN_DUE, flagged_at=now)
    tells = [Tell("cabinet.return_due", item.recipient_department or "service_centre",
                  f"Cabinet {item.cabinet_id} compartment {item.compartment}: uncollected "
                  "after 7 days, return it", ref=f"{item.id}:return_due",
                  args={"compartment": item.compartment})]
    if item.phone:
        tells.append(Tell("cabinet.expired", item.phone, "Pickup expired",
                          "Your materials were not collected within 7 days and are being "
                          "returned; ask at the service centre.", sms=True,
                          ref=f"{item.id}:expired"))
    return flagged, tells


def return_item(item: Item, now: float, by: str, note: str = "") -> Item:
    """Staff take an item out (uncollected, or taken back by the dropper)."""
    if item.status not in (ItemStatus.WAITING, ItemStatus.RETURN_DUE):
        raise Refused(f"item {item.id} is {item.status.value}: nothing to return")
    return msgspec.structs.replace(item, status=ItemStatus.RETURNED, returned_at=now,
                                   returned_by=by, note=note)


# -- guessing ------------------------------------------------------------------------------

def retry_after(guard: Guard, now: float) -> float:
    return max(0.0, guard.locked_until - now)


def after_failure(guard: Guard, now: float, max_wrong: int) -> Guard:
    """One more wrong code; `max_wrong` of them within WINDOW_S locks for LOCK_S."""
    recent = [t for t in guard.failures if t > now - WINDOW_S] + [now]
    if len(recent) >= max_wrong:
        return Guard([], now + LOCK_S, guard.lockouts + 1)
    return Guard(recent, guard.locked_until, guard.lockouts)
