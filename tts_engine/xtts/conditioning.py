"""Reference audio -> (GPT conditioning latents, speaker embedding), from tensors, no files.

Follows Coqui's `Xtts.get_conditioning_latents` for one reference: resample to 22.05 kHz, cut to
`max_ref_len` seconds, optional peak normalisation, clip to [-1, 1]; the speaker embedding from
the 22.05 kHz audio (the encoder resamples it to 16 kHz itself) and the GPT latents from its first
`gpt_cond_len` seconds in `gpt_cond_chunk_len` chunks, with the model config's settings.
"""

from __future__ import annotations

import numpy as np
import torch

LOAD_SAMPLE_RATE = 22050


def _resample(audio: torch.Tensor, sample_rate: int, target: int) -> torch.Tensor:
    if sample_rate == target:
        return audio
    import torchaudio.functional as AF  # pure Python resampler; no torchaudio extension needed

    return AF.resample(audio, sample_rate, target)


def prepare_reference(audio: np.ndarray, sample_rate: int, max_seconds: float) -> torch.Tensor:
    """Validate and bring reference audio to [1, N] float32 at 22.05 kHz, clipped as Coqui's loader does."""
    array = np.asarray(audio)
    if array.ndim == 2:  # [channels, samples] or [samples, channels]: average to mono
        array = array.mean(axis=0 if array.shape[0] < array.shape[1] else 1)
    if array.ndim != 1 or array.size == 0:
        raise ValueError("reference audio must be a non-empty mono array")
    if not isinstance(sample_rate, int) or not 4000 <= sample_rate <= 192000:
        raise ValueError(f"sample_rate must be an integer in [4000, 192000], got {sample_rate!r}")
    if not np.all(np.isfinite(array)):
        raise ValueError("reference audio contains NaN or infinite samples")
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    tensor = _resample(tensor, sample_rate, LOAD_SAMPLE_RATE)
    tensor = tensor[:, : int(LOAD_SAMPLE_RATE * max_seconds)]
    return tensor.clamp(-1.0, 1.0)


@torch.inference_mode()
def compute_conditioning(model, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(gpt_cond_latent [N, D] float32, speaker_embedding [512] float32) for one reference recording."""
    config = model.config
    reference = prepare_reference(audio, sample_rate, float(config.max_ref_len))
    if getattr(config, "sound_norm_refs", False):
        peak = reference.abs().max()
        if peak > 0:
            reference = reference / peak * 0.75
    min_samples = int(0.33 * LOAD_SAMPLE_RATE)
    if reference.shape[1] < min_samples:
        raise ValueError("reference audio too short (minimum 0.33 s)")
    device = next(model.hifigan_decoder.parameters()).device
    reference = reference.to(device)
    speaker = model.get_speaker_embedding(reference, LOAD_SAMPLE_RATE)  # [1, 512, 1]
    latent = model.get_gpt_cond_latents(
        reference, LOAD_SAMPLE_RATE, length=int(config.gpt_cond_len), chunk_length=int(config.gpt_cond_chunk_len)
    )  # [1, N, D]
    return latent[0].float().cpu().numpy(), speaker.reshape(-1).float().cpu().numpy()
