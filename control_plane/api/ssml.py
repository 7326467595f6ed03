"""POST /v1/ssml/validate: parse SSML as synthesis would, and say what is wrong where."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field

from control_plane.api.deps import Services, Tenant, rate_limited
from control_plane.errors import ApiError, InvalidInput, NotFound
from control_plane.services.normalize import NormalizationUnavailable
from control_plane.services.ssml import SsmlRejected, parse_ssml

router = APIRouter(tags=["ssml"])

EXAMPLE = ('<speak xml:lang="en-US">Hello <break time="300ms"/> <prosody rate="slow">world</prosody>. '
           '<say-as interpret-as="currency">$12.50</say-as><mark name="end"/></speak>')


class ValidateRequest(BaseModel):
    ssml: str = Field(description="The SSML document", examples=[EXAMPLE])
    voice_id: str = Field("en-US-generic", description="The default voice (checked like synthesis would)")
    language: str = Field("en", description="Default language when the SSML has no xml:lang")
    normalize: Literal["auto", "on", "off"] | None = Field(None, description="As for synthesis")
    lexicons: list[str] | None = Field(None, max_length=10, description="As for synthesis")


class Issue(BaseModel):
    line: int
    column: int
    message: str


class SegmentSummary(BaseModel):
    text: str = Field(description="The spoken form: lexicons applied and text normalised, as billed")
    voice_id: str | None
    language: str
    speed: float
    pitch: float
    volume_db: float
    silence_before_ms: float
    silence_after_ms: float
    marks: list[str]


class ValidateResponse(BaseModel):
    valid: bool
    errors: list[Issue]
    segments: list[SegmentSummary]
    billed_characters: int
    estimated_duration_s: float


@router.post("/v1/ssml/validate", response_model=ValidateResponse, summary="Validate SSML and summarise its plan",
             dependencies=[Depends(rate_limited)])
async def validate(tenant: Tenant, services: Services, body: ValidateRequest = Body(
        openapi_examples={"basic": {"summary": "Breaks, prosody, say-as", "value": {"ssml": EXAMPLE}}})
) -> ValidateResponse:
    book = await services.lexicons.book(tenant.tenant_id)
    mode = body.normalize or services.settings.tts_normalize_default
    try:
        result = await asyncio.to_thread(parse_ssml, body.ssml, language=body.language, normalize_mode=mode,
                                         lexicons=book.select(body.lexicons), available=book.lexicons,
                                         shorten_first_segment=services.settings.first_segment_split)
    except SsmlRejected as exc:
        raise ApiError(400, exc.code, exc.message) from None
    except NormalizationUnavailable as exc:
        raise InvalidInput("normalization_unavailable", str(exc)) from None
    errors = [Issue(line=e.line, column=e.column, message=e.message) for e in result.errors]
    # Voices named in the SSML must be the tenant's (or built-in): others read as not found.
    for name, line, column in result.voices:
        try:
            await services.voices.resolve(tenant.tenant_id, name)
        except NotFound:
            errors.append(Issue(line=line, column=column, message=f"voice '{name}' not found"))
    try:
        await services.voices.resolve(tenant.tenant_id, body.voice_id)
    except NotFound:
        errors.append(Issue(line=0, column=0, message=f"voice '{body.voice_id}' not found"))
    plan = result.plan
    return ValidateResponse(
        valid=not errors, errors=errors,
        segments=[SegmentSummary(**{**s.__dict__, "marks": [m for m, _ in s.marks]}) for s in plan.segments],
        billed_characters=plan.billed_characters, estimated_duration_s=plan.estimated_duration_s(),
    )
