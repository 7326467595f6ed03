"""ElevenLabs' text-to-speech WebSocket protocol: the query, the client messages, the reply frames.

Read from the clients (pipecat-ai 1.14 `services/elevenlabs/tts.py`, livekit-plugins-elevenlabs 1.8.9,
elevenlabs 2.78 `realtime_tts.py`): every client message is a JSON object with `text` (the first one
" ", carrying `voice_settings`, `generation_config` and optionally `xi_api_key`), and any of `flush`,
`context_id`, `close_context`, `close_socket`; replies carry `audio` (base64), `alignment` /
`normalizedAlignment` as {chars, charStartTimesMs, charDurationsMs} whose times restart at zero in
every message (Pipecat adds each message's span to its clock), `isFinal`, and `contextId` on the
multi-context socket.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from control_plane.api.elevenlabs_protocol import MAX_SPEED, MIN_SPEED, Normalization, VoiceSettings
from control_plane.errors import InvalidInput

MAX_CONTEXT_ID = 64


class StreamQuery(BaseModel):
    """The upgrade request's query parameters (names as ElevenLabs documents them)."""

    model_config = ConfigDict(extra="ignore")

    model_id: str | None = Field(None, max_length=64)  # accepted; the voice decides the engine
    output_format: str | None = Field(None, max_length=32)
    language_code: str | None = Field(None, max_length=16)
    inactivity_timeout: float | None = Field(None, ge=1, le=600)
    sync_alignment: bool = False  # accepted: alignment always travels with the audio it times
    auto_mode: bool | None = None  # accepted: complete sentences are always synthesised at once
    apply_text_normalization: Normalization | None = None
    enable_logging: bool = True  # accepted: request text is never logged
    enable_ssml_parsing: bool = False  # accepted


class GenerationConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Accepted: our engines take whole sentences, so chunk lengths do not change what is synthesised.
    chunk_length_schedule: list[int] | None = Field(None, max_length=16)


class ClientMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str | None = Field(None, max_length=5000)
    context_id: str | None = Field(None, min_length=1, max_length=MAX_CONTEXT_ID)
    flush: bool = False
    close_context: bool = False
    close_socket: bool = False
    try_trigger_generation: bool | None = None  # accepted (the SDK's realtime helper sends it)
    voice_settings: VoiceSettings | None = None
    generation_config: GenerationConfig | None = None
    xi_api_key: str | None = Field(None, max_length=256)

    @property
    def speed(self) -> float | None:
        if self.voice_settings is None or not self.voice_settings.speed:
            return None
        return min(max(self.voice_settings.speed, MIN_SPEED), MAX_SPEED)


def parse_query(params: dict[str, str]) -> StreamQuery:
    try:
        return StreamQuery.model_validate(params)
    except ValidationError as exc:
        raise InvalidInput("validation_error", _first_error(exc)) from None


def parse_message(raw: Any) -> ClientMessage:
    if not isinstance(raw, dict):
        raise InvalidInput("invalid_message", "messages must be JSON objects")
    try:
        return ClientMessage.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput("validation_error", _first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


def alignment_frame(chars: list[str], starts_s: list[float], ends_s: list[float], origin_s: float) -> dict[str, list]:
    """Character times in ms from `origin_s` (where this message's span begins)."""
    starts = [max(round((s - origin_s) * 1000), 0) for s in starts_s]
    return {"chars": chars, "charStartTimesMs": starts,
            "charDurationsMs": [max(round((e - origin_s) * 1000) - s, 0) for s, e in zip(starts, ends_s, strict=True)]}
