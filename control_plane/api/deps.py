"""Dependencies every router uses: the app's services, the calling tenant, rate limits, admin auth."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, ParamSpec

from fastapi import Depends, Request, Response
from starlette.requests import HTTPConnection

from control_plane import stage_timing
from control_plane.errors import ApiError, ServiceError
from control_plane.services.flow import Caller, SynthesisFlow
from control_plane.services.keys import tokens_equal
from control_plane.services.tenants import TenantContext
from control_plane.state import AppState

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="tts-gateway"'}


# Dependencies are `async def` even when they only read an attribute: FastAPI runs a plain `def`
# dependency on its thread pool, a hop per request that costs milliseconds on a busy machine.
async def get_services(request: HTTPConnection) -> AppState:
    return request.app.state.services


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


def bearer(conn: HTTPConnection) -> str:
    auth = conn.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def api_key_of(conn: HTTPConnection) -> str:
    """The tenant key a request presents: `Authorization: Bearer <key>`, ElevenLabs' `xi-api-key`
    header (what the ElevenLabs SDKs and the Pipecat/LiveKit ElevenLabs services send), or Deepgram's
    `Authorization: Token <key>`."""
    return bearer(conn) or conn.headers.get("xi-api-key", "").strip() or _token_scheme(conn)


def _token_scheme(conn: HTTPConnection) -> str:
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "token" else ""


async def refuse_guessing(services: AppState, conn: HTTPConnection) -> None:
    wait = await services.limiter.auth_blocked(client_address(conn))
    if wait is not None:
        raise ApiError(429, "too_many_auth_failures", "too many failed authentication attempts; retry later",
                       headers={"Retry-After": str(wait)})


async def authenticate_key(services: AppState, key: str, conn: HTTPConnection) -> TenantContext:
    """The tenant of an API key; 401 JSON for a missing or invalid key, 429 for an address that keeps
    presenting invalid ones. Also used by the WebSocket endpoint."""
    await refuse_guessing(services, conn)
    if not key:
        raise ApiError(401, "unauthorized", "missing API key: send Authorization: Bearer <key> (or xi-api-key: <key>)",
                       headers=UNAUTHORIZED)
    tenant = await services.tenants.authenticate(key)
    if tenant is None:
        await services.limiter.auth_failed(client_address(conn))
        raise ApiError(401, "unauthorized", "invalid, expired or revoked API key", headers=UNAUTHORIZED)
    conn.state.tenant_id = tenant.tenant_id
    return tenant


async def get_tenant(request: Request, services: AppState = Depends(get_services)) -> TenantContext:
    return await authenticate_key(services, api_key_of(request), request)


Services = Annotated[AppState, Depends(get_services)]
Tenant = Annotated[TenantContext, Depends(get_tenant)]


async def get_flow(services: Services) -> SynthesisFlow:
    return services.flow


Flow = Annotated[SynthesisFlow, Depends(get_flow)]


def request_id(conn: HTTPConnection) -> str:
    """The id the request middleware gave this request (X-Request-ID in and out)."""
    return str(getattr(conn.state, "request_id", "") or "")


async def rate_limited(request: Request, tenant: TenantContext = Depends(get_tenant),
                       services: AppState = Depends(get_services)) -> TenantContext:
    """Count the request against the tenant's minute/hour/day windows. The X-RateLimit-* headers are
    added to the response by the request middleware (streamed and error responses included)."""
    return await count_request(request, services, tenant)


async def count_request(request: Request, services: AppState, tenant: TenantContext) -> TenantContext:
    """`rate_limited` for a tenant a route authenticated its own way (another provider's key header)."""
    try:
        state = await services.limiter.hit(tenant)
    except ServiceError as exc:
        request.state.rate_limit_headers = {k: v for k, v in exc.headers.items() if k.startswith("X-RateLimit")}
        raise
    request.state.rate_limit_headers = state.headers()
    stage_timing.mark("authed")
    return tenant


async def require_admin(request: Request, services: AppState = Depends(get_services)) -> None:
    """The admin API: a separate bearer token; with TTS_ADMIN_TOKEN unset the API does not exist (404)."""
    expected = services.settings.tts_admin_token
    if not expected:
        raise ApiError(404, "not_found", "the admin API is disabled (TTS_ADMIN_TOKEN is not set)")
    await refuse_guessing(services, request)
    if not tokens_equal(bearer(request), expected):
        await services.limiter.auth_failed(client_address(request))
        raise ApiError(401, "unauthorized", "missing or invalid admin token", headers=UNAUTHORIZED)


RateLimitedTenant = Annotated[TenantContext, Depends(rate_limited)]


def caller(request: Request, tenant: TenantContext, endpoint: str) -> Caller:
    return Caller(tenant=tenant, endpoint=endpoint, request_id=request_id(request))


P = ParamSpec("P")


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def with_cancellation(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Cancel a whole-body handler when its client disconnects, so a caller that gave up stops costing
    engine time (its engine requests are cancelled as the handler unwinds). The handler takes `request`."""

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        request: Any = kwargs["request"]
        work = asyncio.ensure_future(handler(*args, **kwargs))
        watch = asyncio.ensure_future(_disconnected(request))
        try:
            done, _ = await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if work in done:
            return work.result()
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        return Response(status_code=499)

    return wrapper
