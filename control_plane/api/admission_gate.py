"""The admission gate: under overload, a tenant over its fair share is refused before its request is routed.

A refusal decided in the synthesis flow (services/flow.py) still pays for the HTTP stack in front of it:
routing, dependency resolution, the store-free key lookup, the rate-limit windows, reading and validating
the body. This raw ASGI layer, the app's outermost, answers first when it can tell cheaply that the flow
would refuse (a burst of refusals is answered one after another on the one event loop, so each one's cost is
the next one's wait):

- only POST requests to a route that runs the synthesis flow (a route depending on `get_flow`), matched as
  the router would match them; anything else, WebSockets included, passes through untouched;
- the key is read from the headers the route's own surface reads (`api_key_of`, or the route class's
  `api_key`: Cartesia's `X-API-Key`), and looked up only among the keys this replica authenticated within
  AUTH_CACHE_TTL_S (`TenantService.cached`: revocations apply as they do to the flow's own lookup);
- a tenant this replica recently served from the cache passes (its request may be a hit, and hits are served
  under overload), as does one admission would admit on any engine (`Admission.refuse_early`: the smallest
  request it could send, on every engine this replica has decided for, on the same state and model as
  `admit`, so what the gate refuses the flow would refuse too).

The refusal is the flow's: the same error, rendered by the route's surface (`render_error` of its route
class, else the default error body), with the request id the request middleware gives every request
(control_plane/request_middleware.py), counted in the same metrics, without that middleware's per-message
wrapper (a refusal has no rate-limit headers to add). The counts and the log are kept back and written in
batches (api/gate_refusals.py: a scrape still sees every refusal answered before it), and the log has one
line per tenant and route for the refusals of up to a second, not one per request. The body is never read.
What the gate cannot see (the body, the rate-limit windows) makes a gate refusal differ from a flow refusal
in two more ways: it is not counted against the tenant's request windows (no X-RateLimit-* headers), and a
request the flow would have answered with a 4xx for its body, or with 429 for a full window, gets the 503
first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from control_plane.api.deps import api_key_of, get_flow
from control_plane.api.gate_refusals import RefusalKey, RefusalTally
from control_plane.errors import ServiceError, render_error
from control_plane.request_middleware import request_id_for

KeyReader = Callable[[HTTPConnection], str]
Renderer = Callable[[Request, ServiceError], Response]
PATHS_KEPT = 4096  # request paths remembered with the route they match (voice ids vary in some paths)


class _Surface:
    """A synthesis route, how its clients present their key, and how it answers an error."""

    def __init__(self, route: APIRoute) -> None:
        self.route = route
        self.api_key: KeyReader = getattr(route, "api_key", api_key_of)
        self.render: Renderer = getattr(route, "render_error", render_error)


def _runs_flow(dependant: Dependant) -> bool:
    return any(dep.call is get_flow or _runs_flow(dep) for dep in dependant.dependencies)


class _Refusal(NamedTuple):
    surface: _Surface
    error: ServiceError
    tenant_id: str
    tier: str
    engine: str
    wait: float | None  # the expected wait that refused it, where known
    tally: RefusalTally


class AdmissionGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[APIRoute] | None = None
        self._surfaces: dict[int, _Surface] = {}
        self._paths: dict[str, _Surface | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, receive, send, refusal)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, refusal: _Refusal) -> None:
        started = time.perf_counter()
        rid = request_id_for(scope)
        scope["state"]["request_id"] = rid  # in the error body
        scope["route"] = refusal.surface.route
        error = refusal.error
        error.counted = True  # tts_errors_total: in the tally, with the refusal's other counts
        response = refusal.surface.render(Request(scope, receive), error)
        headers = response.raw_headers
        if not any(name == b"x-request-id" for name, _ in headers):
            headers.append((b"x-request-id", rid.encode("latin-1")))
        latency = 0.0
        try:
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            latency = time.perf_counter() - started
            await send({"type": "http.response.body", "body": response.body})
        finally:  # counted however the sending ended, as the request middleware counts every request
            key = RefusalKey(scope["method"], refusal.surface.route.path, response.status_code, error.code,
                             refusal.tenant_id, refusal.tier, refusal.engine)
            refusal.tally.note(key, rid, latency or time.perf_counter() - started, refusal.wait)

    def _refusal(self, scope: Scope) -> _Refusal | None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if services is None or not services.settings.admission_gate:
            return None
        surface = self._surface(scope)
        if surface is None:
            return None
        tenant = services.tenants.cached(surface.api_key(HTTPConnection(scope)))
        if tenant is None or services.flow.serves_from_cache(tenant.tenant_id):
            return None
        noted: list[tuple[str, float | None]] = []
        error = services.admission.refuse_early(tenant.share, tenant.tier,
                                                record=lambda engine, wait: noted.append((engine, wait)))
        if error is None:
            return None
        scope.setdefault("state", {})["tenant_id"] = tenant.tenant_id
        engine, wait = noted[0]
        return _Refusal(surface, error, tenant.tenant_id, tenant.tier, engine, wait, services.gate_refusals)

    def _surface(self, scope: Scope) -> _Surface | None:
        """The synthesis route the router would give this POST request (the first route taking POST whose path
        matches), if it is one."""
        path, root = scope["path"], scope.get("root_path", "")
        path = path[len(root):] if root and path.startswith(root) else path  # as the router sees it
        if path in self._paths:
            return self._paths[path]
        if self._routes is None:
            self._routes = [r for r in _api_routes(scope["app"].router.routes) if "POST" in (r.methods or ())]
            self._surfaces = {id(r): _Surface(r) for r in self._routes if _runs_flow(r.dependant)}
        found = next((self._surfaces.get(id(r)) for r in self._routes if r.path_regex.match(path)), None)
        if len(self._paths) >= PATHS_KEPT:
            self._paths.clear()
        self._paths[path] = found
        return found


def _api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    """The app's API routes in the order the router tries them (through included routers, none of which adds a
    prefix of its own here: the routers carry theirs)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif isinstance(included := getattr(route, "original_router", None), APIRouter) \
                and not getattr(getattr(route, "include_context", None), "prefix", ""):
            yield from _api_routes(included.routes)
