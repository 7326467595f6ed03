"""Planning rules of the shortened first segment (services/first_segment.py): where the first sentence is
cut, where it never is, and that marks, silences, billing and the cache key stay right."""

from __future__ import annotations

import pytest

from control_plane.services.first_segment import MIN_WORDS, count_words
from control_plane.services.planning import plan_text
from control_plane.services.ssml import parse_ssml


def texts(text: str, **kw) -> list[str]:
    return [s.text for s in plan_text(text, language=kw.pop("language", "en"), shorten_first_segment=True,
                                      **kw).segments]


@pytest.mark.parametrize("text, first", [
    ("Thanks for calling Acme support, how can I help you today?", "Thanks for calling Acme support,"),
    ("Martha planted tomatoes, beans and a row of sunflowers along the fence.", "Martha planted tomatoes,"),
    ("Dear Dr. Smith, thank you for your letter about the missing parcel.", "Dear Doctor Smith,"),
    ("Good news for you: the parcel arrived at the depot this morning.", "Good news for you:"),
    ("We checked the account — the refund went out on Monday.", "We checked the account —"),
])
def test_the_first_clause_of_three_to_five_words_is_the_first_segment(text, first):
    got = texts(text)
    assert got[0] == first and len(got) == 2
    assert " ".join(got) == plan_text(text, language="en").segments[0].text, "exact slices, one space between"


@pytest.mark.parametrize("text, first", [
    ("I can help you with your order if you give me the number.", "I can help you"),
    ("Please remember to bring your passport and a printed copy of the booking.", "Please remember to bring"),
    ("Let me look that up for you while you wait on the line.", "Let me look that up"),
    # the first clause ("Yes,") is too short and the next one too far: a word boundary in the long sentence
    ("Yes, I can help you with that, just give me a moment please.", "Yes, I can help you"),
    # a six-word first clause is half of this sentence: not short enough
    ("Thanks for calling the support line, how can I help you today?", "Thanks for calling"),
])
def test_a_long_sentence_without_an_early_clause_is_cut_at_a_phrase_boundary(text, first):
    got = texts(text)
    assert got[0] == first and len(got) == 2


@pytest.mark.parametrize("text", [
    "Short one.",
    "Hello, how can I help you today?",  # "Hello," is one word; seven words are not long
    "Thanks for calling, goodbye.",  # the rest would be one word
    "I would like to check on my order status.",  # nine words, no clause
    "On May 5, 2024 we shipped your order to the address on file.",  # a date's comma
    "That will be $12.50, and the delivery is free of charge today.",  # after an amount
    "Please write to help@example.com, and we will answer within two days.",  # after an address
    "Your order #A-10293 ships on Jan 5th, so expect it next week at home.",  # expansions make it long
    "Call 555-0123, then press one for billing or two for support.",
    "Please bring the forms etc., and we will take care of the rest.",  # after an abbreviation
    "Il faut que nous parlions de votre commande avant demain matin.",  # no word cuts outside English
])
def test_no_cut_where_it_would_break_a_reading_or_make_a_fragment(text):
    assert texts(text, language=_lang(text)) == [s.text for s in plan_text(text, language=_lang(text)).segments]


def _lang(text: str) -> str:
    return "fr" if text.startswith("Il ") else "en"


def test_every_cut_leaves_at_least_three_words_on_each_side():
    samples = ["Thanks for calling Acme support, how can I help you today?",
               "Sure, well, okay then, I think we can sort this out for you today.",
               "Right — so, the thing is, we never got the form you sent us last week."]
    for text in samples:
        got = texts(text)
        assert all(count_words(part) >= MIN_WORDS for part in got), got


def test_only_the_first_sentence_is_cut():
    text = "Thanks for calling Acme support, how can I help? Your parcel left the depot, it should arrive soon."
    assert texts(text) == ["Thanks for calling Acme support,", "how can I help?",
                           "Your parcel left the depot, it should arrive soon."]


def test_a_short_first_sentence_is_left_and_the_next_one_is_not_cut():
    text = "Hi! Thanks for calling Acme support, how can I help you today?"
    assert texts(text) == ["Hi!", "Thanks for calling Acme support, how can I help you today?"]


def test_a_cut_never_falls_inside_a_phoneme_block():
    from control_plane.services.pls import LexiconSet, parse_pls

    pls = ('<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" alphabet="ipa" '
           'xml:lang="en-US"><lexeme><grapheme>Acme</grapheme><phoneme>ˈæk mi ˌsʌp ɔːrt</phoneme></lexeme></lexicon>')
    lexicons = LexiconSet([parse_pls(pls, "t", 100)])
    segments = plan_text("Acme is a great company and we help you with your order.", language="en",
                         lexicons=lexicons, shorten_first_segment=True).segments
    for seg in segments:
        assert seg.text.count("[[") == seg.text.count("]]")


def test_billing_the_plan_and_its_cache_key_are_stable():
    text = "Thanks for calling Acme support, how can I help you today?"
    cut = plan_text(text, language="en", shorten_first_segment=True)
    whole = plan_text(text, language="en")
    assert cut.billed_characters == whole.billed_characters == len(text)
    assert cut.segments[0].joins_next and not cut.segments[1].joins_next
    assert cut.canonical_json() == plan_text(text, language="en", shorten_first_segment=True).canonical_json()
    assert cut.canonical_json() != whole.canonical_json()


def test_prosody_is_kept_on_both_parts():
    segments = plan_text("Thanks for calling Acme support, how can I help you today?", language="en", speed=1.3,
                         pitch=0.9, volume_db=-3.0, shorten_first_segment=True).segments
    assert len(segments) == 2
    assert all((s.speed, s.pitch, s.volume_db) == (1.3, 0.9, -3.0) for s in segments)


def test_ssml_cuts_inside_the_first_text_run_only_and_marks_follow_their_words():
    doc = ('<speak><break time="300ms"/><mark name="start"/>Thanks for calling Acme support, <mark name="q"/>'
           'how can I help you today?<break time="500ms"/> Your parcel left the depot, it arrives soon.</speak>')
    result = parse_ssml(doc, shorten_first_segment=True)
    assert result.valid
    segs = result.plan.segments
    assert [s.text for s in segs] == ["Thanks for calling Acme support,", "how can I help you today?",
                                      "Your parcel left the depot, it arrives soon."]
    assert segs[0].silence_before_ms == 300 and segs[0].silence_after_ms == 0 and segs[0].marks == [("start", 0)]
    assert segs[1].marks == [("q", 0)] and segs[1].silence_before_ms == 0
    assert segs[2].silence_before_ms == 500
    assert result.plan.billed_characters == parse_ssml(doc).plan.billed_characters


def test_ssml_prosody_and_markup_before_the_text_are_respected():
    slow = parse_ssml('<speak><prosody rate="slow">Thanks for calling Acme support, how can I help you today?'
                      '</prosody></speak>', shorten_first_segment=True).plan.segments
    assert [s.text for s in slow] == ["Thanks for calling Acme support,", "how can I help you today?"]
    assert slow[0].speed == slow[1].speed < 1.0
    # Text the markup reads (say-as) comes first: the document's first text run is not written text.
    coded = parse_ssml('<speak><say-as interpret-as="characters">AB12</say-as> is your code, please keep it safe '
                       'for later today.</speak>', shorten_first_segment=True).plan.segments
    assert len(coded) == 1
    # A mark inside the first clause ends the first text run there: too short to cut, the mark stays put.
    marked = parse_ssml('<speak>Thanks for <mark name="m"/>calling Acme support, how can I help you today?</speak>',
                        shorten_first_segment=True).plan.segments
    assert len(marked) == 1 and marked[0].marks == [("m", len("Thanks for "))]


def test_off_by_default_in_the_planners():
    text = "Thanks for calling Acme support, how can I help you today?"
    assert len(plan_text(text, language="en").segments) == 1
    assert len(parse_ssml(f"<speak>{text}</speak>").plan.segments) == 1
