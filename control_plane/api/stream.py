"""POST /v1/synthesize/stream: chunked HTTP, audio written as it is produced.

`chunk_size` (bytes) re-cuts the stream into pieces of that size (the last may be shorter);
`chunk_delay` (ms) waits between pieces. WAV streams with an open-length header, PCM/μ-law/A-law
raw, MP3 and FLAC frame by frame, Ogg page by page. A cached result is served the same way.
"""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import Field

from control_plane.api.deps import get_services, get_tenant, rate_limited
from control_plane.api.synthesis import EXAMPLES, SynthesizeBody, synthesize_streaming

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
             dependencies=[Depends(rate_limited)], response_class=StreamingResponse,
             responses={200: {"description": "Audio bytes, written as produced"}})
async def synthesize_stream(request: Request, body: StreamBody = Body(openapi_examples=STREAM_EXAMPLES),
                            tenant=Depends(get_tenant), services=Depends(get_services)) -> StreamingResponse:
    req = SynthesizeBody.model_validate(body.model_dump(exclude={"chunk_size", "chunk_delay"})).to_request()
    return await synthesize_streaming(request, tenant, services, req, "synthesize_stream",
                                      chunk_size=body.chunk_size, chunk_delay_ms=body.chunk_delay)
