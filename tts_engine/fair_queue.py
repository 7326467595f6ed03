"""Weighted fair queuing by tenant for the requests waiting inside an engine.

Start-time fair queuing (virtual finish times): each tenant has its own FIFO; the head of a
tenant's FIFO carries a virtual start tag `S` and finish tag `F = S + cost / weight`, and `pop()`
serves the smallest `F` among the heads (ties: the earliest arrival). A tenant's next head starts
where its last served request finished, so a tenant with weight 3 is served three times the cost
of a tenant with weight 1 while both wait. The queue's virtual time `V` is the start tag of the
last request served; a tenant that starts waiting begins at `max(V, its own last finish)`: a
newcomer (or a tenant back from idle) is not owed the past, and a tenant that just took more than
its share cannot reset it by pausing for a moment.

Work-conserving by construction: `pop()` returns something whenever anything waits, so an idle
tenant's share goes to whoever is waiting. Cost is what the engine spends on a request (the
engines use the text's characters, a proxy for the audio it will make).

Not thread-safe: the engines call it under their own lock. Heads are compared by a scan over the
tenants that have something waiting (a handful in practice; bounded by what waits).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tts_contract.fairness import Share

T = TypeVar("T")

MIN_COST = 1.0  # an empty or tiny request still takes a turn


@dataclass(eq=False)
class Ticket(Generic[T]):
    """One waiting item; `FairQueue.remove(ticket)` takes it out before it is served."""

    item: T
    share: Share
    cost: float
    seq: int
    queued: bool = True


@dataclass
class _Tenant(Generic[T]):
    start: float  # the head's virtual start tag (the last served finish while idle)
    waiting: deque[Ticket[T]] = field(default_factory=deque)
    away_since: float = -math.inf  # its last served finish when it started waiting (-inf: never served)

    def head_finish(self) -> float:
        head = self.waiting[0]
        return self.start + head.cost / head.share.weight


class FairQueue(Generic[T]):
    """Tenants' waiting items, served in weighted fair order (FIFO within a tenant)."""

    def __init__(self, max_idle_tenants: int = 1024):
        self._tenants: dict[str, _Tenant[T]] = {}
        self._busy: dict[str, _Tenant[T]] = {}  # tenants with something waiting
        self._seq = itertools.count()
        self._size = 0
        self.virtual_time = 0.0
        self._max_idle = max_idle_tenants

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def __iter__(self) -> Iterator[T]:
        """Waiting items, tenant by tenant (not in service order)."""
        for tenant in self._busy.values():
            for ticket in tenant.waiting:
                yield ticket.item

    @property
    def tenants_tracked(self) -> int:
        """Tenants whose virtual finish the queue remembers (waiting, or idle but ahead of V)."""
        return len(self._tenants)

    def well_within_share(self, tenant: str, margin: float) -> bool:
        """Whether `tenant`, waiting, stayed away from the queue for at least `margin` times its head's
        virtual service (cost / weight) since its last request was served: over that span it used at most
        1 / (1 + margin) of its share. A tenant never served (or forgotten) qualifies."""
        state = self._busy.get(tenant)
        if state is None:
            return False
        head = state.waiting[0]
        return self.virtual_time - state.away_since >= margin * head.cost / head.share.weight

    def waiting(self, tenant: str) -> int:
        state = self._busy.get(tenant)
        return len(state.waiting) if state else 0

    def push(self, item: T, share: Share, cost: float = MIN_COST) -> Ticket[T]:
        ticket = Ticket(item, share, max(float(cost), MIN_COST), next(self._seq))
        state = self._tenants.get(share.tenant)
        if state is None:  # new (or forgotten): away since forever
            state = self._tenants[share.tenant] = _Tenant(start=self.virtual_time)
        elif not state.waiting:
            state.away_since = state.start  # its last served finish
        if not state.waiting:  # starts waiting: not owed the time it was away
            state.start = max(state.start, self.virtual_time)
            self._busy[share.tenant] = state
        state.waiting.append(ticket)
        self._size += 1
        return ticket

    def pop(self) -> T:
        """The next item in fair order; IndexError when nothing waits."""
        return self.pop_ticket().item

    def pop_ticket(self, where: Callable[[str, int], bool] | None = None) -> Ticket[T]:
        """The next ticket in fair order; with `where(tenant, items waiting)`, the next among the tenants
        it accepts. IndexError when nothing (accepted) waits."""
        candidates = [kv for kv in self._busy.items() if where is None or where(kv[0], len(kv[1].waiting))]
        if not candidates:
            raise IndexError("pop from an empty FairQueue" if not self._busy else "no waiting tenant accepted")
        name, state = min(candidates, key=lambda kv: (kv[1].head_finish(), kv[1].waiting[0].seq))
        finish = state.head_finish()
        self.virtual_time = max(self.virtual_time, state.start)
        ticket = state.waiting.popleft()
        ticket.queued = False
        state.start = finish
        self._size -= 1
        if not state.waiting:
            del self._busy[name]
            self._forget_idle()
        return ticket

    def remove(self, ticket: Ticket[T]) -> bool:
        """Take a waiting item out (a cancelled request); False when it was already served or removed."""
        if not ticket.queued:
            return False
        state = self._busy.get(ticket.share.tenant)
        if state is None:
            return False
        try:
            state.waiting.remove(ticket)  # the head's start tag stays: the next item inherits it
        except ValueError:
            return False
        ticket.queued = False
        self._size -= 1
        if not state.waiting:
            del self._busy[ticket.share.tenant]
        return True

    def drain(self) -> list[T]:
        """Every waiting item (the engine is stopping); the queue is empty afterwards."""
        items = []
        for state in self._busy.values():
            for ticket in state.waiting:
                ticket.queued = False
                items.append(ticket.item)
            state.waiting.clear()
        self._busy.clear()
        self._size = 0
        return items

    def _forget_idle(self) -> None:
        """Keep per-tenant state bounded: an idle tenant whose last finish V has passed owes nothing."""
        if len(self._tenants) - len(self._busy) <= self._max_idle:
            return
        for name in [n for n, s in self._tenants.items() if not s.waiting and s.start <= self.virtual_time]:
            del self._tenants[name]
