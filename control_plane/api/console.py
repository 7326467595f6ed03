"""The web console at /console: static HTML, CSS and ES modules from control_plane/console/static.

Nothing is built and nothing is fetched from elsewhere: the page talks to this same origin's API
with the key the user typed (kept in sessionStorage by the page). Every file is served with a strict
Content-Security-Policy (no inline script or style, no other origin), so an injected string in a
voice or tenant name cannot run.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from control_plane.errors import ApiError

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
