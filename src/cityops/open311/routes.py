"""Open311 GeoReport v2 routes, mounted at `/open311/v2`:

    GET  services.{fmt}                      the city's categories as services
    GET  services/{service_code}.{fmt}       a service definition with its attributes
    POST requests.{fmt}                      post a request (form-encoded, with api_key)
    GET  requests.{fmt}                      requests by id list, or by code, dates, status
    GET  requests/{service_request_id}.{fmt} one request
    GET  tokens/{token}.{fmt}                the request id a token names

Only POST needs a key, as in the spec: the GETs publish what Open311 publishes about a request
and nothing about who made it. Every answer, errors included, is in the format asked for.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from cityops.api.errors import ApiError
from cityops.api.fairshare import charge_key, share_of, source_of
from cityops.api.route import PUBLIC, Call, Endpoint, Scope
from cityops.domain.access import Principal
from cityops.open311 import PREFIX
from cityops.open311.formats import (
    DEFAULT_FORMAT,
    FORMATS,
    Open311Error,
    error_response,
    format_of,
    render,
)
from cityops.open311.models import (
    Open311Created,
    Open311Jurisdiction,
    Open311Listing,
    Open311NewRequest,
    Open311Problem,
    Open311Request,
    Open311Service,
    Open311ServiceDefinition,
    Open311Token,
)
from cityops.open311.service_requests import (
    MAX_IDS,
    POSTERS,
    Requests,
    jurisdiction_of,
)
from cityops.open311.services import Catalogue
from cityops.store.base import StoreBusy

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # a request is a few short fields; media travels as a URL
MAX_FIELDS = 200
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
STATUSES = ("open", "closed")

Handler = Callable[[Call[Any, Any], str], Awaitable[Response]]


def catalogue_of(node) -> Catalogue:
    categories = node.act.rules.categories if node.act is not None else node.pack.categories
    return Catalogue(categories, node.pack.departments)


def _check_jurisdiction(node, given: str | None) -> None:
    if given is None or not given.strip():
        return  # the spec asks for it only where one endpoint serves several
    ours = jurisdiction_of(node.pack.info.name)
    if given.strip() != ours:
        raise Open311Error(404, f"jurisdiction_id {given!r} was not found: this endpoint "
                                f"serves {ours!r}")


def _fmt(request: Request) -> str:
    raw = request.path_params.get("fmt")
    return raw if raw in FORMATS else DEFAULT_FORMAT


def render_error(request: Request, error: ApiError) -> Response:
    """The route layer's refusals (body limits, deadlines, query bounds) in the spec's format."""
    return error_response(_fmt(request), error.status, error.error, error.headers)


def open311(handler: Handler) -> Callable[[Call[Any, Any]], Awaitable[Response]]:
    """Answers in the resource's format, refusals in the spec's error format."""

    async def endpoint(call: Call[Any, Any]) -> Response:
        request = call.request
        fmt = _fmt(request)
        try:
            fmt = format_of(request.path_params.get("fmt"))
            if request.method == "GET":
                _check_jurisdiction(request.app.state.node,
                                    request.query_params.get("jurisdiction_id"))
            return await handler(call, fmt)
        except Open311Error as error:
            return error_response(fmt, error.code, error.description, error.headers)
        except StoreBusy as error:
            retry = str(max(1, round(error.retry_after)))
            return error_response(fmt, 503, f"overloaded: {error}", {"Retry-After": retry})
        except ApiError:
            raise
        except Exception:
            log.exception("Open311 %s %s failed", request.method, request.url.path)
            return error_response(fmt, 500, "internal error; it has been logged")

    endpoint.__name__ = handler.__name__
    return endpoint


# -- services ----------------------------------------------------------------------------------

@open311
async def list_services(call: Call[Any, Any], fmt: str) -> Response:
    catalogue = catalogue_of(call.node)
    return render(fmt, [s.doc() for s in catalogue], root="services", item="service")


@open311
async def service_definition(call: Call[Any, Any], fmt: str) -> Response:
    catalogue = catalogue_of(call.node)
    service = catalogue.require(call.path["service_code"])
    return render(fmt, service.definition(), root="service_definition")


# -- requests ----------------------------------------------------------------------------------

async def _form(call: Call[Any, Any]) -> list[tuple[str, str]]:
    """The query string and the body's fields: the spec posts form-encoded fields; some
    clients put them in the query string instead."""
    request = call.request
    pairs = list(request.query_params.multi_items())
    body = await call.raw_body()  # within MAX_BODY and the body deadline
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        try:
            form = await request.form(max_fields=MAX_FIELDS, max_files=0)
        except AssertionError:  # python-multipart is not installed
            raise Open311Error(415, "multipart/form-data is not taken here: post the fields "
                                    "as application/x-www-form-urlencoded") from None
        except Exception as error:
            raise Open311Error(400, f"the multipart body could not be read: {error}") from None
        return pairs + [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    if body.strip() and media not in ("application/x-www-form-urlencoded", ""):
        raise Open311Error(415, f"a {media} body is not taken: post the fields as "
                                "application/x-www-form-urlencoded")
    try:
        text = body.decode("utf-8")
        return pairs + parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                                 max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise Open311Error(400, "the form body is not UTF-8") from None
    except ValueError:
        raise Open311Error(400, f"the form has more than {MAX_FIELDS} fields") from None


def _split(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    fields: dict[str, str] = {}
    attributes: dict[str, list[str]] = {}
    for name, value in pairs:
        match = _ATTRIBUTE.match(name)
        if match:
            attributes.setdefault(match.group(1), []).append(value)
        else:
            fields[name] = value
    return fields, attributes


async def _poster(request: Request, fields: dict[str, str]) -> Principal:
    """The api_key field, as Open311 clients send it (or the bearer header CityOps clients
    send)."""
    secret = (fields.get("api_key") or "").strip()
    if not secret:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        secret = token.strip() if scheme.lower() == "bearer" else ""
    if not secret:
        raise Open311Error(403, "api_key was not provided -- can't proceed with create_request")
    share = share_of(request)
    if share is not None:
        share.check_source(source_of(request))
    who = await request.app.state.node.keys.resolve(secret)
    if who is None:
        if share is not None:
            share.failed(source_of(request))
        raise Open311Error(403, "Invalid api_key received -- can't proceed with create_request")
    charge_key(request, who)
    if who.role not in POSTERS:
        need = ", ".join(sorted(r.value for r in POSTERS))
        raise Open311Error(403, f"a {who.role.value} api_key may not post requests "
                                f"(needs one of: {need})")
    return who


@open311
async def post_request(call: Call[Any, Any], fmt: str) -> Response:
    node = call.node
    fields, attributes = _split(await _form(call))
    _check_jurisdiction(node, fields.get("jurisdiction_id"))
    who = await _poster(call.request, fields)
    requests = Requests(node, catalogue_of(node))
    doc, service = await requests.file(who, fields, attributes)
    answer = {"service_request_id": doc.service_request_id, "token": doc.token,
              "service_notice": requests.notice(service, doc),
              "account_id": doc.account_id or None}
    return render(fmt, [answer], root="service_requests", item="request")


def _list(raw: str | None) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in (raw or "").split(",") if v.strip()))


@open311
async def list_requests(call: Call[Any, Open311Listing], fmt: str) -> Response:
    node = call.node
    q = call.query
    requests = Requests(node, catalogue_of(node))
    ids = _list(q.service_request_id)
    if ids:  # the spec: a list of ids overrides every other filter
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"at most {MAX_IDS} service_request_id at once")
        found = [rec for i in ids if (rec := await requests.get(i)) is not None]
        items = await requests.views(found)
    else:
        statuses = _list(q.status)
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise Open311Error(400, f"status {bad[0]!r} is not open or closed")
        start, end = requests.window(q.start_date or None, q.end_date or None)
        items = await requests.find(start, end, _list(q.service_code), statuses)
    return render(fmt, items, root="service_requests", item="request")


@open311
async def get_request(call: Call[Any, Any], fmt: str) -> Response:
    node = call.node
    requests = Requests(node, catalogue_of(node))
    request_id = call.path["service_request_id"]
    rec = await requests.get(request_id)
    if rec is None:
        raise Open311Error(404, f"service_request_id {request_id!r} was not found")
    return render(fmt, await requests.views([rec]), root="service_requests", item="request")


@open311
async def get_token(call: Call[Any, Any], fmt: str) -> Response:
    node = call.node
    token = call.path["token"]
    rec = await Requests(node, catalogue_of(node)).by_token(token)
    if rec is None:
        raise Open311Error(404, f"token {token!r} was not found")
    return render(fmt, [{"service_request_id": rec.id, "token": token}],
                  root="service_requests", item="request")


async def not_here(call: Call[Any, Any]) -> Response:
    """Anything else under the prefix: a wrong method on a resource, or no such resource;
    said in the spec's format rather than the JSON API's."""
    request = call.request
    path = "/" + call.path["rest"]
    fmt = path.rsplit(".", 1)[-1] if "." in path else DEFAULT_FORMAT
    probe = {**request.scope, "method": "GET"}
    allowed = sorted({m for r in request.app.router.routes
                      if getattr(r, "path", "").startswith(PREFIX) and "{rest" not in r.path
                      for m in (getattr(r, "methods", None) or ())
                      if r.matches({**probe, "method": m})[0] is Match.FULL} - {"HEAD"})
    where = request.url.path
    if allowed:
        return error_response(fmt, 405, f"{request.method} is not allowed on {where} "
                                         f"(allowed: {', '.join(allowed)})",
                               {"Allow": ", ".join(allowed)})
    return error_response(fmt, 404, f"no Open311 resource at {where}: see services.json, "
                                    "requests.json, requests/{id}.json, tokens/{token}.json")


TAGS = ("Open311 GeoReport v2",)
XML = ("text/xml",)


def _resource(method: str, path: str, handler: Any, summary: str, response: Any,
              errors: tuple[int, ...], **more: Any) -> Endpoint:
    return Endpoint(method, PREFIX + path, handler, summary, PUBLIC, Scope.NONE,
                    response=response, tags=TAGS, alt_media=XML, error_type=list[Open311Problem],
                    render_error=render_error, errors=(*errors, 503),
                    examples={"fmt": "json"}, **more)


ROUTES = [
    _resource("GET", "/services.{fmt}", list_services,
              "Open311: the city's categories as services", list[Open311Service], (404,),
              query=Open311Jurisdiction),
    _resource("GET", "/services/{service_code}.{fmt}", service_definition,
              "Open311: a service definition with its attributes", Open311ServiceDefinition,
              (400, 404), query=Open311Jurisdiction),
    _resource("GET", "/requests.{fmt}", list_requests,
              "Open311: requests by id list, or by service, dates and status",
              list[Open311Request], (400, 404), query=Open311Listing),
    _resource("POST", "/requests.{fmt}", post_request,
              "Open311: post a request (form-encoded, with api_key)", list[Open311Created],
              (400, 403, 404, 413, 415, 429), raw_body=True, body_limit=MAX_BODY, own_key=True,
              request_content={"application/x-www-form-urlencoded": Open311NewRequest},
              description="The only key is the form's api_key field (or Authorization: "
                          "Bearer): a citizen, field, operator or admin key."),
    _resource("GET", "/requests/{service_request_id}.{fmt}", get_request,
              "Open311: one request", list[Open311Request], (404,), query=Open311Jurisdiction),
    _resource("GET", "/tokens/{token}.{fmt}", get_token,
              "Open311: the request id a token names", list[Open311Token], (404,),
              query=Open311Jurisdiction),
    *(Endpoint(method, PREFIX + "/{rest:path}", not_here,
               "Open311: anything else under the prefix: 404 or 405 in the spec's format",
               PUBLIC, Scope.NONE, tags=TAGS, status=404, error_type=list[Open311Problem],
               render_error=render_error, examples={"rest": "nothing.json"},
               errors=(405,), include_in_schema=False)
      for method in ("GET", "POST", "PUT", "PATCH", "DELETE")),
]
