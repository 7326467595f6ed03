"""The bundled voice speaks `[[ IPA ]]` blocks (from `<phoneme>` and IPA lexicon entries) as given,
and word timings treat a block as one word."""

from __future__ import annotations

import numpy as np

from tts_engine.piper import PiperEngine


def test_a_phoneme_block_is_spoken_and_timed_as_one_word():
    engine = PiperEngine.bundled()
    text = "I would like a [[ pəˈteɪtoʊ ]] and a tomato please."
    chunks = list(engine.synthesize_timed(text))
    words = [text[w.char_start:w.char_end] for _, ws in chunks for w in ws]
    assert words == ["I", "would", "like", "a", "[[ pəˈteɪtoʊ ]]", "and", "a", "tomato", "please."]
    written = engine.synthesize("I would like a potato and a tomato please.")
    spoken = np.concatenate([a for a, _ in chunks])
    assert abs(spoken.size - written.size) < 0.25 * written.size  # the block is speech, not skipped or spelled
    assert spoken.size != engine.synthesize("I would like a and a tomato please.").size
