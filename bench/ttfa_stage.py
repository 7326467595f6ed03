"""`bench ttfa`: where the time to first audio goes, for the bundled voice and the tiny XTTS.

One real Triton (piper, xtts, xtts_condition) and one `tts-gateway serve` with TTS_STAGE_TIMING on.
Each round takes one fresh sentence (never cached) through three paths in rotating order, so
machine noise hits them alike: the engine in this process (the same voice / the same artifact,
one torch thread as Triton's), Triton's gRPC stream straight to the model, and the gateway's
`POST /v1/synthesize/stream`. For every Triton request the model's statistics and its own
first-chunk time are read too, and for every gateway request its stage marks. Medians are quoted;
ratios divide medians of the same run.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench import ttfa_paths as P
from bench.errors import StageUnavailable
from bench.results import REPO_ROOT
from bench.stack import Stack, running_stack
from bench.ttfa_report import summarise

XTTS_TOKENS = 16  # the tiny artifact's tokens per sentence (0.7 s): enough for a first chunk and a second
LIMITS = {"requests_per_minute": 1_000_000, "requests_per_hour": 10_000_000, "requests_per_day": 100_000_000,
          "monthly_characters": 10**11}
REFERENCE = ("The quick brown fox jumps over the lazy dog. A reference recording should be clear and steady. "
             "Speak naturally, at an even pace.")


class PiperPaths:
    model = "piper"
    engine: Any

    def __init__(self) -> None:
        from tts_engine.piper import PiperEngine

        self.engine = PiperEngine.bundled()
        self.voice_id: str | None = None

    def in_process(self, text: str) -> float:
        started = time.monotonic()
        chunks = self.engine.synthesize_timed(text)  # what the Triton model runs (words included)
        next(chunks)
        first = time.monotonic() - started
        for _ in chunks:
            pass
        return first

    def inputs(self, text: str) -> list[Any]:
        return [P.tensor("TEXT", np.array([text.encode()], dtype=np.object_), "BYTES"),
                P.tensor("SPEED", np.array([1.0], dtype=np.float32), "FP32")]

    def body(self, text: str) -> dict[str, Any]:
        return {"text": text, "format": "pcm", **({"voice_id": self.voice_id} if self.voice_id else {})}

    def close(self) -> None:
        pass


class XttsPaths(PiperPaths):
    model = "xtts"

    def __init__(self, artifact: Path, reference: np.ndarray, rate: int) -> None:
        import torch

        from tts_engine.xtts.engine import XttsEngine

        torch.set_num_threads(1)  # Triton's xtts runs with OMP_NUM_THREADS=1 here
        self.engine = XttsEngine.from_artifact(artifact, device="cpu", max_batch_size=4)
        self.engine.start()
        self.cond, self.speaker = self.engine.condition(reference, rate)
        self.voice_id = None

    def in_process(self, text: str) -> float:
        from tts_engine.xtts.types import SynthesisParams

        started = time.monotonic()
        stream = self.engine.submit(text, "en", self.cond, self.speaker, SynthesisParams())
        next(stream)
        first = time.monotonic() - started
        for _ in stream:
            pass
        return first

    def inputs(self, text: str) -> list[Any]:
        return [P.tensor("TEXT", np.array([text.encode()], dtype=np.object_), "BYTES"),
                P.tensor("LANGUAGE", np.array([b"en"], dtype=np.object_), "BYTES"),
                P.tensor("GPT_COND_LATENT", np.ascontiguousarray(self.cond, dtype=np.float32), "FP32"),
                P.tensor("SPEAKER_EMBEDDING", np.ascontiguousarray(self.speaker, dtype=np.float32).reshape(-1),
                         "FP32"),
                P.tensor("SPEED", np.array([1.0], dtype=np.float32), "FP32")]

    def close(self) -> None:
        self.engine.stop()


def _rotations(i: int) -> list[str]:
    order = ["engine", "direct", "gateway"]
    k = i % len(order)
    return order[k:] + order[:k]


def _measure(paths: PiperPaths, stack: Stack, triton: Any, http: Any, headers: dict[str, str], rounds: int,
             log) -> dict[str, Any]:
    url = f"{stack.base}/v1/synthesize/stream"
    for i in range(2):  # warm-up: sessions, first connection, first gRPC stream
        paths.in_process(f"Warming up number {P.number_words(i)}.")
        P.direct_first(triton, paths.model, paths.inputs(f"Warming up direct {P.number_words(i)}."))
        P.gateway_first(http, url, headers, paths.body(f"Warming up gateway {P.number_words(i)}."))
    raw: dict[str, list[Any]] = {"engine": [], "direct": [], "gateway": []}
    for i in range(rounds):
        text = P.fresh_text(i)
        for path in _rotations(i):
            if path == "engine":
                raw["engine"].append(paths.in_process(text))
                continue
            stats0 = P.model_stats(stack.http_url, paths.model)
            hist0 = P.first_chunk_histogram(stack.metrics_url, paths.model)
            if path == "direct":
                row: dict[str, Any] = {"first_s": P.direct_first(triton, paths.model, paths.inputs(text))}
            else:
                sent, first, rid = P.gateway_first(http, url, headers, paths.body(text))
                row = {"first_s": first, "sent_monotonic": sent, "request_id": rid}
            row["in_model_first_ms"] = P.in_model_first_ms(stack.metrics_url, paths.model, hist0)
            row["triton_stats_ms"] = P.stats_delta_ms(stats0, P.model_stats(stack.http_url, paths.model))
            raw[path].append(row)
        log(f"  {paths.model} round {i + 1}/{rounds}: engine {raw['engine'][-1] * 1000:.0f} ms, direct "
            f"{raw['direct'][-1]['first_s'] * 1000:.0f} ms, gateway {raw['gateway'][-1]['first_s'] * 1000:.0f} ms")
    return raw


def _reference_wav(piper: PiperPaths) -> tuple[np.ndarray, int, bytes]:
    import soundfile as sf

    audio = piper.engine.synthesize(REFERENCE)
    buf = io.BytesIO()
    sf.write(buf, audio, piper.engine.sample_rate, format="WAV", subtype="PCM_16")
    return audio, piper.engine.sample_rate, buf.getvalue()


def _clone(http: Any, base: str, headers: dict[str, str], wav: bytes) -> str:
    made = http.post(f"{base}/v1/voices/upload", headers=headers, data={"name": "ttfa", "language": "en"},
                     files={"audio": ("ref.wav", wav, "audio/wav")})
    if made.status_code != 201:
        raise StageUnavailable(f"cannot clone the voice: {made.status_code} {made.text[:200]}")
    return str(made.json()["voice_id"])


def _artifact() -> Path:
    from export.xtts import export_tiny

    artifact = REPO_ROOT / ".cache" / "models" / f"xtts-tiny-{XTTS_TOKENS}"
    if not (artifact / "manifest.json").is_file():
        export_tiny(artifact, seed=0, max_audio_tokens=XTTS_TOKENS)
    return artifact


def _sides(engines: list[str], stack: Stack, http: Any, headers: dict[str, str],
           artifact: Path | None) -> Iterator[PiperPaths]:
    piper = PiperPaths()
    if "piper" in engines:
        yield piper
    if "xtts" in engines and artifact is not None:
        audio, rate, wav = _reference_wav(piper)
        xtts = XttsPaths(artifact, audio, rate)
        try:
            xtts.voice_id = _clone(http, stack.base, headers, wav)
            yield xtts
        finally:
            xtts.close()


def run_ttfa_stage(engines: list[str], rounds: int, api_env: dict[str, str] | None = None,
                   triton_env: dict[str, str] | None = None, log=print) -> dict[str, Any]:
    import httpx
    import tritonclient.grpc as grpcclient

    models = ["piper"]
    artifact = None
    tenv = dict(triton_env or {})
    if "xtts" in engines:
        artifact = _artifact()
        models += ["xtts", "xtts_condition"]
        tenv.setdefault("XTTS_MODEL_PATH", str(artifact))
    aenv = {"TTS_STAGE_TIMING": "true", "LOG_LEVEL": "INFO", **(api_env or {})}
    results: dict[str, Any] = {"rounds": rounds, "api_env": api_env or {}, "triton_env": triton_env or {},
                               "engines": {}}
    with running_stack("ttfa", models, "1", tenv, aenv) as stack:
        assert stack.api_log is not None
        triton = grpcclient.InferenceServerClient(stack.grpc_url)
        try:
            with httpx.Client(timeout=120) as http:
                made = http.post(f"{stack.base}/admin/v1/tenants", json={"name": "bench-ttfa", **LIMITS},
                                 headers={"Authorization": f"Bearer {stack.admin}"})
                if made.status_code >= 300:
                    raise StageUnavailable(f"cannot create a tenant: {made.status_code} {made.text[:300]}")
                headers = {"Authorization": f"Bearer {made.json()['api_key']}"}
                for paths in _sides(engines, stack, http, headers, artifact):
                    raw = _measure(paths, stack, triton, http, headers, rounds, log)
                    results["engines"][paths.model] = summarise(raw, P.stage_lines(stack.api_log))
        finally:
            triton.close()
    return results
