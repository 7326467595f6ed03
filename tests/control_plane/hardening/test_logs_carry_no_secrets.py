"""The logs of a real `tts-gateway serve` process at DEBUG carry no secret and no request content.

Every kind of traffic that handles a secret or a user's words runs once (admin token, API keys in
headers and in a WebSocket query string, a wrong key, plain text, SSML, the OpenAI endpoint, a
WebSocket stream, a voice upload, a rejected SSML document); then the captured stdout/stderr must
contain none of the secrets, none of the marker words, and nothing that looks like encoded audio.
"""

from __future__ import annotations

import base64
import json
import re

import httpx
import pytest
import websockets
from fault_helpers import ServeProcess, eventually
from gateway_helpers import ADMIN_TOKEN, encode_reference, piper_speech

MARKER = "zebraquartz"  # a word no log line has a reason to contain
PEPPER = "pepper-" + "q" * 24
ENCRYPTION_KEY = base64.b64encode(b"k" * 32).decode()


@pytest.fixture(scope="module")
def serve(triton_server, tmp_path_factory):
    server = ServeProcess(triton_server, tmp_path_factory.mktemp("gw-logs"), LOG_LEVEL="DEBUG",
                          API_KEY_PEPPER=PEPPER, VOICE_ENCRYPTION_KEY=ENCRYPTION_KEY).start()
    yield server
    server.stop()


async def test_logs_carry_no_secrets_and_no_request_content(serve):
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=serve.url, timeout=120) as c:
        created = (await c.post("/admin/v1/tenants", headers=admin, json={"name": "logs"})).json()
        key = created["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        assert (await c.get("/v1/voices", headers={"Authorization": "Bearer tts_" + "x" * 43})).status_code == 401
        r = await c.post("/v1/synthesize", headers=auth, json={"text": f"Hello {MARKER} one.", "format": "wav"})
        assert r.status_code == 200
        ssml = f"<speak>Hello <break time='100ms'/> {MARKER} two.</speak>"
        assert (await c.post("/v1/synthesize", headers=auth, json={"ssml": ssml})).status_code == 200
        bad = await c.post("/v1/synthesize", headers=auth, json={"ssml": f"<speak><{MARKER}>oops</speak>"})
        assert bad.status_code == 422
        speech = await c.post("/v1/audio/speech", headers=auth, json={"input": f"{MARKER} three.", "voice": "alloy"})
        assert speech.status_code == 200
        x, rate = piper_speech(6.0)
        upload = await c.post("/v1/voices/upload", headers=auth, data={"name": f"{MARKER}-voice", "language": "en"},
                              files={"audio": ("ref.wav", encode_reference(x, rate, "wav"), "audio/wav")})
        assert upload.status_code == 201, upload.text
        rotated = await c.post(f"/admin/v1/tenants/{created['tenant_id']}/keys/rotate", headers=admin, json={})
        assert rotated.status_code in (200, 201), rotated.text
        new_key = rotated.json()["api_key"]
    ws_url = serve.url.replace("http://", "ws://") + f"/v1/synthesize/ws?api_key={new_key}"
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "start", "format": "pcm"}))
        await ws.send(json.dumps({"type": "text", "text": f"{MARKER} four."}))
        await ws.send(json.dumps({"type": "end"}))
        kinds = [json.loads(m)["type"] async for m in ws if isinstance(m, str)]
    assert kinds[-1] == "done"

    # Lines are written by the server's log thread in the order they were logged: once the line of a last
    # request is in the file, so is every line before it.
    async with httpx.AsyncClient(base_url=serve.url, timeout=120) as c:
        assert (await c.get("/v1/voices", headers={"X-Request-ID": "logs-written"})).status_code == 401

    async def written() -> bool:
        return '"logs-written"' in serve.log_text()

    await eventually(written, within=60)
    logs = serve.log_text()
    lines = [line for line in logs.splitlines() if line.strip()]
    assert sum('"message": "request"' in line for line in lines) >= 7  # the requests above were logged
    for secret in (ADMIN_TOKEN, key, key.removeprefix("tts_"), new_key, new_key.removeprefix("tts_"), PEPPER,
                   ENCRYPTION_KEY):
        assert secret not in logs
    assert MARKER not in logs.lower()
    assert "RIFF" not in logs and not re.search(r"[A-Za-z0-9+/]{120,}", logs)  # no audio, raw or base64
