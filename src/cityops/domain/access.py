"""Who may do what: roles and scopes of API keys. Pure rules, no I/O."""

from __future__ import annotations

import enum

import msgspec

from cityops.domain.city import AreaCodes


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    DEPARTMENT = "department"
    STATION = "station"
    DEVICE = "device"
    CITIZEN = "citizen"
    FIELD = "field"  # field staff and grid inspectors; the key's name is the person's staff id


class Scope(msgspec.Struct, frozen=True):
    """What part of the city a key covers: everything, one area (and below), or a department."""

    area: str | None = None
    department: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Scope:
        if not text or text in ("*", "city"):
            return cls()
        if text.isdigit():
            if len(text) not in (6, 9, 12):
                raise ValueError(f"area scope {text!r} must be a 6, 9 or 12 digit area code")
            return cls(area=text)
        if text.replace("_", "").isalnum() and text.lower() == text:
            return cls(department=text)
        raise ValueError(
            f"scope {text!r} is neither an area code (digits) nor a department code (snake_case)"
        )

    def __str__(self) -> str:
        return self.area or self.department or "*"


class Principal(msgspec.Struct, frozen=True):
    key_id: str
    role: Role
    scope: Scope
    name: str = ""
    expires_at: float | None = None  # epoch seconds, when the key has an expiry


READ_DEVICES = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION})
WRITE_READINGS = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEVICE})
REGISTER_DEVICES = frozenset({Role.ADMIN, Role.OPERATOR})
READ_OPERATIONS = frozenset({Role.ADMIN, Role.OPERATOR})  # dead letters, history stats


def can_see_place(
    principal: Principal,
    areas: AreaCodes | None,
    owner: str | None = None,
    department_areas: dict[str, list[str]] | None = None,
) -> bool:
    """Whether a key may see a thing located in `areas` and owned by department `owner`.

    A department key sees what its department owns, and what lies in the areas it serves.
    """
    scope = principal.scope
    if scope.area is None and scope.department is None:
        return True
    if scope.area is not None:
        return areas is not None and areas.within(scope.area)
    if owner is not None and owner == scope.department:
        return True
    served = (department_areas or {}).get(scope.department or "", [])
    return areas is not None and any(areas.within(code) for code in served)


def can_see_area(principal: Principal, code: str) -> bool:
    """Area metadata is public to every key except a device's; scoped keys see their branch."""
    if principal.role is Role.DEVICE:
        return False
    scope_area = principal.scope.area
    if scope_area is None:
        return True
    # The chain above the key's area is visible (breadcrumbs), and everything below it.
    return code.startswith(scope_area) or scope_area.startswith(code)
