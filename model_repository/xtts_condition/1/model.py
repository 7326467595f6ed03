"""Triton model `xtts_condition`: reference audio -> GPT conditioning latents + speaker embedding.

Dynamically batched: `execute` receives up to max_batch_size requests, each with its own audio
length, and answers each one; a bad recording fails its own request only.
"""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils

from tts_contract import tensors as T
from tts_contract.limits import CONDITION_SAMPLE_RATES, CONDITION_SECONDS
from tts_engine.triton_utils import InputError, RequestInputs, input_getter, instance_device, xtts_model_path


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        from tts_engine.xtts.artifact import load_artifact

        path = xtts_model_path()
        try:
            self.artifact = load_artifact(path, device=instance_device(args))
        except Exception as error:
            raise RuntimeError(f"xtts_condition: cannot load XTTS_MODEL_PATH={path}: {error}") from error

    def execute(self, requests: list) -> list:
        from tts_engine.xtts.conditioning import compute_conditioning

        responses = []
        for request in requests:
            try:
                inputs = RequestInputs(input_getter(pb_utils, request))
                audio = inputs.floats(T.AUDIO, (1, None))[0]  # [batch=1, samples] per request
                low_rate, high_rate = CONDITION_SAMPLE_RATES
                rate = inputs.scalar(T.SAMPLE_RATE, int, None, low=low_rate, high=high_rate)
                if rate is None:
                    raise InputError(f"input {T.SAMPLE_RATE} is required")
                seconds = audio.size / rate
                low, high = CONDITION_SECONDS
                if not low <= seconds <= high:
                    raise InputError(f"reference audio must be {low:.0f}-{high:.0f} s long, got {seconds:.2f} s")
                latent, speaker = compute_conditioning(self.artifact.model, audio, rate)
                responses.append(pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor(T.GPT_COND_LATENT, np.ascontiguousarray(latent[None], dtype=np.float32)),
                    pb_utils.Tensor(T.SPEAKER_EMBEDDING, np.ascontiguousarray(speaker[None], dtype=np.float32)),
                ]))
            except ValueError as error:  # InputError included
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"xtts_condition: {error}")))
            except Exception as error:  # noqa: BLE001 - this request only
                pb_utils.Logger.log_warn(f"xtts_condition: conditioning failed: {type(error).__name__}")
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"xtts_condition: conditioning failed ({type(error).__name__})")))
        return responses

    def finalize(self) -> None:
        del self.artifact  # frees the model before the stub exits
