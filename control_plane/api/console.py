"""The web console at /console: static HTML, CSS and ES modules from control_plane/console/static.

Nothing is built and nothing is fetched from elsewhere: the page talks to this same origin's API
with the key the user typed (kept in sessionStorage by the page). Every file is served with a strict
Content-Security-Policy (no inline script or style, no other origin), so an injected string in a
voice or tenant name cannot run. The dev stack's printed link (`#signin=CODE`) is exchanged once
at POST /console/signin for the dev tenant's key (control_plane/services/console_signin.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from control_plane.api.deps import Services, client_address, refuse_guessing
from control_plane.errors import ApiError
from control_plane.services.console_signin import redeem

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "console" / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; font-src 'self'; worker-src 'self'; manifest-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
    "Cache-Control": "no-cache",  # revalidate: a new release's files are picked up at once
}


def _file(relative: str) -> FileResponse:
    path = (STATIC / relative).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise ApiError(404, "not_found", "no such console file")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


class SigninRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=200)


class SigninAnswer(BaseModel):
    api_key: str
    name: str


@router.post("/console/signin")
async def console_signin(body: SigninRequest, request: Request, services: Services) -> Response:
    """Exchange the dev stack's one-time code (from the printed link's fragment) for the dev tenant's key.

    Does not exist unless CONSOLE_SIGNIN_CODE_FILE is set; a wrong, used or expired code is an auth
    failure like a wrong key (counted, and an address that keeps guessing gets 429)."""
    code_file = services.settings.console_signin_code_file
    if not code_file:
        raise ApiError(404, "not_found", "console sign-in links are not enabled on this server")
    await refuse_guessing(services, request)
    redeemed = await asyncio.to_thread(redeem, Path(code_file), body.code)
    tenant = await services.tenants.authenticate(redeemed.api_key) if redeemed else None
    if redeemed is None or tenant is None:
        await services.limiter.auth_failed(client_address(request))
        raise ApiError(401, "unauthorized", "this sign-in link is invalid, expired or already used; "
                       "sign in with the API key `tts-gateway up` printed")
    return Response(content=SigninAnswer(api_key=redeemed.api_key, name=tenant.name).model_dump_json(),
                    media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/console")
async def console_root() -> RedirectResponse:
    # The page's relative module URLs resolve against /console/.
    return RedirectResponse("/console/", status_code=307)


@router.get("/console/")
async def console_index() -> FileResponse:
    return _file("index.html")


@router.get("/console/{relative:path}")
async def console_file(relative: str) -> FileResponse:
    return _file(relative)
