"""/v1/lexicons: the tenant's pronunciation lexicons (W3C PLS 1.0 documents).

`POST /v1/lexicons` {"name", "content" (the PLS XML), "apply_by_default"} stores one; `GET` lists
them (or returns one with its content), `PUT /v1/lexicons/{name}` replaces its content or flag,
`DELETE` removes it. A document that does not parse or check is refused with 422 and the line and
column of the problem (`error.line`, `error.column`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from control_plane.api.deps import Services, Tenant, rate_limited
from control_plane.errors import error_response
from control_plane.services.lexicons import LexiconInvalid, lexicon_view

router = APIRouter(tags=["lexicons"], dependencies=[Depends(rate_limited)])

EXAMPLE_PLS = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" '
               'alphabet="ipa" xml:lang="en-US">\n'
               '  <lexeme><grapheme>Xarelto</grapheme><alias>zuh REL toe</alias></lexeme>\n'
               '  <lexeme><grapheme>Acme</grapheme><phoneme>ˈækmi</phoneme></lexeme>\n'
               '</lexicon>')
MAX_BODY = 2_000_000  # the JSON wrapper; the document itself is bounded by LEXICON_MAX_BYTES


class LexiconBody(BaseModel):
    name: str = Field(min_length=1, max_length=64, examples=["pharmacy"])
    content: str = Field(min_length=1, max_length=MAX_BODY, description="The PLS document",
                         examples=[EXAMPLE_PLS])
    apply_by_default: bool = Field(True, description="Apply to every request of the tenant (else only when named)")


class LexiconUpdate(BaseModel):
    content: str | None = Field(None, min_length=1, max_length=MAX_BODY)
    apply_by_default: bool | None = None


class LexiconInfo(BaseModel):
    name: str
    language: str
    lexemes: int
    size_bytes: int
    apply_by_default: bool
    version: int
    created_at: str | None
    updated_at: str | None
    content: str | None = None


def _invalid(request: Request, exc: LexiconInvalid) -> JSONResponse:
    return error_response(request, 422, exc.code, exc.message, line=exc.line, column=exc.column)


@router.post("/v1/lexicons", status_code=201, response_model=LexiconInfo, summary="Store a PLS lexicon")
async def create_lexicon(request: Request, tenant: Tenant, services: Services, body: LexiconBody = Body()) -> Any:
    try:
        row = await services.lexicons.create(tenant.tenant_id, body.name, body.content, body.apply_by_default)
    except LexiconInvalid as exc:
        return _invalid(request, exc)
    return JSONResponse(lexicon_view(row), status_code=201)


@router.get("/v1/lexicons", summary="List the tenant's lexicons")
async def list_lexicons(tenant: Tenant, services: Services) -> dict[str, Any]:
    return {"lexicons": [lexicon_view(r) for r in await services.lexicons.list(tenant.tenant_id)]}


@router.get("/v1/lexicons/{name}", response_model=LexiconInfo, summary="One lexicon, with its PLS document")
async def get_lexicon(name: str, tenant: Tenant, services: Services) -> dict[str, Any]:
    return lexicon_view(await services.lexicons.get(tenant.tenant_id, name), content=True)


@router.put("/v1/lexicons/{name}", response_model=LexiconInfo, summary="Replace a lexicon's document or flag")
async def update_lexicon(request: Request, name: str, tenant: Tenant, services: Services,
                         body: LexiconUpdate = Body()) -> Any:
    try:
        row = await services.lexicons.update(tenant.tenant_id, name, body.content, body.apply_by_default)
    except LexiconInvalid as exc:
        return _invalid(request, exc)
    return lexicon_view(row)


@router.delete("/v1/lexicons/{name}", status_code=204, summary="Delete a lexicon")
async def delete_lexicon(name: str, tenant: Tenant, services: Services) -> Response:
    await services.lexicons.delete(tenant.tenant_id, name)
    return Response(status_code=204)
