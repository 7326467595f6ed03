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

from tts_contract.languages import XTTS_LANGUAGES

TINY_MODEL_ARGS = {
    "gpt_layers": 2,
    "gpt_n_model_channels": 128,
    "gpt_n_heads": 4,
    "decoder_input_dim": 128,
    "gpt_max_audio_tokens": 64,
    # As in the released XTTS-v2 config (XttsConfig's defaults describe v1): a 1024-code DVAE
    # vocabulary plus start/stop, and the perceiver that turns the reference into 32 latents.
    "gpt_num_audio_tokens": 1026,
    "gpt_start_audio_token": 1024,
    "gpt_stop_audio_token": 1025,
    "gpt_use_perceiver_resampler": True,
}

# Characters the tiny tokenizer learns; anything else becomes [UNK], as with a real vocabulary.
_ALPHABET = string.ascii_lowercase + string.digits + ".,;:!?'\"-()" + "àâäçéèêëîïôöùûüñßáíóúãõąćęłńśźżčďěňřšťůýž"
_SPECIAL_TOKENS = ["[STOP]", "[UNK]", "[SPACE]", "[START]"]


def tiny_config(max_audio_tokens: int | None = None):
    """The XttsConfig of the tiny model (`max_audio_tokens` overrides its per-sentence token bound)."""
    from TTS.tts.configs.xtts_config import XttsConfig

    config = XttsConfig()
    for key, value in TINY_MODEL_ARGS.items():
        setattr(config.model_args, key, value)
    if max_audio_tokens is not None:
        config.model_args.gpt_max_audio_tokens = max_audio_tokens
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


TINY_SPEAKERS = ("Test Speaker A", "Test Speaker B")


def _synthetic_reference(seed: int, seconds: float = 4.0, sample_rate: int = 22050) -> torch.Tensor:
    """A seeded voiced-like signal (harmonics of a gliding pitch plus noise), [1, samples]."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 110.0 + 60.0 * torch.rand(1, generator=generator) + 20.0 * torch.sin(2 * torch.pi * 0.5 * t)
    phase = 2 * torch.pi * torch.cumsum(f0 / sample_rate, dim=0)
    wave = sum(torch.sin(k * phase) / k for k in range(1, 8))
    wave = wave + 0.05 * torch.randn(t.shape, generator=generator)
    return (0.5 * wave / wave.abs().max()).unsqueeze(0)


def write_tiny_speakers(path: Path, model, names: tuple[str, ...] = TINY_SPEAKERS, seed: int = 0) -> None:
    """speakers_xtts.pth with 'studio' voices conditioned on synthetic references through the model itself."""
    speakers = {}
    for index, name in enumerate(names):
        audio = _synthetic_reference(seed + index)
        speakers[name] = {
            "gpt_cond_latent": model.get_gpt_cond_latents(audio, 22050).clone(),
            "speaker_embedding": model.get_speaker_embedding(audio, 22050).clone(),
        }
    torch.save(speakers, path)


def build_tiny_checkpoint(out_dir: Path, seed: int = 0, with_speakers: bool = False,
                          max_audio_tokens: int | None = None) -> Path:
    """Write model.pth, config.json and vocab.json (and speakers_xtts.pth if asked) of a random tiny XTTS."""
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_path = out_dir / "vocab.json"
    write_tiny_vocab(vocab_path)

    config = tiny_config(max_audio_tokens)
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
    if with_speakers:
        model.eval()
        write_tiny_speakers(out_dir / "speakers_xtts.pth", model, seed=seed)
    config.model_args.tokenizer_file = ""
    config.save_json(str(out_dir / "config.json"))
    return out_dir
