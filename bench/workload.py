"""The requests a benchmark sends: text, language, an exact audio-token count and a seed per request."""

from __future__ import annotations

from dataclasses import dataclass

TOKENS_PER_SECOND = 21.53  # XTTS audio tokens per second of speech (22.05 kHz-equivalent code rate)
SAMPLE_RATE = 24000

# Short English sentences; text length only affects the prefill, the token count fixes the work.
_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Hello world, this is a test of the speech service.",
    "Numbers one two three four five six seven eight nine ten.",
    "Bonjour le monde, guten tag, hola mundo, ciao mondo.",
)


@dataclass(frozen=True)
class BenchRequest:
    index: int
    text: str
    language: str
    tokens: int  # audio tokens both sides must generate, exactly
    seed: int

    @property
    def audio_seconds(self) -> float:
        return self.tokens / TOKENS_PER_SECOND


def make_requests(count: int, tokens: int, seed: int = 1234, language: str = "en") -> list[BenchRequest]:
    return [
        BenchRequest(i, _SENTENCES[i % len(_SENTENCES)], language, tokens, seed + i) for i in range(count)
    ]


def tokens_for_seconds(seconds: float) -> int:
    return max(1, round(seconds * TOKENS_PER_SECOND))
