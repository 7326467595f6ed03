"""Triton model `xtts_condition`: reference audio -> GPT conditioning latents + speaker embedding.

Dynamically batched: `execute` receives up to max_batch_size requests, each with its own audio
length, and answers each one; a bad recording fails its own request only.
"""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils

from tts_engine.triton_utils import InputError, RequestInputs, instance_device, xtts_model_path

MIN_SECONDS = 1.0  # the conditioning encoder needs speech, not a click
MAX_SECONDS = 60.0  # the model reads at most its max_ref_len (30 s); longer uploads are a client error


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
                inputs = RequestInputs(lambda name, r=request: _as_numpy(r, name))
                audio = inputs.floats("AUDIO", (1, None))[0]  # [batch=1, samples] per request
                rate = inputs.scalar("SAMPLE_RATE", int, None, low=4000, high=192000)
                if rate is None:
                    raise InputError("input SAMPLE_RATE is required")
                seconds = audio.size / rate
                if not MIN_SECONDS <= seconds <= MAX_SECONDS:
                    raise InputError(f"reference audio must be {MIN_SECONDS:.0f}-{MAX_SECONDS:.0f} s long, "
                                     f"got {seconds:.2f} s")
                latent, speaker = compute_conditioning(self.artifact.model, audio, rate)
                responses.append(pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor("GPT_COND_LATENT", np.ascontiguousarray(latent[None], dtype=np.float32)),
                    pb_utils.Tensor("SPEAKER_EMBEDDING", np.ascontiguousarray(speaker[None], dtype=np.float32)),
                ]))
            except (InputError, ValueError) as error:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"xtts_condition: {error}")))
            except Exception as error:  # noqa: BLE001 - this request only
                pb_utils.Logger.log_warn(f"xtts_condition: conditioning failed: {type(error).__name__}")
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"xtts_condition: conditioning failed ({type(error).__name__})")))
        return responses

    def finalize(self) -> None:
        self.artifact = None


def _as_numpy(request, name: str):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()
