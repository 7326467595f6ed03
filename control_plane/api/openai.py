"""POST /v1/audio/speech: OpenAI's text-to-speech API, served by our engines (see openai_protocol.py).

- `model`: OpenAI's names (with or without a date suffix) or ours; the voice decides the engine.
- `voice`: an OpenAI name speaks with the voice the tenant mapped to it (`voice_map` in
  GET/PUT /v1/tenant/config or the admin API), else the default voice; `{"id": ...}` or any other
  string is one of our voice ids.
- `response_format`: mp3, opus, flac, wav, pcm, all at 24 kHz mono like OpenAI (pcm = s16le);
  aac is refused with 400.
- Always streamed as produced (chunked), as OpenAI does; `stream_format="sse"` wraps the same audio
  in server-sent events.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse

from control_plane.api.audio_responses import audio_bytes, streaming_response
from control_plane.api.deps import Flow, RateLimitedTenant, caller
from control_plane.api.openai_protocol import (
    FORMATS,
    OPENAI_RATE,
    OpenAIRoute,
    SpeechBody,
    check_model,
    our_format,
    sse_events,
    voice_id_for,
)
from control_plane.services.synthesis import SynthesisRequest

router = APIRouter(tags=["openai"], route_class=OpenAIRoute)

EXAMPLES: dict[str, Any] = {
    "basic": {"summary": "OpenAI client defaults", "value": {"model": "tts-1", "input": "Hello world!",
                                                              "voice": "alloy"}},
    "pcm": {"summary": "Raw 24 kHz PCM (what Pipecat asks for)", "value": {
        "model": "gpt-4o-mini-tts", "input": "Hello world!", "voice": "nova", "response_format": "pcm"}},
    "sse": {"summary": "Server-sent events", "value": {"model": "gpt-4o-mini-tts", "input": "Hello world!",
                                                        "voice": "ash", "stream_format": "sse"}},
    "cloned": {"summary": "One of your voices by id", "value": {
        "model": "tts-1", "input": "Hello world!", "voice": {"id": "5b0c7a52-8d2e-4c1f-9a7e-1f0f3c2b9d10"}}},
}


@router.post("/v1/audio/speech", summary="OpenAI-compatible speech endpoint", response_class=StreamingResponse,
             responses={200: {"description": "Audio bytes written as produced, or server-sent events",
                              "content": {**{ct: {} for _, ct in FORMATS.values()}, "text/event-stream": {}}}})
async def speech(request: Request, tenant: RateLimitedTenant, flow: Flow,
                 body: SpeechBody = Body(openapi_examples=EXAMPLES)) -> StreamingResponse:
    check_model(body.model)
    fmt, content_type = our_format(body.response_format)
    req = SynthesisRequest(text=body.input, voice_id=voice_id_for(body.voice, tenant.voice_map),
                           language=body.language, speed=min(max(body.speed, 0.5), 2.0), format=fmt,
                           sample_rate=OPENAI_RATE, seed=body.seed,
                           normalize=body.normalize, lexicons=body.lexicons)
    speech = await flow.open(caller(request, tenant, "openai_speech"), req, streaming=True)
    if body.stream_format == "sse":
        events = sse_events(audio_bytes(speech), speech.prepared.characters)
        return streaming_response(speech, events, media_type="text/event-stream")
    return streaming_response(speech, media_type=content_type)
