"""Pipecat's CartesiaTTSService (WS /tts/websocket) and CartesiaHttpTTSService (POST /tts/bytes), pipecat-ai
1.14, in a real Pipeline. The socket service opens a context per turn (whole sentences with `continue`,
`max_buffer_delay_ms: 0`), ends it with an empty transcript and `continue: false`, turns the `timestamps`
messages into word frames, and on an interruption sends `cancel` for the turn's context."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from compat_helpers import SPOKEN, SPOKEN_TEXT, assert_render_length, pcm16, reference_seconds
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.cartesia.tts import CartesiaHttpTTSService, CartesiaTTSService
from pipecat_helpers import PATIENT, speak

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control_plane"))

from gateway_helpers import settled_triton_counter  # noqa: E402

from control_plane.services.planning import plan_text  # noqa: E402

LONG = " ".join(f"This is sentence number {i} of a long answer that the caller is about to interrupt."
                for i in range(12))


def _service(compat, voice: str = "en-US-generic") -> CartesiaTTSService:
    return CartesiaTTSService(api_key=compat.api_key, url=compat.base_url.replace("http", "ws", 1) + "/tts/websocket",
                              settings=CartesiaTTSService.Settings(voice=voice), **PATIENT)


async def test_cartesia_tts_service_in_a_pipeline_with_word_frames(compat):
    spoken = await speak(_service(compat), [SPOKEN_TEXT], sample_rate=24000)
    assert not spoken.errors, spoken.errors
    assert spoken.sample_rates == {24000}
    seconds = pcm16(spoken.audio).size / 24000
    assert_render_length(seconds, await reference_seconds(compat))
    assert len(spoken.frames) >= 3  # streamed, not one block
    words = [w.strip() for w in spoken.words if w.strip()]
    assert words == SPOKEN_TEXT.split(), spoken.words


async def test_cartesia_tts_service_speaks_a_cloned_voice_turn_after_turn(compat):
    spoken = await speak(_service(compat, compat.cloned_voice),
                         ["A cloned voice, through Cartesia's socket.", "And a second turn, a new context."],
                         sample_rate=16000)
    assert not spoken.errors, spoken.errors
    assert spoken.sample_rates == {16000} and pcm16(spoken.audio).size / 16000 > 0.4


class _Interrupter(FrameProcessor):
    """After the first audio of the long turn, the user barges in (Pipecat's own InterruptionFrame, pushed
    the way a transport's VAD pushes it); then a short second turn follows and the run ends."""

    def __init__(self) -> None:
        super().__init__()
        self.task: PipelineTask | None = None
        self.first_turn: str | None = None
        self.audio: dict[str | None, int] = {}
        self.after_interruption: dict[str | None, int] = {}
        self.interrupted = asyncio.Event()
        self.passed = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            self.passed.set()  # the TTS service has handled it: nothing of the first turn may follow
        elif isinstance(frame, TTSAudioRawFrame):
            counts = self.after_interruption if self.passed.is_set() else self.audio
            counts[frame.context_id] = counts.get(frame.context_id, 0) + len(frame.audio)
            if self.first_turn is None:
                self.first_turn = frame.context_id
                assert self.task is not None
                self.interrupted.set()
                await self.task.queue_frames([InterruptionFrame(), TTSSpeakFrame("Sure, go ahead."), EndFrame()])
        await self.push_frame(frame, direction)


async def test_an_interruption_cancels_the_turn_on_the_gateway(compat):
    metrics = compat.gateway.app.state.services.settings.triton_metrics_url
    before = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    watcher = _Interrupter()
    task = PipelineTask(Pipeline([_service(compat), watcher]), params=PipelineParams(audio_out_sample_rate=16000),
                        idle_timeout_secs=120)
    watcher.task = task
    await task.queue_frames([TTSSpeakFrame(LONG)])
    started = time.perf_counter()
    await PipelineRunner(handle_sigint=False).run(task)
    assert watcher.interrupted.is_set() and watcher.passed.is_set() and time.perf_counter() - started < 120
    first = watcher.first_turn
    # the second turn was spoken, and nothing of the interrupted one reached the pipeline after it
    assert sum(n for cid, n in watcher.after_interruption.items() if cid != first) / 2 / 16000 > 0.5
    assert watcher.after_interruption.get(first, 0) == 0
    # the gateway stopped the turn: its 12 sentences are one Triton request each, and only those begun
    # before the cancel (plus the second turn's) ran; none is still running
    after = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    assert after - before < 12, f"{after - before} piper requests for an interrupted answer and one sentence"
    assert await settled_triton_counter(metrics, "tts_model_active_requests", model="piper") == 0


def test_the_spoken_sentences_are_segments_of_their_own():
    """The HTTP service's one request per sentence renders the same segments as the reference's one text
    only while no request cuts its first sentence short (one cut sentence made the four requests about 2 %
    longer than the text in one request)."""
    whole = plan_text(SPOKEN_TEXT, language="en", shorten_first_segment=True).segments
    assert [s.text for s in whole] == SPOKEN
    for sentence in SPOKEN:
        assert [s.text for s in plan_text(sentence, language="en", shorten_first_segment=True).segments] == [sentence]


async def test_cartesia_http_tts_service_in_a_pipeline(compat):
    tts = CartesiaHttpTTSService(api_key=compat.api_key, base_url=compat.base_url,
                                 settings=CartesiaHttpTTSService.Settings(voice="en-US-generic"), **PATIENT)
    spoken = await speak(tts, SPOKEN, sample_rate=16000)  # one POST per sentence
    assert not spoken.errors, spoken.errors
    assert spoken.sample_rates == {16000}
    assert_render_length(pcm16(spoken.audio).size / 16000, await reference_seconds(compat))
