"""The shared contract: model tensors match config.pbtxt, languages and limits, and no heavy imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tts_contract import (
    CHAR_LIMITS,
    MODELS,
    NATIVE_RATES,
    PIPER_LANGUAGES,
    SPEED_RANGE,
    XTTS_LANGUAGES,
    char_limit,
    clamp_speed,
    normalise_language,
)

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"


def _config(model: str) -> str:
    return (REPOSITORY / model / "config.pbtxt").read_text(encoding="utf-8")


def _tensors(config: str, section: str) -> list[dict[str, str]]:
    """The entries of `input [ ... ]` or `output [ ... ]` in a config.pbtxt (comments dropped)."""
    text = re.sub(r"#[^\n]*", "", config)
    body = re.search(rf"\b{section}\s*\[(.*?)\n\]", text, re.S)
    assert body, f"no {section} section"
    entries = []
    for block in re.findall(r"\{(.*?)\}", body.group(1), re.S):
        fields = dict(re.findall(r"(\w+)\s*:\s*(\"[^\"]*\"|\[[^\]]*\]|\w+)", block))
        entries.append({key: value.strip('"') for key, value in fields.items()})
    return entries


@pytest.mark.parametrize("model", sorted(MODELS))
def test_config_pbtxt_matches_the_contract(model):
    spec, config = MODELS[model], _config(model)
    assert re.search(rf'name:\s*"{model}"', config)
    assert bool(re.search(r"decoupled:\s*true", config)) == spec.decoupled
    assert int(re.search(r"max_batch_size:\s*(\d+)", config).group(1)) == spec.max_batch_size
    for section, specs in (("input", spec.inputs), ("output", spec.outputs)):
        entries = _tensors(config, section)
        assert [e["name"] for e in entries] == [s.name for s in specs]
        for entry, tensor in zip(entries, specs, strict=True):
            assert entry["data_type"] == tensor.config_dtype, tensor.name
            dims = tuple(int(d) for d in entry["dims"].strip("[] ").split(","))
            assert dims == tensor.dims, tensor.name
            assert (entry.get("optional") == "true") == tensor.optional, tensor.name


def test_every_model_directory_has_a_contract():
    served = {p.parent.name for p in REPOSITORY.glob("*/config.pbtxt")}
    assert served == set(MODELS)


def test_numpy_dtypes_name_real_dtypes():
    np = pytest.importorskip("numpy")
    for spec in MODELS.values():
        for tensor in spec.inputs + spec.outputs:
            np.dtype(tensor.numpy_dtype)


def test_languages():
    assert normalise_language("en-US") == "en" and normalise_language("zh_CN") == "zh"
    assert normalise_language(" PT-br ") == "pt"
    assert normalise_language("en-GB", engine="piper") == "en"
    for bad, engine in (("xx", "xtts"), ("de", "piper"), ("", "xtts"), (None, "xtts")):
        with pytest.raises(ValueError, match="supported"):
            normalise_language(bad, engine=engine)
    with pytest.raises(ValueError, match="engine"):
        normalise_language("en", engine="nope")
    assert set(CHAR_LIMITS) == set(XTTS_LANGUAGES) and set(PIPER_LANGUAGES) <= set(XTTS_LANGUAGES)
    assert char_limit("ja-JP") == 71 and char_limit("sw") == 250


def test_clamp_speed_and_rates():
    assert clamp_speed(4.0) == SPEED_RANGE[1] and clamp_speed(0.1) == SPEED_RANGE[0] and clamp_speed(1.3) == 1.3
    assert NATIVE_RATES == {"piper": 22050, "xtts": 24000}


def test_contract_imports_nothing_heavy():
    code = ("import sys, tts_contract, tts_contract.sentences; "
            "heavy = {'numpy', 'torch', 'tritonclient', 'fastapi', 'pydantic'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
