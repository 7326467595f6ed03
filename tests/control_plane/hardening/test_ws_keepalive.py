"""A WebSocket streaming for a long time keeps answering pings on a loaded machine.

`tts-gateway serve` as a real process pings every second and gives a client one second to answer:
a server that stopped reading its socket while it sends audio (so the client's pongs sit unread)
would close the stream with 1011 "keepalive ping timeout" within seconds. Two CPU-bound processes
run beside it for the whole stream.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest
import websockets
from fault_helpers import ServeProcess
from gateway_helpers import ADMIN_TOKEN

TEXT = " ".join(f"Sentence {i} of a long answer, streamed while the machine is busy." for i in range(16))


@pytest.fixture
def serve(triton_piper, tmp_path):
    server = ServeProcess(triton_piper, tmp_path, WS_PING_INTERVAL_S="1", WS_PING_TIMEOUT_S="1").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def busy_machine():
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait(10)


async def test_long_stream_on_a_busy_machine_keeps_answering_pings(serve, busy_machine):
    async with httpx.AsyncClient(base_url=serve, timeout=60) as c:
        r = await c.post("/admin/v1/tenants", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                         json={"name": "keepalive"})
        key = r.json()["api_key"]
    audio, events = 0, []
    url = serve.replace("http://", "ws://") + "/v1/synthesize/ws"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        await ws.send(json.dumps({"type": "start", "format": "pcm"}))
        # All the text at once: seconds of audio to send before the client's next message is due,
        # during which only a socket that is read throughout sees the client's pongs.
        await ws.send(json.dumps({"type": "text", "text": TEXT}))
        await ws.send(json.dumps({"type": "end"}))
        async with asyncio.timeout(300):
            async for message in ws:
                if isinstance(message, bytes):
                    audio += len(message)
                else:
                    events.append(json.loads(message))
        assert ws.close_code == 1000, (ws.close_code, ws.close_reason)
    assert events[-1]["type"] == "done", events[-3:]
    # `audio_seconds` is rounded to 0.1 ms (2.2 samples at 22.05 kHz)
    assert events[-1]["audio_seconds"] > 45 and abs(audio / 2 - events[-1]["audio_seconds"] * 22050) <= 3
