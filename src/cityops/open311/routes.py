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
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route

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

Handler = Callable[[Request, str], Awaitable[Response]]


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


def open311(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Answers in the resource's format, refusals in the spec's error format."""

    async def endpoint(request: Request) -> Response:
        raw = request.path_params.get("fmt")
        fmt = raw if raw in FORMATS else DEFAULT_FORMAT
        try:
            fmt = format_of(raw)
            if request.method == "GET":
                _check_jurisdiction(request.app.state.node,
                                    request.query_params.get("jurisdiction_id"))
            return await handler(request, fmt)
        except Open311Error as error:
            return error_response(fmt, error.code, error.description, error.headers)
        except StoreBusy as error:
            retry = str(max(1, round(error.retry_after)))
            return error_response(fmt, 503, f"overloaded: {error}", {"Retry-After": retry})
        except Exception:
            log.exception("Open311 %s %s failed", request.method, request.url.path)
            return error_response(fmt, 500, "internal error; it has been logged")

    endpoint.__name__ = handler.__name__
    return endpoint


# -- services ----------------------------------------------------------------------------------

@open311
async def list_services(request: Request, fmt: str) -> Response:
    catalogue = catalogue_of(request.app.state.node)
    return render(fmt, [s.doc() for s in catalogue], root="services", item="service")


@open311
async def service_definition(request: Request, fmt: str) -> Response:
    catalogue = catalogue_of(request.app.state.node)
    service = catalogue.require(request.path_params["service_code"])
    return render(fmt, service.definition(), root="service_definition")


# -- requests ----------------------------------------------------------------------------------

async def _form(request: Request) -> list[tuple[str, str]]:
    """The query string and the body's fields: the spec posts form-encoded fields; some
    clients put them in the query string instead."""
    pairs = list(request.query_params.multi_items())
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Open311Error(413, f"the request body is over {MAX_BODY // 1024} KiB")
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
    who = await request.app.state.node.keys.resolve(secret)
    if who is None:
        raise Open311Error(403, "Invalid api_key received -- can't proceed with create_request")
    if who.role not in POSTERS:
        need = ", ".join(sorted(r.value for r in POSTERS))
        raise Open311Error(403, f"a {who.role.value} api_key may not post requests "
                                f"(needs one of: {need})")
    return who


@open311
async def post_request(request: Request, fmt: str) -> Response:
    node = request.app.state.node
    fields, attributes = _split(await _form(request))
    _check_jurisdiction(node, fields.get("jurisdiction_id"))
    who = await _poster(request, fields)
    requests = Requests(node, catalogue_of(node))
    doc, service = await requests.file(who, fields, attributes)
    answer = {"service_request_id": doc.service_request_id, "token": doc.token,
              "service_notice": requests.notice(service, doc),
              "account_id": doc.account_id or None}
    return render(fmt, [answer], root="service_requests", item="request")


def _list(raw: str | None) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in (raw or "").split(",") if v.strip()))


@open311
async def list_requests(request: Request, fmt: str) -> Response:
    node = request.app.state.node
    q = request.query_params
    requests = Requests(node, catalogue_of(node))
    ids = _list(q.get("service_request_id"))
    if ids:  # the spec: a list of ids overrides every other filter
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"at most {MAX_IDS} service_request_id at once")
        found = [rec for i in ids if (rec := await requests.get(i)) is not None]
        items = await requests.views(found)
    else:
        statuses = _list(q.get("status"))
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise Open311Error(400, f"status {bad[0]!r} is not open or closed")
        start, end = requests.window(q.get("start_date"), q.get("end_date"))
        items = await requests.find(start, end, _list(q.get("service_code")), statuses)
    return render(fmt, items, root="service_requests", item="request")


@open311
async def get_request(request: Request, fmt: str) -> Response:
    node = request.app.state.node
    requests = Requests(node, catalogue_of(node))
    request_id = request.path_params["service_request_id"]
    rec = await requests.get(request_id)
    if rec is None:
        raise Open311Error(404, f"service_request_id {request_id!r} was not found")
    return render(fmt, await requests.views([rec]), root="service_requests", item="request")


@open311
async def get_token(request: Request, fmt: str) -> Response:
    node = request.app.state.node
    token = request.path_params["token"]
    rec = await Requests(node, catalogue_of(node)).by_token(token)
    if rec is None:
        raise Open311Error(404, f"token {token!r} was not found")
    return render(fmt, [{"service_request_id": rec.id, "token": token}],
                  root="service_requests", item="request")


RESOURCES = [
    Route("/services.{fmt}", list_services),
    Route("/services/{service_code}.{fmt}", service_definition),
    Route("/requests.{fmt}", list_requests),
    Route("/requests.{fmt}", post_request, methods=["POST"]),
    Route("/requests/{service_request_id}.{fmt}", get_request),
    Route("/tokens/{token}.{fmt}", get_token),
]


async def not_here(request: Request) -> Response:
    """Anything else under the prefix: a wrong method on a resource, or no such resource;
    said in the spec's format rather than the JSON API's."""
    path = "/" + request.path_params["rest"]
    fmt = path.rsplit(".", 1)[-1] if "." in path else DEFAULT_FORMAT
    probe = {**request.scope, "path": path, "root_path": "", "method": "GET"}
    allowed = sorted({m for r in RESOURCES for m in (r.methods or ())
                      if r.matches({**probe, "method": m})[0] is Match.FULL} - {"HEAD"})
    where = request.url.path
    if allowed:
        return error_response(fmt, 405, f"{request.method} is not allowed on {where} "
                                         f"(allowed: {', '.join(allowed)})",
                               {"Allow": ", ".join(allowed)})
    return error_response(fmt, 404, f"no Open311 resource at {where}: see services.json, "
                                    "requests.json, requests/{id}.json, tokens/{token}.json")


EVERY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ROUTES = [*RESOURCES, Route("/{rest:path}", not_here, methods=EVERY_METHOD)]


def _any_character(route: BaseRoute) -> BaseRoute:
    # A path may carry any character percent-encoded, a newline too, which Starlette's `.*`
    # stops at: the request would fall out of the mount and be answered in the JSON API's
    # error format instead of the spec's.
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route


for _route in ROUTES:
    _any_character(_route)


def mount() -> Mount:
    """The routes at /open311/v2, for the app's route list."""
    return _any_character(Mount(PREFIX, routes=ROUTES))
