"""Audio processing and encoders: every format decodes back with the right rate and length."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from control_plane.services import audio as A


def _tone(seconds: float = 1.0, rate: int = 24000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg", "opus", "vorbis"])
def test_whole_body_formats_decode_back(fmt):
    x = _tone(1.0, 24000)
    data = A.encode(x, 24000, fmt)
    y, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == 24000
    # Lossy codecs add encoder delay/padding; lossless ones are exact in length.
    if fmt in ("wav", "flac"):
        assert y.size == x.size
        assert np.abs(y - x).max() < 1e-3
    else:
        assert abs(y.size - x.size) < 0.1 * x.size


def test_pcm_is_raw_s16le():
    x = np.array([0.0, 0.5, -0.5, 1.0, -1.0], np.float32)
    data = A.encode(x, 16000, "pcm")
    assert np.frombuffer(data, "<i2").tolist() == [0, 16384, -16384, 32767, -32767]


@pytest.mark.parametrize(("fmt", "subtype"), [("mulaw", "ULAW"), ("alaw", "ALAW")])
def test_g711_matches_libsndfile_decoding(fmt, subtype):
    x = np.linspace(-1, 1, 8000, dtype=np.float32)
    data = A.encode(x, 8000, fmt)
    assert len(data) == x.size  # one byte per sample, raw
    ref, _ = sf.read(io.BytesIO(data), samplerate=8000, channels=1, format="RAW", subtype=subtype, dtype="int16")
    ours = A.mulaw_decode(data) if fmt == "mulaw" else A.alaw_decode(data)
    assert np.array_equal(ref, ours)
    assert np.abs(ours.astype(int) - A.to_int16(x)).max() <= 1024  # G.711 quantisation at full scale


def test_mulaw_encoder_is_bit_exact_with_libsndfile():
    pcm = A.to_int16(np.random.default_rng(1).uniform(-1, 1, 4000).astype(np.float32))
    buf = io.BytesIO()
    sf.write(buf, pcm, 8000, format="RAW", subtype="ULAW")
    assert A.mulaw_encode(pcm) == buf.getvalue()


def test_telephony_formats_force_8k_and_opus_picks_a_legal_rate():
    assert A.output_rate("mulaw", 24000, 24000) == 8000
    assert A.output_rate("alaw", None, 22050) == 8000
    assert A.output_rate("opus", None, 22050) == 24000
    assert A.output_rate("ogg", 44100, 24000) == 48000
    assert A.output_rate("wav", None, 22050) == 22050
    assert A.output_rate("wav", 16000, 22050) == 16000


def test_streaming_wav_header_has_unknown_length_then_pcm():
    enc = A.StreamEncoder("wav", 24000)
    first = enc.encode(_tone(0.1))
    assert first[:4] == b"RIFF" and first[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", first[4:8])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", first[40:44])[0] == 0xFFFFFFFF
    assert len(first) == 44 + 2400 * 2
    assert len(enc.encode(_tone(0.1))) == 4800
    assert enc.finish() == b""


@pytest.mark.parametrize("fmt", ["wav", "pcm", "mulaw", "alaw", "mp3", "opus", "vorbis"])
def test_streaming_encoders_produce_decodable_streams(fmt):
    rate = A.output_rate(fmt, 24000, 24000)
    x = _tone(2.0, rate)
    enc = A.StreamEncoder(fmt, rate)
    pieces = [enc.encode(x[i : i + rate // 10]) for i in range(0, x.size, rate // 10)]
    pieces.append(enc.finish())
    data = b"".join(pieces)
    if fmt in ("mp3", "flac", "wav"):
        assert sum(1 for p in pieces[:-1] if p) >= 10  # bytes leave as chunks are fed, not at the end
    if fmt == "pcm":
        y = np.frombuffer(data, "<i2").astype(np.float32) / 32767
    elif fmt in ("mulaw", "alaw"):
        y = (A.mulaw_decode(data) if fmt == "mulaw" else A.alaw_decode(data)).astype(np.float32) / 32768
    else:
        # A streamed WAV says "unknown length": read block by block to the end of the data.
        with sf.SoundFile(io.BytesIO(data)) as f:
            assert f.samplerate == rate
            y = np.concatenate(list(f.blocks(blocksize=4096, dtype="float32")))
    assert abs(y.size - x.size) < 0.1 * x.size
    assert float(np.sqrt(np.mean(y**2))) == pytest.approx(float(np.sqrt(np.mean(x**2))), rel=0.2)


@pytest.mark.parametrize(("src", "dst"), [(24000, 8000), (22050, 24000), (24000, 48000), (22050, 16000)])
def test_streaming_resampler_equals_whole_signal(src, dst):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, 30000).astype(np.float32)
    r = A.StreamingResampler(src, dst)
    parts, i = [], 0
    for n in rng.integers(1, 3000, 50):
        parts.append(r.process(x[i : i + n]))
        i += int(n)
    parts.append(r.process(x[i:], final=True))
    y = np.concatenate(parts)
    full = A.resample(x, src, dst)
    assert y.size == full.size
    assert np.abs(y - full).max() < 1e-5


def test_exact_silence_and_gain():
    assert A.silence(500, 24000).size == 12000
    assert A.silence(333, 22050).size == round(333 * 22050 / 1000)
    assert A.silence(0.5, 8000).size == 4
    x = np.full(100, 0.5, np.float32)
    assert np.allclose(A.apply_gain(x, 6.0206), 1.0, atol=1e-3)
    assert np.abs(A.apply_gain(x, 20.0)).max() == 1.0  # clipped, never beyond full scale
    assert not A.apply_gain(x, float("-inf")).any()


def test_pitch_shift_moves_the_fundamental_and_keeps_length():
    rate = 24000
    x = _tone(1.0, rate, 200.0)
    y = A.pitch_shift(x, rate, 1.5)
    assert y.size == x.size
    spectrum = np.abs(np.fft.rfft(y[2000:-2000] * np.hanning(y.size - 4000)))
    peak_hz = np.argmax(spectrum) * rate / (y.size - 4000)
    assert peak_hz == pytest.approx(300.0, rel=0.05)
    assert A.pitch_shift(x, rate, 1.0) is x


def test_streamed_flac_is_the_whole_file_but_for_the_unknown_length():
    # python-soundfile cannot read a FLAC whose STREAMINFO leaves the length open (it seeks), so compare
    # with the whole-body file: identical frames, only STREAMINFO's sizes/MD5 left unset.
    x = _tone(2.0, 24000)
    enc = A.StreamEncoder("flac", 24000)
    pieces = [enc.encode(x[i : i + 2400]) for i in range(0, x.size, 2400)] + [enc.finish()]
    whole = A.encode(x, 24000, "flac")
    streamed = b"".join(pieces)
    assert sum(1 for p in pieces if p) >= 10
    assert streamed[:4] == b"fLaC" and streamed[42:] == whole[42:]
    assert streamed[8:12] == whole[8:12] and streamed[18:20] == whole[18:20]  # block sizes, sample rate
