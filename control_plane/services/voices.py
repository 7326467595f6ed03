"""Voices: upload, validation, conditioning via Triton, encrypted storage, built-in voices."""

from __future__ import annotations

from typing import Any

from control_plane.adapters.cache import AudioCache
from control_plane.adapters.triton import TritonClient
from control_plane.settings import Settings


class VoiceService:
    def __init__(self, store: Any, triton: TritonClient, cache: AudioCache, settings: Settings) -> None:
        self.store = store
        self.triton = triton
        self.cache = cache
        self.settings = settings
