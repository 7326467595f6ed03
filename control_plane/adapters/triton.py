"""Triton over gRPC (synthesis streams, conditioning) and HTTP (readiness, metrics).

`stream_piper` / `stream_xtts` are async generators over a decoupled model's responses. The request
asks Triton for an empty final response (``triton_enable_empty_final_response``), so the end of a
request is seen exactly rather than guessed from the stream closing.

Stopping follows the models' cancel protocol (model_repository/README.md): each request carries a
fresh request id, and leaving the generator early (client disconnect, error, cancellation) sends
the same model a request holding only ``CANCEL_REQUEST_ID`` = that id. gRPC calls are never
cancelled: on Triton 2.51 a cancelled stream plus ``is_cancelled()`` crashes the server, and a
cancel racing a final response can wedge a model. Every call is ended in order instead: after its
final response the client half-closes and waits for the status.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Coroutine
from typing import Any

import grpc
import httpx
import numpy as np
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc import aio as grpcclient
from tritonclient.grpc._infer_result import InferResult
from tritonclient.utils import InferenceServerException

from control_plane import stage_timing
from control_plane.adapters.triton_calls import (
    OneRequestCall,
    infer_request,
    is_final,
    map_rpc_error,
    tensor,
    words_of,
)
from control_plane.adapters.triton_types import (
    AudioChunk,
    Conditioning,
    ModelInfo,
    TritonError,
    TritonTimeout,
    TritonUnavailable,
    parse_model_info,
)
from control_plane.settings import Settings
from tts_contract.fairness import Share

__all__ = ["AudioChunk", "Conditioning", "ModelInfo", "TritonClient", "TritonError", "TritonTimeout",
           "TritonUnavailable", "parse_model_info"]

log = logging.getLogger(__name__)

MODEL_INFO_TTL_S = 5.0
CANCEL_TIMEOUT_S = 10.0  # deadline of a cancel request's own call
CANCEL_WAIT_S = 5.0  # how long an early stop waits for the model to acknowledge the cancel
CALL_FINISH_WAIT_S = 5.0  # how long a finished stream waits for its call's status
CLOSE_WAIT_S = 15.0  # how long close() lets calls still ending finish before closing the channel

# gRPC channel: a restarted Triton is found again within ~2 s (gRPC's default backoff grows to
# 120 s between reconnection attempts, so a 30 s outage could keep synthesis down for minutes);
# while it is unreachable calls fail at once (no wait-for-ready) and the API answers 503.
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
]  # no client keepalive pings: Triton's server refuses frequent ones (GOAWAY "too_many_pings")


class TritonClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout_s = float(settings.triton_request_timeout_s)
        self._grpc: grpcclient.InferenceServerClient | None = None
        self._http = httpx.AsyncClient(base_url=settings.triton_http_url.rstrip("/"), timeout=5.0)
        self._info_cache: tuple[float, dict[str, ModelInfo]] | None = None
        self._info_lock = asyncio.Lock()
        self._info_refresh: asyncio.Task[None] | None = None  # the background re-read of a stale model info
        self._background: set[asyncio.Task[None]] = set()  # calls still ending (cancels, drains)

    @property
    def grpc(self) -> grpcclient.InferenceServerClient:
        # Created lazily: the aio channel binds to the running event loop.
        if self._grpc is None:
            self._grpc = grpcclient.InferenceServerClient(self.settings.triton_grpc_url, channel_args=CHANNEL_ARGS)
        return self._grpc

    async def close(self) -> None:
        if self._background:
            # Let cancel requests and stopped streams end in order; closing the channel cancels them.
            await asyncio.wait(set(self._background), timeout=CLOSE_WAIT_S)
        if self._grpc is not None:
            await self._grpc.close()
            self._grpc = None
        await self._http.aclose()

    # --- health -----------------------------------------------------------------------------
    async def server_ready(self) -> bool:
        """Triton answers ready over HTTP, and the gRPC channel synthesis uses is not waiting out a
        reconnection backoff: right after Triton's return, calls fail at once until the channel's next
        attempt (at most max_reconnect_backoff_ms later), so the replica is not ready until then."""
        if self.grpc_reconnecting():
            return False
        try:
            r = await self._http.get("/v2/health/ready")
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    def grpc_reconnecting(self) -> bool:
        """The gRPC channel's last connection attempt failed (a call now would fail at once)."""
        channel = self.grpc._channel  # tritonclient keeps its grpc.aio channel private
        return channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.TRANSIENT_FAILURE

    async def model_ready(self, name: str) -> bool:
        try:
            r = await self._http.get(f"/v2/models/{name}/ready")
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    async def model_info(self, refresh: bool = False) -> dict[str, ModelInfo]:
        """`tts_model_info` gauges from Triton's metrics endpoint, keyed by model; cached briefly.

        Every synthesis needs the model versions (they are part of the cache key), and reading and
        parsing Triton's whole metrics page costs tens of milliseconds on a busy machine: once the
        cache is stale its value is still served while one background task reads it again, so no
        request waits for the page. With nothing cached yet (or only a failed read), or `refresh`,
        the read is awaited.
        """
        now = time.monotonic()
        cached = self._info_cache
        if not refresh and cached and cached[1]:
            if now - cached[0] >= MODEL_INFO_TTL_S and (self._info_refresh is None or self._info_refresh.done()):
                self._info_refresh = self._spawn(self._refresh_info())
            return cached[1]
        async with self._info_lock:
            cached = self._info_cache
            if not refresh and cached and cached[1] and time.monotonic() - cached[0] < MODEL_INFO_TTL_S:
                return cached[1]  # read by the caller that held the lock before us
            return await self._read_info()

    async def _refresh_info(self) -> None:
        async with self._info_lock:
            await self._read_info(keep_on_failure=True)  # a failed re-read keeps the versions last seen

    async def _read_info(self, keep_on_failure: bool = False) -> dict[str, ModelInfo]:
        read_at = time.monotonic()
        try:
            r = await self._http.get(self.settings.triton_metrics_url)
            r.raise_for_status()
            info = await asyncio.to_thread(parse_model_info, r.text)  # a large exposition: off the loop
        except httpx.HTTPError:
            if keep_on_failure and self._info_cache:
                return self._info_cache[1]
            info = {}
        self._info_cache = (read_at, info)
        return info

    # --- conditioning -----------------------------------------------------------------------
    async def condition(self, audio: np.ndarray, sample_rate: int) -> Conditioning:
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(1, -1)
        inputs = [
            tensor("AUDIO", audio, "FP32"),
            tensor("SAMPLE_RATE", np.array([[sample_rate]], dtype=np.int32), "INT32"),
        ]
        outputs = [InferRequestedOutput("GPT_COND_LATENT"), InferRequestedOutput("SPEAKER_EMBEDDING")]
        try:
            result = await self.grpc.infer(
                "xtts_condition", inputs, outputs=outputs, client_timeout=self.timeout_s
            )
        except (grpc.aio.AioRpcError, InferenceServerException) as exc:
            raise map_rpc_error(exc) from None
        latent = result.as_numpy("GPT_COND_LATENT")
        emb = result.as_numpy("SPEAKER_EMBEDDING")
        if latent is None or emb is None:
            raise TritonError("xtts_condition returned no outputs")
        return Conditioning(
            gpt_cond_latent=np.ascontiguousarray(latent.reshape(latent.shape[-2:]), dtype=np.float32),
            speaker_embedding=np.ascontiguousarray(emb.reshape(-1), dtype=np.float32),
        )

    # --- synthesis streams ------------------------------------------------------------------
    def stream_piper(self, text: str, *, speed: float = 1.0, request_id: str = "",
                     share: Share | None = None) -> AsyncGenerator[AudioChunk, None]:
        inputs = [
            tensor("TEXT", np.array([text.encode()], dtype=np.object_), "BYTES"),
            tensor("SPEED", np.array([speed], dtype=np.float32), "FP32"),
        ]
        return self._stream("piper", inputs, request_id, share)

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
        share: Share | None = None,
    ) -> AsyncGenerator[AudioChunk, None]:
        inputs = [
            tensor("TEXT", np.array([text.encode()], dtype=np.object_), "BYTES"),
            tensor("LANGUAGE", np.array([language.encode()], dtype=np.object_), "BYTES"),
            tensor("GPT_COND_LATENT", np.ascontiguousarray(gpt_cond_latent, dtype=np.float32), "FP32"),
            tensor("SPEAKER_EMBEDDING", np.ascontiguousarray(speaker_embedding, dtype=np.float32).reshape(-1), "FP32"),
            tensor("SPEED", np.array([speed], dtype=np.float32), "FP32"),
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
                inputs.append(tensor(name, np.array([value], dtype=np_type), dtype))
        return self._stream("xtts", inputs, request_id, share)

    async def _stream(self, model: str, inputs: list[InferInput], request_id: str = "",
                      share: Share | None = None) -> AsyncGenerator[AudioChunk, None]:
        # Every Triton request gets its own id (a caller's request id is shared by its segments and
        # chosen by clients): it is what a cancel request names.
        triton_id = uuid.uuid4().hex
        call = OneRequestCall(self.grpc, infer_request(model, inputs, triton_id, share), self.timeout_s)
        ended = False  # the request's final response arrived or the call is over: nothing left to stop
        stage_timing.mark("engine_sent")
        try:
            while True:
                response = await call.read()
                if response is None:
                    ended = True
                    raise TritonError(f"{model} stream ended without a final response")
                if response.error_message:
                    ended = True  # the models send an error as the request's final response
                    raise map_rpc_error(InferenceServerException(msg=response.error_message))
                infer = response.infer_response
                ended = is_final(infer)
                if infer.outputs:
                    result = InferResult(infer)
                    audio = result.as_numpy("AUDIO")
                    rate = result.as_numpy("SAMPLE_RATE")
                    if audio is not None and audio.size:
                        stage_timing.mark("engine_first")
                        yield AudioChunk(np.asarray(audio, dtype=np.float32).reshape(-1), int(rate.reshape(-1)[0]),
                                         words_of(result))
                if ended:
                    break
        except grpc.aio.AioRpcError as exc:
            ended = True
            raise map_rpc_error(exc) from None
        finally:
            if ended:
                await self._settle(call.finish(), CALL_FINISH_WAIT_S)
            else:
                # The consumer stopped early (disconnect, error, cancellation). Cancelling the gRPC call
                # would leave the model running (or, racing the final response, wedge it): ask the
                # model to stop instead, and let the call end in order once its final response comes.
                log.debug("stopping %s request %s early (caller request %s)", model, triton_id, request_id or "-")
                self._spawn(call.drain())
                await self._settle(self._cancel(model, triton_id), CANCEL_WAIT_S)

    async def _cancel(self, model: str, triton_id: str) -> None:
        """Send `model` the cancel request for `triton_id` and wait for its empty final response."""
        inputs = [tensor("CANCEL_REQUEST_ID", np.array([triton_id.encode()], dtype=np.object_), "BYTES")]
        call = OneRequestCall(self.grpc, infer_request(model, inputs, ""), CANCEL_TIMEOUT_S)
        try:
            while (response := await call.read()) is not None:
                if response.error_message:
                    log.warning("%s refused a cancel request: %s", model, response.error_message)
                    break
                if is_final(response.infer_response):
                    break
        except grpc.aio.AioRpcError as exc:
            log.warning("cancel request to %s failed: %s", model, exc.code().name)
            return  # the call is over
        await call.finish()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        # Held until done, so a call is never dropped (and cancelled by garbage collection) mid-way.
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _settle(self, coro: Coroutine[Any, Any, None], wait_s: float) -> None:
        """Run `coro` to its end in the background, waiting up to `wait_s` for it here.

        The wait may be cut short (timeout, or this task being cancelled while a generator unwinds);
        the work goes on either way, and close() waits for it.
        """
        await asyncio.wait({self._spawn(coro)}, timeout=wait_s)
