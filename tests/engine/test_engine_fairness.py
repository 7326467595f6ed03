"""The XTTS engine's fair queue: which waiting requests get a decode row first, by tenant and weight.

Requests are submitted while the test holds the engine's lock, so the decode loop sees them all
waiting at once and the order of admission is exactly the fair queue's order.
"""

from __future__ import annotations

from collections import Counter

from engine_helpers import voice

from tts_contract.fairness import Share
from tts_engine.xtts.engine import XttsEngine
from tts_engine.xtts.types import SynthesisParams

TEXT = "hello world, this is a test."
QUICK = SynthesisParams(do_sample=False, max_new_tokens=4)


def _admissions(engine: XttsEngine) -> list[tuple[str, float]]:
    admitted: list[tuple[str, float]] = []
    engine.on_queue_wait = lambda share, seconds: admitted.append((share.tenant, seconds))
    return admitted


def test_a_single_request_gets_a_row_before_a_backlog_and_a_cancelled_one_never_does(tiny_model) -> None:
    cond, speaker = voice(3)
    with XttsEngine(tiny_model, device="cpu", max_batch_size=2) as engine:
        admitted = _admissions(engine)
        with engine._lock:  # the loop waits: everything below is queued before it admits anything
            backlog = [engine.submit(TEXT, "en", cond, speaker, QUICK, share=Share("a")) for _ in range(6)]
            quiet = engine.submit(TEXT, "en", cond, speaker, QUICK, share=Share("b"))
            backlog[3].cancel()
        assert list(backlog[3]) == []  # withdrawn while waiting: the stream just ends
        assert list(quiet)[-1].is_last
        for i, stream in enumerate(backlog):
            if i != 3:
                assert list(stream)[-1].is_last
    tenants = [tenant for tenant, _ in admitted]
    assert tenants[:2] == ["a", "b"]  # B's one request takes the second free row, ahead of A's backlog
    assert tenants == ["a", "b", "a", "a", "a", "a"]  # five of A's six: the cancelled one never got a row
    assert all(seconds >= 0 for _, seconds in admitted)
    assert engine.stats.snapshot()["requests_cancelled"] == 1


def test_weights_three_to_one_share_the_rows_three_to_one(tiny_model) -> None:
    cond, speaker = voice(4)
    with XttsEngine(tiny_model, device="cpu", max_batch_size=1) as engine:
        admitted = _admissions(engine)
        with engine._lock:
            streams = []
            for _ in range(8):
                streams.append(engine.submit(TEXT, "en", cond, speaker, QUICK, share=Share("gold", 3.0)))
                streams.append(engine.submit(TEXT, "en", cond, speaker, QUICK, share=Share("silver", 1.0)))
        for stream in streams:
            assert list(stream)[-1].is_last
    first = Counter(tenant for tenant, _ in admitted[:8])
    assert first == {"gold": 6, "silver": 2}  # while both wait: three rows for gold per row for silver
    assert Counter(tenant for tenant, _ in admitted) == {"gold": 8, "silver": 8}  # work-conserving: all served


def test_requests_without_a_share_are_the_anonymous_tenant(tiny_model) -> None:
    cond, speaker = voice(5)
    with XttsEngine(tiny_model, device="cpu", max_batch_size=1) as engine:
        admitted = _admissions(engine)
        assert list(engine.submit(TEXT, "en", cond, speaker, QUICK))[-1].is_last
    assert [tenant for tenant, _ in admitted] == [""]
