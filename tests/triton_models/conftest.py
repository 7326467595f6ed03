"""XTTS fixtures for the Triton tests: the same tiny artifact loaded in process, and a voice to speak with."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

XTTS_TEST_BATCH = 8  # rows of the in-process engine; the served model's comes from its config


@pytest.fixture(scope="session")
def reference_audio() -> tuple[np.ndarray, int]:
    """About three seconds of real speech (the bundled Piper voice) as a cloning reference."""
    from tts_engine.piper import PiperEngine

    engine = PiperEngine.bundled()
    audio = engine.synthesize("This recording is the reference voice for the synthesis tests. It is short.")
    return audio, engine.sample_rate


@pytest.fixture(scope="session")
def xtts_engine(tiny_xtts_artifact) -> Iterator:
    """The engine the xtts model runs, loaded from the same artifact in this process."""
    from tts_engine.xtts.engine import XttsEngine

    engine = XttsEngine.from_artifact(tiny_xtts_artifact, device="cpu", max_batch_size=XTTS_TEST_BATCH)
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def voice(xtts_engine, reference_audio) -> tuple[np.ndarray, np.ndarray]:
    """(gpt_cond_latent [32, D], speaker_embedding [512]) of the reference, computed in process."""
    audio, rate = reference_audio
    return xtts_engine.condition(audio, rate)
