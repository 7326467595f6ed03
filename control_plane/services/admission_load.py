"""What admission (services/admission.py) keeps per engine and per tenant: the work in flight and reserved, the
engine's measured service rate, each tenant's weight and the schedule its refused callers are told to come back
on, and the start-time wait model of the engines' fair queues (`fair_wait`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from control_plane.services.admission_peers import smoothed_rate
from tts_contract.fairness import Share

MIN_SAMPLE_S = 0.2  # busy time gathered before a rate sample is taken (completions arrive in bursts)
MAX_RETRY_AFTER_S = 30
IDLE_TENANT_S = 60.0  # a tenant with no backlog and no decision for this long is forgotten
SWEEP_EVERY = 256  # decisions between sweeps of the forgotten tenants
ANONYMOUS = Share()


@dataclass(eq=False)
class Ticket:
    """An admitted request's place in its engine's backlog until its first engine call starts."""

    engine: str
    request_id: str
    chars: int
    tenant: str = ""


@dataclass
class TenantLoad:
    """One tenant's work on one engine from this replica, its weight, and its recent decisions."""

    weight: float = ANONYMOUS.weight
    first_chars: int = 1  # the first engine call of its last request decided here (refuse_early's wait)
    inflight: int = 0
    inflight_chars: int = 0
    reserved_chars: int = 0
    _decided_at: float = 0.0
    _next_slot: float = 0.0  # when the next caller it refuses is told to come back (`retry_after`)
    ended_at: float = -math.inf  # when its last engine request ended

    @property
    def backlog_chars(self) -> int:
        return self.inflight_chars + self.reserved_chars

    def idle(self, now: float) -> bool:
        return self.inflight == 0 and self.reserved_chars == 0 and now - self._decided_at > IDLE_TENANT_S

    def decided(self, now: float) -> None:
        self._decided_at = now

    def contending(self, now: float) -> bool:
        """Callers it refused are still due back: it asks for more than it is given."""
        return self._next_slot > now

    def retry_after(self, now: float, floor: float, spacing: float) -> int:
        """When a caller of this tenant refused now should come back: the next free place in the tenant's
        schedule of returns, one every `spacing` s (the time the engine needs, at the tenant's share, for one
        request as long as its last), never sooner than `floor` (its own backlog's time to come back under the
        bound). Its refused callers so come back one after another at about the pace its share serves them:
        none told to wait while its share would lie idle, and not all at once into a full engine. A burst of k
        refusals is spread over about k x spacing instead of all being sent away for the longest wait (told
        alike, a flooding tenant's callers refused in its first second stayed away for the whole burst, and
        the few admitted then, not the weights, decided what each tenant was served). Callers that come back
        and are refused again take the next place, so the schedule settles about where its callers are
        refused as often as they are admitted."""
        slot = max(self._next_slot, now + floor)
        self._next_slot = min(slot + spacing, now + MAX_RETRY_AFTER_S)
        return math.ceil(min(slot - now, MAX_RETRY_AFTER_S) - 1e-9)


def fair_wait(backlogs: Iterable[tuple[float, float]], own: tuple[float, float], extra: float, rate: float) -> float:
    """Seconds until the engines' fair queues start a new request of a tenant with (backlog, weight) `own`,
    whose first segment is `extra` characters, on an engine of `rate` characters/s; `backlogs`: the other
    tenants' (backlog, weight).

    Start-time fair queuing (tts_engine/fair_queue.py) starts the new segment once every segment with an
    earlier virtual start is served: the tenant's own backlog, and from each other tenant what it is due
    over the same virtual span (its weight x own backlog / own weight) plus the one segment that starts
    within it (taken as `extra` long), or all it has if that is less. A tenant with no backlog so waits
    about one segment per other busy tenant, whatever the weights (a fluid model that also served the new
    segment itself at the tenant's share would wait a weight-1 tenant beside a weight-3 flood three
    segments, and refuse it long before the flood is held to three times its backlog)."""
    own_chars, own_weight = own
    span = own_chars / own_weight  # the tenant's backlog in virtual time (characters per unit weight)
    due = own_chars + sum(min(chars, weight * span + extra) for chars, weight in backlogs if chars > 0)
    return due / rate


@dataclass
class EngineLoad:
    """One engine's work in flight from this replica, by tenant, and how fast it gets through it."""

    tenants: dict[str, TenantLoad] = field(default_factory=dict)
    inflight: int = 0
    inflight_chars: int = 0
    reserved_chars: int = 0
    # request id -> tickets of requests admitted and not sent yet (a list: ids come from clients'
    # X-Request-ID and need not be unique)
    reserved: dict[str, list[Ticket]] = field(default_factory=dict)
    rate: float | None = None  # characters per busy second
    _busy_s: float = 0.0  # busy time since the last rate sample
    _done_chars: int = 0  # characters completed since the last rate sample
    _since: float = 0.0  # when the busy time was last brought up to date
    done_total: int = 0  # characters completed and busy seconds since start: what other replicas merge
    busy_total: float = 0.0
    _decisions: int = 0

    @property
    def backlog_chars(self) -> int:
        return self.inflight_chars + self.reserved_chars

    @property
    def waiting(self) -> int:
        return sum(len(tickets) for tickets in self.reserved.values())

    def tenant(self, name: str) -> TenantLoad:
        load = self.tenants.get(name)
        if load is None:
            load = self.tenants[name] = TenantLoad()
        return load

    def reserve(self, ticket: Ticket) -> None:
        """Count an admitted request's first engine call in its tenant's backlog until it starts."""
        self.reserved.setdefault(ticket.request_id, []).append(ticket)
        self.tenant(ticket.tenant).reserved_chars += ticket.chars
        self.reserved_chars += ticket.chars

    def unreserve(self, request_id: str, ticket: Ticket | None = None) -> None:
        """Drop `ticket` (or the oldest of the request id's) from the reservations."""
        tickets = self.reserved.get(request_id)
        if not tickets:
            return
        if ticket is None:
            ticket = tickets.pop(0)
        elif ticket in tickets:
            tickets.remove(ticket)
        else:
            return
        self.tenant(ticket.tenant).reserved_chars -= ticket.chars
        self.reserved_chars -= ticket.chars
        if not tickets:
            del self.reserved[request_id]

    def sweep(self, now: float) -> None:
        self._decisions += 1
        if self._decisions % SWEEP_EVERY == 0:
            for name in [n for n, t in self.tenants.items() if t.idle(now)]:
                del self.tenants[name]

    def tick(self, now: float) -> None:
        if self.inflight:
            self._busy_s += now - self._since
            self.busy_total += now - self._since
        self._since = now

    def completed(self, chars: int) -> None:
        self._done_chars += chars
        self.done_total += chars
        if self._busy_s < MIN_SAMPLE_S:
            return
        self.rate = smoothed_rate(self.rate, self._done_chars, self._busy_s)
        self._busy_s, self._done_chars = 0.0, 0
