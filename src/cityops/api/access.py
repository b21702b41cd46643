"""Request-level access: who is calling (bearer key) and whether their role may do this.

Failed authentication is counted per source address (`FairShare`): an address that keeps
guessing is told to wait with 429 before its next guess reaches the key store."""

from __future__ import annotations

from collections.abc import Collection

from starlette.requests import Request

from cityops.api.errors import ApiError
from cityops.api.fairshare import share_of, source_of
from cityops.domain.access import Principal, Role


def _refused(request: Request, error: str) -> ApiError:
    share = share_of(request)
    if share is not None:
        share.failed(source_of(request))
    return ApiError(401, error, headers={"WWW-Authenticate": "Bearer"})


async def principal(request: Request, allowed: Collection[Role]) -> Principal:
    share = share_of(request)
    if share is not None:
        share.check_source(source_of(request))
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": "Bearer"})
    who: Principal | None = await request.app.state.node.keys.resolve(secret.strip())
    if who is None:
        raise _refused(request, "unknown, expired or revoked API key")
    if who.role not in allowed:
        need = ", ".join(sorted(r.value for r in allowed))
        raise ApiError(403, f"a {who.role.value} key may not do this (needs one of: {need})")
    return who


def area_in_scope(who: Principal, area: str | None) -> str | None:
    """The area a call about an area covers: the one asked, within the key's area scope. A key
    scoped to an area that asks for none, or for a wider one, gets its own area; one that asks
    for another area is refused (403)."""
    mine = who.scope.area
    if mine is None or (area is not None and area.startswith(mine)):
        return area
    if area is None or mine.startswith(area):
        return mine
    raise ApiError(403, f"area {area} lies outside this key's scope {who.scope}")
