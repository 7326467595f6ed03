"""SSML → plan: every supported element, the security limits, and errors with line and column."""

from __future__ import annotations

import time

import pytest

from control_plane.services.planning import plan_text
from control_plane.services.ssml import (
    MAX_DEPTH,
    SsmlRejected,
    parse_ssml,
)


def _plan(body: str, **kw):
    result = parse_ssml(f'<speak xmlns="http://www.w3.org/2001/10/synthesis">{body}</speak>', **kw)
    assert result.valid, result.errors
    return result.plan.segments


def test_plain_text_and_paragraphs():
    segs = _plan("<p><s>Hello there.</s><s>Second   one.</s></p><p>Third.</p>")
    assert [s.text for s in segs] == ["Hello there.", "Second one.", "Third."]


def test_break_time_and_strength_are_exact_silences():
    segs = _plan('One<break time="750ms"/>Two<break time="1.5s"/>Three<break strength="weak"/>')
    assert [s.text for s in segs] == ["One", "Two", "Three"]
    assert segs[1].silence_before_ms == 750 and segs[2].silence_before_ms == 1500
    assert segs[2].silence_after_ms == 250
    only = _plan('<break time="1s"/>')
    assert only[0].text == "" and only[0].silence_after_ms == 1000


def test_prosody_rate_pitch_volume_nest():
    segs = _plan('<prosody rate="slow" pitch="+2st" volume="-6dB">A<prosody rate="200%" volume="+3dB">B</prosody>'
                 '</prosody><prosody rate="x-fast" pitch="x-low" volume="silent">C</prosody>')
    a, b, c = segs
    assert a.speed == 0.75 and a.pitch == pytest.approx(2 ** (2 / 12), rel=1e-3) and a.volume_db == -6
    assert b.speed == 1.5 and b.volume_db == -3
    assert c.speed == 1.75 and c.pitch == 0.8 and c.volume_db <= -120


@pytest.mark.parametrize(
    ("kind", "fmt", "text", "spoken"),
    [
        ("cardinal", None, "1234", "one thousand two hundred thirty-four"),
        ("ordinal", None, "3", "third"),
        ("digits", None, "407", "four zero seven"),
        ("characters", None, "ABC", "A B C"),
        ("spell-out", None, "hi", "h i"),
        ("date", "mdy", "12/25/2024", "December twenty-fifth twenty twenty-four"),
        ("date", "dmy", "01-02-1999", "February first nineteen ninety-nine"),
        ("time", None, "10:30pm", "ten thirty P M"),
        ("telephone", None, "+1 555 0100", "plus, one, five five five, zero one zero zero"),
        ("currency", None, "$12.50", "twelve dollars and fifty cents"),
    ],
)
def test_say_as(kind, fmt, text, spoken):
    fmt_attr = f' format="{fmt}"' if fmt else ""
    segs = _plan(f'Say <say-as interpret-as="{kind}"{fmt_attr}>{text}</say-as>.')
    assert segs[0].text == f"Say {spoken} ."


def test_sub_emphasis_phoneme_lang_voice():
    segs = _plan('<sub alias="World Wide Web">WWW</sub> is <emphasis level="strong">big</emphasis>. '
                 '<phoneme alphabet="ipa" ph="təˈmeɪtoʊ">tomato</phoneme>'
                 '<lang xml:lang="fr-FR">Bonjour.</lang><voice name="v-123">Mine.</voice>', language="en")
    assert segs[0].text == "World Wide Web is"
    assert segs[1].text == "big" and segs[1].speed == 0.9 and segs[1].volume_db == 3.0
    assert [s.text for s in segs[2:4]] == [".", "[[ təˈmeɪtoʊ ]]"]  # phoneme: IPA for the engine
    assert segs[4].text == "Bonjour." and segs[4].language == "fr-FR"
    assert segs[5].voice_id == "v-123" and segs[5].text == "Mine."


def test_marks_carry_character_offsets():
    segs = _plan('<mark name="start"/>Hello <mark name="mid"/>world.<mark name="end"/>')
    assert segs[0].marks == [("start", 0), ("mid", 6), ("end", 12)]


def test_namespace_prefix_and_no_namespace():
    prefixed = parse_ssml('<ssml:speak xmlns:ssml="http://www.w3.org/2001/10/synthesis">Hi <ssml:break time="1s"/>'
                          "there</ssml:speak>")
    assert prefixed.valid and prefixed.plan.segments[1].silence_before_ms == 1000
    assert parse_ssml("<speak>Plain</speak>").valid


def test_unknown_elements_and_attributes_are_named_with_line_and_column():
    result = parse_ssml('<speak>\n  <audio src="x"/>\n  <prosody contour="(0%,+20Hz)">x</prosody> <foo:bar '
                        'xmlns:foo="urn:x"/>\n</speak>')
    msgs = [(e.line, e.column, e.message) for e in result.errors]
    assert (2, 3, "unsupported element <audio>") in msgs
    assert (3, 3, "unsupported attribute 'contour' on <prosody>") in msgs
    assert any("unsupported element <bar>" in m for _, _, m in msgs)


def test_bad_values_are_errors():
    result = parse_ssml('<speak><break time="soon"/><prosody rate="warp">x</prosody>'
                        '<say-as interpret-as="cardinal">abc</say-as><say-as interpret-as="x">y</say-as></speak>')
    text = " | ".join(e.message for e in result.errors)
    assert "invalid break time 'soon'" in text and "invalid prosody rate 'warp'" in text
    assert "'abc' is not a number" in text and "unsupported say-as interpret-as 'x'" in text


def test_malformed_xml_reports_position():
    result = parse_ssml("<speak>\n<p>unclosed\n</speak>")
    assert not result.valid and result.errors[0].line >= 2 and result.errors[0].column > 0


@pytest.mark.parametrize(
    "doc",
    [
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        "<speak>&lol2;</speak>",
        '<!DOCTYPE speak [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><speak>&xxe;</speak>',
        '<!DOCTYPE speak SYSTEM "http://example.com/evil.dtd"><speak>x</speak>',
    ],
)
def test_doctype_and_entities_are_refused_fast(doc):
    start = time.perf_counter()
    with pytest.raises(SsmlRejected) as info:
        parse_ssml(doc)
    assert info.value.code == "ssml_forbidden"
    assert time.perf_counter() - start < 5.0  # refused before parsing (room for a busy machine)


def test_undeclared_entity_is_an_error_not_an_expansion():
    result = parse_ssml("<speak>&xxe;</speak>")
    assert not result.valid


def test_size_text_and_depth_limits():
    with pytest.raises(SsmlRejected) as info:
        parse_ssml("<speak>" + "a" * 25_000 + "</speak>")
    assert info.value.code == "ssml_too_large"
    long_text = parse_ssml("<speak>" + "<s>word word word.</s>" * 400 + "</speak>")
    assert any("limit is 5000" in e.message for e in long_text.errors)
    deep = parse_ssml("<speak>" + "<prosody>" * (MAX_DEPTH + 2) + "x" + "</prosody>" * (MAX_DEPTH + 2) + "</speak>")
    assert any("nested deeper" in e.message for e in deep.errors)
    very_deep = parse_ssml("<speak>" + "<p>" * 400 + "x" + "</p>" * 400 + "</speak>")
    assert not very_deep.valid  # libxml2's own depth guard (huge_tree off) or ours


def test_root_must_be_speak():
    assert "root element must be <speak>" in parse_ssml("<p>x</p>").errors[0].message


def test_long_text_splits_under_the_language_limit_and_marks_follow():
    sentence = "This sentence is here to make the text long enough to be split. "
    segs = _plan(sentence * 3 + '<mark name="late"/>' + "tail " * 80)
    assert len(segs) >= 4 and all(len(s.text) <= 250 for s in segs)
    marked = [s for s in segs if s.marks]
    assert marked and marked[0].marks[0][0] == "late"
    plan = plan_text("日本語の文です。" * 30, language="ja")
    assert all(len(s.text) <= 71 for s in plan.segments)


def test_plan_summary():
    result = parse_ssml('<speak>Hello world.<break time="2s"/></speak>')
    assert result.plan.billed_characters == len("Hello world.")
    assert result.plan.estimated_duration_s() == pytest.approx(2.0 + 12 / 14.0, rel=1e-2)
    assert result.plan.canonical_json() == parse_ssml('<speak>Hello   world.<break time="2000ms"/></speak>'
                                                      ).plan.canonical_json()
