"""The route table's vocabulary: every HTTP route of a node is one `Endpoint`, declared beside
its feature, and this module turns the declarations into Starlette routes.

An endpoint says what it takes (a query model, a body model with its byte limit), what it
answers (a response model and status), who may call it (roles, or `PUBLIC`) and how the key's
scope applies (`Scope`). The wrapper built here does the rest, once for every route: it reads
the body within its limit and deadline, decodes and validates query and body into the models
(400 naming the field), resolves the key, applies fair-share limits, loads the record a route
acts on and checks the key's scope against it as stored (404 when outside, so a key learns
nothing of records elsewhere), maps domain errors to statuses, and encodes the answer. Handlers
are small functions of a `Call`; the OpenAPI document is generated from the same declarations
(`cityops.api.openapi`), so what is served and what is documented cannot drift apart.
"""

from __future__ import annotations

import enum
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route, websocket_session
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope
from starlette.websockets import WebSocket

from cityops.api.errors import CODE_PATTERN, ApiError, json_response
from cityops.api.export import Export, wanted
from cityops.api.export import start as start_export
from cityops.api.limits import (
    DEFAULT_BODY,
    check_depth,
    read_body,
)
from cityops.domain.access import Principal, Role

if TYPE_CHECKING:
    # For the type only: the node builds the app these routes are served from.
    from cityops.node import Node

B = TypeVar("B")
Q = TypeVar("Q")
R = TypeVar("R")

ALL_ROLES: frozenset[Role] = frozenset(Role)
PUBLIC: frozenset[Role] = frozenset()  # no key is asked for


class Scope(enum.Enum):
    """How a key's scope applies to a route. Every route names one; the generated scope test
    (tests/api/test_route_scope.py) walks each route by its policy."""

    NONE = "none"  # nothing scoped: public pages, health, the catalogue, the key itself
    CITY = "city"  # city-wide data (dead letters, the audit log, node figures): only keys
    # with no area or department scope
    LIST = "list"  # a list narrowed to what the key's scope covers
    RECORD = "record"  # acts on one stored record, loaded by the endpoint's `guard`
    OWN = "own"  # a citizen's or a field person's own things, found by the key's name
    CREATE = "create"  # makes (or moves) a record: the destination is checked, and any
    # record already stored under that id is checked as stored


@dataclass(frozen=True)
class Guard(Generic[R]):
    """How a `Scope.RECORD` route finds its record and whether the key may see it.

    `load` gets the call (with the principal) and the path parameter `param`; it answers the
    record or None. `sees` answers whether the key's scope covers the record as stored. A
    record that does not exist and one outside the scope both answer 404 with the same text.
    """

    kind: str  # what the record is ("citizen", "device" ...): errors and the scope test say it
    param: str
    load: Callable[[Call[Any, Any]], Awaitable[R | None]]
    sees: Callable[[Call[Any, Any], R], bool | Awaitable[bool]]


@dataclass
class Call(Generic[B, Q]):
    """What a handler gets: the request, the resolved key, and the decoded inputs."""

    request: Request
    who: Principal | None
    body: B
    query: Q
    record: Any = None
    path: Mapping[str, str] = field(default_factory=dict)
    body_limit: int = DEFAULT_BODY
    started: float = 0.0

    async def raw_body(self) -> bytes:
        """The body as bytes, within the route's limit and the node's body deadline (for
        routes that decode their own: reading batches, photos, Open311 forms)."""
        return await read_body(self.request, self.body_limit, self.started)

    @property
    def node(self) -> Node:
        node: Node = self.request.app.state.node
        return node

    @property
    def principal(self) -> Principal:
        """The key of a route that asks for one (never None there)."""
        assert self.who is not None, "a PUBLIC route has no principal"
        return self.who


@dataclass(frozen=True)
class Reply:
    """An answer with a status or headers other than the endpoint's declared ones."""

    body: Any
    status: int | None = None
    headers: Mapping[str, str] | None = None


Handler = Callable[[Call[Any, Any]], Awaitable[Any]]


class NoQuery(msgspec.Struct, forbid_unknown_fields=False):
    """Routes that take no query parameters ignore any that are sent, as HTTP servers do."""


@dataclass(frozen=True)
class Endpoint:
    """One route, declared once."""

    method: str
    path: str
    handler: Handler
    summary: str
    roles: frozenset[Role]
    scope: Scope
    query: type = NoQuery
    body: type | None = None
    body_limit: int = DEFAULT_BODY
    body_required: bool = True
    response: Any = None  # a type for the schema; None: no JSON body documented
    status: int = 200
    media_type: str = "application/json"  # of the answer, for the document
    alt_media: tuple[str, ...] = ()  # other media the answer may come in (Open311's XML)
    error_type: Any = None  # the errors' schema where it is not CityOps's {"error", "detail"}
    render_error: Callable[[Request, ApiError], Response] | None = None  # errors in a
    # protocol's own format (Open311's), where it has one
    guard: Guard[Any] | None = None
    kind: str = ""  # the record a LIST, CREATE or OWN route lists, makes or moves (a RECORD
    # route's is its guard's): the generated scope test makes such records in two areas
    errors: tuple[int, ...] = ()  # statuses beyond the ones the declaration implies
    tags: tuple[str, ...] = ()
    raw_body: bool = False  # the handler reads the body itself (streams, photos, forms)
    request_content: Mapping[str, Any] | None = None  # documented media of a raw body: a
    # type or a JSON schema per media type
    also_ok: tuple[int, ...] = ()  # other success statuses (200 for an update of a 201 route)
    examples: Mapping[str, str] | None = None  # path parameters other than the guard's, for
    # the generated tests (an action's name)
    description: str = ""
    include_in_schema: bool = True  # False only for catch-alls that answer 404/405
    own_key: bool = False  # a PUBLIC route that takes a key of its own (Open311's api_key
    # field): its handler charges that key's share, not the address's
    export: Export | None = None  # a list that may also be had whole as CSV or XLSX
    # (`?format=`, see cityops.api.export): how to page through it
    socket: Callable[[WebSocket], Awaitable[None]] | None = None  # a GET route that is also
    # a WebSocket: the session's handler (it authenticates the socket itself: browsers send
    # no Authorization header on an upgrade); the plain GET answers what `handler` says

    def __post_init__(self) -> None:
        if self.scope is Scope.RECORD and self.guard is None:
            raise TypeError(f"{self.method} {self.path}: a RECORD route needs a guard")
        if self.guard is not None and "{" + self.guard.param not in self.path:
            raise TypeError(f"{self.method} {self.path}: guard param {self.guard.param!r} "
                            "is not in the path")
        if self.scope in (Scope.LIST, Scope.CREATE) and not self.record_kind:
            raise TypeError(f"{self.method} {self.path}: a {self.scope.value} route names "
                            "the kind of record it lists or makes")
        if self.scope is not Scope.NONE and not self.roles:
            raise TypeError(f"{self.method} {self.path}: a scoped route cannot be PUBLIC")
        if self.socket is not None and self.method != "GET":
            raise TypeError(f"{self.method} {self.path}: a WebSocket is opened with a GET")
        if self.export is not None and self.method != "GET":
            raise TypeError(f"{self.method} {self.path}: only a GET list is exported")
        if self.export is not None and any(f.encode_name == "format" for f in
                                           msgspec.structs.fields(self.query)):
            raise TypeError(f"{self.method} {self.path}: `format` is the export's parameter, "
                            "not the query model's")

    @property
    def record_kind(self) -> str:
        return self.guard.kind if self.guard is not None else self.kind

    @property
    def public(self) -> bool:
        return not self.roles

    def statuses(self) -> list[int]:
        """Every status the route may answer: what the declaration implies, and `errors`."""
        out = {self.status, *self.also_ok, *self.errors}
        if not isinstance(self.query, type) or self.query is not NoQuery or self.body:
            out.add(400)
        if self.body is not None or self.raw_body:
            out.update({400, 408, 413})
        if not self.public:
            out.update({401, 403, 429})
        elif not self.own_key:
            out.add(429)  # the address's fair share
        if self.guard is not None:
            out.add(404)
        if self.export is not None:
            out.update({400, 503})  # a format not served; too many exports at once
        return sorted(out)


def refuse_scoped(who: Principal) -> None:
    """403 for a key with an area or department scope: city-wide data is not theirs."""
    if who.scope.area is not None or who.scope.department is not None:
        raise ApiError(403, f"a key scoped to {who.scope} may not read city-wide data",
                       code="city_wide_data")


# -- domain errors ----------------------------------------------------------------------------

_STATUS_OF: dict[type[BaseException], int] = {}


def errors_map(mapping: Mapping[type[Exception], int]) -> None:
    """Declare once, beside a feature's routes, which of its domain errors answer which status
    (`{NotFound: 404, Refused: 409}`); every route's wrapper maps them, so no handler catches
    a domain error just to turn it into a status."""
    for kind, status in mapping.items():
        if kind in (Exception, ValueError, KeyError, RuntimeError, TypeError):
            raise TypeError(f"map a feature's own error, not the builtin {kind.__name__}")
        if _STATUS_OF.get(kind, status) != status:
            # One registry for every route: two features may not answer one error two ways.
            raise TypeError(f"{kind.__name__} already answers {_STATUS_OF[kind]}, not {status}")
        _STATUS_OF[kind] = status


def _status_for(error: BaseException) -> int | None:
    for kind in type(error).__mro__:
        if kind in _STATUS_OF:
            return _STATUS_OF[kind]
    return None


def _code(error: BaseException) -> str | None:
    """A domain error's own stable code (a `code` attribute), when it has a plain one."""
    code = getattr(error, "code", None)
    return code if isinstance(code, str) and CODE_PATTERN.fullmatch(code) else None


def _message(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return reason if isinstance(reason, str) and reason else str(error)


# -- decoding ---------------------------------------------------------------------------------

_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def _decoder(kind: type) -> msgspec.json.Decoder[Any]:
    found = _decoders.get(kind)
    if found is None:
        found = _decoders[kind] = msgspec.json.Decoder(kind)
    return found


def decode_json(raw: bytes, kind: type, what: str = "body") -> Any:
    """`raw` as `kind`, or a 400 that names the field at fault."""
    try:
        value = _decoder(kind).decode(raw)
    except msgspec.ValidationError as error:
        raise ApiError(400, f"invalid {what}: {error}", code="invalid_input") from None
    except msgspec.DecodeError as error:
        raise ApiError(400, f"{what} is not JSON: {error}", code="not_json") from None
    except RecursionError:
        raise ApiError(400, f"{what} is nested too deeply", code="too_deep") from None
    check_depth(value, what)
    return value


def decode_query(request: Request, kind: type, skip: tuple[str, ...] = ()) -> Any:
    """The query string as `kind`: strings are converted to the declared types, and ranges,
    lengths and enums are checked, so a handler never sees an out-of-range number. Names in
    `skip` are the route layer's own (an export's `format`), not the model's."""
    params: dict[str, Any] = {}
    for name, value in request.query_params.multi_items():
        if name in skip:
            continue
        if name in params:
            raise ApiError(400, f"query parameter {name!r} is given more than once",
                           code="invalid_query")
        params[name] = value
    if kind is NoQuery:
        return NoQuery()
    try:
        return msgspec.convert(params, kind, strict=False)
    except msgspec.ValidationError as error:
        raise ApiError(400, f"invalid query: {error}".replace("`$.", "`"),
                       code="invalid_query") from None


# -- the wrapper ------------------------------------------------------------------------------


def _encode(endpoint: Endpoint, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    status, headers = endpoint.status, None
    if isinstance(result, Reply):
        status = result.status or status
        headers = dict(result.headers) if result.headers else None
        result = result.body
    if result is None and status == 204:
        return Response(status_code=204, headers=headers)
    return json_response(result, status, headers)


def wrap(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    from cityops.api.access import principal
    from cityops.api.fairshare import admit

    async def endpoint_fn(request: Request) -> Response:
        if endpoint.render_error is None:
            return await handle(request)
        try:
            return await handle(request)
        except ApiError as error:
            return endpoint.render_error(request, error)

    async def handle(request: Request) -> Response:
        who = None
        started = time.monotonic()
        if not endpoint.public:
            who = await principal(request, endpoint.roles)
        if endpoint.scope is Scope.CITY and who is not None:
            refuse_scoped(who)
        async with admit(request, who, endpoint):
            call: Call[Any, Any] = Call(request, who, None, None, None, request.path_params,
                                        endpoint.body_limit, started)
            fmt = wanted(request) if endpoint.export is not None else None
            call.query = decode_query(request, endpoint.query,
                                      ("format",) if endpoint.export is not None else ())
            guard = endpoint.guard
            if guard is not None:
                # Before the body: a record the key may not see is refused the same way
                # whatever was sent, and nothing of the body is read for it.
                key = request.path_params[guard.param]
                record = await guard.load(call)
                seen = record is not None and guard.sees(call, record)
                if not isinstance(seen, bool):
                    seen = await seen
                if not seen:
                    raise ApiError(404, f"no {guard.kind} {key!r}")
                call.record = record
            if endpoint.body is not None:
                raw = await read_body(request, endpoint.body_limit, started)
                if not raw.strip():
                    if endpoint.body_required:
                        raise ApiError(400, "a JSON body is required", code="body_required")
                    call.body = endpoint.body()
                else:
                    call.body = decode_json(raw, endpoint.body)
            try:
                if fmt is not None:
                    result = await start_export(endpoint, call, fmt)
                else:
                    result = await endpoint.handler(call)
            except ApiError:
                raise
            except Exception as error:
                status = _status_for(error)
                if status is None:
                    raise
                # A domain error may carry the details a client acts on (each problem of
                # a form) beside its message, and when to try again.
                retry = getattr(error, "retry_after", None)
                raise ApiError(status, _message(error), getattr(error, "detail", None),
                               {"Retry-After": str(max(1, math.ceil(retry)))}
                               if isinstance(retry, (int, float)) else None,
                               _code(error)) from None
            return _encode(endpoint, result)

    endpoint_fn.__name__ = endpoint.handler.__name__
    return endpoint_fn


def starlette_routes(table: Sequence[Endpoint]) -> list[Route]:
    """One Starlette route per path, its methods dispatched to their endpoints (Starlette
    matches the first route whose path fits, so two routes for one path would hide a 405)."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for e in table:
        methods = by_path.setdefault(e.path, {})
        if e.method in methods:
            raise ValueError(f"{e.method} {e.path} is declared twice")
        methods[e.method] = e
    routes = []
    for path, methods in by_path.items():
        wrapped = {m: wrap(e) for m, e in methods.items()}
        if "GET" in wrapped:
            wrapped.setdefault("HEAD", wrapped["GET"])
        socket = next((e.socket for e in methods.values() if e.socket is not None), None)
        route = (Route(path, _dispatch(path, wrapped), methods=list(wrapped)) if socket is None
                 else _SocketRoute(path, _dispatch(path, wrapped), list(wrapped), socket))
        # A path may carry any character percent-encoded, a newline too, which `.*` stops
        # at: such a request would miss its route and answer a misleading 404.
        route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
        routes.append(route)
    return routes


class _SocketRoute(Route):
    """A declared GET route that also takes the WebSocket upgrade of its path: one entry in
    the table for both, so the socket is documented, listed and scoped like any route."""

    def __init__(self, path: str, endpoint: Callable[[Request], Awaitable[Response]],
                 methods: list[str], socket: Callable[[WebSocket], Awaitable[None]]) -> None:
        super().__init__(path, endpoint, methods=methods)
        self.socket_app = websocket_session(socket)

    def matches(self, scope: AsgiScope) -> tuple[Match, AsgiScope]:
        if scope["type"] != "websocket":
            return super().matches(scope)
        return super().matches({**scope, "type": "http", "method": "GET"})

    async def handle(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.socket_app(scope, receive, send)
        else:
            await super().handle(scope, receive, send)


def _dispatch(path: str, wrapped: dict[str, Callable[[Request], Awaitable[Response]]]
              ) -> Callable[[Request], Awaitable[Response]]:
    if len(wrapped) == 1 or (len(wrapped) == 2 and "HEAD" in wrapped):
        return next(iter(wrapped.values()))

    async def by_method(request: Request) -> Response:
        return await wrapped[request.method](request)

    return by_method
