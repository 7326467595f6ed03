"""Barge-in through Cartesia's socket (`WS /tts/websocket`), for `python -m bench realtime`.

A long answer streams in one context (whole sentences, `max_buffer_delay_ms: 0`, as LiveKit and Pipecat
send them); 300 ms after its first audio the client sends `cancel`. Cartesia acknowledges nothing, so a
second, short context follows at once on the same socket: the socket is ordered, so once that context's
first message arrives nothing more of the cancelled one can. Measured at the client: `cancel` sent → the
last audio message of the cancelled context that arrived (0 when none did).
"""

from __future__ import annotations

import asyncio
import json
import time


def _message(cid: str, text: str, more: bool) -> str:
    return json.dumps({"context_id": cid, "model_id": "sonic-3", "transcript": text, "continue": more,
                       "voice": {"mode": "id", "id": "en-US-generic"}, "max_buffer_delay_ms": 0,
                       "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 22050}})


async def cartesia_barge_in(base: str, key: str, cid: str, text: str) -> float:
    import websockets

    url = base.replace("http://", "ws://") + "/tts/websocket?cartesia_version=2026-03-01"
    async with websockets.connect(url, additional_headers={"X-API-Key": key}, max_size=None) as ws:
        await ws.send(_message(cid, text, True))
        sent = None
        last_audio = None
        while True:
            event = json.loads(await ws.recv())
            now = time.perf_counter()
            if event.get("context_id") == f"{cid}-next":
                assert sent is not None
                return (last_audio or sent) - sent
            if event.get("context_id") != cid or event.get("type") != "chunk":
                continue
            if sent is None:
                await asyncio.sleep(0.3)
                sent = time.perf_counter()
                await ws.send(json.dumps({"context_id": cid, "cancel": True}))
                await ws.send(_message(f"{cid}-next", "Sure.", False))
            else:
                last_audio = now
