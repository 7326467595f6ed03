"""The real clients (openai, elevenlabs, Pipecat, LiveKit Agents) against a real gateway and Triton.

One gateway per test module on the session's Triton (piper and the tiny XTTS loaded), one tenant, and
one cloned voice (the tiny XTTS has random weights: its audio is noise, which is enough to check that
a cloned voice streams and has the right length at the right rate).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control_plane"))

from gateway_helpers import Gateway, encode_reference, piper_speech, run_gateway  # noqa: E402


@dataclass
class CompatEnv:
    gateway: Gateway
    tenant_id: str
    api_key: str
    cloned_voice: str

    @property
    def base_url(self) -> str:
        return self.gateway.url

    @property
    def v1(self) -> str:
        return f"{self.gateway.url}/v1"


@pytest.fixture(scope="module")
def compat_gateway(triton_server, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-compat"), triton_server) as gw:
        yield gw


@pytest.fixture(scope="module")
async def compat(compat_gateway) -> CompatEnv:
    tenant_id, key = await compat_gateway.tenant()
    x, rate = piper_speech(6.0)
    async with compat_gateway.client(key) as c:
        r = await c.post("/v1/voices/upload", data={"name": "cloned", "language": "en"},
                         files={"audio": ("ref.wav", encode_reference(x, rate, "wav"), "audio/wav")})
    assert r.status_code == 201, r.text
    return CompatEnv(compat_gateway, tenant_id, key, r.json()["voice_id"])
