"""Voice audio and conditioning are encrypted at rest: the bytes the store holds, read straight from the
database file or server (not through the app), are not audio, do not contain the upload, and look random."""

from __future__ import annotations

import io
import math
import sqlite3
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
from gateway_helpers import encode_reference, piper_speech, run_gateway

from control_plane.adapters.store.database import SQLITE_FILE


def _entropy_bits_per_byte(data: bytes) -> float:
    counts = Counter(data)
    return -sum(n / len(data) * math.log2(n / len(data)) for n in counts.values())


async def _stored_row(backend, voice_id: str) -> dict[str, bytes]:
    columns = "audio_ciphertext, gpt_cond_latent, speaker_embedding"
    if backend["name"] == "embedded":
        with sqlite3.connect(backend["tts_data_dir"] / SQLITE_FILE) as db:
            # SQLAlchemy's Uuid is 32 hex digits in SQLite
            row = db.execute(f"SELECT {columns} FROM voices WHERE id IN (?, ?)",
                             (voice_id, voice_id.replace("-", ""))).fetchone()
    else:
        import asyncpg

        conn = await asyncpg.connect(backend["pg"].superuser_url)  # past row-level security: raw bytes
        try:
            row = await conn.fetchrow(f"SELECT {columns} FROM voices WHERE id = $1::uuid", voice_id)
        finally:
            await conn.close()
    assert row is not None
    return {"audio": bytes(row[0]), "latent": bytes(row[1]), "speaker": bytes(row[2])}


async def test_stored_voice_bytes_are_ciphertext(backend, triton_server):
    x, rate = piper_speech(6.0)
    upload = encode_reference(x, rate, "wav")
    with run_gateway(backend["tts_data_dir"], triton_server, database_url=backend["database_url"],
                     redis_url=backend["redis_url"]) as gw:
        _, key = await gw.tenant()
        async with gw.client(key) as c:
            r = await c.post("/v1/voices/upload", data={"name": "secret", "language": "en"},
                             files={"audio": ("ref.wav", upload, "audio/wav")})
            assert r.status_code == 201, r.text
            voice_id = r.json()["voice_id"]
            assert (await c.post("/v1/synthesize", json={"text": "Still works.", "voice_id": voice_id,
                                                         "format": "wav"})).status_code == 200
    stored = await _stored_row(backend, voice_id)
    audio = stored["audio"]
    assert len(audio) > 100_000  # the reference is stored (6 s of speech)
    assert audio[:4] not in (b"RIFF", b"fLaC", b"OggS", b"ID3\x03") and b"WAVE" not in audio[:64]
    with pytest.raises(sf.LibsndfileError):
        sf.read(io.BytesIO(audio))
    pcm = upload[44:]
    for start in range(0, len(pcm) - 64, len(pcm) // 8):  # no stretch of the upload survives
        assert pcm[start:start + 64] not in audio
    assert _entropy_bits_per_byte(audio) > 7.9  # PCM speech is far from uniform; ciphertext is not
    for name in ("latent", "speaker"):  # sealed too: not a readable float32 array
        values = np.frombuffer(stored[name][: len(stored[name]) // 4 * 4], dtype="<f4")
        assert not np.all(np.isfinite(values) & (np.abs(values) < 100)), name
        assert _entropy_bits_per_byte(stored[name]) > 7.0, name
