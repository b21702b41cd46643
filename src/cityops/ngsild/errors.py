"""NGSI-LD errors: ProblemDetails (RFC 7807) with the ETSI error types and the spec's statuses.

Every NGSI-LD handler raises `NgsiError(kind, detail)`; the route table's wrapper maps it (one
subclass per kind is registered with `errors_map`, so even a route that does not render
ProblemDetails answers the right status), and `render_problem`, each NGSI-LD endpoint's
`render_error`, turns it, and the route layer's own refusals (401, 403, 413, 429 ...), into
`{"type", "title", "detail"}`. The ETSI conformance suite checks that `title` and `detail` are
both non-empty strings and differ, and that `type` is the error's URI; `detail` names the
parameter or attribute at fault.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.errors import ApiError
from cityops.api.route import errors_map

ERRORS_BASE = "https://uri.etsi.org/ngsi-ld/errors/"
PROBLEM_MEDIA = "application/json"  # the spec answers ProblemDetails as application/json

# kind -> (status, title). The spec's list (GS CIM 009 V1.8, clause 5.5.2); 406/415 carry the
# InvalidRequest type with their own status, as the spec names no type of their own.
KINDS: dict[str, tuple[int, str]] = {
    "InvalidRequest": (400, "The request is syntactically invalid"),
    "BadRequestData": (400, "The request includes input data which does not meet the "
                            "requirements of the operation"),
    "AlreadyExists": (409, "The referred element already exists"),
    "OperationNotSupported": (422, "The operation is not supported"),
    "ResourceNotFound": (404, "The referred resource has not been found"),
    "InternalError": (500, "There has been an error during the operation execution"),
    "TooComplexQuery": (403, "The query is too complex and cannot be resolved"),
    "TooManyResults": (403, "The query produces too many results"),
    "LdContextNotAvailable": (503, "A remote JSON-LD @context could not be retrieved"),
    "NoMultiTenantSupport": (501, "The broker does not support multiple tenants"),
    "NonexistentTenant": (404, "The addressed tenant does not exist"),
}


class NgsiError(Exception):
    """An NGSI-LD failure of `kind` (an ETSI error type's last segment). `detail` says what
    was wrong and names the field; `status` overrides the kind's default (406, 415)."""

    kind: str
    status: int
    title: str
    detail: str
    reason: str  # read by the route wrapper as the message

    def __new__(cls, kind: str, detail: str, status: int | None = None, *,
                title: str | None = None) -> NgsiError:
        # One subclass per kind, so errors_map (class -> status) answers each kind's status
        # even on a route that does not render ProblemDetails.
        sub = _SUBCLASSES.get(kind, cls) if cls is NgsiError else cls
        return super().__new__(sub, kind, detail)

    def __init__(self, kind: str, detail: str, status: int | None = None, *,
                 title: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown NGSI-LD error kind {kind!r}")
        super().__init__(detail)
        default_status, default_title = KINDS[kind]
        self.kind = kind
        self.status = status or default_status
        self.title = title or default_title
        self.detail = detail
        self.reason = detail

    @property
    def type(self) -> str:
        return ERRORS_BASE + self.kind

    def problem(self) -> dict[str, Any]:
        """The ProblemDetails body."""
        return {"type": self.type, "title": self.title, "status": self.status,
                "detail": self.detail}

    def __reduce__(self) -> tuple[Any, ...]:
        return (NgsiError, (self.kind, self.detail, self.status), {"title": self.title})


_SUBCLASSES: dict[str, type[NgsiError]] = {
    kind: type(f"{kind}Error", (NgsiError,), {"__module__": __name__}) for kind in KINDS
}
errors_map({sub: KINDS[kind][0] for kind, sub in _SUBCLASSES.items()})


def problem_response(error: NgsiError, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(error.problem()), error.status, headers,
                    media_type=PROBLEM_MEDIA)


# The route layer's refusals that have an ETSI type; the rest (401, 403, 408, 413, 429, 503
# busy) are plain HTTP problems: RFC 7807's "about:blank" with the status's phrase as title.
_LAYER_KIND = {400: "BadRequestData", 404: "ResourceNotFound", 409: "AlreadyExists",
               422: "OperationNotSupported", 500: "InternalError", 501: "NoMultiTenantSupport"}
_PHRASE = {401: "Unauthorized", 403: "Forbidden", 405: "Method Not Allowed",
           406: "Not Acceptable", 408: "Request Timeout", 413: "Content Too Large",
           415: "Unsupported Media Type", 429: "Too Many Requests",
           503: "Service Unavailable"}


def problem_of(error: ApiError) -> dict[str, Any]:
    """The ProblemDetails of a route-layer error, or of an NgsiError the wrapper mapped (it
    raises the ApiError while handling the NgsiError, which stays its `__context__`)."""
    cause = error.__context__
    if isinstance(cause, NgsiError):
        return cause.problem()
    detail = error.error if isinstance(error.error, str) and error.error else "refused"
    if isinstance(error.detail, str) and error.detail and error.detail != detail:
        detail = f"{detail}: {error.detail}"
    kind = _LAYER_KIND.get(error.status)
    if error.status == 400 and ("is not JSON" in detail or "contains unknown field" in detail):
        # A body that is no JSON, or a query parameter the operation does not have (clause
        # 6.3.20): the request itself is malformed.
        kind = "InvalidRequest"
    if kind is not None:
        return NgsiError(kind, detail, error.status).problem()
    title = _PHRASE.get(error.status, "Error")
    if title == detail:
        detail = f"{detail} (HTTP {error.status})"
    return {"type": "about:blank", "title": title, "status": error.status, "detail": detail}


def render_problem(request: Request, error: ApiError) -> Response:
    """`Endpoint.render_error` of every NGSI-LD route: the route layer's refusals and mapped
    NgsiErrors as ProblemDetails, keeping the layer's headers (Retry-After ...)."""
    body = problem_of(error)
    return Response(msgspec.json.encode(body), int(body["status"]), error.headers or None,
                    media_type=PROBLEM_MEDIA)
