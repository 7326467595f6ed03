"""The realtime WebSocket for the bundled voice: time to first audio and barge-in latency.

Through a real Triton and `tts-gateway serve` (processes on loopback):
- time to first audio: `start` + one sentence + `flush` sent, to the first audio message of that
  context; compared, in the same run, with the engine's own first chunk in process (PiperEngine).
- barge-in: a long answer streaming; 300 ms after its first audio, `clear`; the time from sending
  `clear` to the last audio message of that context that arrives, and to `cleared`.
- the same barge-in through ElevenLabs' protocol (`/multi-stream-input`): `close_context` with no
  flush before it, to the last audio message of that context and to its `isFinal`.
- the same barge-in through Deepgram's protocol (`WS /v1/speak`): `Clear`, to the last binary audio
  frame of that answer and to `Cleared`.
- the same barge-in through Cartesia's protocol (`/tts/websocket`): `cancel`, to the last audio message
  of that context (bench/realtime_cartesia.py).
Rounds alternate between the two measurements so machine noise hits both alike; medians are quoted.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.realtime_cartesia import cartesia_barge_in
from bench.stack import running_stack

SENTENCES = [
    "Thanks for calling, how can I help you today?",
    "Your appointment is confirmed for Thursday afternoon.",
    "I can see two open orders on your account right now.",
    "Let me transfer you to a colleague who can help with that.",
]
LONG = " ".join(f"This is part {i} of a long answer that the caller will interrupt before it ends." for i in range(20))


def _engine_first_chunk(rounds: int) -> list[float]:
    from tts_engine.piper import PiperEngine

    engine = PiperEngine.bundled()
    out = []
    for i in range(rounds):
        started = time.perf_counter()
        next(iter(engine.synthesize_stream(SENTENCES[i % len(SENTENCES)])))
        out.append(time.perf_counter() - started)
    return out


async def _ws(base: str, key: str):  # noqa: ANN202 - a websockets connection
    import websockets

    return await websockets.connect(base.replace("http://", "ws://") + "/v1/synthesize/ws",
                                    additional_headers={"Authorization": f"Bearer {key}"}, max_size=None)


async def _first_audio(ws: Any, cid: str, text: str) -> float:
    started = time.perf_counter()
    await ws.send(json.dumps({"type": "start", "context_id": cid, "format": "pcm"}))
    await ws.send(json.dumps({"type": "text", "context_id": cid, "text": text}))
    await ws.send(json.dumps({"type": "flush", "context_id": cid}))
    first = None
    while True:
        event = json.loads(await ws.recv())
        if event.get("context_id") != cid:
            continue
        if event["type"] == "audio" and first is None:
            first = time.perf_counter() - started
        if event["type"] == "flushed":
            await ws.send(json.dumps({"type": "end", "context_id": cid}))
        if event["type"] == "done":
            assert first is not None
            return first


async def _barge_in(ws: Any, cid: str) -> tuple[float, float]:
    await ws.send(json.dumps({"type": "start", "context_id": cid, "format": "pcm"}))
    await ws.send(json.dumps({"type": "text", "context_id": cid, "text": LONG}))
    await ws.send(json.dumps({"type": "flush", "context_id": cid}))
    sent = None
    last_audio = None
    while True:
        event = json.loads(await ws.recv())
        if event.get("context_id") != cid:
            continue
        now = time.perf_counter()
        if event["type"] == "audio":
            if sent is None:
                await asyncio.sleep(0.3)
                sent = time.perf_counter()
                await ws.send(json.dumps({"type": "clear", "context_id": cid}))
            else:
                last_audio = now
        elif event["type"] == "cleared":
            assert sent is not None
            return ((last_audio or sent) - sent), now - sent


async def _eleven_barge_in(base: str, key: str, cid: str) -> tuple[float, float]:
    import websockets

    url = (base.replace("http://", "ws://") +
           "/v1/text-to-speech/en-US-generic/multi-stream-input?output_format=pcm_22050")
    async with websockets.connect(url, additional_headers={"xi-api-key": key}, max_size=None) as ws:
        await ws.send(json.dumps({"text": " ", "context_id": cid}))
        await ws.send(json.dumps({"text": LONG, "context_id": cid}))
        sent = None
        last_audio = None
        while True:
            event = json.loads(await ws.recv())
            if event.get("contextId") != cid:
                continue
            now = time.perf_counter()
            if event.get("isFinal") is True:
                assert sent is not None
                await ws.send(json.dumps({"close_socket": True}))
                return ((last_audio or sent) - sent), now - sent
            if event.get("audio"):
                if sent is None:
                    await asyncio.sleep(0.3)
                    sent = time.perf_counter()
                    await ws.send(json.dumps({"context_id": cid, "close_context": True}))
                else:
                    last_audio = now


async def _deepgram_barge_in(base: str, key: str) -> tuple[float, float]:
    import websockets

    url = base.replace("http://", "ws://") + "/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=22050"
    async with websockets.connect(url, additional_headers={"Authorization": f"Token {key}"}, max_size=None) as ws:
        await ws.send(json.dumps({"type": "Speak", "text": LONG}))
        await ws.send(json.dumps({"type": "Flush"}))
        sent = None
        last_audio = None
        while True:
            message = await ws.recv()
            now = time.perf_counter()
            if isinstance(message, bytes):
                if sent is None:
                    await asyncio.sleep(0.3)
                    sent = time.perf_counter()
                    await ws.send(json.dumps({"type": "Clear"}))
                else:
                    last_audio = now
            elif json.loads(message).get("type") == "Cleared":
                assert sent is not None
                await ws.send(json.dumps({"type": "Close"}))
                return ((last_audio or sent) - sent), now - sent


async def _run(base: str, admin: str, rounds: int) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        r = await c.post("/admin/v1/tenants", headers={"Authorization": f"Bearer {admin}"},
                         json={"name": "bench-realtime", "requests_per_minute": 100000, "requests_per_hour": 1000000,
                               "requests_per_day": 10000000})
        key = r.json()["api_key"]
    ws = await _ws(base, key)
    ttfa, last_audio, cleared, eleven_last, eleven_final = [], [], [], [], []
    deepgram_last, deepgram_cleared = [], []
    cartesia_last: list[float] = []
    try:
        await _first_audio(ws, "warm", "Warming up.")
        for i in range(rounds):
            ttfa.append(await _first_audio(ws, f"t{i}", f"{SENTENCES[i % len(SENTENCES)]} Round {i}."))
            after, ack = await _barge_in(ws, f"b{i}")
            last_audio.append(after)
            cleared.append(ack)
            after, ack = await _eleven_barge_in(base, key, f"e{i}")
            eleven_last.append(after)
            eleven_final.append(ack)
            after, ack = await _deepgram_barge_in(base, key)
            deepgram_last.append(after)
            deepgram_cleared.append(ack)
            cartesia_last.append(await cartesia_barge_in(base, key, f"c{i}", LONG))
    finally:
        await ws.close()
    return {"ttfa": ttfa, "barge_in_last_audio": last_audio, "barge_in_cleared": cleared,
            "eleven_close_last_audio": eleven_last, "eleven_close_final": eleven_final,
            "deepgram_clear_last_audio": deepgram_last, "deepgram_clear_cleared": deepgram_cleared,
            "cartesia_cancel_last_audio": cartesia_last}


def _ms(values: list[float], q: float = 0.5) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def run_realtime_stage(rounds: int, log=print) -> dict[str, Any]:
    engine = _engine_first_chunk(rounds)
    with running_stack("realtime", ["piper"], "1") as stack:
        measured = asyncio.run(_run(stack.base, stack.admin, rounds))
    result = {
        "rounds": rounds,
        "engine_first_chunk_ms": {"p50": _ms(engine), "p95": _ms(engine, 0.95)},
        "ws_ttfa_ms": {"p50": _ms(measured["ttfa"]), "p95": _ms(measured["ttfa"], 0.95)},
        "ws_ttfa_over_engine": round(_ms(measured["ttfa"]) / _ms(engine), 2),  # the p50s quoted beside it
        "barge_in_last_audio_ms": {"p50": _ms(measured["barge_in_last_audio"]),
                                   "max": _ms(measured["barge_in_last_audio"], 1.0)},
        "barge_in_cleared_ms": {"p50": _ms(measured["barge_in_cleared"]),
                                "max": _ms(measured["barge_in_cleared"], 1.0)},
        "eleven_close_last_audio_ms": {"p50": _ms(measured["eleven_close_last_audio"]),
                                       "max": _ms(measured["eleven_close_last_audio"], 1.0)},
        "eleven_close_final_ms": {"p50": _ms(measured["eleven_close_final"]),
                                  "max": _ms(measured["eleven_close_final"], 1.0)},
        "deepgram_clear_last_audio_ms": {"p50": _ms(measured["deepgram_clear_last_audio"]),
                                         "max": _ms(measured["deepgram_clear_last_audio"], 1.0)},
        "deepgram_clear_cleared_ms": {"p50": _ms(measured["deepgram_clear_cleared"]),
                                      "max": _ms(measured["deepgram_clear_cleared"], 1.0)},
        "cartesia_cancel_last_audio_ms": {"p50": _ms(measured["cartesia_cancel_last_audio"]),
                                          "max": _ms(measured["cartesia_cancel_last_audio"], 1.0)},
        "raw": measured | {"engine_first_chunk": engine},
    }
    log(f"  WS first audio p50 {result['ws_ttfa_ms']['p50']} ms (engine {result['engine_first_chunk_ms']['p50']} ms, "
        f"{result['ws_ttfa_over_engine']}x); barge-in: last audio {result['barge_in_last_audio_ms']['p50']} ms, "
        f"cleared {result['barge_in_cleared_ms']['p50']} ms after clear (p50); ElevenLabs close_context: last audio "
        f"{result['eleven_close_last_audio_ms']['p50']} ms, isFinal {result['eleven_close_final_ms']['p50']} ms")
    log(f"  Deepgram Clear: last audio {result['deepgram_clear_last_audio_ms']['p50']} ms, Cleared "
        f"{result['deepgram_clear_cleared_ms']['p50']} ms after Clear (p50); Cartesia cancel: last audio "
        f"{result['cartesia_cancel_last_audio_ms']['p50']} ms")
    return result


def realtime_markdown(result: dict[str, Any]) -> str:
    rows = [
        ("WebSocket time to first audio (p50 / p95)",
         f"{result['ws_ttfa_ms']['p50']} / {result['ws_ttfa_ms']['p95']} ms"),
        ("engine's own first chunk, in process (p50 / p95)",
         f"{result['engine_first_chunk_ms']['p50']} / {result['engine_first_chunk_ms']['p95']} ms"),
        ("WebSocket / engine (medians)", f"{result['ws_ttfa_over_engine']}x"),
        ("clear → last audio of that context (p50 / max)",
         f"{result['barge_in_last_audio_ms']['p50']} / {result['barge_in_last_audio_ms']['max']} ms"),
        ("clear → cleared (p50 / max)",
         f"{result['barge_in_cleared_ms']['p50']} / {result['barge_in_cleared_ms']['max']} ms"),
        ("ElevenLabs close_context → last audio of that context (p50 / max)",
         f"{result['eleven_close_last_audio_ms']['p50']} / {result['eleven_close_last_audio_ms']['max']} ms"),
        ("ElevenLabs close_context → isFinal (p50 / max)",
         f"{result['eleven_close_final_ms']['p50']} / {result['eleven_close_final_ms']['max']} ms"),
        ("Deepgram Clear → last audio of that answer (p50 / max)",
         f"{result['deepgram_clear_last_audio_ms']['p50']} / {result['deepgram_clear_last_audio_ms']['max']} ms"),
        ("Deepgram Clear → Cleared (p50 / max)",
         f"{result['deepgram_clear_cleared_ms']['p50']} / {result['deepgram_clear_cleared_ms']['max']} ms"),
        ("Cartesia cancel → last audio of that context (p50 / max)",
         f"{result['cartesia_cancel_last_audio_ms']['p50']} / {result['cartesia_cancel_last_audio_ms']['max']} ms"),
    ]
    table = "| measure | result |\n| --- | --- |\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    return (f"## Realtime WebSocket, bundled voice ({result['rounds']} rounds)\n\n{table}\n")
