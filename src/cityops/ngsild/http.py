"""The HTTP edge every NGSI-LD route module shares: which media a request may send and ask
for (GS CIM 009 clause 6.3.4), the query parameters an operation has (clause 6.3.20), and how
a route's guard refuses a malformed request before it looks the record up.

A guard's `load` runs outside the handler, where the route layer answers only its own
`ApiError`; `refused_early` turns an `NgsiError` into one, the `NgsiError` riding along as
its cause so the ProblemDetails still show the ETSI type (`errors.problem_of`). That is why
the order holds everywhere: a request that is malformed (its media, its options) is refused
as such whether or not the record exists, and only then is a missing record a 404.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
from starlette.requests import Request

from cityops.api.errors import ApiError
from cityops.ngsild import contexts as ctx
from cityops.ngsild.errors import NgsiError

JSON, JSONLD = "application/json", "application/ld+json"
MERGE_PATCH = "application/merge-patch+json"
GEOJSON = "application/geo+json"
# GeoJSON is an answer of entity retrieval and query only; every other operation answers
# JSON or JSON-LD, and an Accept taking only GeoJSON is 406 there.
ENTITY_ANSWERS = (JSON, JSONLD, GEOJSON)
ANSWERS = (JSON, JSONLD)


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    """The query of an operation that has no parameters: any sent is InvalidRequest (clause
    6.3.20; the route layer's "unknown field" refusal becomes that type in
    `errors.problem_of`), where the route layer's default ignores them."""


def answer_media(request: Request, offers: tuple[str, ...] = ENTITY_ANSWERS) -> str:
    """The media of `offers` the Accept header prefers (its q-weights heeded; a wildcard or
    no Accept at all is JSON); InvalidRequest 406 when it takes none of them."""
    accept = request.headers.get("accept", "")
    if not accept.strip():
        return JSON
    best, best_q = "", -1.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        media = media.lower()
        chosen = JSON if media in ("*/*", "application/*") else media
        if chosen in offers and weight > 0 and weight > best_q:
            best, best_q = chosen, weight
    if not best:
        raise NgsiError("InvalidRequest", f"Accept: {accept[:100]!r} takes none of "
                                          f"{', '.join(offers)}", 406)
    return best


def body_media(request: Request, allowed: tuple[str, ...]) -> str:
    """The request body's media type; InvalidRequest 415 when it is not one of `allowed`."""
    media = ctx.media_type(request.headers)
    if media not in allowed:
        raise NgsiError("InvalidRequest", f"Content-Type {media or '(none)'!r} is not taken "
                                          f"here: send {' or '.join(allowed)}", 415)
    return media


@contextmanager
def refused_early() -> Iterator[None]:
    """Within a guard's `load`: an NgsiError raised as the route layer's error of its status,
    the NgsiError its cause (so its ETSI type is what the answer shows)."""
    try:
        yield
    except NgsiError as error:
        raise ApiError(error.status, error.detail) from error
