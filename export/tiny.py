"""A tiny XTTS-v2 of the real architecture with random weights, for tests and development.

The GPT is shrunk (2 layers x 128 channels) while HiFi-GAN keeps its full width, so every code
path of the served model runs, fast, on a laptop CPU. The audio it makes is noise: the manifest
marks it as test weights and the service says so wherever it is served.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

from tts_engine.xtts.languages import XTTS_LANGUAGES

TINY_MODEL_ARGS = {
    "gpt_layers": 2,
    "gpt_n_model_channels": 128,
    "gpt_n_heads": 4,
    "decoder_input_dim": 128,
    "gpt_max_audio_tokens": 64,
}

# Characters the tiny tokenizer learns; anything else becomes [UNK], as with a real vocabulary.
_ALPHABET = string.ascii_lowercase + string.digits + ".,;:!?'\"-()" + "àâäçéèêëîïôöùûüñßáíóúãõąćęłńśźżčďěňřšťůýž"
_SPECIAL_TOKENS = ["[STOP]", "[UNK]", "[SPACE]", "[START]"]


def tiny_config():
    """The XttsConfig of the tiny model."""
    from TTS.tts.configs.xtts_config import XttsConfig

    config = XttsConfig()
    for key, value in TINY_MODEL_ARGS.items():
        setattr(config.model_args, key, value)
    config.languages = list(XTTS_LANGUAGES)
    return config


def _language_tag(lang: str) -> str:
    return "[zh-cn]" if lang == "zh" else f"[{lang}]"


def write_tiny_vocab(path: Path, vocab_size: int = 400) -> None:
    """Train a small BPE vocabulary with XTTS's special and language tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = _SPECIAL_TOKENS + [_language_tag(lang) for lang in XTTS_LANGUAGES]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=list(_ALPHABET), show_progress=False
    )
    corpus = [
        "the quick brown fox jumps over the lazy dog",
        "hello world, this is a test of the speech service.",
        "numbers one two three four five six seven eight nine ten",
        "bonjour le monde, guten tag, hola mundo, ciao mondo, olá mundo",
    ] * 20
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    data = json.loads(tokenizer.to_str())
    # XTTS's vocab.json spells merges as "a b" strings.
    data["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    path.write_text(json.dumps(data, ensure_ascii=False))


def build_tiny_checkpoint(out_dir: Path, seed: int = 0) -> Path:
    """Write model.pth, config.json and vocab.json of a random tiny XTTS into out_dir."""
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_path = out_dir / "vocab.json"
    write_tiny_vocab(vocab_path)

    config = tiny_config()
    torch.manual_seed(seed)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=vocab_path)
    model.init_models()
    state = {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith("gpt.gpt_inference.") and k != "gpt.gpt.wte.weight"
    }
    torch.save({"model": state}, out_dir / "model.pth")
    config.model_args.tokenizer_file = ""
    config.save_json(str(out_dir / "config.json"))
    return out_dir
