"""KV cache of voice prefixes, shared by every request that speaks with the same voice.

XTTS's GPT input is [conditioning latents, text, start-of-audio]. The conditioning latents carry no
position embedding and come first, so under causal attention their keys and values depend on the
voice alone. A voice agent speaks every sentence with one voice: the engine computes that prefix
once, keeps its keys and values here, and each later prefill copies them into its row and runs only
the text. On XTTS-v2 the 32 conditioning positions are about 40 % of a typical sentence's prefill.

Entries are keyed by a digest of the latent tensor's bytes (shape and dtype included), so two
requests share an entry only when their conditioning is bit-identical; least recently used entries
are evicted past `max_voices`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import torch

CACHE_VOICES_ENV = "XTTS_PREFIX_CACHE_VOICES"
DEFAULT_VOICES = 32


def voice_key(cond_latent: torch.Tensor) -> bytes:
    """Digest of a conditioning latent [N, D]: equal keys mean bit-identical prefixes."""
    data = cond_latent.detach().contiguous().cpu()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{tuple(data.shape)}|{data.dtype}".encode())
    digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.digest()


@dataclass(frozen=True)
class PrefixKV:
    keys: torch.Tensor  # [layers, heads, N, head_dim]
    values: torch.Tensor

    @property
    def length(self) -> int:
        return int(self.keys.shape[2])

    @property
    def nbytes(self) -> int:
        return self.keys.numel() * self.keys.element_size() * 2


class PrefixCache:
    """LRU map voice key -> PrefixKV, with hit/miss counters for the engine's stats."""

    def __init__(self, max_voices: int = DEFAULT_VOICES):
        if max_voices < 0:
            raise ValueError("max_voices must be >= 0 (0 disables the cache)")
        self.max_voices = max_voices
        self._entries: OrderedDict[bytes, PrefixKV] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_voices > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(entry.nbytes for entry in self._entries.values())

    def get(self, key: bytes | None) -> PrefixKV | None:
        if key is None or not self.enabled:
            return None
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: bytes | None, entry: PrefixKV) -> None:
        if key is None or not self.enabled:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_voices:
            self._entries.popitem(last=False)
