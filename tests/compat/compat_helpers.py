"""Helpers of the compatibility tests: reading the audio the clients hand back."""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf


def wav_seconds(data: bytes) -> tuple[float, int]:
    """Duration and rate of a 16-bit mono WAV body, read from its chunks (a streamed WAV leaves its sizes
    open, so the data size is what follows the data chunk's header)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pos, rate, channels, bits = 12, 0, 0, 0
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if tag == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8:pos + 24])
        elif tag == b"data":
            assert rate and channels == 1 and bits == 16
            return (len(data) - pos - 8) / 2 / rate, rate
        pos += 8 + size
    raise AssertionError("no data chunk")


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    with sf.SoundFile(io.BytesIO(data)) as f:
        return np.concatenate(list(f.blocks(blocksize=8192, dtype="float32"))), f.samplerate


def pcm16(data: bytes) -> np.ndarray:
    assert len(data) % 2 == 0, "s16le PCM has an even byte count"
    return np.frombuffer(data, dtype="<i2")
