"""Weights through admission when the engine runs nearly everything admitted at once (services/admission.py), on a
fake clock: under contention a tenant gives way to a contending tenant further below its share (the engines'
fair order, taken at the door), so two flooding tenants are served in the ratio of their weights even where the
bound holds only a few requests; a quiet tenant is never waited for, and the engine stays busy. The scenarios are
the gateway benchmark's (admission_sim.py: Piper's 4 workers, clients honouring Retry-After)."""

from __future__ import annotations

import random

import pytest
from admission_helpers import Clock, measured
from admission_sim import gateway

from control_plane.services.admission import Admission, Overloaded
from tts_contract.fairness import Share

HEAVY, LIGHT = Share("P", 3.0), Share("S", 1.0)


def _admission(rate: float = 230.0, min_inflight: int = 1) -> tuple[Admission, Clock]:
    clock = Clock()
    admission = Admission(max_wait_s=1.0, min_inflight=min_inflight, clock=clock, rng=random.Random(3))
    measured(admission, clock, rate)
    return admission, clock


def _admits(admission: Admission, share: Share, chars: int = 60) -> bool:
    try:
        ticket = admission.admit("piper", "probe", chars, share)
    except Overloaded:
        return False
    admission.release(ticket)
    return True


def _contending(admission: Admission) -> None:
    """P (weight 3): four requests of 56 characters running, then refused a fifth; S (weight 1): one running."""
    for i in range(4):
        admission.started("piper", f"p{i}", 56, "P")
    admission.started("piper", "s0", 56, "S")
    assert not _admits(admission, HEAVY)  # 224 of its own and S's 56: 1.2 s at 230 characters/s
    admission.finished("piper", 56, completed=False, tenant="P")  # P: 3 running (168 characters)


def test_under_contention_the_tenant_further_below_its_share_goes_first() -> None:
    admission, _ = _admission()
    _contending(admission)
    # S's next request would start within the bound (its 56, then P's 168 over that span: 0.97 s) ...
    assert admission.expected_wait("piper", LIGHT, 60) <= 1.0
    # ... but P's next comes first in the fair order ((168 + 60) / 3 = 76 against (56 + 60) / 1): S waits
    assert not _admits(admission, LIGHT)
    assert _admits(admission, HEAVY)  # and P, now that S contends too, is admitted
    assert admission.refuse_early(LIGHT) is None  # a request of one character would still be S's turn


def test_the_fair_order_holds_below_min_inflight_too() -> None:
    """Below ADMISSION_MIN_INFLIGHT the bound is not asked (on a slow engine that is how anything gets in), but
    contending tenants still take the free worker in the fair order."""
    admission, _ = _admission()
    _contending(admission)
    admission.min_inflight = 8  # 4 in flight: below it
    assert admission.expected_wait("piper", LIGHT, 60) <= 1.0
    assert not _admits(admission, LIGHT)
    assert _admits(admission, HEAVY)


def test_a_tenant_nobody_refused_is_never_waited_for() -> None:
    """The fair order only ranks tenants both asking for more than they get: a quiet tenant's running request
    does not hold a flooding one back (its idle share is lent at once)."""
    admission, _ = _admission(rate=100.0)
    admission.started("piper", "quiet", 60, "quiet")
    admission.started("piper", "flood", 40, "flood")
    # contended (100 + 30 > 100 characters), flood's next (70) after quiet's (61), but quiet asks for nothing more
    assert _admits(admission, Share("flood"), 30)


@pytest.mark.parametrize("rate", [230.0, 200.0])
def test_two_flooding_tenants_are_served_in_the_ratio_of_their_weights(rate: float) -> None:
    """The benchmark's weights scenario: 24 clients of each tenant written one after another (all of P's, then
    all of S's), each honouring Retry-After; requests of 55-66 characters, a few of them as long as the bound
    (1 s) at these rates, so the engine's fair queue has next to nothing to reorder."""
    for seed in (1, 2, 3):
        bench = gateway(rate=rate, seed=seed, gap_s=0.015)
        bench.clients(HEAVY, 24, spacing=0.005)
        bench.clients(LIGHT, 24, start=0.12, spacing=0.005)
        report = bench.run(30.0)
        assert report.ratio("P", "S") == pytest.approx(3.0, rel=0.15), seed
        assert report.refused["P"] and report.refused["S"]
        assert report.busy_s / report.seconds >= 0.98  # the engine kept busy


@pytest.mark.parametrize("rate", [230.0, 120.0])
def test_weights_hold_after_another_tenants_flood(rate: float) -> None:
    """As the benchmark runs it: a warm-up tenant floods for 3 s (refused, so contending, its callers due back
    later) and stops with its requests still running; the two weighted tenants that follow, their first callers
    refused behind its backlog and paced at their shares, are still served 3:1 with the engine kept busy."""
    bench = gateway(rate=rate, gap_s=0.015)
    bench.clients(Share("C"), 8, stop_after=3.0)
    bench.run(3.5)
    assert bench.report.refused["C"] > 0
    bench.report = type(bench.report)()
    bench.clients(HEAVY, 24, spacing=0.005)
    bench.clients(LIGHT, 24, start=0.12, spacing=0.005)
    report = bench.run(30.0)
    assert report.ratio("P", "S") == pytest.approx(3.0, rel=0.15)
    assert report.busy_s / report.seconds >= 0.98


def test_refused_callers_are_not_sent_away_for_the_whole_flood() -> None:
    """Each tenant's refused callers come back at its share's pace: the weight-3 tenant's within seconds, so
    its share never waits on callers told to stay away (told alike, every caller refused in the first second
    of a flood was sent away for 30-45 s, and the few admitted then decided the ratio)."""
    bench = gateway(rate=230.0, gap_s=0.015)
    bench.clients(HEAVY, 24, spacing=0.005)
    bench.clients(LIGHT, 24, start=0.12, spacing=0.005)
    report = bench.run(30.0)
    heavy, light = report.retry_after["P"], report.retry_after["S"]
    assert sum(heavy) / len(heavy) < 10 < sum(light) / len(light)
    assert max(heavy + light) <= 30
    assert len(report.clients_admitted["P"]) > 6  # more of its callers served than its share of workers


def test_a_quiet_tenant_beside_a_flood_is_never_refused_and_the_engine_stays_busy() -> None:
    bench = gateway(rate=230.0, gap_s=0.015)
    flood, quiet = Share("A"), Share("B")
    bench.clients(flood, 48, spacing=0.003)
    bench.periodic(quiet, 2.0, 15)
    report = bench.run(30.0)
    assert report.refused["A"] > 0 and report.admitted["B"] == 15
    assert report.refused["B"] == 0
    assert report.busy_s / report.seconds >= 0.98
