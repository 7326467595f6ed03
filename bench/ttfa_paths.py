"""The three ways `bench ttfa` reaches the first audio of one sentence, each timed from the caller's side.

- the engine in process (PiperEngine / XttsEngine on the same weights), first chunk;
- Triton over a gRPC stream, straight to the model, first response carrying audio;
- `POST /v1/synthesize/stream` through the gateway, first body byte, with the gateway's own stage
  marks (TTS_STAGE_TIMING) read back from its log by request id.

Triton's view of each request comes with it: the model statistics (`/v2/models/M/stats`: queue,
compute input/infer/output; for a decoupled Python model "infer" is the execute() hand-off) and
the model's own arrival-to-first-chunk histogram (tts_M_time_to_first_chunk_seconds), whose
buffered updates reach the metrics endpoint about once a second.
"""

from __future__ import annotations

import json
import queue
import re
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

STATS_PARTS = ("queue", "compute_input", "compute_infer", "compute_output")
METRIC_WAIT_S = 3.0  # the model flushes its metrics once a second


def tensor(name: str, array: np.ndarray, dtype: str) -> Any:
    import tritonclient.grpc as grpcclient

    item = grpcclient.InferInput(name, list(array.shape), dtype)
    item.set_data_from_numpy(array)
    return item


def direct_first(client: Any, model: str, inputs: list[Any]) -> float:
    """Seconds to the first response with audio, on a connected client; reads the stream to its end."""
    responses: queue.Queue = queue.Queue()
    first = None
    start = time.monotonic()
    client.start_stream(callback=lambda result=None, error=None: responses.put((result, error)))
    try:
        client.async_stream_infer(model, inputs, request_id=uuid.uuid4().hex, enable_empty_final_response=True)
        while True:
            result, error = responses.get(timeout=120)
            if error is not None:
                raise RuntimeError(f"triton: {error}")
            response = result.get_response()
            if first is None and any(out.name == "AUDIO" for out in response.outputs):
                audio = result.as_numpy("AUDIO")
                if audio is not None and audio.size:
                    first = time.monotonic() - start
            if response.parameters["triton_final_response"].bool_param:
                break
    finally:
        client.stop_stream()
    if first is None:
        raise RuntimeError(f"{model} sent no audio")
    return first


def gateway_first(client: Any, url: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[float, float, str]:
    """(monotonic send time, seconds to the first body byte, request id) of one streamed synthesis."""
    rid = "ttfa-" + uuid.uuid4().hex[:16]
    sent = time.monotonic()
    first = None
    with client.stream("POST", url, json=body, headers={**headers, "X-Request-ID": rid}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"gateway answered {response.status_code}: {response.read()[:300]!r}")
        if response.headers.get("x-cache", "").upper() != "MISS":
            raise RuntimeError("a bench text was served from the cache")
        for piece in response.iter_raw():
            if piece and first is None:
                first = time.monotonic() - sent
    if first is None:
        raise RuntimeError("the gateway streamed no audio")
    return sent, first, rid


def model_stats(http_url: str, model: str) -> dict[str, tuple[int, int]]:
    """Triton's cumulative (count, ns) per inference stage of `model`."""
    import httpx

    stats = httpx.get(f"{http_url}/v2/models/{model}/stats", timeout=5).json()["model_stats"][0]["inference_stats"]
    return {part: (int(stats[part]["count"]), int(stats[part]["ns"])) for part in STATS_PARTS}


def stats_delta_ms(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Per-request milliseconds of each stage between two snapshots (their mean when several ran)."""
    out = {}
    for part in STATS_PARTS:
        count = after[part][0] - before[part][0]
        out[part] = round((after[part][1] - before[part][1]) / count / 1e6, 3) if count > 0 else float("nan")
    return out


def first_chunk_histogram(metrics_url: str, model: str) -> tuple[float, int]:
    """(sum s, count) of the model's own arrival-to-first-chunk histogram."""
    import httpx

    text = httpx.get(metrics_url, timeout=5).text
    name = f"tts_{model}_time_to_first_chunk_seconds"
    total = re.search(rf"^{name}_sum\{{[^}}]*\}} ([0-9.eE+-]+)$", text, re.M)
    count = re.search(rf"^{name}_count\{{[^}}]*\}} ([0-9.eE+-]+)$", text, re.M)
    return (float(total.group(1)) if total else 0.0), (int(float(count.group(1))) if count else 0)


def in_model_first_ms(metrics_url: str, model: str, before: tuple[float, int]) -> float:
    """The model's own first-chunk time of the one request since `before`, once its metrics are flushed."""
    deadline = time.monotonic() + METRIC_WAIT_S
    while time.monotonic() < deadline:
        total, count = first_chunk_histogram(metrics_url, model)
        if count > before[1]:
            return round((total - before[0]) / (count - before[1]) * 1000, 3)
        time.sleep(0.1)
    return float("nan")


def stage_lines(log_path: Path) -> dict[str, dict[str, Any]]:
    """The gateway's `stages` log lines by request id."""
    found = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if '"tts_gateway.stages"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found[record.get("request_id", "")] = record
    return found


_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """0..99 in words."""
    if n < 20:
        return _UNITS[n]
    tens, unit = divmod(n % 100, 10)
    return _TENS[tens] + (f" {_UNITS[unit]}" if unit else "")


def fresh_text(i: int) -> str:
    """One short sentence per round (the same for the three paths), never a cache hit, of one shape. The
    number is written in digits as a caller would send it: the gateway's normalisation writes it out (on
    its hot path), the engines in process and behind a direct call read the digits themselves."""
    return f"Hello, how can I help you today, caller {10 + i % 90}?"
