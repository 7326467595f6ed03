"""HTTP framing of a `Speech` (services/flow.py): a whole file, or a chunked stream, with our headers.

Headers: `X-Audio-Duration` (s), `X-Cache` (HIT|MISS), `X-Request-ID`, `X-Voice-Version`,
`X-Sample-Rate`, `X-Characters`, `X-Engine`, `X-Marks` (JSON [[name, seconds], ...] when the SSML
has marks). A stream that fails after its headers were sent is cut off without the terminating
chunk (StreamAborted), so a client never mistakes half the audio for all of it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse, StreamingResponse

from control_plane import stage_timing
from control_plane.errors import ServiceError, StreamAborted
from control_plane.services.flow import Speech
from control_plane.services.rendering import WordsEvent, WordTiming

log = logging.getLogger(__name__)


def speech_headers(speech: Speech, *, duration: float | None) -> dict[str, str]:
    p = speech.prepared
    h = {"X-Cache": "HIT" if speech.cache_hit else "MISS", "X-Request-ID": speech.caller.request_id,
         "X-Voice-Version": str(p.default_voice.version), "X-Sample-Rate": str(p.rate),
         "X-Characters": str(p.characters), "X-Engine": p.engine}
    if duration is not None:
        h["X-Audio-Duration"] = f"{duration:.3f}"
    if speech.marks:
        h["X-Marks"] = json.dumps(speech.marks, separators=(",", ":"))
    return h


async def whole_response(speech: Speech) -> Response:
    """Render the whole file (a disconnect cancels it: see deps.with_cancellation), then answer."""
    try:
        body = await speech.whole()
    finally:
        await speech.finish()
    return Response(content=body, media_type=speech.prepared.content_type,
                    headers=speech_headers(speech, duration=speech.stats.audio_seconds))


async def audio_bytes(speech: Speech) -> AsyncIterator[bytes]:
    """The encoded stream, marks dropped; finishes the speech however the iteration ends."""
    sent = False
    try:
        async for item in speech.encoded():
            if isinstance(item, bytes):
                sent = True
                yield item
                stage_timing.mark("first_written")  # resumed once the server handed the bytes on
    except ServiceError as exc:
        log.warning("stream failed after %s: %s", "audio" if sent else "headers", exc.code)
        raise StreamAborted(exc.code) from None
    finally:
        await speech.finish()


def words_json(words: list[WordTiming]) -> list[dict[str, Any]]:
    return [{"word": w.word, "start": w.start_s, "end": w.end_s, "char_start": w.char_start,
             "char_end": w.char_end} for w in words]


async def timed_response(speech: Speech) -> JSONResponse:
    """The whole audio as base64 with its word timings and marks (`"timestamps": true`)."""
    try:
        body = await speech.whole()
    finally:
        await speech.finish()
    return JSONResponse({
        "audio": base64.b64encode(body).decode(), "content_type": speech.prepared.content_type,
        "sample_rate": speech.prepared.rate, "audio_seconds": round(speech.stats.audio_seconds, 4),
        "words": words_json(speech.words), "marks": speech.marks,
    }, headers=speech_headers(speech, duration=speech.stats.audio_seconds))


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def timed_events(speech: Speech) -> AsyncIterator[bytes]:
    """Server-sent events: audio chunks (base64), words and marks as they are known, then `done`."""
    try:
        async for item in speech.encoded():
            if isinstance(item, bytes):
                yield _sse("audio", {"audio": base64.b64encode(item).decode()})
            elif isinstance(item, WordsEvent):
                yield _sse("words", {"words": words_json(item.words)})
            else:
                yield _sse("mark", {"name": item.name, "time_s": item.time_s})
        yield _sse("done", {"audio_seconds": round(speech.stats.audio_seconds, 4),
                            "characters": speech.prepared.characters, "request_id": speech.caller.request_id})
    except ServiceError as exc:
        yield _sse("error", {"code": exc.code, "message": exc.message})
    finally:
        await speech.finish()


def rechunk(source: AsyncIterator[bytes], chunk_size: int | None, delay_ms: int) -> AsyncIterator[bytes]:
    """Re-cut a byte stream into `chunk_size` pieces (the last may be shorter), `delay_ms` apart."""
    if not chunk_size and not delay_ms:
        return source

    async def gen() -> AsyncIterator[bytes]:
        buf = bytearray()
        first = True

        async def pace() -> None:
            nonlocal first
            if delay_ms and not first:
                await asyncio.sleep(delay_ms / 1000)
            first = False

        async for data in source:
            if not chunk_size:
                await pace()
                yield data
                continue
            buf.extend(data)
            while len(buf) >= chunk_size:
                await pace()
                yield bytes(buf[:chunk_size])
                del buf[:chunk_size]
        if buf:
            await pace()
            yield bytes(buf)

    return gen()


def streaming_response(speech: Speech, body: AsyncIterator[bytes] | None = None, *,
                       media_type: str | None = None) -> StreamingResponse:
    """A chunked response of `body` (default: the speech's audio bytes); written as it is produced."""
    headers = speech_headers(speech, duration=speech.stats.audio_seconds if speech.cache_hit else None)
    headers["Cache-Control"] = "no-store"
    return StreamingResponse(body if body is not None else audio_bytes(speech),
                             media_type=media_type or speech.prepared.content_type, headers=headers)
