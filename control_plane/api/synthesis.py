"""POST /v1/synthesize: text or SSML in, the whole audio file out (the flow: services/flow.py).

Headers: see api/audio_responses.py. A client that disconnects cancels the synthesis.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field

from control_plane import stage_timing
from control_plane.api.audio_responses import timed_response, whole_response
from control_plane.api.deps import Flow, RateLimitedTenant, caller, with_cancellation
from control_plane.services import audio as A
from control_plane.services.synthesis import SynthesisRequest
from tts_contract import MAX_TEXT_CHARS

router = APIRouter(tags=["synthesis"])

Format = Literal["wav", "mp3", "ogg", "opus", "vorbis", "flac", "pcm", "mulaw", "alaw"]


class SynthesizeBody(BaseModel):
    text: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="Plain text (or give ssml)",
                             examples=["Hello! This is the TTS Gateway."])
    ssml: str | None = Field(None, max_length=20000, description="SSML document (or give text)")
    voice_id: str = Field("en-US-generic", description="A voice id from GET /v1/voices",
                          examples=["en-US-generic"])
    language: str = Field("en", max_length=16, examples=["en"])
    speed: float = Field(1.0, ge=0.5, le=2.0)
    pitch: float = Field(1.0, ge=0.5, le=2.0, description="Pitch factor; 1.0 leaves the voice untouched")
    volume: float = Field(1.0, ge=0.0, le=2.0, description="Linear gain; 1.0 unchanged, 0 silent")
    format: Format = Field("wav", description="mulaw/alaw are raw G.711 at 8 kHz (telephony)")
    sample_rate: int | None = Field(None, ge=8000, le=48000,
                                    description="Output rate; default the engine's (Opus snaps to 8/12/16/24/48 kHz)")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="XTTS sampling seed for repeatable output")
    normalize: Literal["auto", "on", "off"] | None = Field(
        None, description="Write out numbers, dates, amounts, codes... before synthesis (default: the server's "
        "TTS_NORMALIZE_DEFAULT, normally auto); SSML say-as always wins")
    lexicons: list[str] | None = Field(None, max_length=10, description="Your lexicons (by name) to apply, "
                                       "besides those applied by default")
    timestamps: bool = Field(False, description="Answer JSON with base64 audio and word timings (the stream: "
                             "server-sent events of audio chunks and words as they are known)")

    def to_request(self) -> SynthesisRequest:
        return SynthesisRequest(**self.model_dump(exclude={"timestamps", "chunk_size", "chunk_delay"}))


EXAMPLES: dict[str, Any] = {
    "text": {"summary": "Plain text, WAV", "value": {"text": "Hello! This is the TTS Gateway.", "format": "wav"}},
    "ssml": {"summary": "SSML with a break and a mark, MP3", "value": {
        "ssml": '<speak>Hello <break time="300ms"/> there.<mark name="end"/></speak>', "format": "mp3"}},
    "telephony": {"summary": "μ-law 8 kHz for telephony", "value": {"text": "Your code is 4 2 7.",
                                                                      "format": "mulaw"}},
}


@router.post("/v1/synthesize", summary="Synthesise speech and return the whole file", response_class=Response,
             responses={200: {"content": {spec.content_type.split(";")[0]: {} for spec in A.FORMATS.values()},
                              "description": "Audio in the requested format"}})
@with_cancellation
async def synthesize(request: Request, tenant: RateLimitedTenant, flow: Flow,
                     body: SynthesizeBody = Body(openapi_examples=EXAMPLES)) -> Response:
    stage_timing.mark("handler")
    speech = await flow.open(caller(request, tenant, "synthesize"), body.to_request(), streaming=False)
    return await (timed_response(speech) if body.timestamps else whole_response(speech))
