"""The routers, one module per resource; `create_app` includes every router in ROUTERS."""

from __future__ import annotations

from fastapi import APIRouter

from control_plane.api import (
    admin,
    cartesia,
    cartesia_ws,
    deepgram,
    deepgram_ws,
    elevenlabs,
    elevenlabs_ws,
    engines,
    health,
    lexicons,
    openai,
    ssml,
    stream,
    synthesis,
    tenant,
    voices,
    ws,
)

ROUTERS: list[APIRouter] = [
    health.router,
    admin.router,
    tenant.router,
    synthesis.router,
    stream.router,
    ws.router,
    openai.router,
    elevenlabs.router,
    elevenlabs_ws.router,
    # Cartesia-compatible: POST /tts/bytes, /tts/sse, WS /tts/websocket
    cartesia.router,
    cartesia_ws.router,
    deepgram.router,
    deepgram_ws.router,
    voices.router,
    ssml.router,
    lexicons.router,
    engines.router,
]
