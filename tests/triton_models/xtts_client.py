"""Client-side helpers for the xtts Triton tests: request inputs, one-request gRPC streams, metric parsing."""

from __future__ import annotations

import asyncio
import re
import uuid

import numpy as np
from tritonclient.grpc import InferResult

from tts_engine.xtts.types import SynthesisParams

TOKENS = 12  # audio tokens per request: short enough for 2 CPU cores, long enough for two chunks
TEXTS = [
    "Hello world, this is a test.",
    "A second voice line.",
    "Numbers like seven and nine.",
    "The last sentence of the set.",
]


def text_input(value: str) -> np.ndarray:
    return np.array([value.encode()], dtype=object)


def xtts_inputs(text: str, voice, *, language: str = "en", seed: int = 0, tokens: int = TOKENS,
                first_chunk: int = 4, **extra: np.ndarray) -> dict[str, np.ndarray]:
    latent, speaker = voice
    inputs = {
        "TEXT": text_input(text),
        "LANGUAGE": text_input(language),
        "GPT_COND_LATENT": np.ascontiguousarray(latent, dtype=np.float32),
        "SPEAKER_EMBEDDING": np.ascontiguousarray(speaker, dtype=np.float32),
        "DO_SAMPLE": np.array([False]),
        "SEED": np.array([seed], dtype=np.int64),
        "MAX_NEW_TOKENS": np.array([tokens], dtype=np.int32),
        "FIRST_CHUNK_TOKENS": np.array([first_chunk], dtype=np.int32),
    }
    inputs.update(extra)
    return inputs


def greedy_params(seed: int = 0, tokens: int = TOKENS, first_chunk: int = 4) -> SynthesisParams:
    return SynthesisParams(do_sample=False, seed=seed, max_new_tokens=tokens, first_chunk_tokens=first_chunk)


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match.group(3))
    return total


class AioStream:
    """One xtts request on its own gRPC stream (as the control plane sends them); cancel() drops it."""

    def __init__(self, grpc_url: str, inputs: dict[str, np.ndarray]):
        self.grpc_url = grpc_url
        self.inputs = inputs
        self.request_id = uuid.uuid4().hex
        self.chunks: list[np.ndarray] = []
        self.error: str | None = None
        self.first_chunk = asyncio.Event()
        self.done = asyncio.Event()
        self.final = False
        self._call = None

    async def run(self) -> AioStream:
        import tritonclient.grpc.aio as aioclient
        from tritonclient.grpc._utils import _get_inference_request
        from tritonclient.utils import np_to_triton_dtype

        client = aioclient.InferenceServerClient(self.grpc_url)
        inputs = []
        for name, array in self.inputs.items():
            item = aioclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            item.set_data_from_numpy(array)
            inputs.append(item)
        request = _get_inference_request(
            model_name="xtts", inputs=inputs, model_version="", request_id=self.request_id, outputs=None,
            sequence_id=0, sequence_start=False, sequence_end=False, priority=0, timeout=None, parameters=None,
        )
        # The aio client has no switch for it: ask for the empty final response on the request itself.
        request.parameters["triton_enable_empty_final_response"].bool_param = True
        finished = asyncio.Event()

        async def requests():
            yield request
            await finished.wait()  # keep our half of the stream open until the last response

        try:
            self._call = client._client_stub.ModelStreamInfer(requests())
            async for response in self._call:
                if response.error_message:
                    self.error = response.error_message
                    break
                infer = response.infer_response
                if infer.outputs:
                    self.chunks.append(InferResult(infer).as_numpy("AUDIO"))
                    self.first_chunk.set()
                if "triton_final_response" in infer.parameters and infer.parameters["triton_final_response"].bool_param:
                    self.final = True
                    break
            # End the RPC in order: half-close, then wait for the server's status. Dropping or closing a
            # call that has not finished cancels it, and a cancellation racing the request's completion
            # is exactly what a well-behaved client must not send.
            finished.set()
            await asyncio.wait_for(self._call.code(), timeout=30)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # noqa: BLE001 - a cancelled call ends with an RPC error
            self.error = self.error or f"{type(error).__name__}: {error}"
        finally:
            finished.set()
            self.done.set()
            await client.close()
        return self

    def disconnect(self) -> None:
        """Drop the gRPC call, as a client that goes away does."""
        if self._call is not None:
            self._call.cancel()

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.float32)
