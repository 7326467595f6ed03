"""Triton-side helpers that run outside the stub: request input parsing and the cancel board."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from tts_engine.triton_utils import CancelBoard, InputError, RequestInputs, request_share, xtts_params


def _inputs(**arrays: np.ndarray) -> RequestInputs:
    return RequestInputs(arrays.get)


def test_text_and_scalars() -> None:
    inputs = _inputs(TEXT=np.array([["héllo".encode()]], dtype=object), SPEED=np.array([1.25], np.float32))
    assert inputs.text("TEXT") == "héllo"
    assert inputs.scalar("SPEED", float, 1.0, low=0.5, high=2.0) == 1.25
    assert inputs.scalar("MISSING", float, 7.0) == 7.0
    with pytest.raises(InputError, match="input LANGUAGE is required"):
        inputs.text("LANGUAGE")
    with pytest.raises(InputError, match=r"SPEED must be in \[0.5, 1.0\]"):
        inputs.scalar("SPEED", float, 1.0, low=0.5, high=1.0)


def test_float_tensor_shape_and_finiteness() -> None:
    inputs = _inputs(LATENT=np.zeros((32, 128), np.float32), BAD=np.array([1.0, np.inf], np.float32))
    assert inputs.floats("LATENT", (None, 128)).shape == (32, 128)
    with pytest.raises(InputError, match=r"shape \[Nx64\], got \[32, 128\]"):
        inputs.floats("LATENT", (None, 64))
    with pytest.raises(InputError, match="NaN or infinite"):
        inputs.floats("BAD", (None,))


def test_xtts_params_name_the_input_at_fault() -> None:
    params = xtts_params(_inputs(TOP_K=np.array([5], np.int32), DO_SAMPLE=np.array([False])))
    assert params.top_k == 5 and params.do_sample is False and params.temperature == 0.75
    with pytest.raises(InputError, match="^TOP_P must be in"):
        xtts_params(_inputs(TOP_P=np.array([0.0], np.float32)))


def test_cancel_board_marks_clears_and_sweeps(tmp_path) -> None:
    board, other = CancelBoard("xtts", root=str(tmp_path)), CancelBoard("xtts", root=str(tmp_path))
    assert not board.is_requested("abc") and not board.is_requested("")
    other.request("abc/../weird id")  # any client-chosen id is safe as a key
    other.request("abc")
    assert board.is_requested("abc") and board.is_requested("abc/../weird id")
    board.clear("abc")
    assert not board.is_requested("abc")
    old = time.time() - 3600
    for name in os.listdir(board.folder):
        os.utime(os.path.join(board.folder, name), (old, old))
    board.sweep(max_age_s=60)
    assert os.listdir(board.folder) == []


def test_polled_stream_yields_idle_polls_then_chunks_and_ends() -> None:
    from tts_engine.triton_utils import PolledStream
    from tts_engine.xtts.stream import END, SynthesisStream
    from tts_engine.xtts.types import AudioChunk

    stream = SynthesisStream(timeout=60.0, on_cancel=lambda: None)
    polled = iter(PolledStream(stream, poll_s=0.01, chunk_timeout_s=60.0))
    assert next(polled) is None  # nothing yet: the relay gets a chance to look for a cancel
    stream.put(AudioChunk(audio=np.ones(4, np.float32), index=0, is_last=True))
    stream.put(END)
    assert next(polled).tolist() == [1.0] * 4
    with pytest.raises(StopIteration):
        next(polled)


def test_polled_stream_gives_up_after_the_chunk_timeout_and_cancels() -> None:
    from tts_engine.triton_utils import PolledStream
    from tts_engine.xtts.stream import SynthesisStream

    cancelled = []
    stream = SynthesisStream(timeout=60.0, on_cancel=lambda: cancelled.append(True))
    with pytest.raises(TimeoutError, match="no audio for 0 s"):
        for _ in PolledStream(stream, poll_s=0.01, chunk_timeout_s=0.0):
            pass
    assert cancelled == [True] and stream.cancelled


def test_iterator_source_cancel_closes_the_generator() -> None:
    from tts_engine.triton_utils import IteratorSource

    closed = []

    def chunks():
        try:
            yield np.zeros(2, np.float32)
            yield np.zeros(2, np.float32)
        finally:
            closed.append(True)

    source = IteratorSource(chunks())
    first = next(iter(source))
    assert first is not None and first.size == 2
    source.cancel()
    assert closed == [True]


class _Request:
    def __init__(self, parameters):
        self._parameters = parameters

    def parameters(self):
        return self._parameters


@pytest.mark.parametrize(("raw", "tenant", "weight"), [
    ('{"tenant": "acme", "weight": 3.0}', "acme", 3.0),
    ('{"tenant": "acme", "weight": "2.5"}', "acme", 2.5),  # a client that sends strings only
    ('{"tenant": "acme", "weight": 1e9}', "acme", 100.0),  # clamped, not refused
    ("{}", "", 1.0),
    ("", "", 1.0),
    ("not json", "", 1.0),
    ('["a list"]', "", 1.0),
    ('{"tenant": 7, "weight": "heavy"}', "", 1.0),
])
def test_request_share_reads_the_parameters_json_and_falls_back_to_the_default(raw, tenant, weight) -> None:
    share = request_share(_Request(raw))
    assert (share.tenant, share.weight) == (tenant, weight)


def test_a_request_object_without_parameters_gets_the_default_share() -> None:
    assert request_share(object()) == request_share(_Request(None))
