"""Errors as JSON: `{"error": "...", "code": "...", "detail": ...}` with a status, never a
traceback.

The message is English and may change wording; `code` is the stable, machine-readable part: a
page translates it (the "errors" namespace of the locales) and a client branches on it. An
error names its code where it knows more than its status (`ApiError(..., code=...)`, or a
domain error's `code` attribute); otherwise the status gives one (`CODE_OF_STATUS`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cityops.ingest.pipeline import Overloaded
from cityops.store.base import StaleVersion, StoreBusy

try:
    from cityops.bus.nats import BusUnavailable
except ImportError:  # installed without the nats extra: no such failure can happen

    class BusUnavailable(RuntimeError):  # type: ignore[no-redef]
        pass

log = logging.getLogger(__name__)


# One code per status for errors that name none: these are the codes every client can meet.
CODE_OF_STATUS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 408: "timeout", 409: "conflict",
    410: "gone", 413: "too_large", 415: "unsupported_media_type", 422: "unprocessable",
    429: "rate_limited", 500: "internal", 501: "not_implemented", 502: "bad_gateway",
    503: "unavailable", 504: "gateway_timeout",
}
CODE_PATTERN = re.compile(r"[a-z][a-z0-9_.]{0,63}")


def code_of_status(status: int) -> str:
    return CODE_OF_STATUS.get(status, "client_error" if status < 500 else "server_error")


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None,
                 headers: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(error)
        if code is not None and not CODE_PATTERN.fullmatch(code):
            # A code is a translation key and a client's branch: it must stay plain.
            raise ValueError(f"error code {code!r} is not lower_snake_case")
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}
        self.code = code or code_of_status(status)


def json_response(content: Any, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(content), status, headers, media_type="application/json")


def error_response(status: int, error: str, detail: Any = None,
                   headers: Mapping[str, str] | None = None,
                   code: str | None = None) -> Response:
    body: dict[str, Any] = {"error": error, "code": code or code_of_status(status)}
    if detail is not None:
        body["detail"] = detail
    return json_response(body, status, headers)


async def on_api_error(request: Request, exc: ApiError) -> Response:
    return error_response(exc.status, exc.error, exc.detail, exc.headers, exc.code)


async def on_overloaded(request: Request, exc: Overloaded) -> Response:
    retry = str(max(1, round(exc.retry_after)))
    return error_response(exc.status, f"overloaded: {exc.reason}", headers={"Retry-After": retry},
                          code="overloaded")


async def on_store_busy(request: Request, exc: StoreBusy) -> Response:
    retry = str(max(1, round(exc.retry_after)))
    return error_response(503, f"overloaded: {exc}", headers={"Retry-After": retry},
                          code="overloaded")


async def on_bus_unavailable(request: Request, exc: BusUnavailable) -> Response:
    # JetStream did not acknowledge: nothing was taken, the client should send it again.
    return error_response(503, f"unavailable: {exc}", headers={"Retry-After": "2"},
                          code="bus_unavailable")


async def on_stale(request: Request, exc: StaleVersion) -> Response:
    # Another writer kept changing the record while this one retried: nothing was saved.
    return error_response(409, f"the record changed meanwhile, nothing was saved: {exc}; "
                               "try again", headers={"Retry-After": "1"},
                          code="changed_meanwhile")


async def on_http_error(request: Request, exc: HTTPException) -> Response:
    return error_response(exc.status_code, exc.detail or "error", headers=exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; it has been logged")


HANDLERS = {
    ApiError: on_api_error,
    Overloaded: on_overloaded,
    StoreBusy: on_store_busy,
    BusUnavailable: on_bus_unavailable,
    StaleVersion: on_stale,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
