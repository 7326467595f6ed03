"""`Admission.refuse_early`, the admission gate's question (api/admission_gate.py), on a fake clock: it refuses
only what `admit` would refuse for any request of the tenant on any engine, gives the same error, and counts
it and feeds it back into Retry-After as `admit` does."""

from __future__ import annotations

import random

import pytest
from admission_helpers import Clock, measured

from control_plane.metrics import Metrics
from control_plane.services.admission import Admission, Overloaded
from tts_contract.fairness import Share

FLOOD, QUIET = Share("flood"), Share("quiet")


def _admission(rate: float = 100.0, metrics: Metrics | None = None, seed: int = 3) -> tuple[Admission, Clock]:
    clock = Clock()
    admission = Admission(max_wait_s=1.0, min_inflight=1, clock=clock, rng=random.Random(seed), metrics=metrics)
    measured(admission, clock, rate)
    return admission, clock


def _refused(admission: Admission, engine: str, chars: int, share: Share) -> Overloaded | None:
    try:
        ticket = admission.admit(engine, "probe", chars, share)
    except Overloaded as exc:
        return exc
    admission.release(ticket)
    return None


def test_a_tenant_over_its_share_is_refused_with_the_error_admit_gives() -> None:
    admission, _ = _admission()
    admission.started("piper", "f", 1000, FLOOD.tenant)  # ten seconds of the flood's own work
    early = admission.refuse_early(FLOOD, "standard")
    assert early is not None
    admitted = _refused(admission, "piper", 1, FLOOD)
    assert admitted is not None
    assert (early.status_code, early.code) == (admitted.status_code, admitted.code) == (503, "engine_overloaded")
    assert early.message.split(" retry in ")[0] == admitted.message.split(" retry in ")[0]
    assert "piper engine is at capacity" in early.message and "about 10.0 s" in early.message
    assert int(early.headers["Retry-After"]) >= 9 and early.fields["retry_after_s"] == int(early.headers["Retry-After"])


def test_a_tenant_within_its_share_and_an_unbounded_engine_pass() -> None:
    admission, _ = _admission()
    admission.started("piper", "f", 1000, FLOOD.tenant)
    assert admission.refuse_early(QUIET) is None  # its wait: one segment of the flood's at most
    assert Admission(max_wait_s=0, min_inflight=1).refuse_early(FLOOD) is None  # admission off
    assert Admission(max_wait_s=1.0, min_inflight=1).refuse_early(FLOOD) is None  # nothing decided yet
    below, _ = _admission()
    below.min_inflight = 5  # below the engine requests in flight that make the bound apply
    below.started("piper", "f", 1000, FLOOD.tenant)
    assert below.refuse_early(FLOOD) is None


def test_another_engine_that_would_admit_lets_the_request_through() -> None:
    admission, _ = _admission()
    admission.started("piper", "f", 1000, FLOOD.tenant)
    admission.load("xtts")  # an engine this replica decides for, idle: any request of the flood is admitted there
    assert admission.refuse_early(FLOOD) is None
    admission.started("xtts", "x", 10, "someone")  # busy now, but unmeasured: admit refuses, so may the gate
    refusal = admission.refuse_early(FLOOD)
    assert refusal is not None and "piper engine" in refusal.message  # the engine with the known, shortest wait


def test_refused_early_only_what_admit_refuses_whatever_the_load() -> None:
    rng = random.Random(11)
    refused = 0
    for round_ in range(300):
        admission, clock = _admission(rate=rng.choice([50.0, 100.0, 400.0]), seed=round_)
        measured(admission, clock, rng.choice([30.0, 100.0]), engine="xtts")
        for i in range(rng.randint(0, 6)):
            share = Share(rng.choice(["flood", "quiet", "third"]), rng.choice([0.5, 1.0, 3.0]))
            admission.started(rng.choice(["piper", "xtts"]), f"r{i}", rng.randint(1, 600), share.tenant)
        share = Share(rng.choice(["flood", "quiet", "third"]), rng.choice([0.5, 1.0, 3.0]))
        if admission.refuse_early(share) is None:
            continue
        refused += 1
        for engine in ("piper", "xtts"):
            for chars in (1, 20, 400):
                assert _refused(admission, engine, chars, share) is not None, (round_, engine, chars)
    assert refused > 30  # the property was exercised


def test_refused_early_only_what_admit_refuses_among_contending_tenants() -> None:
    """The same property where tenants contend (callers refused and due back), so the fair order between them
    decides too, above and below ADMISSION_MIN_INFLIGHT."""
    rng = random.Random(23)
    refused = ordered = 0
    names = ["flood", "quiet", "third"]
    for round_ in range(400):
        admission, clock = _admission(rate=rng.choice([50.0, 100.0, 400.0]), seed=round_)
        weights = {name: rng.choice([0.5, 1.0, 3.0]) for name in names}
        for i in range(rng.randint(2, 10)):
            name = rng.choice(names)
            chars = rng.randint(1, 300)
            try:
                admission.admit("piper", f"a{i}", chars, Share(name, weights[name]))
                admission.started("piper", f"a{i}", chars, name)
            except Overloaded:
                pass  # refused: it contends now
            clock.now += rng.choice([0.0, 0.05, 0.3])
        admission.min_inflight = rng.choice([1, 4, 8])
        share = Share(rng.choice(names), rng.choice([0.5, 1.0, 3.0]))
        if admission.refuse_early(share) is None:
            continue
        refused += 1
        load = admission.loads["piper"]
        wait = admission.expected_wait("piper", share, 1)
        ordered += (wait is not None and wait <= 1.0) or load.inflight + load.waiting < admission.min_inflight
        for chars in (1, 20, 400):
            assert _refused(admission, "piper", chars, share) is not None, (round_, chars)
    assert refused > 30 and ordered > 5  # exercised, the fair order among them


def test_counted_and_fed_back_as_admit_refusals_are() -> None:
    metrics = Metrics()
    admission, clock = _admission(metrics=metrics)
    admission.started("piper", "f", 1000, FLOOD.tenant)
    due = []  # when each refused caller is told to come back
    for i in range(6):  # the gate's refusals and the flow's alternating: one schedule of returns
        refusal = admission.refuse_early(FLOOD, "standard") if i % 2 else _refused(admission, "piper", 200, FLOOD)
        assert refusal is not None
        due.append(clock.now + int(refusal.headers["Retry-After"]))
    shed = metrics.registry.get_sample_value("tts_admission_decisions_total", {"engine": "piper", "outcome": "shed"})
    assert shed == 6
    assert metrics.registry.get_sample_value("tts_tenant_admission_decisions_total", {
        "engine": "piper", "tier": "standard", "tenant": "flood", "outcome": "shed"}) == 3
    # each refusal takes the next place: 1 s apart (200 characters at 100/s, the flood alone, at twice the pace
    # its share serves them), the gate's refusals too
    assert [b - a for a, b in zip(due, due[1:], strict=False)] == pytest.approx([1.0] * 5, abs=1.0)
    assert due[-1] - due[0] >= 4


def test_retry_after_is_that_of_a_request_as_long_as_the_tenants_last() -> None:
    admission, _ = _admission()
    admission.started("piper", "f", 1000, FLOOD.tenant)
    admission.started("piper", "q", 200, QUIET.tenant)
    refused = _refused(admission, "piper", 60, QUIET)  # its requests start with 60 characters
    assert refused is not None
    early = admission.refuse_early(QUIET)
    assert early is not None
    # the wait told (and the Retry-After floor) is that of a 60-character request, not of the 1 the gate decided on
    about = [m.split(" s for ")[0].split("about ")[1] for m in (refused.message, early.message)]
    assert about[0] == about[1] and float(about[0]) > (200 + 1 + 200) / 100
