"""The one sentence splitter, in its three uses: plans (offsets), model segments (packed), streamed text."""

from __future__ import annotations

import pytest

from tts_contract.sentences import complete_sentence, sentences, split_sentences, split_text


def test_sentences_keep_their_punctuation_and_offsets():
    text = "One. Two!  Three? Four"
    found = sentences(text)
    assert [s for _, s in found] == ["One.", "Two!", "Three?", "Four"]
    assert all(text[offset:offset + len(s)] == s for offset, s in found)


@pytest.mark.parametrize(("text", "expected"), [
    ("Wait; then go… Now", ["Wait;", "then go…", "Now"]),
    ("यह वाक्य एक है। यह दो है।", ["यह वाक्य एक है।", "यह दो है।"]),
    ("هل أنت هنا؟ نعم", ["هل أنت هنا؟", "نعم"]),
    ("これは文です。次の文です。", ["これは文です。", "次の文です。"]),
    ("Pi is 3.14 exactly. Yes", ["Pi is 3.14 exactly.", "Yes"]),
])
def test_sentence_ends_across_scripts(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_collapses_whitespace():
    assert split_sentences("  One.\n\n Two \t words. ") == ["One.", "Two words."]


def test_plan_pieces_are_one_sentence_each_with_true_offsets():
    text = "Hello there. How are you? Fine, thanks, and a rather long clause follows here."
    pieces = split_text(text, 30)
    assert [p for _, p in pieces] == ["Hello there.", "How are you?", "Fine, thanks,", "and a rather long clause",
                                      "follows here."]
    assert all(text[offset:offset + len(p)] == p for offset, p in pieces)
    assert all(len(p) <= 30 for _, p in pieces)


def test_clauses_are_packed_before_words_are():
    pieces = [p for _, p in split_text("alpha, beta, gamma, delta, epsilon zeta eta theta.", 20)]
    assert pieces == ["alpha, beta, gamma,", "delta,", "epsilon zeta eta", "theta."]


def test_an_overlong_word_is_cut_at_the_limit():
    assert split_text("a" * 25, 10) == [(0, "a" * 10), (10, "a" * 10), (20, "a" * 5)]


def test_full_width_clause_breaks_split_cjk_without_spaces():
    text = "这是一个很长的句子，里面有很多的逗号，还有更多的字。"
    pieces = split_text(text, 12)
    assert all(len(p) <= 12 for _, p in pieces) and len(pieces) > 1
    assert "".join(p for _, p in pieces) == text  # nothing added between pieces


def test_packing_joins_whole_sentences_while_they_fit():
    text = "One. Two. Three is longer. Four."
    assert [p for _, p in split_text(text, 12, pack=True)] == ["One. Two.", "Three is", "longer.", "Four."]
    assert split_text(text, 250, pack=True) == [(0, text)]


def test_packing_cjk_adds_no_spaces():
    text = "".join(f"这是第{i}句。" for i in range(30))
    pieces = [p for _, p in split_text(text, 82, pack=True)]
    assert len(pieces) > 1 and all(len(p) <= 82 for p in pieces)
    assert "".join(pieces) == text


def test_split_text_rejects_a_bad_limit():
    with pytest.raises(ValueError):
        split_text("x", 0)


def test_empty_and_blank_text_have_no_pieces():
    assert split_text("", 10) == [] and split_text("   ", 10) == [] and split_sentences(" \n ") == []


@pytest.mark.parametrize(("buffer", "expected"), [
    ("Hello", None),
    ("Hello.", None),  # "3." may become "3.5": wait for what follows
    ("Hello. ", (6, 7)),
    ("Hello.\n\n", (6, 8)),
    ("Pi is 3.5 now. And", (14, 15)),
    ("Hi. 3.", (3, 4)),
    ("Stop; go", (5, 6)),
    ("你好。世界", (3, 3)),  # full-width: complete where it stands
    ("你好。", (3, 3)),
])
def test_complete_sentence_in_a_growing_buffer(buffer, expected):
    assert complete_sentence(buffer) == expected


def test_streamed_text_splits_as_the_whole_text_does():
    text = "First one. Second one! A third? 最后一句。Done. "
    spoken, buffer = [], ""
    for char in text:  # arrives one character at a time
        buffer += char
        while (found := complete_sentence(buffer)) is not None:
            end, consumed = found
            spoken.append(buffer[:end].strip())
            buffer = buffer[consumed:]
    assert spoken == split_sentences(text)
