"""Per-row logits processing and token choice for a batch of requests with different settings.

Reproduces the processors transformers' `generate` builds for XTTS, in the same order:
repetition penalty (over every id in `input_ids`: the prefix placeholder id 1, start_audio_token,
then every generated id), then, when sampling, temperature, top-k and top-p; greedy rows take the
argmax of the penalised logits. Each row's settings live in preallocated per-slot tensors, so a
mixed batch is processed with no Python loop over requests.

Randomness: each request owns a torch.Generator seeded from its seed; the uniforms a sentence
needs are drawn from it when the sentence starts (one per token) and stored in the row, and a
token is drawn by inverse-CDF from the processed distribution. A request's draws therefore do
not depend on which other requests share the batch.
"""

from __future__ import annotations

import torch

PLACEHOLDER_ID = 1  # the id XTTS fills input_ids with under the embedded prefix


class SamplingRows:
    """Per-row sampling state for rows 0..max_batch-1, kept in step with the KV-cache rows."""

    def __init__(self, max_batch: int, vocab: int, max_steps: int, device: torch.device):
        self.vocab = vocab
        self.device = device
        self.temperature = torch.ones(max_batch, device=device)
        self.top_k = torch.full((max_batch,), vocab, dtype=torch.long, device=device)
        self.top_p_cut = torch.full((max_batch,), -1.0, device=device)
        self.penalty = torch.ones(max_batch, device=device)
        self.sample = torch.zeros(max_batch, dtype=torch.bool, device=device)
        self.seen = torch.zeros(max_batch, vocab, dtype=torch.bool, device=device)
        self.uniforms = torch.zeros(max_batch, max_steps, device=device)
        self.step = torch.zeros(max_batch, dtype=torch.long, device=device)
        # Host mirrors, so the step can skip work and size top-k without reading the device.
        self.host_sample = [False] * max_batch
        self.host_top_k = [vocab] * max_batch

    def reset(self, row: int, params, start_audio_token: int, uniforms: torch.Tensor | None) -> None:
        """Load a request's settings into `row` at the start of a sentence."""
        top_k = params.top_k if params.top_k > 0 else self.vocab
        self.temperature[row] = float(params.temperature)
        self.top_k[row] = min(top_k, self.vocab)
        # transformers skips top-p at 1.0: a negative cut removes nothing.
        self.top_p_cut[row] = 1.0 - params.top_p if params.top_p < 1.0 else -1.0
        self.penalty[row] = float(params.repetition_penalty)
        self.sample[row] = bool(params.do_sample)
        self.seen[row] = False
        self.seen[row, PLACEHOLDER_ID] = True
        self.seen[row, start_audio_token] = True
        self.step[row] = 0
        if uniforms is not None:
            self.uniforms[row, : uniforms.shape[0]] = uniforms.to(self.device)
        self.host_sample[row] = bool(params.do_sample)
        self.host_top_k[row] = min(top_k, self.vocab)

    def move_row(self, src: int, dst: int) -> None:
        for t in (self.temperature, self.top_k, self.top_p_cut, self.penalty, self.sample, self.seen, self.uniforms,
                  self.step):
            t[dst] = t[src]
        self.host_sample[dst] = self.host_sample[src]
        self.host_top_k[dst] = self.host_top_k[src]

    def choose(self, logits: torch.Tensor, n: int) -> torch.Tensor:
        """Tokens [n] for rows 0..n-1 from their logits [n, V]; updates the seen-id mask and step counters."""
        scores = self.penalise(logits, n)
        tokens = scores.argmax(dim=-1)
        if any(self.host_sample[:n]):
            tokens = torch.where(self.sample[:n], self.draw(self.warp(scores, n), n), tokens)
        rows = torch.arange(n, device=self.device)
        self.seen[rows, tokens] = True
        self.step[:n] += 1
        return tokens

    def penalise(self, logits: torch.Tensor, n: int) -> torch.Tensor:
        """Repetition penalty over the ids each row has seen (float32 result)."""
        scores = logits.float()
        penalty = self.penalty[:n, None]
        penalised = torch.where(scores < 0, scores * penalty, scores / penalty)
        return torch.where(self.seen[:n], penalised, scores)

    def warp(self, scores: torch.Tensor, n: int) -> torch.Tensor:
        """Temperature, top-k, top-p per row; removed ids get -inf."""
        scores = scores / self.temperature[:n, None]
        # top-k: drop everything below the k-th largest score of the row (ties kept, as transformers does).
        if any(k < self.vocab for k in self.host_top_k[:n]):
            k_max = max(self.host_top_k[:n])
            top = torch.topk(scores, k_max, dim=-1).values
            kth = top.gather(1, (self.top_k[:n, None] - 1).clamp(max=k_max - 1))
            scores = scores.masked_fill(scores < kth, float("-inf"))
        # top-p: drop the low tail whose cumulative probability is <= 1 - top_p, keeping at least one token.
        sorted_scores, order = torch.sort(scores, descending=False, dim=-1)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        drop_sorted = cumulative <= self.top_p_cut[:n, None]
        drop_sorted[:, -1] = False
        drop = drop_sorted.scatter(1, order, drop_sorted)
        return scores.masked_fill(drop, float("-inf"))

    def draw(self, scores: torch.Tensor, n: int) -> torch.Tensor:
        """Inverse-CDF draw from softmax(scores) with each row's next stored uniform."""
        cdf = scores.softmax(dim=-1).cumsum(dim=-1)
        step = self.step[:n, None].clamp(max=self.uniforms.shape[1] - 1)
        u = self.uniforms[:n].gather(1, step)
        total = cdf[:, -1:]
        target = torch.minimum(u * total, total * (1.0 - 1e-6))
        picked = torch.searchsorted(cdf, target, right=True).squeeze(1)
        return picked.clamp(max=self.vocab - 1)
