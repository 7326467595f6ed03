"""Synthesis: plan → cache → Triton streams → post-processing → encoded chunks."""

from __future__ import annotations

from typing import Any

from control_plane.adapters.cache import AudioCache
from control_plane.adapters.triton import TritonClient
from control_plane.services.voices import VoiceService
from control_plane.settings import Settings


class SynthesisService:
    def __init__(
        self,
        triton: TritonClient,
        cache: AudioCache,
        voices: VoiceService,
        settings: Settings,
        metrics: Any | None = None,
    ) -> None:
        self.triton = triton
        self.cache = cache
        self.voices = voices
        self.settings = settings
        self.metrics = metrics
