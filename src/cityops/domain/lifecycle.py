"""A device's life: commissioning -> active -> maintenance -> decommissioned.

A device is registered `commissioning`: installed, or about to be, and not yet heard. Its first
accepted reading makes it `active`, and only active devices can be "offline": a city whose
devices are still being installed must not see each of them as an incident. `maintenance`
takes a device out of the rules while a crew works on it (its readings are still stored), and
`decommissioned` for good, until it is commissioned again.

Pure rules: which moves are allowed, and why others are not. No I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Lifecycle(enum.StrEnum):
    COMMISSIONING = "commissioning"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    DECOMMISSIONED = "decommissioned"


# Small integers for the registry's per-device array (int8), in the order above.
CODES: dict[Lifecycle, int] = {state: i for i, state in enumerate(Lifecycle)}
STATES: tuple[Lifecycle, ...] = tuple(Lifecycle)
COMMISSIONING, ACTIVE, MAINTENANCE, DECOMMISSIONED = (CODES[s] for s in STATES)

# Moves a person may ask for, from each state. Commissioning -> active is not among them:
# that one is made by the device's first reading, never by hand, so "active" always means
# "has been heard".
_ALLOWED: dict[Lifecycle, frozenset[Lifecycle]] = {
    Lifecycle.COMMISSIONING: frozenset({Lifecycle.MAINTENANCE, Lifecycle.DECOMMISSIONED}),
    Lifecycle.ACTIVE: frozenset({Lifecycle.MAINTENANCE, Lifecycle.DECOMMISSIONED}),
    Lifecycle.MAINTENANCE: frozenset({Lifecycle.ACTIVE, Lifecycle.DECOMMISSIONED}),
    Lifecycle.DECOMMISSIONED: frozenset({Lifecycle.COMMISSIONING}),
}


class RefusedMove(ValueError):
    """A lifecycle move that is not allowed; `device` names the device when one is known."""

    def __init__(self, reason: str, device: str = "") -> None:
        super().__init__(f"device {device!r}: {reason}" if device else reason)
        self.reason = str(self)
        self.device = device


def parse(text: str) -> Lifecycle:
    """A state from its name, or a refusal that lists the names."""
    try:
        return Lifecycle(text)
    except ValueError:
        known = ", ".join(s.value for s in STATES)
        raise RefusedMove(f"unknown lifecycle state {text!r} (known: {known})") from None


def why_not(before: Lifecycle, after: Lifecycle) -> str | None:
    """None when a person may move a device from `before` to `after`, else the reason. A
    device already where it is asked to go is no refusal: a change by area or kind often
    takes in a few devices already there, and leaves them as they are."""
    if after in _ALLOWED[before] or before == after:
        return None
    if after is Lifecycle.ACTIVE and before is Lifecycle.COMMISSIONING:
        return "becomes active by itself at its first reading; it cannot be set active"
    if after is Lifecycle.ACTIVE and before is Lifecycle.DECOMMISSIONED:
        return "is decommissioned: commission it again first (to commissioning)"
    if after is Lifecycle.COMMISSIONING:
        return f"is {before.value}: only a decommissioned device is commissioned again"
    return f"cannot move from {before.value} to {after.value}"


def check_moves(moves: Iterable[tuple[str, Lifecycle, Lifecycle]]) -> None:
    """Raise `RefusedMove` for the first move of (device id, before, after) not allowed, so a
    bulk change is refused whole before anything of it is applied."""
    for device, before, after in moves:
        reason = why_not(before, after)
        if reason is not None:
            raise RefusedMove(reason, device)


def counts_silence_from(lifecycle_at: float, last_reading: float) -> float:
    """When an active device's silence starts: its last reading, or the moment it entered
    its current state if that is later (a device back from maintenance is not offline for
    the weeks it spent there)."""
    return max(lifecycle_at, last_reading)


def never_reported(lifecycle: Lifecycle, lifecycle_at: float, now: float,
                   window_s: float) -> bool:
    """A device commissioned more than `window_s` ago and still never heard: a list for the
    installers, not an incident."""
    return lifecycle is Lifecycle.COMMISSIONING and now - lifecycle_at >= window_s


def may_settle(stored: Lifecycle, stored_at: float, mine: Lifecycle) -> bool:
    """Whether a change a node made by itself (a first reading: commissioning -> active; a
    first lifecycle time, a stamp) may still go into a device as the store holds it now, in
    state `stored` since `stored_at` (0: never stamped). Only while nobody moved it meanwhile:
    a move made elsewhere (by a person, through any node or the CLI) left it in another state
    or with a time, and wins. A device commissioned again meanwhile is commissioning once
    more, and a reading heard may make it active, as its next one would."""
    if mine is Lifecycle.ACTIVE and stored is Lifecycle.COMMISSIONING:
        return True
    return stored is mine and stored_at == 0
