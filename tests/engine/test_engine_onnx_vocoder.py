"""The engine on the artifact's ONNX HiFi-GAN generator streams the same audio as on the torch one.

Both engines load the session's exported tiny artifact (tests/conftest.py, random weights, with
hifigan_frames.onnx) and run the same greedy request, so their GPT latents are identical and only the
vocoder differs. The generators agree to ~4e-7 per call; the streamed utterances are held to max abs
diff < 1e-3 (observed ~1e-6), far below audible and far above float noise.
"""

from __future__ import annotations

import numpy as np
from engine_helpers import voice

from tts_engine.xtts.engine import XttsEngine
from tts_engine.xtts.onnx_vocoder import BACKEND_ENV, OnnxVocoder
from tts_engine.xtts.types import SynthesisParams

TEXT = "hello world, this is a test."
STREAM = SynthesisParams(do_sample=False, max_new_tokens=16, first_chunk_tokens=4, chunk_tokens=6)


def _stream(engine: XttsEngine, seed: int) -> list[np.ndarray]:
    cond, speaker = voice(seed)
    with engine:
        return [chunk.audio for chunk in engine.submit(TEXT, "en", cond, speaker, STREAM)]


def test_onnx_backend_streams_what_the_torch_backend_does(tiny_xtts_artifact, monkeypatch):
    monkeypatch.setenv(BACKEND_ENV, "torch")
    # Inline vocoding: both engines cut the same chunks, so the chunk count below is deterministic.
    torch_engine = XttsEngine.from_artifact(tiny_xtts_artifact, device="cpu", max_batch_size=2,
                                            pipeline_vocoding=False)  # backend from the env
    onnx_engine = XttsEngine.from_artifact(tiny_xtts_artifact, device="cpu", vocoder_backend="onnx", max_batch_size=2,
                                           pipeline_vocoding=False)
    assert torch_engine.vocoder is torch_engine.model.hifigan_decoder
    assert isinstance(onnx_engine.vocoder, OnnxVocoder)
    assert onnx_engine.frame_decoder == onnx_engine.vocoder.decode_frames  # windowed, not whole sentences

    onnx_chunks = _stream(onnx_engine, seed=6)
    torch_chunks = _stream(torch_engine, seed=6)
    assert len(onnx_chunks) >= 3  # really streamed
    streamed, expected = np.concatenate(onnx_chunks), np.concatenate(torch_chunks)
    assert streamed.shape == expected.shape and streamed.size > 0
    assert np.max(np.abs(streamed - expected)) < 1e-3
