"""The voice prefix cache: a prefill that reuses a voice's cached conditioning keys and values gives the
same logits, latents and codes as one that computes them, and the cache is an LRU keyed by exact bytes."""

from __future__ import annotations

import torch
from engine_helpers import reference_generate, strip_stop, voice

from tts_engine.xtts.engine import XttsEngine
from tts_engine.xtts.offline import CodeRequest
from tts_engine.xtts.prefix_cache import PrefixCache, PrefixKV, voice_key
from tts_engine.xtts.types import SynthesisParams

GREEDY = SynthesisParams(do_sample=False)
TEXTS = ["hello world, this is a test.", "the quick brown fox jumps over the lazy dog", "hi.", "bonjour le monde"]


def test_cached_prefill_equals_full_prefill(tiny_model):
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=2, prefix_cache_voices=0)
    decoder = engine.batcher.decoder
    cond = engine.intake.cond_tensor(voice(3)[0])
    tokens = engine.intake.tokenize(TEXTS[0], "en")[0]
    prefix = decoder.prefix_embedding(cond, tokens)
    with torch.inference_mode():
        full_logits, full_latent = decoder.prefill(0, prefix)
        full_keys = decoder.k_cache[:, 0, :, : prefix.shape[0]].clone()
        cached = decoder.prefix_kv(0, cond.shape[0])
        logits, latent = decoder.prefill(1, prefix, cached)
    assert cached.length == cond.shape[0] == 32
    torch.testing.assert_close(logits, full_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(latent, full_latent, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(decoder.k_cache[:, 1, :, : prefix.shape[0]], full_keys, atol=1e-4, rtol=1e-4)
    assert int(decoder.lengths[1]) == prefix.shape[0]


def test_requests_sharing_a_voice_hit_the_cache_and_match_the_reference(tiny_model):
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=4, prefix_cache_voices=4)
    cond = voice(7)[0]
    arrivals = zip(TEXTS, [0, 0, 3, 5], strict=True)
    requests = [CodeRequest(text, "en", cond, GREEDY, arrival_step=step) for text, step in arrivals]
    results = engine.generate_codes(requests)
    # The first prefill computes the voice; every later one (same step or later) reuses it.
    assert (engine.prefix_cache.misses, engine.prefix_cache.hits) == (1, 3)
    assert engine.stats.snapshot()["prefix_cache_hits"] == 3
    for request, result in zip(requests, results, strict=True):
        assert result.codes == strip_stop(tiny_model, reference_generate(tiny_model, request.text, "en", cond))


def test_a_disabled_cache_is_never_consulted(tiny_model):
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=2, prefix_cache_voices=0)
    cond = voice(8)[0]
    engine.generate_codes([CodeRequest(TEXTS[2], "en", cond, GREEDY), CodeRequest(TEXTS[3], "en", cond, GREEDY)])
    assert (engine.prefix_cache.hits, engine.prefix_cache.misses, len(engine.prefix_cache)) == (0, 0, 0)


def _entry(value: float) -> PrefixKV:
    return PrefixKV(torch.full((2, 4, 32, 8), value), torch.full((2, 4, 32, 8), -value))


def test_cache_is_lru_and_keyed_by_exact_bytes():
    cache = PrefixCache(max_voices=2)
    a, b, c = (voice_key(torch.full((32, 16), v)) for v in (1.0, 2.0, 3.0))
    assert voice_key(torch.full((32, 16), 1.0)) == a
    assert voice_key(torch.full((32, 16), 1.0).double()) != a  # dtype is part of the key
    assert voice_key(torch.full((16, 32), 1.0)) != a  # and shape
    nudged = torch.full((32, 16), 1.0)
    nudged[5, 3] = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0))
    assert voice_key(nudged) != a  # one ulp is another voice
    cache.put(a, _entry(1.0))
    cache.put(b, _entry(2.0))
    assert cache.get(a) is not None  # a is now the most recent
    cache.put(c, _entry(3.0))  # evicts b
    assert cache.get(b) is None and cache.get(a) is not None and cache.get(c) is not None
    assert len(cache) == 2 and cache.nbytes == 2 * _entry(0.0).nbytes
