"""GPT-2 forward of the XTTS autoregressive model over a slot-based KV cache.

The math is GPT-2's (transformers' GPT2Block: pre-LayerNorm attention with scale 1/sqrt(head_dim),
causal, then a gelu_new MLP; ln_f at the end) run over the model's own modules, so weights are
shared with the loaded Coqui model. Positions do not come from GPT-2's `wpe` (a null function in
XTTS) but from XTTS's text/mel position embeddings, added to the inputs.

Slots: the cache holds `max_batch` rows. Active requests always occupy rows 0..n-1 (the batcher
compacts on leave), so a decode step works on a contiguous prefix of the cache with no gather;
each row attends only to its own first `length` positions through a boolean mask.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tts_engine.xtts.prefix_cache import PrefixKV


class PackedLinear:
    """A GPT-2 `Conv1D` (y = x @ W + b) with its weight reordered once for oneDNN's small-batch kernels.

    On the CPU a decode step multiplies a few rows by each weight matrix; MKL's `addmm` is slow at
    2..16 rows (measured at 8 rows: 1.6x the time of oneDNN's packed linear on the same weights).
    Numbers agree to float rounding. Keeps a second copy of the weights (the module's stays shared).
    """

    def __init__(self, conv1d: Any):  # transformers' Conv1D
        from torch.utils import mkldnn

        dense = nn.Linear(conv1d.weight.shape[0], conv1d.weight.shape[1])
        with torch.no_grad():
            dense.weight.copy_(conv1d.weight.t())
            dense.bias.copy_(conv1d.bias)
        self.linear = mkldnn.to_mkldnn(dense.eval())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return self.linear(x.reshape(-1, shape[-1]).contiguous()).view(*shape[:-1], -1)


def packed_linears_available(device: torch.device, dtype: torch.dtype) -> bool:
    return device.type == "cpu" and dtype == torch.float32 and torch.backends.mkldnn.is_available()


class GptDecoder:
    """Prefill and batched single-token decode of the XTTS GPT with a preallocated KV cache."""

    def __init__(
        self,
        gpt: Any,  # Coqui's GPT (untyped module attributes)
        *,
        max_batch: int,
        max_seq: int,
        device: torch.device,
        dtype: torch.dtype,
        packed_linears: bool = True,
    ):
        self.gpt = gpt
        self.blocks = list(gpt.gpt.h)
        self.ln_f = gpt.gpt.ln_f
        self.final_norm = gpt.final_norm
        self.mel_head = gpt.mel_head
        self.mel_embedding = gpt.mel_embedding
        self.text_embedding = gpt.text_embedding
        self.mel_pos = gpt.mel_pos_embedding.emb.weight
        self.text_pos = gpt.text_pos_embedding.emb.weight
        self.model_dim = gpt.model_dim
        self.heads = gpt.heads
        self.head_dim = self.model_dim // self.heads
        self.max_batch = max_batch
        self.max_seq = max_seq
        self.device = device
        self.dtype = dtype
        shape = (len(self.blocks), max_batch, self.heads, max_seq, self.head_dim)
        self.k_cache = torch.zeros(shape, device=device, dtype=dtype)
        self.v_cache = torch.zeros(shape, device=device, dtype=dtype)
        # Per-row cache lengths, on device: the decode mask is built without a host round trip.
        self.lengths = torch.zeros(max_batch, dtype=torch.long, device=device)
        self._positions = torch.arange(max_seq, device=device)
        # Decode-step projections per block (qkv, attention out, mlp in, mlp out). On the CPU, steps of
        # 2+ rows use packed copies; one row stays on MKL's matrix-vector path, which is faster there.
        self._dense = [(b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc, b.mlp.c_proj) for b in self.blocks]
        self._packed = None
        if packed_linears and packed_linears_available(device, dtype):
            self._packed = [tuple(PackedLinear(m) for m in mods) for mods in self._dense]

    # -- embeddings -----------------------------------------------------------------------------

    def prefix_embedding(self, cond_latent: torch.Tensor, text_tokens: list[int]) -> torch.Tensor:
        """[cond latents, text (with start/stop text tokens) + text positions, start_audio + mel position 0]."""
        gpt = self.gpt
        tokens = torch.tensor([gpt.start_text_token, *text_tokens, gpt.stop_text_token], device=self.device)
        text = self.text_embedding(tokens) + self.text_pos[: tokens.shape[0]]
        start = self.mel_embedding.weight[gpt.start_audio_token] + self.mel_pos[0]
        return torch.cat([cond_latent.to(text.dtype), text, start[None]], dim=0)

    def token_embedding(self, tokens: torch.Tensor, mel_positions: torch.Tensor) -> torch.Tensor:
        return self.mel_embedding(tokens) + self.mel_pos[mel_positions]

    # -- forward passes -------------------------------------------------------------------------

    def _head(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.final_norm(self.ln_f(hidden))
        return self.mel_head(latent), latent

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # [b, t, D] -> [b, heads, t, head_dim]
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def prefill(
        self, row: int, prefix: torch.Tensor, cached: PrefixKV | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the prefix [P, D] into an empty row; returns (logits [V], latent [D]) of its last position.

        `cached` holds the keys and values of the prefix's first C positions (a voice's conditioning,
        see prefix_cache.py): they are copied into the row and only positions C..P-1 are computed,
        attending to all of 0..P-1 causally.
        """
        length = prefix.shape[0]
        if length >= self.max_seq:
            raise ValueError(f"prefix of {length} positions does not fit the cache ({self.max_seq})")
        done = 0
        if cached is not None:
            done = cached.length
            if not 0 < done < length:
                raise ValueError(f"cached prefix of {done} positions does not fit a prefix of {length}")
            self.k_cache[:, row, :, :done] = cached.keys
            self.v_cache[:, row, :, :done] = cached.values
        new = length - done
        x = prefix[None, done:].to(self.dtype)
        # Query i (absolute position done + i) sees keys 0..done + i: causal, offset by the cached part.
        mask = None
        if done:
            mask = self._positions[None, :length] <= (self._positions[:new, None] + done)
        for layer, block in enumerate(self.blocks):
            h = block.ln_1(x)
            q, k, v = block.attn.c_attn(h).split(self.model_dim, dim=2)
            q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
            self.k_cache[layer, row, :, done:length] = k[0]
            self.v_cache[layer, row, :, done:length] = v[0]
            if done:
                keys = self.k_cache[layer, row : row + 1, :, :length]
                values = self.v_cache[layer, row : row + 1, :, :length]
                attn = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
            else:
                attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + block.attn.c_proj(attn.transpose(1, 2).reshape(1, new, self.model_dim))
            x = x + block.mlp(block.ln_2(x))
        self.lengths[row] = length
        logits, latent = self._head(x[0, -1])
        return logits, latent

    def prefix_kv(self, row: int, length: int) -> PrefixKV:
        """A copy of the keys and values of row's first `length` positions (to reuse for the same voice)."""
        return PrefixKV(self.k_cache[:, row, :, :length].clone(), self.v_cache[:, row, :, :length].clone())

    def decode(self, n: int, tokens: torch.Tensor, mel_positions: torch.Tensor, max_len: int):
        """One step for rows 0..n-1: feed `tokens` [n] at `mel_positions` [n]; returns (logits [n, V], latents [n, D]).

        `max_len` is the largest row length after this step (known on the host), bounding attention.
        """
        rows = torch.arange(n, device=self.device)
        write_at = self.lengths[:n]
        x = self.token_embedding(tokens, mel_positions).to(self.dtype)[:, None]  # [n, 1, D]
        # Row i sees positions < its new length; everything past it (stale or other requests') is masked.
        mask = (self._positions[None, :max_len] <= write_at[:, None])[:, None, None, :]
        projections = self._packed if self._packed is not None and n > 1 else self._dense
        for layer, block in enumerate(self.blocks):
            qkv, out, fc, proj = projections[layer]
            h = block.ln_1(x)
            q, k, v = qkv(h).split(self.model_dim, dim=2)
            q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
            k_cache, v_cache = self.k_cache[layer], self.v_cache[layer]
            k_cache[rows, :, write_at] = k[:, :, 0]
            v_cache[rows, :, write_at] = v[:, :, 0]
            attn = F.scaled_dot_product_attention(q, k_cache[:n, :, :max_len], v_cache[:n, :, :max_len], attn_mask=mask)
            x = x + out(attn.transpose(1, 2).reshape(n, 1, self.model_dim))
            x = x + proj(block.mlp.act(fc(block.ln_2(x))))
        self.lengths[:n] += 1
        return self._head(x[:, 0])

    def move_row(self, src: int, dst: int, length: int) -> None:
        """Copy row src's cache into row dst (compaction when a request leaves)."""
        self.k_cache[:, dst, :, :length] = self.k_cache[:, src, :, :length]
        self.v_cache[:, dst, :, :length] = self.v_cache[:, src, :, :length]
        self.lengths[dst] = self.lengths[src]
