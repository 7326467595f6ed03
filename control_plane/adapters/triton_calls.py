"""One Triton request as a gRPC ModelStreamInfer call: its tensors and request message, the reading
of its responses (audio, words, the final-response flag), the call ended in order, and gRPC / client
errors mapped to the adapter's errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import InferInput
from tritonclient.grpc import aio as grpcclient
from tritonclient.grpc._infer_result import InferResult
from tritonclient.grpc._utils import _get_inference_request
from tritonclient.utils import InferenceServerException

from control_plane.adapters.triton_types import TritonError, TritonTimeout, TritonUnavailable
from tts_contract.fairness import Share

log = logging.getLogger(__name__)


def tensor(name: str, value: np.ndarray, dtype: str) -> InferInput:
    t = InferInput(name, list(value.shape), dtype)
    t.set_data_from_numpy(value)
    return t


def infer_request(model: str, inputs: list[InferInput], request_id: str, share: Share | None = None) -> Any:
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
        parameters=share.parameters() if share is not None else None,  # the engines' fair queues read them
    )
    request.parameters["triton_enable_empty_final_response"].bool_param = True
    return request


def words_of(result: InferResult) -> tuple[tuple[int, int, int, int], ...] | None:
    if not any(o.name == "WORDS" for o in result.get_response().outputs):
        return None
    raw = result.as_numpy("WORDS")
    try:
        rows = json.loads(raw.reshape(-1)[0])
        return tuple((int(a), int(b), int(c), int(d)) for a, b, c, d in rows)
    except (ValueError, TypeError, IndexError):
        log.warning("ignoring malformed WORDS output")
        return None


def is_final(infer_response: Any) -> bool:
    params = infer_response.parameters
    return "triton_final_response" in params and params["triton_final_response"].bool_param


class OneRequestCall:
    """A ModelStreamInfer call carrying one request, ended in order rather than cancelled.

    Our half of the stream stays open until `finish()`: closing it before the final response would
    end the call early.
    """

    def __init__(self, client: grpcclient.InferenceServerClient, request: Any, timeout_s: float) -> None:
        self._half_close = asyncio.Event()

        async def requests() -> AsyncIterator[Any]:
            yield request
            await self._half_close.wait()

        self._call = client._client_stub.ModelStreamInfer(requests(), metadata=None, timeout=timeout_s)
        self._next: asyncio.Future[Any] | None = None

    async def read(self) -> Any | None:
        """The next response, or None once the server ended the call. Raises AioRpcError.

        grpc.aio cancels the whole call when a coroutine awaiting its read() is cancelled, as the
        reader is when a consumer task is cancelled; the read runs in its own task instead, and a
        read cut short is picked up by the next one.
        """
        if self._next is None:
            self._next = asyncio.ensure_future(self._call.read())
        response = await asyncio.shield(self._next)
        self._next = None
        return None if response is grpc.aio.EOF else response

    async def finish(self) -> None:
        """Half-close and wait for the call's status (after the final response, or once it is over)."""
        self._half_close.set()
        await self._call.code()

    async def drain(self) -> None:
        """Read on until the request's final response (or the call's end), then finish in order."""
        with contextlib.suppress(grpc.aio.AioRpcError):
            while (response := await self.read()) is not None:
                if response.error_message or is_final(response.infer_response):
                    break
        await self.finish()


def map_rpc_error(exc: BaseException) -> TritonError:
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
