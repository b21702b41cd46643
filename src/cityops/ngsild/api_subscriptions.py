"""NGSI-LD subscription routes (GS CIM 009 clause 5.8, HTTP binding 6.10-6.11), mounted at
`/ngsi-ld/v1`:

    POST   /subscriptions                   create (201 + Location)
    GET    /subscriptions                   list (limit, offset, count)
    GET    /subscriptions/{subscriptionId}  retrieve
    PATCH  /subscriptions/{subscriptionId}  update (204)
    DELETE /subscriptions/{subscriptionId}  delete (204)
    POST   /notify                          notifications of brokers this node subscribed to
                                            (cityops.ngsild.federation)

Subscriptions are an operations centre's tool: admin and operator keys make and read them.
A scoped key sees only the subscriptions made with its scope (or within it), and what they
notify is held to that scope (cityops.ngsild.subscriptions). Every refusal is a ProblemDetails
with the ETSI error type.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Guard, Scope
from cityops.domain.access import Role
from cityops.ngsild import PREFIX
from cityops.ngsild.contexts import (
    NO_CONTEXT,
    TermMap,
    context_of_request,
    link_header,
    served_url,
)
from cityops.ngsild.entity import is_uri
from cityops.ngsild.errors import NgsiError, render_problem
from cityops.ngsild.http import (
    ANSWERS,
    JSON,
    JSONLD,
    MERGE_PATCH,
    NoParams,
    answer_media,
    body_media,
    refused_early,
)
from cityops.ngsild.federation import (
    NOTIFY_BODY,
    NOTIFY_PATH,
    federation_status,
    take_notification,
)
from cityops.ngsild.subscriptions import Subscription, Subscriptions, render

MANAGERS = frozenset({Role.ADMIN, Role.OPERATOR})
SUBSCRIPTION_BODY = 64 * 1024  # a subscription is a few selectors and names
MAX_LIMIT = 1000
MEDIA = (JSON, JSONLD)
PATCH_MEDIA = (*MEDIA, MERGE_PATCH)  # clause 6.3.4: PATCH takes merge-patch+json too


class ProblemDetails(msgspec.Struct):
    """RFC 7807 with the ETSI error type URI (cityops.ngsild.errors)."""

    type: str
    title: str
    status: int
    detail: str


class ListQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=0)] = 20
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0
    count: bool = False


def subscriptions_of(call: Call[Any, Any]) -> Subscriptions:
    subs: Subscriptions = call.node.ngsild.subscriptions
    return subs


async def json_body(call: Call[Any, Any], what: str = "body",
                    allowed: tuple[str, ...] = MEDIA) -> dict[str, Any]:
    """The request's JSON object (of a media type in `allowed`), or the spec's error:
    InvalidRequest for what is not JSON, BadRequestData for JSON of another shape."""
    body_media(call.request, allowed)
    raw = await call.raw_body()
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        raise NgsiError("InvalidRequest", f"{what} is not JSON: {error}") from None
    except RecursionError:
        raise NgsiError("InvalidRequest", f"{what} is nested too deeply") from None
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", f"{what} must be a JSON object")
    if not body:
        raise NgsiError("BadRequestData", f"{what} is empty")
    return body


def request_terms(call: Call[Any, Any], body: dict[str, Any] | None = None) -> TermMap:
    context = NO_CONTEXT if body is None else body.get("@context", NO_CONTEXT)
    return context_of_request(call.request.headers, context)


def answer(call: Call[Any, Any], body: Any, terms: TermMap, status: int = 200,
           headers: dict[str, str] | None = None,
           pages: dict[str, str] | None = None) -> Response:
    """JSON with the context in a Link header, or JSON-LD with it in the body, as asked;
    `pages` (rel -> the neighbour page's query) become Link headers too (clause 6.3.13)."""
    out = dict(headers or {})
    base = call.node.settings.public_base_url or str(call.request.base_url)
    media = answer_media(call.request, ANSWERS)
    links = [f'<{PREFIX}/subscriptions?{query}>; rel="{rel}"; type="{media}"'
             for rel, query in (pages or {}).items()]
    if media == JSONLD:
        context = terms.context if terms.context is not None else _core_url()
        if isinstance(context, str):
            context = served_url(context, base)
        if isinstance(body, list):
            body = [dict(item, **{"@context": context}) for item in body]
        else:
            body = dict(body, **{"@context": context})
    else:
        links.insert(0, link_header(terms, base))
    if links:
        out["Link"] = ", ".join(links)
    return Response(msgspec.json.encode(body), status, out, media_type=media)


def _neighbours(query: ListQuery, total: int) -> dict[str, str]:
    """The queries of the pages before and after this one, where there are any."""
    if query.limit == 0:
        return {}
    tail = "&count=true" if query.count else ""
    out = {}
    if query.offset > 0:
        out["prev"] = f"limit={query.limit}&offset={max(0, query.offset - query.limit)}{tail}"
    if query.offset + query.limit < total:
        out["next"] = f"limit={query.limit}&offset={query.offset + query.limit}{tail}"
    return out


def _core_url() -> str:
    from cityops.ngsild.contexts import CORE_CONTEXT_URL

    return CORE_CONTEXT_URL


# -- the routes' handlers ---------------------------------------------------------------------


async def create_subscription(call: Call[Any, Any]) -> Response:
    body = await json_body(call)
    terms = request_terms(call, body)
    subs = subscriptions_of(call)
    given = body.get("id")
    if isinstance(given, str):
        existing = await subs.load(given)
        if existing is not None and not subs.visible(call.principal, existing):
            # Another scope's subscription: refused as the route layer refuses a record out
            # of reach, without its contents.
            raise ApiError(403, f"id: {given} is taken by a subscription outside this key's "
                                "scope")
    sub = await subs.create(call.principal, body, terms)
    return Response(status_code=201, headers={"Location": f"{PREFIX}/subscriptions/{sub.id}"})


async def list_subscriptions(call: Call[ListQuery, Any]) -> Response:
    query = call.query
    answer_media(call.request, ANSWERS)  # 406 before any work
    if query.limit > MAX_LIMIT:
        raise NgsiError("TooManyResults", f"limit: at most {MAX_LIMIT} subscriptions in one "
                                          f"page, not {query.limit}")
    if query.limit == 0 and not query.count:
        raise NgsiError("BadRequestData", "limit: 0 only goes with count=true")
    terms = request_terms(call)
    subs = subscriptions_of(call)
    visible = subs.listing(call.principal)
    page = visible[query.offset:query.offset + query.limit]
    now = subs.clock()
    body = [render(s, terms, await subs.health_of(s), now) for s in page]
    headers = {"NGSILD-Results-Count": str(len(visible))} if query.count else {}
    return answer(call, body, terms, headers=headers, pages=_neighbours(query, len(visible)))


async def retrieve_subscription(call: Call[Any, Any]) -> Response:
    terms = request_terms(call)
    subs = subscriptions_of(call)
    return answer(call, await subs.to_json(call.record, terms), terms)


async def update_subscription(call: Call[Any, Any]) -> Response:
    body = await json_body(call, "the fragment", PATCH_MEDIA)
    terms = request_terms(call, body)
    await subscriptions_of(call).update(call.record, body, terms)
    return Response(status_code=204)


async def delete_subscription(call: Call[Any, Any]) -> Response:
    await subscriptions_of(call).delete(call.record)
    return Response(status_code=204)


async def _load(call: Call[Any, Any]) -> Subscription | None:
    # A malformed request is refused as such whether or not the subscription exists: what
    # it accepts and what it sends are checked before the lookup (cityops.ngsild.http).
    method = call.request.method
    with refused_early():
        if method in ("GET", "HEAD"):
            answer_media(call.request, ANSWERS)
        elif method == "PATCH":
            body_media(call.request, PATCH_MEDIA)
    sub_id = call.path["subscriptionId"]
    if not is_uri(sub_id):
        # Before the record is looked for: an id that is no URI is the client's mistake.
        raise ApiError(400, f"subscriptionId: {sub_id[:80]!r} is not a URI")
    return await subscriptions_of(call).load(sub_id)


def _sees(call: Call[Any, Any], sub: Subscription) -> bool:
    return subscriptions_of(call).visible(call.principal, sub)


SUBSCRIPTION = Guard[Subscription]("ngsild_subscription", "subscriptionId", _load, _sees)

_BODY_DOC = {media: {"type": "object"} for media in MEDIA}
_PATCH_DOC = {media: {"type": "object"} for media in PATCH_MEDIA}
_COMMON: dict[str, Any] = {"render_error": render_problem, "tags": ("ngsi-ld",),
                           "error_type": ProblemDetails}


ROUTES: list[Endpoint] = [
    Endpoint("POST", f"{PREFIX}/subscriptions", create_subscription,
             "Create an NGSI-LD subscription", MANAGERS, Scope.CREATE,
             kind="ngsild_subscription", query=NoParams, raw_body=True,
             request_content=_BODY_DOC, body_limit=SUBSCRIPTION_BODY, status=201,
             errors=(409, 415, 422),
             description="Notifications go to `notification.endpoint.uri` (http/https) when "
                         "a matching entity changes, or every `timeInterval` seconds.",
             **_COMMON),
    Endpoint("GET", f"{PREFIX}/subscriptions", list_subscriptions,
             "List the NGSI-LD subscriptions this key may see", MANAGERS, Scope.LIST,
             kind="ngsild_subscription", query=ListQuery, response=list[dict[str, Any]],
             errors=(400, 406), **_COMMON),
    Endpoint("GET", f"{PREFIX}/subscriptions/{{subscriptionId}}", retrieve_subscription,
             "Retrieve an NGSI-LD subscription with its notification status", MANAGERS,
             Scope.RECORD, guard=SUBSCRIPTION, query=NoParams, response=dict[str, Any],
             errors=(400, 406), **_COMMON),
    Endpoint("PATCH", f"{PREFIX}/subscriptions/{{subscriptionId}}", update_subscription,
             "Update an NGSI-LD subscription", MANAGERS, Scope.RECORD, guard=SUBSCRIPTION,
             query=NoParams, raw_body=True, request_content=_PATCH_DOC,
             body_limit=SUBSCRIPTION_BODY, status=204, errors=(400, 415, 503), **_COMMON),
    Endpoint("DELETE", f"{PREFIX}/subscriptions/{{subscriptionId}}", delete_subscription,
             "Delete an NGSI-LD subscription", MANAGERS, Scope.RECORD, guard=SUBSCRIPTION,
             query=NoParams, status=204, errors=(400,), **_COMMON),
    Endpoint("POST", NOTIFY_PATH, take_notification,
             "Take in a notification of a broker this node subscribed to", MANAGERS,
             Scope.CITY, raw_body=True, body_limit=NOTIFY_BODY, request_content=_BODY_DOC,
             status=204, also_ok=(207,), errors=(415,),
             description="The endpoint of the subscriptions CityOps keeps at other brokers "
                         "(Settings.ngsild_federation); entities of mapped types become "
                         "readings, others context entities; 207 with each entity's outcome "
                         "when some failed. Unscoped keys only.", **_COMMON),
    Endpoint("GET", "/api/v1/ngsild/federation", federation_status,
             "The subscriptions this node keeps at other NGSI-LD brokers, and their state",
             MANAGERS, Scope.CITY, response=list[dict[str, Any]]),
]
