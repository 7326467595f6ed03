"""Audio post-processing and encoders (whole-body and streaming).

Signals are float32 mono in [-1, 1]. Formats:

| format | content type | container / codec | streams incrementally |
| --- | --- | --- | --- |
| wav | audio/wav | RIFF, 16-bit PCM; streamed with 0xFFFFFFFF sizes (unknown length) | yes, every chunk |
| pcm | audio/L16 | raw s16le, no header | yes, every chunk |
| mulaw / alaw | audio/basic, audio/x-alaw-basic | raw G.711 at 8 kHz, no header (telephony) | yes, every chunk |
| mp3 | audio/mpeg | MPEG-1/2 layer III (libsndfile + LAME) | yes, frames as encoded |
| flac | audio/flac | FLAC 16-bit; streamed STREAMINFO has no total length | yes, frames as encoded |
| ogg / opus | audio/ogg | Ogg/Opus at the nearest legal rate (8/12/16/24/48 kHz) | per Ogg page (about 1 s) |
| vorbis | audio/ogg | Ogg/Vorbis | per Ogg page (a few seconds) |

The streaming encoders feed libsndfile through a write-only sink that hands out bytes as soon as
they are written; a later seek back to patch a header (which a stream cannot honour) is ignored.
"""

from __future__ import annotations

import asyncio
import io
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from control_plane.services.resample import resample_poly

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
TELEPHONY_RATE = 8000


@dataclass(frozen=True)
class FormatSpec:
    name: str
    content_type: str
    extension: str
    fixed_rate: int | None = None  # telephony formats are always 8 kHz


FORMATS: dict[str, FormatSpec] = {
    "wav": FormatSpec("wav", "audio/wav", "wav"),
    "pcm": FormatSpec("pcm", "audio/L16", "pcm"),
    "mp3": FormatSpec("mp3", "audio/mpeg", "mp3"),
    "opus": FormatSpec("opus", "audio/ogg; codecs=opus", "opus"),
    "ogg": FormatSpec("ogg", "audio/ogg; codecs=opus", "ogg"),
    "vorbis": FormatSpec("vorbis", "audio/ogg; codecs=vorbis", "ogg"),
    "flac": FormatSpec("flac", "audio/flac", "flac"),
    "mulaw": FormatSpec("mulaw", "audio/basic", "ulaw", TELEPHONY_RATE),
    "alaw": FormatSpec("alaw", "audio/x-alaw-basic", "alaw", TELEPHONY_RATE),
}

_SNDFILE: dict[str, tuple[str, str]] = {
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "opus": ("OGG", "OPUS"),
    "ogg": ("OGG", "OPUS"),
    "vorbis": ("OGG", "VORBIS"),
    "flac": ("FLAC", "PCM_16"),
}
# MP3 is constant-bitrate: a streamed MP3 cannot carry the Xing/Info frame count LAME patches in on close, and
# decoders estimate a VBR stream's length from its first frame.
_SNDFILE_OPTIONS: dict[str, dict[str, Any]] = {"mp3": {"bitrate_mode": "CONSTANT", "compression_level": 0.5}}
# libsndfile's MP3 encoder takes the MPEG-1/2/2.5 rates only.
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def output_rate(fmt: str, requested: int | None, native: int) -> int:
    """The sample rate a format will actually carry, given the request and the engine's rate."""
    spec = FORMATS[fmt]
    if spec.fixed_rate:
        return spec.fixed_rate
    rate = requested or native
    if fmt in ("opus", "ogg"):
        return min(OPUS_RATES, key=lambda r: (abs(r - rate), -r))
    if fmt == "mp3":
        return min(MP3_RATES, key=lambda r: (abs(r - rate), -r))
    return rate


# --- signal processing ----------------------------------------------------------------------


def silence_samples(ms: float, rate: int) -> int:
    return int(round(ms * rate / 1000.0))


def silence(ms: float, rate: int) -> np.ndarray:
    return np.zeros(silence_samples(ms, rate), dtype=np.float32)


def apply_gain(x: np.ndarray, gain_db: float) -> np.ndarray:
    if gain_db == 0.0:
        return x
    if math.isinf(gain_db) and gain_db < 0:
        return np.zeros_like(x)
    return np.clip(x * np.float32(10.0 ** (gain_db / 20.0)), -1.0, 1.0).astype(np.float32)


def _ratio(src: int, dst: int) -> tuple[int, int]:
    g = math.gcd(src, dst)
    return dst // g, src // g


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst or x.size == 0:
        return x.astype(np.float32, copy=False)
    up, down = _ratio(src, dst)
    return resample_poly(x, up, down).astype(np.float32)


class StreamingResampler:
    """Chunk-by-chunk polyphase resampling whose concatenated output equals `resample` on the whole signal.

    Output sample n sits at input position n*down/up; it is emitted once the filter's reach past that
    position (`ctx` input samples) has arrived, so the stream lags the input by about `ctx` samples.
    """

    def __init__(self, src: int, dst: int) -> None:
        self.src, self.dst = src, dst
        self.up, self.down = _ratio(src, dst)
        self.ctx = math.ceil(10 * max(self.up, self.down) / self.up) + 2
        self._buf = np.zeros(0, dtype=np.float32)
        self._base = 0  # absolute input index of _buf[0]
        self._total = 0
        self._next_out = 0

    def process(self, chunk: np.ndarray, final: bool = False) -> np.ndarray:
        if self.src == self.dst:
            return chunk.astype(np.float32, copy=False)
        if chunk.size:
            self._buf = np.concatenate([self._buf, chunk.astype(np.float32, copy=False)])
            self._total += chunk.size
        up, down = self.up, self.down
        n_end = -(-self._total * up // down) if final else max(0, (self._total - self.ctx) * up // down)
        if n_end <= self._next_out:
            return np.zeros(0, dtype=np.float32)
        # Window start: ctx before the first wanted output, on a multiple of `down` so outputs align.
        i0 = (self._next_out * down // up - self.ctx) // down * down
        i1 = min(self._total, -(-n_end * down // up) + self.ctx)
        seg = self._slice(i0, i1)
        y = resample_poly(seg, up, down)
        o0 = i0 * up // down
        out = y[self._next_out - o0 : n_end - o0].astype(np.float32)
        self._next_out = n_end
        keep_from = max(self._base, (n_end * down // up - 2 * self.ctx) // down * down)
        self._buf = self._buf[keep_from - self._base :]
        self._base = keep_from
        return out

    def _slice(self, i0: int, i1: int) -> np.ndarray:
        # The buffer always reaches back to i0 (see keep_from); before the signal start is silence.
        if i0 < 0:
            return np.concatenate([np.zeros(-i0, np.float32), self._buf[: i1 - self._base]])
        return self._buf[i0 - self._base : i1 - self._base]


def time_stretch(x: np.ndarray, factor: float, rate: int) -> np.ndarray:
    """WSOLA: output length ≈ len(x) * factor, pitch unchanged (overlap-add of best-aligned frames)."""
    if factor == 1.0 or x.size == 0:
        return x
    frame = max(64, int(rate * 0.03))  # 30 ms frames, 50 % overlap
    hop_out = frame // 2
    hop_in = hop_out / factor
    tol = frame // 4
    window = np.hanning(frame).astype(np.float32)
    n_out = int(round(x.size * factor))
    padded = np.concatenate([np.zeros(tol, np.float32), x.astype(np.float32), np.zeros(frame + tol, np.float32)])
    out = np.zeros(n_out + frame, dtype=np.float32)
    norm = np.zeros_like(out)
    prev_end: np.ndarray | None = None
    k = 0
    while k * hop_out < n_out:
        centre = int(round(k * hop_in)) + tol
        if prev_end is None:
            start = centre
        else:
            # Choose the shift that best continues the previous frame's natural successor.
            lo, hi = max(0, centre - tol), min(padded.size - frame, centre + tol)
            region = padded[lo : hi + hop_out]
            if region.size < hop_out or prev_end.size < hop_out:
                start = centre
            else:
                corr = np.correlate(region, prev_end[:hop_out], mode="valid")
                start = lo + int(np.argmax(corr))
        seg = padded[start : start + frame]
        if seg.size < frame:
            break
        o = k * hop_out
        out[o : o + frame] += seg * window
        norm[o : o + frame] += window
        prev_end = padded[start + hop_out : start + hop_out + frame]
        k += 1
    norm[norm < 1e-3] = 1.0
    return (out / norm)[:n_out].astype(np.float32)


def pitch_shift(x: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """Raise (factor > 1) or lower the pitch, keeping the duration: stretch in time, then resample back."""
    if factor == 1.0 or x.size == 0:
        return x
    stretched = time_stretch(x, factor, rate)
    # Playing `factor` times faster multiplies every frequency by `factor`; approximate with a rational ratio.
    num = int(round(factor * 100))
    shifted = resample_poly(stretched, 100, num).astype(np.float32)
    n = x.size
    return np.pad(shifted, (0, max(0, n - shifted.size)))[:n]


def to_int16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2")


# --- G.711 (ITU-T) ----------------------------------------------------------------------------

_MULAW_BIAS = 0x84
_MULAW_CLIP = 32635


def _segment(v: np.ndarray) -> np.ndarray:
    # Segment = position of the highest set bit above bit 7, 0..7.
    seg = np.zeros(v.shape, dtype=np.int32)
    for s in range(1, 8):
        seg[v >= (0x100 << (s - 1))] = s
    return seg


def mulaw_encode(pcm16: np.ndarray) -> bytes:
    x = pcm16.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), _MULAW_CLIP) + _MULAW_BIAS
    seg = _segment(mag)
    mant = (mag >> (seg + 3)) & 0x0F
    code = ~(sign | (seg << 4) | mant) & 0xFF
    return code.astype(np.uint8).tobytes()


def mulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    seg = (u >> 4) & 0x07
    mag = (((u & 0x0F) << 3) + _MULAW_BIAS) << seg
    mag -= _MULAW_BIAS
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


def alaw_encode(pcm16: np.ndarray) -> bytes:
    x = pcm16.astype(np.int32) >> 3  # A-law works on 13-bit magnitudes
    sign = np.where(x >= 0, 0x80, 0)
    mag = np.where(x >= 0, x, -x - 1)
    mag = np.minimum(mag, 0x0FFF)
    seg = np.zeros(mag.shape, dtype=np.int32)
    for s in range(1, 8):
        seg[mag >= (0x20 << (s - 1))] = s
    mant = np.where(seg == 0, mag >> 1, mag >> seg) & 0x0F
    code = (sign | (seg << 4) | mant) ^ 0x55
    return code.astype(np.uint8).tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    seg = (a >> 4) & 0x07
    mant = a & 0x0F
    mag = np.where(seg == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, mag, -mag).astype(np.int16)


# --- encoders --------------------------------------------------------------------------------


def wav_header(rate: int, data_bytes: int | None = None) -> bytes:
    """16-bit mono RIFF header; `None` = unknown length (0xFFFFFFFF sizes, what streaming players accept)."""
    data = 0xFFFFFFFF if data_bytes is None else data_bytes
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data" + struct.pack("<I", data)
    )


class _StreamSink:
    """Write-only file object for libsndfile: bytes become available as soon as they are written."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._base = 0  # absolute offset of _buf[0]; everything before it has been handed out
        self._pos = 0
        self._end = 0

    def write(self, data: Any) -> int:
        b = bytes(data)
        pos = self._pos
        self._pos += len(b)
        if pos < self._base:  # patching bytes already sent: impossible on a stream, skip that part
            b = b[self._base - pos :]
            pos = self._base
        if not b:
            return len(data)
        rel = pos - self._base
        if rel + len(b) > len(self._buf):
            self._buf.extend(b"\0" * (rel + len(b) - len(self._buf)))
        self._buf[rel : rel + len(b)] = b
        self._end = max(self._end, pos + len(b))
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else self._pos + offset if whence == 1 else self._end + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        return b""

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = bytes(self._buf)
        self._base += len(out)
        self._buf.clear()
        return out


class StreamEncoder:
    """Encode float32 chunks (already at the output rate) into a byte stream as they arrive."""

    def __init__(self, fmt: str, rate: int) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt}")
        self.fmt, self.rate = fmt, rate
        self._started = False
        self._sink: _StreamSink | None = None
        self._sf: sf.SoundFile | None = None
        if fmt in _SNDFILE:
            container, subtype = _SNDFILE[fmt]
            self._sink = _StreamSink()
            self._sf = sf.SoundFile(self._sink, "w", samplerate=rate, channels=1, format=container, subtype=subtype,
                                    **_SNDFILE_OPTIONS.get(fmt, {}))

    def encode(self, x: np.ndarray) -> bytes:
        head = b""
        if not self._started:
            self._started = True
            if self.fmt == "wav":
                head = wav_header(self.rate)
        if self._sf is not None:
            if x.size:
                self._sf.write(x.astype(np.float32, copy=False))
            return self._sink.take()  # type: ignore[union-attr]
        return head + _encode_raw(self.fmt, x)

    def finish(self) -> bytes:
        head = self.encode(np.zeros(0, np.float32)) if not self._started else b""
        if self._sf is not None:
            self._sf.close()
            self._sf = None
            return head + self._sink.take()  # type: ignore[union-attr]
        return head


def _encode_raw(fmt: str, x: np.ndarray) -> bytes:
    pcm = to_int16(x)
    if fmt in ("wav", "pcm"):
        return pcm.tobytes()
    if fmt == "mulaw":
        return mulaw_encode(pcm)
    if fmt == "alaw":
        return alaw_encode(pcm)
    raise ValueError(fmt)


async def encode_async(x: np.ndarray, rate: int, fmt: str) -> bytes:
    """`encode` on a worker thread: a long file's MP3/Opus encode takes far longer than an event-loop tick."""
    return await asyncio.to_thread(encode, x, rate, fmt)


def encode(x: np.ndarray, rate: int, fmt: str) -> bytes:
    """Whole-body encoding; WAV carries exact sizes."""
    if fmt == "wav":
        pcm = to_int16(x).tobytes()
        return wav_header(rate, len(pcm)) + pcm
    if fmt in _SNDFILE:
        container, subtype = _SNDFILE[fmt]
        buf = io.BytesIO()
        with sf.SoundFile(buf, "w", samplerate=rate, channels=1, format=container, subtype=subtype,
                          **_SNDFILE_OPTIONS.get(fmt, {})) as f:
            f.write(x.astype(np.float32, copy=False))
        return buf.getvalue()
    return _encode_raw(fmt, x)


def concat(parts: Iterable[np.ndarray]) -> np.ndarray:
    parts = [p for p in parts if p.size]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
