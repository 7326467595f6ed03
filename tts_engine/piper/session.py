"""Loading a Piper voice with onnxruntime session options chosen for a pool of worker threads.

`PiperVoice.load` creates its session with default options: an intra-op thread pool as wide as the
machine, whose threads spin while they wait for work. Piper's Triton model runs several requests
at once on its own worker threads (tts_engine.fair_workers), so those defaults stack one pool's
spinning threads on another's and on the gateway's cores. With `op_threads=1` each run executes on
the thread that calls it: the pool's threads are the only ones doing Piper's work, their number is
the concurrency, and a thread's scheduling priority (the pool's express lane) is the priority of
the inference it runs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

_LOG = logging.getLogger(__name__)


def session_options(op_threads: int) -> Any:
    """onnxruntime options: `op_threads` per run (1 = on the calling thread), no spinning, one inter-op
    thread; 0 = onnxruntime's defaults (what `PiperVoice.load` uses)."""
    import onnxruntime

    if op_threads < 0:
        raise ValueError("op_threads must be >= 0")
    options = onnxruntime.SessionOptions()
    if op_threads == 0:
        return options
    options.intra_op_num_threads = op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # A waiting pool thread sleeps instead of spinning: a spinning thread holds a core another
    # worker (or the gateway) could use.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _model_with_alignments(model_path: Path) -> str | bytes:
    """The model with its phoneme-duration tensor exposed (as `PiperVoice.load(include_alignments=True)`
    does in memory); the file as it is when onnx is missing or the model already has that output."""
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError:
        _LOG.warning("onnx is not installed: Piper reports no word timings")
        return str(model_path)
    model = onnx.load(str(model_path))
    try:
        add_alignment_output(model)
    except ValueError:  # no such tensor, or already an output: serve the model as it is
        return str(model_path)
    return bytes(model.SerializeToString())


def load_voice(model_path: str | Path, config_path: str | Path, use_cuda: bool = False, op_threads: int = 1) -> Any:
    """A `piper.PiperVoice` whose session runs each inference on `op_threads` threads (see module doc)."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    config = PiperConfig.from_dict(json.loads(Path(config_path).read_text(encoding="utf-8")))
    providers: list[Any] = ([("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})] if use_cuda
                            else ["CPUExecutionProvider"])
    session = onnxruntime.InferenceSession(_model_with_alignments(Path(model_path)),
                                           sess_options=session_options(op_threads), providers=providers)
    return PiperVoice(session=session, config=config)
