"""ElevenLabs text-to-speech protocol: output formats, the request body, and character alignment.

Read from the clients (elevenlabs 2.78, livekit-plugins-elevenlabs 1.8.9, pipecat-ai 1.14): the key
comes in `xi-api-key`; `output_format` is a query parameter named codec_rate[_bitrate]; the body
carries `text`, `model_id`, `voice_settings`, `seed`, `previous_text`/`next_text`, ...; timestamps
come as `alignment` / `normalized_alignment` with one entry per character of the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from control_plane.errors import ApiError
from control_plane.services.rendering import WordTiming

DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"
_FORMAT = re.compile(r"^(mp3|pcm|ulaw|alaw|opus|wav)_(\d{4,5})(?:_(\d{2,3}))?$")
# The rates ElevenLabs offers for each codec (a request outside them is refused, as ElevenLabs does).
_RATES = {"mp3": (22050, 24000, 44100), "pcm": (8000, 16000, 22050, 24000, 44100, 48000),
          "ulaw": (8000,), "alaw": (8000,), "opus": (48000,),
          "wav": (8000, 16000, 22050, 24000, 32000, 44100, 48000)}
_OURS = {"mp3": "mp3", "pcm": "pcm", "ulaw": "mulaw", "alaw": "alaw", "opus": "opus", "wav": "wav"}
_CONTENT_TYPES = {"mp3": "audio/mpeg", "pcm": "audio/pcm", "ulaw": "audio/basic", "alaw": "audio/x-alaw-basic",
                  "opus": "audio/ogg", "wav": "audio/wav"}
# ElevenLabs' speed range is 0.7-1.2; our engines take 0.5-2.0.
MIN_SPEED, MAX_SPEED = 0.5, 2.0


@dataclass(frozen=True)
class OutputFormat:
    name: str  # as the client wrote it, e.g. "pcm_24000"
    fmt: str  # ours: mp3, pcm, mulaw, alaw, opus, wav
    rate: int
    content_type: str


def parse_output_format(value: str | None) -> OutputFormat:
    """`pcm_24000`, `ulaw_8000`, `mp3_44100_128`, `opus_48000_64`, ... The bitrate of mp3/opus is accepted
    and not applied (our MP3 is constant-bitrate at the encoder's default quality)."""
    name = value or DEFAULT_OUTPUT_FORMAT
    m = _FORMAT.match(name)
    if m is None or int(m.group(2)) not in _RATES[m.group(1)]:
        raise ApiError(422, "unsupported_output_format",
                       f"output_format {name!r} is not supported; use pcm_8000..pcm_48000, ulaw_8000, alaw_8000, "
                       "mp3_22050_32..mp3_44100_192, opus_48000_32..opus_48000_192 or wav_<rate>")
    codec = m.group(1)
    return OutputFormat(name, _OURS[codec], int(m.group(2)), _CONTENT_TYPES[codec])


class VoiceSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    stability: float | None = Field(None, ge=0, le=1, description="Accepted; no effect on our engines")
    similarity_boost: float | None = Field(None, ge=0, le=1, description="Accepted; no effect")
    style: float | None = Field(None, ge=0, le=1, description="Accepted; no effect")
    use_speaker_boost: bool | None = Field(None, description="Accepted; no effect")
    speed: float | None = Field(None, gt=0, le=4, description=f"Speaking rate, clamped to {MIN_SPEED}-{MAX_SPEED}")


Normalization = Literal["auto", "on", "off"]


class TextToSpeechBody(BaseModel):
    # Fields ElevenLabs adds later are ignored rather than refused, as its own API does.
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=5000, examples=["Hello from the gateway."])
    model_id: str | None = Field(None, max_length=64, examples=["eleven_flash_v2_5"],
                                 description="Accepted; the voice decides the engine")
    language_code: str | None = Field(None, max_length=16, description="ISO 639-1; default en")
    voice_settings: VoiceSettings | None = None
    seed: int | None = Field(None, ge=0, le=4294967295, description="Sampling seed (XTTS voices)")
    previous_text: str | None = Field(None, max_length=5000, description="Accepted; not used for prosody")
    next_text: str | None = Field(None, max_length=5000, description="Accepted; not used for prosody")
    apply_text_normalization: Normalization | None = Field(
        None, description="auto, on or off: the gateway's text normalisation (default TTS_NORMALIZE_DEFAULT)")

    @property
    def speed(self) -> float:
        speed = self.voice_settings.speed if self.voice_settings and self.voice_settings.speed else 1.0
        return min(max(speed, MIN_SPEED), MAX_SPEED)

    @property
    def our_seed(self) -> int | None:
        return None if self.seed is None else self.seed % 2**31


def alignment_json(chars: list[str], starts: list[float], ends: list[float]) -> dict[str, list]:
    return {"characters": chars, "character_start_times_seconds": starts, "character_end_times_seconds": ends}


class CharacterAligner:
    """Per-character times of `text` from the flow's word timings, handed out as soon as they are known.

    A word's characters share out its [start, end); the characters between two words (spaces) the gap
    between them; the last character runs to the end of the audio (trailing silence included). Every
    character of the text is aligned exactly once, in order."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.done = 0  # characters aligned so far
        self.at = 0.0  # where the last aligned character ends (s)

    def _span(self, end_char: int, end_s: float, out: tuple[list[str], list[float], list[float]]) -> None:
        count = end_char - self.done
        end_s = max(end_s, self.at)
        if count <= 0:
            self.at = end_s  # a pause with no character in it (the silence before the first word)
            return
        step = (end_s - self.at) / count
        for i in range(count):
            out[0].append(self.text[self.done + i])
            out[1].append(round(self.at + i * step, 4))
            out[2].append(round(self.at + (i + 1) * step, 4))
        self.done, self.at = end_char, end_s

    def words(self, words: list[WordTiming]) -> tuple[list[str], list[float], list[float]]:
        out: tuple[list[str], list[float], list[float]] = ([], [], [])
        last = len(self.text) - 1  # the final character is held back: it ends with the audio (finish)
        for w in words:
            if w.char_end <= self.done or self.text[w.char_start:w.char_end] != w.word:
                continue  # already aligned, or timed against a rewritten text (its time goes to the gaps)
            self._span(min(max(w.char_start, self.done), last), w.start_s, out)
            if w.char_end > last:
                step = (w.end_s - self.at) / max(w.char_end - self.done, 1)
                self._span(last, self.at + step * (last - self.done), out)
            else:
                self._span(w.char_end, w.end_s, out)
        return out

    def upto(self, end_char: int, end_s: float) -> tuple[list[str], list[float], list[float]]:
        """The characters up to `end_char` not aligned yet, sharing out the time up to `end_s` (the end of
        a flushed piece of a text that keeps growing)."""
        out: tuple[list[str], list[float], list[float]] = ([], [], [])
        self._span(min(end_char, len(self.text)), end_s, out)
        return out

    def finish(self, total_s: float) -> tuple[list[str], list[float], list[float]]:
        out: tuple[list[str], list[float], list[float]] = ([], [], [])
        self._span(len(self.text), total_s, out)
        return out
