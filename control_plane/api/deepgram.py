"""POST /v1/speak: Deepgram Aura's text-to-speech REST API, served by our engines (see deepgram_protocol.py).

- `model`: an Aura model name (`aura-2-thalia-en`, `aura-asteria-en`, ...) speaks with the voice the
  tenant mapped to it (`voice_map` in PUT /v1/tenant/config or the admin API), else the default voice,
  in the language its name ends with; any other value is one of our voice ids (English unless `language`).
- `encoding` / `container` / `sample_rate`: linear16 (WAV by default, raw with `container=none`, at any
  rate 8-48 kHz), mulaw and alaw (raw, 8 or 16 kHz), mp3 (22.05 kHz by default), opus (Ogg, 48 kHz by
  default), flac; aac is refused with 400. Default: mp3, as Deepgram's.
- Streamed as produced; `dg-request-id`, `dg-model-name`, `dg-model-uuid`, `dg-char-count` headers.
- Auth: `Authorization: Token <key>` (or Bearer). Errors: `{"err_code", "err_msg", "request_id"}`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import StreamingResponse

from control_plane.api.audio_responses import audio_bytes, streaming_response
from control_plane.api.deepgram_protocol import (
    DeepgramError,
    DeepgramRoute,
    SpeakBody,
    SpeakQuery,
    output_for,
    speak_headers,
    voice_for,
)
from control_plane.api.deps import Flow, RateLimitedTenant, caller
from control_plane.api.raw_audio import RawConverter
from control_plane.errors import ApiError
from control_plane.services.synthesis import SynthesisRequest

router = APIRouter(tags=["deepgram"], route_class=DeepgramRoute)


async def converted(chunks: AsyncIterator[bytes], converter: RawConverter) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if data := converter.convert(chunk):
            yield data

EXAMPLES: dict[str, Any] = {"basic": {"summary": "Text to speak", "value": {"text": "Hello from the gateway."}}}
AUDIO_TYPES = ("audio/mpeg", "audio/wav", "audio/l16", "audio/basic", "audio/x-alaw-basic", "audio/ogg", "audio/flac")
ERROR = {"model": DeepgramError, "description": "Deepgram's error body; the reason also in the dg-error header"}


@router.post("/v1/speak", summary="Deepgram-compatible speech endpoint", response_class=StreamingResponse,
             responses={200: {"description": "Audio bytes written as produced",
                              "content": {t: {} for t in AUDIO_TYPES}},
                        400: ERROR, 401: ERROR, 404: ERROR, 429: ERROR, 503: ERROR, "default": ERROR})
async def speak(request: Request, tenant: RateLimitedTenant, flow: Flow, q: Annotated[SpeakQuery, Query()],
                body: SpeakBody = Body(openapi_examples=EXAMPLES)) -> StreamingResponse:
    if q.callback:
        raise ApiError(400, "INVALID_QUERY_PARAMETER", "callback: callbacks are not supported here; read the "
                                                       "audio from the response")
    out = output_for(q, websocket=False)
    voice_id, language = voice_for(q.model, tenant.voice_map, q.language)
    req = SynthesisRequest(text=body.text, voice_id=voice_id, language=language, speed=q.our_speed,
                           format=out.fmt, sample_rate=out.rate)
    speech = await flow.open(caller(request, tenant, "deepgram_speak"), req, streaming=True)
    body_bytes = converted(audio_bytes(speech), RawConverter(out.raw)) if out.raw else None
    response = streaming_response(speech, body_bytes, media_type=out.content_type)
    response.headers.update(speak_headers(speech.caller.request_id, q.model, speech.prepared.characters))
    return response
