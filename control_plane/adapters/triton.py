"""Triton over gRPC (synthesis streams, conditioning) and HTTP (readiness, metrics).

`stream_piper` / `stream_xtts` are async generators over a decoupled model's responses. The request
asks Triton for an empty final response (``triton_enable_empty_final_response``), so the end of a
request is seen exactly rather than guessed from the stream closing. Leaving the generator early
(the consumer stopped: client disconnect, error, cancellation) cancels the gRPC call, which Triton
turns into a cancelled request the model stops working on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc import aio as grpcclient
from tritonclient.grpc._infer_result import InferResult
from tritonclient.grpc._utils import _get_inference_request
from tritonclient.utils import InferenceServerException

from control_plane.settings import Settings

log = logging.getLogger(__name__)

MODEL_INFO_TTL_S = 5.0


class TritonError(Exception):
    """Triton answered with an error for this request (bad input, model failure)."""


class TritonUnavailable(TritonError):
    """Triton cannot be reached or the model is not ready; worth retrying later."""


class TritonTimeout(TritonError):
    """The call ran past TRITON_REQUEST_TIMEOUT_S."""


@dataclass(frozen=True)
class AudioChunk:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int


@dataclass(frozen=True)
class ModelInfo:
    model: str
    model_version: str
    test_weights: bool
    labels: dict[str, str]


@dataclass(frozen=True)
class Conditioning:
    gpt_cond_latent: np.ndarray  # float32 [32, D]
    speaker_embedding: np.ndarray  # float32 [512]


def _tensor(name: str, value: np.ndarray, dtype: str) -> InferInput:
    t = InferInput(name, list(value.shape), dtype)
    t.set_data_from_numpy(value)
    return t


def _map_rpc_error(exc: BaseException) -> TritonError:
    if isinstance(exc, grpc.aio.AioRpcError):
        code = exc.code()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
            return TritonUnavailable(f"Triton unavailable ({code.name})")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return TritonTimeout("Triton did not finish within the request timeout")
        if code == grpc.StatusCode.NOT_FOUND:
            return TritonUnavailable(exc.details() or "model not found")
        return TritonError(exc.details() or code.name)
    if isinstance(exc, InferenceServerException):
        msg = exc.message() or str(exc)
        status = str(exc.status() or "")
        if status.endswith(("UNAVAILABLE", "RESOURCE_EXHAUSTED")):
            return TritonUnavailable(f"Triton unavailable ({status.split('.')[-1]})")
        if status.endswith("DEADLINE_EXCEEDED"):
            return TritonTimeout("Triton did not finish within the request timeout")
        if "unavailable" in msg.lower() or "not ready" in msg.lower() or "unknown model" in msg.lower():
            return TritonUnavailable(msg)
        return TritonError(msg)
    return TritonError(str(exc))


class TritonClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout_s = float(settings.triton_request_timeout_s)
        self._grpc: grpcclient.InferenceServerClient | None = None
        self._http = httpx.AsyncClient(base_url=settings.triton_http_url.rstrip("/"), timeout=5.0)
        self._info_cache: tuple[float, dict[str, ModelInfo]] | None = None
        self._info_lock = asyncio.Lock()

    @property
    def grpc(self) -> grpcclient.InferenceServerClient:
        # Created lazily: the aio channel binds to the running event loop.
        if self._grpc is None:
            self._grpc = grpcclient.InferenceServerClient(self.settings.triton_grpc_url)
        return self._grpc

    async def close(self) -> None:
        if self._grpc is not None:
            await self._grpc.close()
            self._grpc = None
        await self._http.aclose()

    # --- health -----------------------------------------------------------------------------
    async def server_ready(self) -> bool:
        try:
            r = await self._http.get("/v2/health/ready")
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    async def model_ready(self, name: str) -> bool:
        try:
            r = await self._http.get(f"/v2/models/{name}/ready")
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    async def model_info(self, refresh: bool = False) -> dict[str, ModelInfo]:
        """`tts_model_info` gauges from Triton's metrics endpoint, keyed by model; cached briefly."""
        async with self._info_lock:
            now = time.monotonic()
            if not refresh and self._info_cache and now - self._info_cache[0] < MODEL_INFO_TTL_S:
                return self._info_cache[1]
            try:
                async with httpx.AsyncClient(timeout=5.0) as http:
                    r = await http.get(self.settings.triton_metrics_url)
                r.raise_for_status()
                info = parse_model_info(r.text)
            except httpx.HTTPError:
                info = {}
            self._info_cache = (now, info)
            return info

    # --- conditioning -----------------------------------------------------------------------
    async def condition(self, audio: np.ndarray, sample_rate: int) -> Conditioning:
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(1, -1)
        inputs = [
            _tensor("AUDIO", audio, "FP32"),
            _tensor("SAMPLE_RATE", np.array([[sample_rate]], dtype=np.int32), "INT32"),
        ]
        outputs = [InferRequestedOutput("GPT_COND_LATENT"), InferRequestedOutput("SPEAKER_EMBEDDING")]
        try:
            result = await self.grpc.infer(
                "xtts_condition", inputs, outputs=outputs, client_timeout=self.timeout_s
            )
        except (grpc.aio.AioRpcError, InferenceServerException) as exc:
            raise _map_rpc_error(exc) from None
        latent = result.as_numpy("GPT_COND_LATENT")
        emb = result.as_numpy("SPEAKER_EMBEDDING")
        if latent is None or emb is None:
            raise TritonError("xtts_condition returned no outputs")
        return Conditioning(
            gpt_cond_latent=np.ascontiguousarray(latent.reshape(latent.shape[-2:]), dtype=np.float32),
            speaker_embedding=np.ascontiguousarray(emb.reshape(-1), dtype=np.float32),
        )

    # --- synthesis streams ------------------------------------------------------------------
    def stream_piper(self, text: str, *, speed: float = 1.0, request_id: str = "") -> AsyncIterator[AudioChunk]:
        inputs = [
            _tensor("TEXT", np.array([text.encode()], dtype=np.object_), "BYTES"),
            _tensor("SPEED", np.array([speed], dtype=np.float32), "FP32"),
        ]
        return self._stream("piper", inputs, request_id)

    def stream_xtts(
        self,
        text: str,
        language: str,
        gpt_cond_latent: np.ndarray,
        speaker_embedding: np.ndarray,
        *,
        speed: float = 1.0,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float | None = None,
        seed: int | None = None,
        do_sample: bool | None = None,
        max_new_tokens: int | None = None,
        first_chunk_tokens: int | None = None,
        request_id: str = "",
    ) -> AsyncIterator[AudioChunk]:
        inputs = [
            _tensor("TEXT", np.array([text.encode()], dtype=np.object_), "BYTES"),
            _tensor("LANGUAGE", np.array([language.encode()], dtype=np.object_), "BYTES"),
            _tensor("GPT_COND_LATENT", np.ascontiguousarray(gpt_cond_latent, dtype=np.float32), "FP32"),
            _tensor("SPEAKER_EMBEDDING", np.ascontiguousarray(speaker_embedding, dtype=np.float32).reshape(-1), "FP32"),
            _tensor("SPEED", np.array([speed], dtype=np.float32), "FP32"),
        ]
        optional: list[tuple[str, Any, Any, str]] = [
            ("TEMPERATURE", temperature, np.float32, "FP32"),
            ("TOP_K", top_k, np.int32, "INT32"),
            ("TOP_P", top_p, np.float32, "FP32"),
            ("REPETITION_PENALTY", repetition_penalty, np.float32, "FP32"),
            ("SEED", seed, np.int64, "INT64"),
            ("DO_SAMPLE", do_sample, np.bool_, "BOOL"),
            ("MAX_NEW_TOKENS", max_new_tokens, np.int32, "INT32"),
            ("FIRST_CHUNK_TOKENS", first_chunk_tokens, np.int32, "INT32"),
        ]
        for name, value, np_type, dtype in optional:
            if value is not None:
                inputs.append(_tensor(name, np.array([value], dtype=np_type), dtype))
        return self._stream("xtts", inputs, request_id)

    async def _stream(self, model: str, inputs: list[InferInput], request_id: str) -> AsyncIterator[AudioChunk]:
        request = _get_inference_request(
            model_name=model,
            inputs=inputs,
            model_version="",
            request_id=request_id,
            outputs=None,
            sequence_id=0,
            sequence_start=False,
            sequence_end=False,
            priority=0,
            timeout=None,
            parameters=None,
        )
        request.parameters["triton_enable_empty_final_response"].bool_param = True
        finished = asyncio.Event()

        async def requests() -> AsyncIterator[Any]:
            yield request
            # Keep our half of the stream open until the last response: closing it early would end the call.
            await finished.wait()

        call = self.grpc._client_stub.ModelStreamInfer(
            requests(), metadata=None, timeout=self.timeout_s
        )
        done = False
        try:
            async for response in call:
                if response.error_message:
                    raise _map_rpc_error(InferenceServerException(msg=response.error_message))
                infer = response.infer_response
                final = infer.parameters["triton_final_response"].bool_param if "triton_final_response" in (
                    infer.parameters
                ) else False
                if infer.outputs:
                    result = InferResult(infer)
                    audio = result.as_numpy("AUDIO")
                    rate = result.as_numpy("SAMPLE_RATE")
                    if audio is not None and audio.size:
                        yield AudioChunk(np.asarray(audio, dtype=np.float32).reshape(-1), int(rate.reshape(-1)[0]))
                if final:
                    done = True
                    break
            if not done:
                raise TritonError(f"{model} stream ended without a final response")
        except grpc.aio.AioRpcError as exc:
            raise _map_rpc_error(exc) from None
        finally:
            finished.set()
            if not done:
                call.cancel()  # the consumer left early or it failed: Triton cancels the request


def parse_model_info(metrics_text: str) -> dict[str, ModelInfo]:
    info: dict[str, ModelInfo] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "tts_model_info":
            continue
        for sample in family.samples:
            labels = dict(sample.labels)
            model = labels.get("model")
            if not model:
                continue
            info[model] = ModelInfo(
                model=model,
                model_version=labels.get("model_version", ""),
                test_weights=labels.get("test_weights", "false").lower() == "true",
                labels=labels,
            )
    return info
