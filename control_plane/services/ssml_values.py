"""SSML attribute values: break times, prosody rate, pitch and volume, emphasis levels, and their ranges."""

from __future__ import annotations

import re

from control_plane.services.planning import SILENT_DB
from tts_contract import PITCH_RANGE, SPEED_RANGE

MAX_BREAK_MS = 10_000.0

BREAK_STRENGTH_MS = {"none": 0.0, "x-weak": 100.0, "weak": 250.0, "medium": 400.0, "strong": 750.0, "x-strong": 1200.0}
RATE_WORDS = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.75}
PITCH_WORDS = {"x-low": 0.8, "low": 0.9, "medium": 1.0, "default": 1.0, "high": 1.1, "x-high": 1.2}
VOLUME_WORDS = {"silent": SILENT_DB, "x-soft": -12.0, "soft": -6.0, "medium": 0.0, "default": 0.0, "loud": 6.0,
                "x-loud": 12.0}
EMPHASIS = {"strong": (0.9, 3.0), "moderate": (0.95, 1.5), "none": (1.0, 0.0), "reduced": (1.05, -3.0)}


__all__ = ["PITCH_RANGE", "SPEED_RANGE", "clamp"]


def clamp(v: float, bounds: tuple[float, float]) -> float:
    return round(min(max(v, bounds[0]), bounds[1]), 4)


def parse_time_ms(value: str) -> float | None:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", value)
    if not m:
        return None
    return float(m.group(1)) * (1000.0 if m.group(2) == "s" else 1.0)


def parse_rate(value: str) -> float | None:
    v = value.strip()
    if v in RATE_WORDS:
        return RATE_WORDS[v]
    if m := re.fullmatch(r"([+-])(\d+(?:\.\d+)?)%", v):
        f = 1 + (float(m.group(2)) / 100) * (1 if m.group(1) == "+" else -1)
        return f if f > 0 else None
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)%", v):
        f = float(m.group(1)) / 100
        return f if f > 0 else None
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)", v):
        f = float(m.group(1))
        return f if f > 0 else None
    return None


def parse_pitch(value: str) -> float | None:
    v = value.strip()
    if v in PITCH_WORDS:
        return PITCH_WORDS[v]
    if m := re.fullmatch(r"([+-]?)(\d+(?:\.\d+)?)st", v):
        return 2.0 ** ((-1 if m.group(1) == "-" else 1) * float(m.group(2)) / 12.0)
    if m := re.fullmatch(r"([+-])(\d+(?:\.\d+)?)%", v):
        f = 1 + (float(m.group(2)) / 100) * (1 if m.group(1) == "+" else -1)
        return f if f > 0 else None
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)%", v):
        f = float(m.group(1)) / 100
        return f if f > 0 else None
    return None


def parse_volume(value: str, current: float) -> float | None:
    v = value.strip()
    if v in VOLUME_WORDS:
        return VOLUME_WORDS[v] if v != "default" else current
    if m := re.fullmatch(r"([+-])(\d+(?:\.\d+)?)dB", v):
        return max(SILENT_DB, current + (float(m.group(2)) * (1 if m.group(1) == "+" else -1)))
    return None
