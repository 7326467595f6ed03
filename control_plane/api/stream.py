"""POST /v1/synthesize/stream: chunked HTTP, audio written as it is produced.

`chunk_size` (bytes) re-cuts the stream into pieces of that size (the last may be shorter);
`chunk_delay` (ms) waits between pieces. WAV streams with an open-length header, PCM/μ-law/A-law
raw, MP3 and FLAC frame by frame, Ogg page by page. A cached result is served the same way.
With `"timestamps": true` the body is server-sent events: `audio` ({"audio": base64}), `words`
({"words": [{"word", "start", "end", "char_start", "char_end"}]}), `mark` and a final `done`.
"""

from __future__ import annotations

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse
from pydantic import Field

from control_plane import stage_timing
from control_plane.api.audio_responses import audio_bytes, rechunk, streaming_response, timed_events
from control_plane.api.deps import Flow, RateLimitedTenant, caller
from control_plane.api.synthesis import EXAMPLES, SynthesizeBody

router = APIRouter(tags=["synthesis"])


class StreamBody(SynthesizeBody):
    chunk_size: int | None = Field(None, ge=64, le=1024 * 1024, description="Bytes per written chunk")
    chunk_delay: int = Field(0, ge=0, le=5000, description="Milliseconds to wait between chunks")


STREAM_EXAMPLES = {
    **EXAMPLES,
    "chunked": {"summary": "Raw PCM in 4 KB chunks", "value": {"text": "Streaming speech, chunk by chunk.",
                                                               "format": "pcm", "chunk_size": 4096}},
}


@router.post("/v1/synthesize/stream", summary="Stream speech as it is synthesised (chunked transfer)",
             response_class=StreamingResponse, responses={200: {"description": "Audio bytes, written as produced"}})
async def synthesize_stream(request: Request, tenant: RateLimitedTenant, flow: Flow,
                            body: StreamBody = Body(openapi_examples=STREAM_EXAMPLES)) -> StreamingResponse:
    stage_timing.mark("handler")
    speech = await flow.open(caller(request, tenant, "synthesize_stream"), body.to_request(), streaming=True)
    if body.timestamps:
        return streaming_response(speech, timed_events(speech), media_type="text/event-stream")
    return streaming_response(speech, rechunk(audio_bytes(speech), body.chunk_size, body.chunk_delay))
