"""Weights through admission when the engine runs everything admitted at once (services/admission.py), on a fake
clock: a contending tenant's share is held while its caller's next request is on its way, so two flooding
tenants are served in the ratio of their weights however short their requests, while a quiet tenant is still
never refused and the engine stays busy. The scenario is the gateway benchmark's (admission_sim.py)."""

from __future__ import annotations

import random

import pytest
from admission_helpers import Clock, measured
from admission_sim import gateway

from control_plane.services.admission import HOLD_S, Admission, Overloaded
from tts_contract.fairness import Share

HEAVY, LIGHT = Share("heavy", 3.0), Share("light", 1.0)


def _admission(min_inflight: int = 1) -> tuple[Admission, Clock]:
    clock = Clock()
    admission = Admission(max_wait_s=1.0, min_inflight=min_inflight, clock=clock, rng=random.Random(3))
    measured(admission, clock, 100.0)  # the bound: 100 characters
    return admission, clock


def _contended(admission: Admission, refuse_heavy: bool = True) -> None:
    """heavy: three requests of 30 characters running, light: one; heavy (then) asks for more and is refused."""
    for i in range(3):
        admission.started("piper", f"h{i}", 30, "heavy")
    admission.started("piper", "l0", 30, "light")
    if refuse_heavy:  # 90 of its own and light's 30: 1.2 s
        with pytest.raises(Overloaded):
            admission.admit("piper", "h-more", 30, HEAVY)


def _admits(admission: Admission, share: Share, request_id: str = "probe") -> bool:
    try:
        ticket = admission.admit("piper", request_id, 30, share)
    except Overloaded:
        return False
    admission.release(ticket)
    return True


def test_a_contending_tenants_share_is_held_while_its_caller_comes_back() -> None:
    admission, clock = _admission()
    _contended(admission)
    admission.finished("piper", 30, completed=True, tenant="heavy")  # one of heavy's ends: 60 left
    clock.now += 0.1
    # light (30 and its new 30, heavy's 60 within the span): 1.2 s against heavy's 90 held, 0.9 s against its 60
    assert not _admits(admission, LIGHT)
    assert admission.refuse_early(LIGHT) is not None  # the gate sees the same held share
    assert _admits(admission, HEAVY)  # heavy's own caller coming back takes its place
    clock.now += HOLD_S
    assert _admits(admission, LIGHT)  # vacant longer than the hold: lent on (work-conserving)


def test_a_tenant_nobody_refused_holds_nothing() -> None:
    admission, clock = _admission()
    _contended(admission, refuse_heavy=False)
    admission.finished("piper", 30, completed=True, tenant="heavy")
    assert _admits(admission, LIGHT)
    # nor does one whose refused callers have all come back (its Retry-After is over)
    admission, clock = _admission()
    _contended(admission)
    clock.now += 5.0  # past its Retry-After (at most 2 s here)
    admission.finished("piper", 30, completed=False, tenant="heavy")  # (cancelled: the rate stays as measured)
    assert _admits(admission, LIGHT)


def test_a_held_share_counts_as_requests_in_flight() -> None:
    """Below ADMISSION_MIN_INFLIGHT everything is admitted: the held request counts, or light would take the
    worker heavy's caller is about to refill."""
    admission, clock = _admission(min_inflight=4)
    _contended(admission)
    admission.finished("piper", 30, completed=True, tenant="heavy")  # 3 in flight
    assert not _admits(admission, LIGHT)
    clock.now += HOLD_S + 0.01
    assert _admits(admission, LIGHT)


@pytest.mark.parametrize("round_trip_s", [0.005, 0.25])
def test_two_flooding_tenants_are_served_in_the_ratio_of_their_weights(round_trip_s: float) -> None:
    """The benchmark's weights scenario: 24 clients each honouring Retry-After, Piper's 4 workers sharing the
    engine between the requests running, requests of about 60 characters (a quarter of a second of a 230 char/s
    engine); a client's next request reaches admission `round_trip_s` after its stream ends. Without the held
    share a 0.25 s round trip served about 1.8:1."""
    bench = gateway(gap_s=round_trip_s)
    heavy, light = Share("P", 3.0), Share("S", 1.0)
    bench.clients(heavy, 24)
    bench.clients(light, 24)
    report = bench.run(60.0, measure_after=5.0)
    assert report.ratio("P", "S") == pytest.approx(3.0, rel=0.15)
    assert report.refused["P"] and report.refused["S"]
    assert report.busy_s / report.seconds >= 0.9  # the engine kept busy


def test_a_quiet_tenant_beside_a_flood_is_never_refused_and_the_engine_stays_busy() -> None:
    bench = gateway(gap_s=0.25)
    flood, quiet = Share("A"), Share("B")
    bench.clients(flood, 48)
    bench.periodic(quiet, 2.0, 25)
    report = bench.run(50.0, measure_after=5.0)
    assert report.refused["A"] > 0 and report.admitted["B"] >= 20
    assert report.refused["B"] == 0
    assert report.busy_s / report.seconds >= 0.9
