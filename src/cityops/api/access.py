"""Request-level access: who is calling (bearer key) and whether their role may do this."""

from __future__ import annotations

from collections.abc import Collection

from starlette.requests import Request

from cityops.api.errors import ApiError
from cityops.domain.access import Principal, Role


async def principal(request: Request, allowed: Collection[Role]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": "Bearer"})
    who = await request.app.state.node.keys.resolve(secret.strip())
    if who is None:
        raise ApiError(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if who.role not in allowed:
        need = ", ".join(sorted(r.value for r in allowed))
        raise ApiError(403, f"a {who.role.value} key may not do this (needs one of: {need})")
    return who
