"""How Piper's Triton model sizes its pool (tts_engine.piper.pool) and its onnxruntime sessions
(tts_engine.piper.session): config parameters, environment overrides, bad values."""

from __future__ import annotations

import pytest

from tts_engine.piper import PiperPool
from tts_engine.piper.session import session_options


def _config(**params: str) -> dict:
    return {"parameters": {key: {"string_value": value} for key, value in params.items()}}


def test_defaults_parameters_and_environment_overrides() -> None:
    assert PiperPool.from_config({}, environ={}) == PiperPool(workers=4, express_workers=1, background_nice=10,
                                                              op_threads=1)
    config = _config(workers_per_instance="3", express_workers="2", background_nice="5", op_threads="2")
    assert PiperPool.from_config(config, environ={}) == PiperPool(3, 2, 5, 2)
    env = {"PIPER_WORKERS": "2", "PIPER_EXPRESS_WORKERS": "0", "PIPER_BACKGROUND_NICE": "0",
           "PIPER_OP_THREADS": "0", "UNRELATED": "x"}
    assert PiperPool.from_config(config, environ=env) == PiperPool(2, 0, 0, 0)
    assert PiperPool.from_config(config, environ={"PIPER_WORKERS": " "}).workers == 3  # blank: the parameter


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("PIPER_WORKERS", "0", "1..64"), ("PIPER_WORKERS", "four", "integer"),
    ("PIPER_BACKGROUND_NICE", "20", "0..19"), ("PIPER_EXPRESS_WORKERS", "-1", "0..16"),
])
def test_bad_values_name_the_setting(variable: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        PiperPool.from_config({}, environ={variable: value})
    assert variable in str(error.value)


def test_session_options_run_on_the_calling_thread_without_spinning() -> None:
    options = session_options(1)
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert session_options(0).intra_op_num_threads == 0  # onnxruntime's defaults
    with pytest.raises(ValueError):
        session_options(-1)
