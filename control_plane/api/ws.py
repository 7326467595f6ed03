"""WS /v1/synthesize/ws: text in as it is written, audio out as it is synthesised.

Auth: `Authorization: Bearer <key>` on the upgrade request, or `?api_key=<key>` for clients
(browsers) that cannot set headers; the query form puts the key in access logs of proxies, so prefer
the header. Protocol (JSON text frames from the client):

    {"type": "start", "voice_id": "...", "language": "en", "format": "pcm", "sample_rate": 16000,
     "speed": 1.0, "pitch": 1.0, "volume": 1.0}
    {"type": "text", "text": "Hello there. How"}   complete sentences are synthesised at once
    {"type": "mark", "name": "m1"}                  a mark at this point of the text
    {"type": "flush"}                               synthesise what is buffered, sentence or not
    {"type": "end"}                                 synthesise the rest, then finish

The server answers {"type": "started", ...}, binary frames of audio in one continuous stream of the
chosen format (pcm, wav with an open-length header, mulaw, alaw, mp3, opus), {"type": "mark",
"name", "time_s"} when the audio reaches a mark, and {"type": "done", "audio_seconds",
"characters"} — or {"type": "error", "code", "message"} and a close.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError

from control_plane.api.synthesis import observe, open_stream_slot, record_usage
from control_plane.errors import ApiError
from control_plane.services import audio as A
from control_plane.services.synthesis import MarkEvent, SynthesisRequest

log = logging.getLogger(__name__)
router = APIRouter(tags=["synthesis"])

WS_FORMATS = ("pcm", "wav", "mulaw", "alaw", "mp3", "opus", "ogg")
MAX_BUFFER = 5000
_SENTENCE = re.compile(r"^(.*?[.!?。！？])(\s+|$)", re.S)


class StartMessage(BaseModel):
    type: str
    voice_id: str = "en-US-generic"
    language: str = "en"
    format: str = Field("pcm")
    sample_rate: int | None = Field(None, ge=8000, le=48000)
    speed: float = Field(1.0, ge=0.5, le=2.0)
    pitch: float = Field(1.0, ge=0.5, le=2.0)
    volume: float = Field(1.0, ge=0.0, le=2.0)
    normalize: Literal["auto", "on", "off"] | None = None
    lexicons: list[str] | None = Field(None, max_length=10)


class _Closed(Exception):
    pass


async def _authenticate(ws: WebSocket, services: Any) -> Any:
    from control_plane.api.deps import authenticate_key

    auth = ws.headers.get("authorization", "")
    key = auth[7:].strip() if auth.lower().startswith("bearer ") else ws.query_params.get("api_key", "")
    return await authenticate_key(services, key, ws)


class _Session:
    def __init__(self, ws: WebSocket, services: Any, tenant: Any, start: StartMessage, request_id: str) -> None:
        self.ws, self.services, self.tenant, self.start = ws, services, tenant, start
        self.request_id = request_id
        self.buffer = ""
        self.pending_marks: list[tuple[str, int]] = []
        self.characters = 0
        self.samples = 0
        self.rate: int | None = None
        self.encoder: A.StreamEncoder | None = None
        self.engine: str | None = None

    def _request(self, text: str) -> SynthesisRequest:
        s = self.start
        return SynthesisRequest(text=text, voice_id=s.voice_id, language=s.language, speed=s.speed, pitch=s.pitch,
                                volume=s.volume, format=s.format, sample_rate=s.sample_rate, normalize=s.normalize,
                                lexicons=s.lexicons)

    async def feed(self, text: str) -> None:
        self.buffer += text
        if len(self.buffer) > MAX_BUFFER:
            raise ApiError(422, "text_too_long", f"more than {MAX_BUFFER} characters buffered without a sentence end")
        while m := _SENTENCE.match(self.buffer):
            if not m.group(2) and not m.group(1).endswith(("。", "！", "？")):
                break  # "3." may be the start of "3.5": wait for what follows
            await self.say(m.group(1), m.end())

    async def flush(self) -> None:
        if self.buffer.strip() or self.pending_marks:
            await self.say(self.buffer, len(self.buffer))

    async def say(self, text: str, consumed: int) -> None:
        marks = [(n, off) for n, off in self.pending_marks if off <= consumed]
        self.pending_marks = [(n, off - consumed) for n, off in self.pending_marks if off > consumed]
        self.buffer = self.buffer[consumed:]
        stripped = text.strip()
        if not stripped:
            for name, _ in marks:
                await self._send_mark(name, self.samples)
            return
        prepared = await self.services.synthesis.prepare(self.tenant.tenant_id, self._request(stripped))
        if self.rate is None:
            self.rate, self.engine = prepared.rate, prepared.engine
            self.encoder = A.StreamEncoder(prepared.fmt, prepared.rate)
            await self.ws.send_json({"type": "started", "request_id": self.request_id, "format": prepared.fmt,
                                     "sample_rate": prepared.rate, "content_type": prepared.content_type})
        prepared.rate = self.rate  # one continuous stream: later sentences follow the first one's rate
        await self.services.limiter.charge_characters(self.tenant, prepared.characters)
        self.characters += prepared.characters
        rendering = self.services.synthesis.render(prepared, self.request_id)
        start = self.samples
        lead = len(text) - len(text.lstrip())
        async for item in rendering.pcm():
            if isinstance(item, MarkEvent):
                continue
            self.samples += item.size
            data = self.encoder.encode(item)  # type: ignore[union-attr]
            if data:
                await self.ws.send_bytes(data)
        observe(self.services, prepared, rendering.stats, cache_hit=False)
        length = self.samples - start
        for name, off in marks:
            frac = min(max(off - lead, 0) / len(stripped), 1.0)
            await self._send_mark(name, start + int(frac * length))

    async def _send_mark(self, name: str, sample: int) -> None:
        await self.ws.send_json({"type": "mark", "name": name, "time_s": round(sample / (self.rate or 1), 4)})

    async def finish(self) -> None:
        await self.flush()
        if self.encoder is not None:
            tail = self.encoder.finish()
            if tail:
                await self.ws.send_bytes(tail)
        await self.ws.send_json({"type": "done", "request_id": self.request_id,
                                 "audio_seconds": round(self.samples / (self.rate or 1), 4),
                                 "characters": self.characters})


async def _receive(ws: WebSocket) -> dict[str, Any]:
    try:
        raw = await ws.receive_text()
    except WebSocketDisconnect:
        raise _Closed() from None
    try:
        msg = json.loads(raw)
    except json.JSONDecodeError:
        raise ApiError(400, "invalid_message", "messages must be JSON objects") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ApiError(400, "invalid_message", "messages must be JSON objects with a 'type'")
    return msg


@router.websocket("/v1/synthesize/ws")
async def synthesize_ws(ws: WebSocket) -> None:
    services = ws.app.state.services
    request_id = ws.headers.get("x-request-id") or str(uuid.uuid4())
    started = time.perf_counter()
    await ws.accept()
    tenant = None
    session: _Session | None = None
    status = 200
    stack: contextlib.AsyncExitStack | None = None
    try:
        tenant = await _authenticate(ws, services)
        first = await _receive(ws)
        if first["type"] != "start":
            raise ApiError(400, "invalid_message", "the first message must be {\"type\": \"start\", ...}")
        try:
            start = StartMessage.model_validate(first)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ApiError(422, "validation_error", f"{field}: {err['msg']}") from None
        if start.format not in WS_FORMATS:
            raise ApiError(422, "unsupported_format", f"format must be one of {', '.join(WS_FORMATS)}")
        await services.voices.resolve(tenant.tenant_id, start.voice_id)
        stack = await open_stream_slot(services, tenant)
        session = _Session(ws, services, tenant, start, request_id)
        while True:
            msg = await _receive(ws)
            kind = msg["type"]
            if kind == "text":
                text = msg.get("text")
                if not isinstance(text, str):
                    raise ApiError(422, "validation_error", "text: a string is required")
                await session.feed(text)
            elif kind == "mark":
                name = msg.get("name")
                if not isinstance(name, str) or not name:
                    raise ApiError(422, "validation_error", "name: a mark name is required")
                session.pending_marks.append((name, len(session.buffer)))
            elif kind == "flush":
                await session.flush()
            elif kind == "end":
                await session.finish()
                await ws.close(1000)
                break
            else:
                raise ApiError(400, "invalid_message", f"unknown message type '{kind}'")
    except ApiError as exc:
        status = exc.status_code
        observe(services, None, None, cache_hit=None, error_code=exc.code)
        with contextlib.suppress(Exception):
            await ws.send_json({"type": "error", "code": exc.code, "message": exc.message,
                                "request_id": request_id})
            await ws.close(1008 if exc.status_code in (401, 403) else 1011 if exc.status_code >= 500 else 1003)
    except (_Closed, WebSocketDisconnect):
        status = 499  # the client left: the Triton request in flight was cancelled with the render
    finally:
        if stack is not None:
            await stack.aclose()
        if tenant is not None:
            await record_usage(services, tenant, request_id=request_id, endpoint="synthesize_ws",
                               engine=session.engine if session else None,
                               voice_id=session.start.voice_id if session else None,
                               characters=session.characters if session else 0,
                               audio_seconds=(session.samples / session.rate) if session and session.rate else 0.0,
                               cache_hit=False, started=started, status=status)


