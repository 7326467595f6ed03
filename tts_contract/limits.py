"""Request bounds shared by the API and the models: text length, prosody ranges, reference audio."""

from __future__ import annotations

MAX_TEXT_CHARS = 5000  # characters of text in one request (SSML: its text content)

# Prosody the API accepts (and SSML values are clamped into). The xtts model itself takes a wider
# speed range (XTTS_SPEED_RANGE) for direct Triton clients.
SPEED_RANGE: tuple[float, float] = (0.5, 2.0)
PITCH_RANGE: tuple[float, float] = (0.5, 2.0)
VOLUME_RANGE: tuple[float, float] = (0.0, 2.0)  # linear gain
XTTS_SPEED_RANGE: tuple[float, float] = (0.25, 4.0)
PIPER_SPEED_RANGE: tuple[float, float] = SPEED_RANGE

# xtts_condition: reference recordings it accepts.
CONDITION_SECONDS: tuple[float, float] = (1.0, 60.0)  # the encoder needs speech; it reads at most 30 s
CONDITION_SAMPLE_RATES: tuple[int, int] = (4000, 192000)


def clamp(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(max(value, low), high)


def clamp_speed(speed: float) -> float:
    """A speed inside SPEED_RANGE (values from SSML or OpenAI's wider range are clamped, not refused)."""
    return clamp(speed, SPEED_RANGE)
