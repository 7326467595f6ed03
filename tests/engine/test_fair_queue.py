"""The engines' weighted fair queue (tts_engine.fair_queue), deterministically: no threads, no clock."""

from __future__ import annotations

from collections import Counter

import pytest

from tts_contract.fairness import Share
from tts_engine.fair_queue import FairQueue

A, B, C = Share("a"), Share("b"), Share("c")


def served(queue: FairQueue, n: int) -> list:
    return [queue.pop() for _ in range(n)]


def test_empty_queue_raises_and_is_falsy() -> None:
    queue: FairQueue[str] = FairQueue()
    assert not queue and len(queue) == 0
    with pytest.raises(IndexError):
        queue.pop()


def test_fifo_within_a_tenant() -> None:
    queue: FairQueue[tuple[str, int]] = FairQueue()
    for i in range(5):
        queue.push(("a", i), A, cost=1 + (i % 3))
        queue.push(("b", i), B, cost=2)
    order = served(queue, 10)
    assert [i for t, i in order if t == "a"] == list(range(5))
    assert [i for t, i in order if t == "b"] == list(range(5))
    assert not queue


def test_equal_shares_alternate_whoever_queued_first() -> None:
    queue: FairQueue[str] = FairQueue()
    for _ in range(6):
        queue.push("a", A)
    for _ in range(3):
        queue.push("b", B)
    assert served(queue, 9) == ["a", "b", "a", "b", "a", "b", "a", "a", "a"]


def test_a_single_request_goes_ahead_of_a_backlog() -> None:
    queue: FairQueue[str] = FairQueue()
    for _ in range(50):
        queue.push("a", A, cost=40)
    served(queue, 3)  # A is being served and is above its share
    queue.push("b", B, cost=40)
    assert queue.pop() == "b"


def test_weights_three_to_one_over_a_long_run() -> None:
    queue: FairQueue[str] = FairQueue()
    heavy, light = Share("gold", 3.0), Share("bronze", 1.0)
    for _ in range(1000):
        queue.push("gold", heavy, cost=50)
        queue.push("bronze", light, cost=50)
    counts = Counter(served(queue, 800))
    assert counts["gold"] == 600 and counts["bronze"] == 200  # exactly 3:1 while both wait


def test_cost_counts_not_requests() -> None:
    queue: FairQueue[str] = FairQueue()
    for _ in range(100):
        queue.push("long", A, cost=100)
        queue.push("short", B, cost=10)
    cost = Counter()
    for _ in range(110):
        item = queue.pop()
        cost[item] += 100 if item == "long" else 10
    assert cost["long"] == pytest.approx(cost["short"], rel=0.1)  # equal work, not equal requests


def test_an_idle_share_is_lent_to_whoever_waits() -> None:
    queue: FairQueue[str] = FairQueue()
    for _ in range(20):
        queue.push("a", Share("a", 1.0))
    # B (weight 9) waits for nothing: A takes the whole engine, nothing is held back for B.
    assert served(queue, 20) == ["a"] * 20
    assert not queue


def test_a_newcomer_is_not_owed_the_past() -> None:
    queue: FairQueue[str] = FairQueue()
    for _ in range(200):
        queue.push("a", A)
    served(queue, 100)  # A alone for a long while
    for _ in range(50):
        queue.push("b", B)
    order = served(queue, 20)
    # From B's arrival on they share equally: B does not get 100 turns in a row to catch up.
    assert Counter(order) == {"a": 10, "b": 10}


def test_pausing_briefly_does_not_reset_a_tenant_above_its_share() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", A, cost=30)
    queue.pop()  # A took 30 units alone, V still 0
    queue.push("b", B, cost=10)
    queue.push("a", A, cost=10)
    queue.push("b", B, cost=10)
    # A's next start is its last finish (30), ahead of V: B's two requests (finishing at 10, 20) go first.
    assert served(queue, 3) == ["b", "b", "a"]


def test_three_tenants_get_their_weights() -> None:
    queue: FairQueue[str] = FairQueue()
    shares = {"x": Share("x", 1.0), "y": Share("y", 2.0), "z": Share("z", 5.0)}
    for _ in range(800):
        for name, share in shares.items():
            queue.push(name, share, cost=7)
    counts = Counter(served(queue, 800))
    assert counts == {"x": 100, "y": 200, "z": 500}


def test_removing_a_waiting_item() -> None:
    queue: FairQueue[str] = FairQueue()
    tickets = [queue.push(f"a{i}", A) for i in range(3)]
    b = queue.push("b0", B)
    assert queue.remove(tickets[0])  # the head
    assert not queue.remove(tickets[0])  # only once
    assert len(queue) == 3 and queue.waiting("a") == 2
    order = served(queue, 3)
    assert order == ["a1", "b0", "a2"]
    assert not queue.remove(b)  # already served
    assert not queue


def test_removing_a_tenants_last_item_leaves_the_others_in_order() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a0", A)
    only_b = queue.push("b0", B)
    queue.push("c0", C)
    assert queue.remove(only_b)
    assert served(queue, 2) == ["a0", "c0"]


def test_drain_returns_everything_waiting() -> None:
    queue: FairQueue[str] = FairQueue()
    ticket = queue.push("a0", A)
    queue.push("b0", B)
    assert sorted(queue.drain()) == ["a0", "b0"]
    assert not queue and not queue.remove(ticket)


def test_idle_tenants_are_forgotten_so_state_stays_bounded() -> None:
    queue: FairQueue[int] = FairQueue(max_idle_tenants=50)
    for i in range(5000):
        queue.push(i, Share(f"t{i}"))
        queue.push(-i, A)
        queue.pop()
        queue.pop()
    assert queue.tenants_tracked <= 52


def test_pop_where_serves_the_fairest_accepted_tenant_and_keeps_the_others_tags() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(3):
        queue.push(f"a{i}", A, cost=10)
    queue.push("b0", B, cost=10)
    queue.push("c0", C, cost=50)
    only_one_waiting = lambda tenant, waiting: waiting == 1  # noqa: E731
    assert queue.pop_ticket(only_one_waiting).item == "b0"  # a's head is fairer, but a has a backlog
    assert queue.pop_ticket(only_one_waiting).item == "c0"
    with pytest.raises(IndexError):
        queue.pop_ticket(only_one_waiting)  # a still has two waiting
    assert len(queue) == 3 and served(queue, 3) == ["a0", "a1", "a2"]


def _a_back_after(b_served: int) -> FairQueue[str]:
    """a served one request of cost 10 (finish 10), then b (cost 5 each) `b_served`, then a is back."""
    queue: FairQueue[str] = FairQueue()
    queue.push("a0", A, cost=10)
    queue.pop()
    for i in range(8):
        queue.push(f"b{i}", B, cost=5)
    served(queue, b_served)
    queue.push("a1", A, cost=10)
    return queue


def test_well_within_share_needs_a_long_enough_absence_in_virtual_time() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a0", A, cost=10)
    assert queue.well_within_share("a", margin=2.0)  # never served: qualifies
    assert not queue.well_within_share("b", margin=2.0)  # nothing waiting
    # a's last finish is 10; twice its new request at weight 1 is 20: V must reach 30.
    assert not _a_back_after(0).well_within_share("a", margin=2.0)
    assert not _a_back_after(6).well_within_share("a", margin=2.0)  # b served from V 0 to 25
    assert _a_back_after(7).well_within_share("a", margin=2.0)  # V = 30
    assert _a_back_after(6).well_within_share("a", margin=1.0)
