"""TTS Gateway control plane: the FastAPI service and the `tts-gateway` CLI."""

__version__ = "0.1.0"
