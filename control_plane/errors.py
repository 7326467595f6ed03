"""One error shape for every failure: `{"error": {"code", "message", "request_id"}}`.

Services raise `ServiceError` subclasses (invalid input, not found, limit exceeded, engine unavailable,
...), routers `ApiError(status, ...)` where the protocol fixes the status; the handlers installed by
`install_error_handlers` turn them, FastAPI's validation errors and Starlette's HTTP errors into that
body. Anything unexpected becomes a 500 with a generic message (the details go to the log only).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "validation_error", 429: "rate_limited", 503: "unavailable",
}


class FieldError(BaseModel):
    field: str
    message: str


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    request_id: str | None = None
    details: list[FieldError] | None = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


class ServiceError(Exception):
    """A failure the caller is meant to see, in the service's terms: a stable machine code and a readable
    message. Services raise the subclasses below; `install_error_handlers` (HTTP) and `ws_close_code`
    (WebSocket) are the one mapping to the wire, through each class's `status_code`."""

    status_code: int = 400

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None,
                 fields: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        # Extra members of the error object (a vendor-compatible route adds the fields its clients read).
        self.fields = dict(fields or {})
        self.counted = False  # in tts_errors_total already (count_error)


class BadRequest(ServiceError):
    status_code = 400


class Unauthorized(ServiceError):
    status_code = 401


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class PayloadTooLarge(ServiceError):
    status_code = 413


class UnsupportedMedia(ServiceError):
    status_code = 415


class InvalidInput(ServiceError):
    status_code = 422


class LimitExceeded(ServiceError):
    """A rate limit, stream cap or quota: 429, with Retry-After where a retry can succeed."""

    status_code = 429


class EngineFailed(ServiceError):
    status_code = 502


class Unavailable(ServiceError):
    """Something this request needs is down or full (engine, store, limits, this replica draining): 503."""

    status_code = 503


class EngineUnavailable(Unavailable):
    pass


class EngineTimeout(ServiceError):
    status_code = 504


class ApiError(ServiceError):
    """An error raised by a router, where the protocol itself fixes the status."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None,
                 fields: dict[str, Any] | None = None) -> None:
        super().__init__(code, message, headers, fields)
        self.status_code = status_code


def ws_close_code(exc: ServiceError) -> int:
    """The WebSocket close code for a service error (RFC 6455 section 7.4.1)."""
    if exc.status_code in (401, 403):
        return 1008  # policy violation
    if exc.status_code == 503:
        return 1013  # try again later
    return 1011 if exc.status_code >= 500 else 1003 if exc.status_code in (400, 415) else 1008


class StreamAborted(Exception):
    """A streamed response failed after its headers were sent. Raised from the body, it makes the server
    drop the connection without the terminating chunk, so the client sees an incomplete body rather
    than a clean end that would pass for complete audio. RequestMiddleware swallows it (it is logged)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class ErrorResponse(JSONResponse):
    """A JSONResponse (the same bytes) whose encoder is built once rather than per response: a refusal under
    overload is one of thousands."""

    _encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    def render(self, content: Any) -> bytes:
        return self._encoder.encode(content).encode("utf-8")


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def count_error(metrics: Any, code: str, source: ServiceError | None = None) -> None:
    """One increment of tts_errors_total per error: a ServiceError the synthesis flow counted where it
    surfaced (opening a request, a stream that failed) is not counted again by whatever renders it."""
    if metrics is None or (source is not None and source.counted):
        return
    if source is not None:
        source.counted = True
    metrics.errors.labels(code=code).inc()


def error_response(request: Request, status: int, code: str, message: str,
                   headers: dict[str, str] | None = None, *, source: ServiceError | None = None,
                   **extra: Any) -> JSONResponse:
    rid = request_id_of(request)
    body: dict[str, Any] = {"code": code, "message": message, "request_id": rid, **extra}
    out = dict(headers or {})
    if rid:
        out["X-Request-ID"] = rid
    count_error(getattr(getattr(request.app.state, "services", None), "metrics", None), code, source)
    return ErrorResponse({"error": body}, status_code=status, headers=out)


def render_error(request: Request, exc: ServiceError) -> JSONResponse:
    """The answer to a service error on a route of the default surface. A route class of another protocol
    has a `render_error(request, exc)` method of its own (api/admission_gate.py answers with it)."""
    return error_response(request, exc.status_code, exc.code, exc.message, exc.headers, source=exc, **exc.fields)


def store_unreachable(exc: BaseException) -> bool:
    """The database cannot be reached (down, restarting, connection lost, pool exhausted): a 503, not a 500."""
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.TimeoutError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, sa.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa.InterfaceError):
            return True
        orig = getattr(exc, "orig", None)
        name = type(getattr(orig, "__cause__", None) or orig).__name__
        return isinstance(orig, ConnectionError | TimeoutError) or name in _CONNECTION_ERRORS
    return False


# asyncpg's names for a server that is gone or not accepting connections (checked by name: the driver is optional).
_CONNECTION_ERRORS = {"ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionFailureError",
                      "AdminShutdownError", "CrashShutdownError", "TooManyConnectionsError",
                      "InterfaceError", "ConnectionRejectionError"}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "speed") -> "speed"; ("query", "start_date") -> "start_date"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors()]
        first = details[0] if details else {"field": "request", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        return error_response(request, 422, "validation_error", message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code >= 500 else "bad_request")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(request, exc.status_code, code, message, dict(exc.headers or {}))

    async def _store(request: Request, exc: Exception) -> JSONResponse:
        if store_unreachable(exc):
            log.warning("store unavailable: %s", type(exc).__name__)
            return error_response(request, 503, "store_unavailable", "the database is unavailable; retry later",
                                  {"Retry-After": "5"})
        return await _unexpected(request, exc)

    from sqlalchemy import exc as sa

    # Handled inside the app (a handler for Exception itself runs outside it, and the error is re-raised).
    for kind in (sa.DBAPIError, sa.TimeoutError, ConnectionError, TimeoutError):
        app.add_exception_handler(kind, _store)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        return error_response(request, 500, "internal_error", "an internal error occurred")


def document_errors(app: FastAPI) -> None:
    """Declare the error body in the OpenAPI document: every operation's 422 and `default` response is
    `ErrorBody` (FastAPI's own 422 schema describes a body this API never sends)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components["ErrorBody"] = body
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        error = {"description": "Error (see `error.code`)",
                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {**error, "description": "Invalid request"}
                responses.setdefault("default", error)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
