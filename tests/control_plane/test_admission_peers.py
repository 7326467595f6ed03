"""Admission over several control-plane replicas (services/admission_peers.py), on a fake clock: the others'
backlogs and in-flight work count in a replica's decisions, the engine's rate is measured from every
replica's completions, a replica that is gone or unreadable drops out, and a Triton pool counts as the
capacity it is."""

from __future__ import annotations

import json
import random

import pytest
from admission_helpers import Clock, measured

from control_plane.services.admission import Admission, Overloaded
from control_plane.services.admission_peers import PeerLoads, snapshot
from tts_contract.fairness import Share

FLOOD, QUIET = Share("flood"), Share("quiet")


def _replicas(n: int, clock: Clock, min_inflight: int = 1) -> list[Admission]:
    replicas = []
    for i in range(n):
        admission = Admission(max_wait_s=1.0, min_inflight=min_inflight, clock=clock, rng=random.Random(i))
        admission.peers = PeerLoads(f"r{i}", clock)
        replicas.append(admission)
    return replicas


def _exchange(replicas: list[Admission]) -> None:
    """One round of every replica publishing and merging (through JSON, as through Redis)."""
    snaps = {a.peers.replica_id: json.loads(json.dumps(snapshot(a))) for a in replicas if a.peers}
    for a in replicas:
        assert a.peers is not None
        a.peers.merge(snaps[a.peers.replica_id], {r: s for r, s in snaps.items() if r != a.peers.replica_id})


def _fill(admission: Admission, share: Share, n: int, chars: int = 40) -> None:
    """`n` requests of `share`'s tenant in flight (admitted earlier: the weight is the one admit recorded)."""
    admission.load("piper").tenant(share.tenant).weight = share.weight
    for i in range(n):
        admission.started("piper", f"{share.tenant}{i}", chars, tenant=share.tenant)


def test_a_tenant_flooding_one_replica_is_refused_at_the_other_while_a_quiet_one_is_admitted() -> None:
    clock = Clock()
    one, two = _replicas(2, clock, min_inflight=4)
    for admission in (one, two):
        measured(admission, clock, 100.0)
    _fill(one, FLOOD, 6)  # 240 characters in flight through replica one: 2.4 s of the engine
    with pytest.raises(Overloaded):
        one.admit("piper", "f-one", 40, FLOOD)
    # Replica two has nothing in flight itself: alone, below ADMISSION_MIN_INFLIGHT, it admits the flood.
    assert two.expected_wait("piper", FLOOD, 40) == 0.0
    two.release(two.admit("piper", "f-alone", 40, FLOOD))
    _exchange([one, two])
    assert two.peers is not None and two.peers.replicas == 1
    assert two.expected_wait("piper", FLOOD, 40) == pytest.approx(2.4)
    with pytest.raises(Overloaded) as refused:
        two.admit("piper", "f-two", 40, FLOOD)
    assert int(refused.value.headers["Retry-After"]) >= 2  # the flood's own wait over all replicas
    # The quiet tenant waits only for its own first segment at its share: admitted at either replica.
    assert two.expected_wait("piper", QUIET, 40) == pytest.approx(0.4)
    two.admit("piper", "q-two", 40, QUIET)
    one.admit("piper", "q-one", 40, QUIET)
    # Without the exchange (sharing off, or Redis down) replica two is back to its own view.
    assert two.peers is not None
    two.peers.clear()
    two.release(two.admit("piper", "f-cleared", 40, FLOOD))


def test_a_replica_that_just_started_judges_by_the_others_rate_at_once() -> None:
    """Scaled out under overload: nothing measured itself yet, it must not refuse everyone (no rate) nor admit
    everyone (below ADMISSION_MIN_INFLIGHT on its own)."""
    clock = Clock()
    busy, new = _replicas(2, clock, min_inflight=4)
    measured(busy, clock, 100.0)
    _fill(busy, FLOOD, 6)
    _exchange([busy, new])
    assert new.load("piper").rate is None and new.rate("piper") == pytest.approx(100)
    with pytest.raises(Overloaded):
        new.admit("piper", "f-new", 40, FLOOD)
    new.admit("piper", "q-new", 40, QUIET)


def test_backlogs_and_in_flight_work_are_summed_over_the_other_replicas() -> None:
    clock = Clock()
    one, two, three = _replicas(3, clock, min_inflight=100)  # admitted: the test is the sum
    _fill(one, Share("x", 3.0), 2)
    _fill(two, Share("x", 3.0), 1)
    _fill(two, Share("y"), 4, chars=10)
    two.admit("piper", "y-waiting", 25, Share("y"))  # admitted, not started: counted too
    _exchange([one, two, three])
    assert three.peers is not None
    remote = three.peers.engines["piper"]
    assert remote.tenants == {"x": (120, 3.0), "y": (65, 1.0)}
    assert remote.inflight == 2 + 5 + 1 and remote.backlog_chars == 185
    assert three.peers.replicas == 2
    # Replica one sees two's work only, and its own from its own state (never counted twice).
    assert one.peers is not None
    assert one.peers.engines["piper"].tenants == {"x": (40, 3.0), "y": (65, 1.0)}
    measured(three, clock, 100.0)
    # Its own backlog plus the others': 120 of x, 65 of y; the engine-wide wait covers all replicas' backlog.
    assert three.expected_wait("piper") == pytest.approx(1.85, rel=0.01)
    # y (weight 1) beside x (weight 3): y's own 65, and x's due over the same span (3 x 65 + a segment) is
    # more than x's 120: all of it, 185 at 100 chars/s.
    assert three.expected_wait("piper", Share("y"), 10) == pytest.approx(1.85)
    # A tenant with nothing anywhere waits for one segment (about 10) of each busy tenant, x's and y's.
    assert three.expected_wait("piper", Share("z"), 10) == pytest.approx(0.2)


def test_a_replica_that_is_gone_or_unreadable_drops_out() -> None:
    clock = Clock()
    one, two = _replicas(2, clock)
    _fill(one, FLOOD, 3)
    _exchange([one, two])
    assert two.peers is not None and two.peers.engines["piper"].backlog_chars == 120
    own = snapshot(two)
    two.peers.merge(own, {})  # replica one's snapshot expired
    assert two.peers.engines == {} and two.peers.replicas == 0
    two.peers.merge(own, {"r9": {"piper": {"inflight": "many"}}, "r8": ["not", "a", "snapshot"]})
    assert two.peers.engines == {} and two.peers.replicas == 0


def _shared_engine(replicas: list[Admission], busy: list[int], clock: Clock, rounds: int,
                   engine_rate: float = 100.0) -> None:
    """The replicas in `busy` each send one 50-character request after another to the same engine, which
    shares itself between them; everyone exchanges every 0.25 s (exact in binary: no rounding in the clock)."""
    per_request_s = 50 / (engine_rate / len(busy))
    steps = round(per_request_s / 0.25)
    for second in range(rounds):
        for i in busy:
            replicas[i].started("piper", f"r{i}-{second}", 50)
        for step in range(steps):
            clock.now += per_request_s / steps
            if step == steps - 1:
                for i in busy:
                    replicas[i].finished("piper", 50, completed=True)
            _exchange(replicas)


def test_the_engine_rate_is_measured_from_every_replica_s_completions() -> None:
    clock = Clock()
    one, two = _replicas(2, clock)
    _shared_engine([one, two], [0, 1], clock, rounds=20)
    # Each replica gets half the engine: its own measurement is half the rate (a lower bound)...
    assert one.load("piper").rate == pytest.approx(50, rel=0.02)
    # ...the completions of both over the time the engine was busy are the engine's.
    assert one.peers is not None and one.peers.engines["piper"].rate == pytest.approx(100, rel=0.05)
    assert one.rate("piper") == pytest.approx(100, rel=0.05)
    assert two.rate("piper") == pytest.approx(100, rel=0.05)


def test_a_replica_alone_on_the_engine_keeps_its_own_rate_and_the_sum_never_counts_twice() -> None:
    clock = Clock()
    one, two = _replicas(2, clock)
    _shared_engine([one, two], [0], clock, rounds=40)  # replica one alone: it measures the whole engine
    assert one.load("piper").rate == pytest.approx(100, rel=0.02)
    _shared_engine([one, two], [0, 1], clock, rounds=3)  # now both: the engine is still 100, not 200
    for admission in (one, two):
        assert admission.rate("piper") == pytest.approx(100, rel=0.1)


def test_a_triton_pool_counts_as_the_capacity_it_is() -> None:
    """Two Triton replicas behind one engine name each serve a stream at once: the measured rate is the pool's."""
    clock = Clock()
    admission = Admission(max_wait_s=1.0, min_inflight=1, clock=clock)
    for i in range(60):  # 30 busy seconds: the average settles (its first sample saw one of the two)
        admission.started("piper", f"a{i}", 50)  # on Triton replica a
        admission.started("piper", f"b{i}", 50)  # on Triton replica b, at the same time
        clock.now += 0.5  # each replica does 100 characters/s
        admission.finished("piper", 50, completed=True)
        admission.finished("piper", 50, completed=True)
    assert admission.rate("piper") == pytest.approx(200, rel=0.02)
