"""The refusals of senior care, each with a stable code a page translates and a client
branches on (the route layer passes `code` through)."""

from __future__ import annotations


class CareError(Exception):
    code = "care_error"

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code


class CareRefused(CareError):
    """Not possible in the present state (HTTP 409): a bed taken, a slot booked."""

    code = "care_refused"


class CareInvalid(CareError):
    """What was asked makes no sense whatever the state (HTTP 400)."""

    code = "care_invalid"


class CareNotFound(CareError):
    """No such home, caregiver, entry or booking, or not the caller's to see (HTTP 404)."""

    code = "not_found"
