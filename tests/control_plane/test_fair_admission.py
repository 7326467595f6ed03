"""Weighted fair shares in admission control (services/admission.py), on a fake clock: shares, weights,
borrowing, refusal order, the tenant's own Retry-After, and bounded per-tenant metrics."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from admission_helpers import Clock, measured

from control_plane.metrics import MAX_TENANT_LABELS, Metrics
from control_plane.services.admission import Admission, Overloaded, fair_wait
from tts_contract.fairness import Share

A, B, C = Share("a"), Share("b"), Share("c")



def _admission(max_wait_s: float = 1.0, rate: float = 100.0, **kwargs) -> tuple[Admission, Clock]:
    clock = Clock()
    admission = Admission(max_wait_s=max_wait_s, min_inflight=1, clock=clock, rng=random.Random(3), **kwargs)
    measured(admission, clock, rate)
    return admission, clock


def _flood(admission: Admission, share: Share, n: int, chars: int = 40) -> int:
    admitted = 0
    for i in range(n):
        try:
            admission.admit("piper", f"{share.tenant}{i}", chars, share)
            admitted += 1
        except Overloaded:
            pass
    return admitted


def test_fluid_model_lends_a_drained_share_on() -> None:
    # Alone: the whole engine. 100 chars at 100 chars/s.
    assert fair_wait([], (100, 1), 0, 100) == pytest.approx(1.0)
    # Two equal backlogs share the engine: 100 chars each at 50 chars/s = 2 s.
    assert fair_wait([(100, 1)], (100, 1), 0, 100) == pytest.approx(2.0)
    # The other tenant has 20: both at 50/s for 0.4 s (20 each), then ours alone: 80 more at 100/s = 0.8 s.
    assert fair_wait([(20, 1)], (100, 1), 0, 100) == pytest.approx(1.2)
    # Weight 3 against 1, both long: ours gets 3/4 of the engine.
    assert fair_wait([(1000, 1)], (75, 3), 0, 100) == pytest.approx(1.0)
    # No backlog of its own: one segment of the other tenant (taken as long as its own first) comes first.
    assert fair_wait([(1000, 1)], (0, 1), 50, 100) == pytest.approx(0.5)
    # ... whatever the weights: beside a weight-3 flood a weight-1 newcomer still waits one segment.
    assert fair_wait([(1000, 3)], (0, 1), 50, 100) == pytest.approx(0.5)
    # A weight-1 tenant's backlog spans 3x as much of a weight-3 tenant's service as its own.
    assert fair_wait([(1000, 3)], (100, 1), 50, 100) == pytest.approx((100 + 350) / 100)
    assert fair_wait([], (0, 1), 50, 100) == 0.0  # idle engine: no wait at all
    # Never more than one single queue would make it wait (work-conserving).
    for others in ([(300, 1)], [(300, 0.5), (20, 4)], [(5, 1), (5, 1), (900, 2)]):
        assert fair_wait(others, (200, 1), 30, 100) <= (200 + 30 + sum(c for c, _ in others)) / 100 + 1e-9


def test_flooding_tenant_is_refused_while_a_quiet_one_is_admitted() -> None:
    admission, clock = _admission()
    admitted_a = _flood(admission, A, 100)
    assert 2 <= admitted_a <= 4  # about the bound's worth of its own work (1 s at 100 chars/s of 40 chars)
    for i in range(5):  # the quiet tenant arrives while the flood holds: admitted every time
        ticket = admission.admit("piper", f"b{i}", 40, B)
        admission.started("piper", f"b{i}", 40, tenant="b")
        clock.now += 0.4
        admission.finished("piper", 40, completed=True, tenant="b")
        admission.release(ticket)
        with pytest.raises(Overloaded):  # and the flooding one is still refused
            admission.admit("piper", f"a-more{i}", 40, A)


def test_refusal_order_follows_the_share_used() -> None:
    """Two tenants with backlogs: the one further above its share (backlog per weight) is refused first."""
    admission, _ = _admission(max_wait_s=1.5)
    for i in range(4):
        admission.started("piper", f"a{i}", 40, tenant="a")  # a: 160 chars in flight
    admission.started("piper", "b0", 40, tenant="b")  # b: 40
    with pytest.raises(Overloaded):
        admission.admit("piper", "a-new", 40, A)  # a: its 160, then b's 40 => 2 s, over 1.5 s
    # b: its 40, and a's due over that span (40 + a segment): 1.2 s
    admission.admit("piper", "b-new", 40, B)  # b: below its share, admitted
    assert admission.expected_wait("piper", A, 40) > admission.expected_wait("piper", B, 40)


def _simulate(admission: Admission, clock: Clock, queue: list[tuple[str, str]], tries: dict[Share, int],
              seconds: float, chars: int = 10, rate: float = 100.0) -> tuple[Counter[str], Counter[str]]:
    """A single-queue engine (`queue`: request ids and tenants waiting, in arrival order) serving `rate` chars/s
    one request at a time, and tenants that each try `tries[share]` requests every 0.1 s: characters served
    and requests refused, by tenant."""
    served: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    n = 0
    for _ in range(int(seconds / 0.1)):
        for share, count in tries.items():
            for _ in range(count):
                n += 1
                try:
                    admission.admit("piper", f"r{n}", chars, share)  # released by started()
                    queue.append((f"r{n}", share.tenant))
                except Overloaded:
                    refused[share.tenant] += 1
        for _ in range(int(0.1 * rate / chars)):  # the engine's work in this tick, in arrival order
            if not queue:
                break
            request_id, tenant = queue.pop(0)
            admission.started("piper", request_id, chars, tenant)
            clock.now += chars / rate
            admission.finished("piper", chars, completed=True, tenant=tenant)
            served[tenant] += chars
    return served, refused


def test_weights_set_what_each_flooding_tenant_is_served() -> None:
    """Two tenants flooding at once with weights 3 and 1 are served 3:1, even by a single queue: each is held
    to a backlog in the ratio of the weights, and in one queue every request waits the same time."""
    admission, clock = _admission(max_wait_s=2.0)
    heavy, light = Share("heavy", 3.0), Share("light", 1.0)
    queue: list[tuple[str, str]] = []
    _simulate(admission, clock, queue, {heavy: 20, light: 20}, 10)  # settles
    served, refused = _simulate(admission, clock, queue, {heavy: 20, light: 20}, 60)
    assert served["heavy"] / served["light"] == pytest.approx(3.0, rel=0.15)
    assert refused["heavy"] and refused["light"]
    assert sum(served.values()) == pytest.approx(60 * 100, rel=0.05)  # the engine never idles


def test_quiet_tenant_is_never_refused_beside_a_flood() -> None:
    admission, clock = _admission(max_wait_s=1.0)
    quiet, flood = Share("quiet"), Share("flood")
    queue: list[tuple[str, str]] = []
    served, refused = _simulate(admission, clock, queue, {flood: 30}, 5)
    assert refused["flood"] > 0
    for _ in range(20):  # one quiet request every 2 s through the flood
        _, refused = _simulate(admission, clock, queue, {flood: 30, quiet: 1}, 0.1)
        assert refused["quiet"] == 0 and refused["flood"] > 0
        _simulate(admission, clock, queue, {flood: 30}, 1.9)


def test_an_idle_share_is_lent_to_the_tenant_waiting() -> None:
    """Work-conserving: a tenant alone may use the whole engine, whatever its weight."""
    admission, _ = _admission()
    small = Share("small", 0.01)
    assert _flood(admission, small, 100, chars=10) == pytest.approx(10, abs=1)  # 1 s of work at 100 chars/s
    # With a heavy tenant arriving, the small one is held back to its sliver and the heavy one admitted.
    admission.admit("piper", "big0", 10, Share("big", 100.0))
    with pytest.raises(Overloaded):
        admission.admit("piper", "small-more", 10, small)


def test_an_engine_with_spare_capacity_never_refuses() -> None:
    """Whatever the mix, while the whole backlog fits in the bound nobody is refused."""
    admission, _ = _admission(max_wait_s=1.0)
    rng = random.Random(5)
    total = 0
    while total + 20 <= 100:  # 1 s of work at 100 chars/s
        share = Share(rng.choice("abcdef"), rng.choice([0.1, 1.0, 3.0, 50.0]))
        admission.admit("piper", f"r{total}", 20, share)
        total += 20


def test_retry_after_comes_from_the_tenants_own_wait() -> None:
    admission, _ = _admission()
    for i in range(8):
        admission.started("piper", f"a{i}", 100, tenant="a")  # a: 8 s of its own work
    admission.started("piper", "b0", 150, tenant="b")  # b: 1.5 s
    with pytest.raises(Overloaded) as a_refused:
        admission.admit("piper", "a-new", 10, A)
    with pytest.raises(Overloaded) as b_refused:
        admission.admit("piper", "b-new", 10, B)
    a_retry, b_retry = a_refused.value.fields["retry_after_s"], b_refused.value.fields["retry_after_s"]
    # a: b's 150 at half the engine (3 s), then a's remaining 660 + 10 alone (6.6 s), less 0.1 s: 9.5 s.
    assert 9 <= a_retry <= 14  # ceil(9.5 s - 1 s) = 9, jittered up by at most half
    # b: its 150 + 10 at half the engine, less 0.1 s: 3.1 s, so ceil(3.1 - 1) = 3 before the jitter.
    assert 3 <= b_retry <= 5
    assert b_retry < a_retry


def test_a_burst_from_many_tenants_is_bounded_too() -> None:
    """Each new tenant is served at its share: a burst of one request from each of 120 tenants is admitted
    only as far as the engine can start them within the bound."""
    admission, _ = _admission()
    admitted = sum(_flood(admission, Share(f"t{i}"), 1, chars=40) for i in range(120))
    assert 2 <= admitted <= 4
    assert admission.loads["piper"].backlog_chars == admitted * 40


def test_forgotten_tenants_do_not_accumulate() -> None:
    admission, clock = _admission()
    for i in range(600):
        ticket = admission.admit("piper", f"r{i}", 1, Share(f"t{i}"))
        admission.release(ticket)
        clock.now += 1.0
    assert len(admission.loads["piper"].tenants) < 300


def test_per_tenant_metrics_are_bounded() -> None:
    metrics = Metrics()
    admission, _ = _admission(metrics=metrics)
    for i in range(MAX_TENANT_LABELS + 20):
        ticket = admission.admit("piper", f"r{i}", 1, Share(f"tenant-{i}"), tier="standard")
        admission.release(ticket)
    for i in range(40):
        admission.started("piper", f"x{i}", 40, tenant="tenant-0")
    with pytest.raises(Overloaded):
        admission.admit("piper", "late", 40, Share("tenant-0", 3.0), tier="premium")
    text = metrics.exposition().decode()
    named = {line.split('tenant="')[1].split('"')[0] for line in text.splitlines()
             if line.startswith("tts_tenant_admission_decisions_total{")}
    assert len(named) == MAX_TENANT_LABELS + 1 and "other" in named
    assert ('tts_tenant_admission_decisions_total{engine="piper",outcome="shed",tenant="tenant-0",tier="premium"} 1.0'
            in text)
    assert 'tts_tier_admission_expected_wait_seconds_count{engine="piper",outcome="shed",tier="premium"} 1.0' in text
