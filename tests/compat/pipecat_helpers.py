"""Running Pipecat services the way an agent does: inside a real Pipeline, run by PipelineRunner."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import EndFrame, ErrorFrame, Frame, TTSAudioRawFrame, TTSSpeakFrame, TTSTextFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

# A TTS service ends an utterance after 3 s without audio; the tiny XTTS on a loaded 2-core test machine can
# take longer than that for a sentence (a production GPU does not), so the tests wait longer.
PATIENT = {"stop_frame_timeout_s": 60.0}


@dataclass
class Spoken:
    frames: list[TTSAudioRawFrame] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # seconds after the run started
    errors: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # the TTSTextFrames a word-timestamping service pushed
    elapsed: float = 0.0

    @property
    def audio(self) -> bytes:
        return b"".join(f.audio for f in self.frames)

    @property
    def sample_rates(self) -> set[int]:
        return {f.sample_rate for f in self.frames}


class _Collector(FrameProcessor):
    def __init__(self, spoken: Spoken, started: float) -> None:
        super().__init__()
        self.spoken = spoken
        self.started = started

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.spoken.frames.append(frame)
            self.spoken.arrivals.append(time.perf_counter() - self.started)
        elif isinstance(frame, ErrorFrame):
            self.spoken.errors.append(frame.error)
        elif isinstance(frame, TTSTextFrame) and direction == FrameDirection.DOWNSTREAM:
            self.spoken.words.append(frame.text)
        await self.push_frame(frame, direction)


async def speak(tts: Any, texts: list[str], sample_rate: int = 24000) -> Spoken:
    """Each text as a TTSSpeakFrame, then EndFrame; the TTS service's audio frames as they came out."""
    spoken = Spoken()
    started = time.perf_counter()
    upstream, downstream = _Collector(spoken, started), _Collector(spoken, started)
    task = PipelineTask(Pipeline([upstream, tts, downstream]),
                        params=PipelineParams(audio_out_sample_rate=sample_rate), idle_timeout_secs=120)
    await task.queue_frames([*(TTSSpeakFrame(t) for t in texts), EndFrame()])
    await PipelineRunner(handle_sigint=False).run(task)
    spoken.elapsed = time.perf_counter() - started
    return spoken
