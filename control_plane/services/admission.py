"""Admission control with weighted fair shares: a request its engine could not start in time *for its
tenant's share* is refused at once (503 + Retry-After), so one tenant cannot starve the others.

Without it every request joins the engine's queue, and under overload a caller waits a minute for its
first audio: a failure that looks like a success. Each engine's capacity is estimated from what it is
measured to do, here and now:

- **backlog**, per tenant: the characters of the engine requests this replica has in flight for it
  (sent and not finished), plus the first segments of its requests admitted and not sent yet (so a
  burst of arrivals cannot all be admitted against the same empty backlog);
- **service rate**: characters the engine completes per second while it has work (an exponentially
  weighted average over a few seconds of busy time, so it follows the load, the hardware and the
  number of Triton replicas behind this replica without configuration).

With several control-plane replicas (REDIS_URL set) the other replicas' backlogs and the engine's rate over
all of them are merged in from their last published snapshots (services/admission_peers.py).

The engines share their capacity between the tenants waiting in proportion to their weights (weighted
fair queuing inside the Triton models; the share travels with each request, tts_contract.fairness).
Admission predicts that service with its fluid model (generalised processor sharing): every tenant with
a backlog is served at rate x weight / (sum of the weights of the tenants with a backlog), and a share a
tenant does not use, because its backlog is drained or it has none, goes to the others (borrowing). A new
request's expected wait is the time until the fair queues start its first segment (`fair_wait`: its
tenant's backlog, and each other tenant's service over the same span; a request alone on an idle engine
waits 0, and one tenant alone waits backlog / rate as with a single queue). So:

- a tenant below its share (a small backlog for its weight) is admitted while one above its share,
  whose own backlog is long, is refused: the flooding tenant is refused first, a quiet one never;
- it is work-conserving: the expected wait is never more than the whole backlog / rate, so an engine
  whose whole backlog fits in the bound refuses no one, and a lone tenant may use all of it;
- weights hold under contention, also where the bound holds only as many requests as the engine runs at
  once (its fair queue then has nothing to reorder, and each tenant is served in proportion to the requests
  it has running): between tenants that both ask for more than they get, the next place goes in the
  engines' fair order (`_behind`), so the requests running follow the weights.

While fewer than `min_inflight` engine requests are in flight every request is admitted (contending tenants
still in the fair order): that is also how the rate is first measured. Past that, with no measurement yet,
requests are refused; with one, a request whose expected wait exceeds `max_wait_s` is refused. A refused
caller is told to come back at the next place in its tenant's schedule of returns, paced at twice the rate
its share serves requests (`TenantLoad.retry_after`): its share is refilled, never left idle by callers all
sent away for the longest wait. Requests served from the cache are never refused: they cost the engine
nothing.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from control_plane.errors import Unavailable
from control_plane.services.admission_load import (
    ANONYMOUS,
    EngineLoad,
    TenantLoad,
    Ticket,
    fair_wait,
)
from control_plane.services.admission_peers import merged_backlogs
from tts_contract.fairness import Share

if TYPE_CHECKING:

    from control_plane.metrics import Metrics
    from control_plane.services.admission_peers import PeerLoads, RemoteEngine
    from control_plane.services.engine_port import EnginePort
    from control_plane.services.metered_engine import MeteredEngine

__all__ = ["Admission", "EngineLoad", "Overloaded", "TenantLoad", "Ticket", "fair_wait"]

RETURN_PACE = 2.0  # a tenant's refused callers come back this many times as often as its share serves requests
KEEP_PLACE_S = 0.25  # a contending tenant's place in the fair order is kept this long after its last request ends
Recorder = Callable[[str, float | None], None]  # counts a refusal elsewhere: (engine, expected wait)


class Overloaded(Unavailable):
    """The engine would make this request wait too long for its first audio."""


class Admission:
    def __init__(self, max_wait_s: float, min_inflight: int, metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                 peers: PeerLoads | None = None) -> None:
        self.max_wait_s = max_wait_s
        self.rng = rng or random.Random()
        self.min_inflight = min_inflight
        self.metrics = metrics
        self.clock = clock
        self.loads: dict[str, EngineLoad] = {}
        self.peers = peers  # the other control-plane replicas' last load (services/admission_peers.py)

    def load(self, engine: str) -> EngineLoad:
        if engine not in self.loads:
            self.loads[engine] = EngineLoad(_since=self.clock())
            if self.metrics is not None:  # read at scrape time
                load = self.loads[engine]
                self.metrics.admission_expected_wait.labels(engine=engine).set_function(
                    lambda: self.expected_wait(engine) or 0.0)
                self.metrics.engine_backlog.labels(engine=engine).set_function(lambda: float(load.backlog_chars))
                self.metrics.engine_service_rate.labels(engine=engine).set_function(lambda: load.rate or 0.0)
        return self.loads[engine]

    def _remote(self, engine: str) -> RemoteEngine | None:
        """The other replicas' merged load on `engine`, if any is known."""
        return self.peers.engines.get(engine) if self.peers is not None else None

    def rate(self, engine: str) -> float | None:
        """The engine's service rate: this replica's measurement, or the one from every replica's completions
        where that is higher (both are lower bounds, services/admission_peers.py)."""
        local = self.load(engine).rate
        remote = self._remote(engine)
        return max(local or 0.0, remote.rate) if remote is not None and remote.rate else local

    def expected_wait(self, engine: str, share: Share | None = None, first_chars: int = 0) -> float | None:
        """Seconds a request of `share`'s tenant arriving now would wait for the engine to start it (without
        a share: for the whole backlog, as one queue would), other replicas' backlogs included; None before
        the engine's rate is measured."""
        load = self.load(engine)
        rate = self.rate(engine)
        if rate is None or rate <= 0:
            return None
        remote = self._remote(engine)
        if share is None:
            return (load.backlog_chars + (remote.backlog_chars if remote else 0)) / rate
        backlogs = _backlogs(load, remote)
        mine = backlogs.pop(share.tenant, (0, share.weight))[0]
        return fair_wait(backlogs.values(), (mine, share.weight), first_chars, rate)

    def admit(self, engine: str, request_id: str, first_chars: int, share: Share | None = None,
              tier: str = "") -> Ticket:
        """Admit a request of `share`'s tenant whose first engine call will carry `first_chars` characters, or
        raise Overloaded. The ticket counts in the tenant's backlog until the request's first engine call
        starts or `release(ticket)`."""
        share = share or ANONYMOUS
        load = self.load(engine)
        now = self.clock()
        load.tick(now)
        load.sweep(now)
        tenant = load.tenant(share.tenant)
        tenant.weight, tenant.first_chars = share.weight, max(1, first_chars)
        refused, wait = self._decide(engine, share, first_chars, now)
        if refused:
            raise self._refusal(engine, tenant, share, tier, wait, now)
        tenant.decided(now)
        ticket = Ticket(engine, request_id, first_chars, share.tenant)
        load.reserve(ticket)
        self._count(engine, "admitted", share, tier, wait)
        return ticket

    def refuse_early(self, share: Share, tier: str = "", *, record: Recorder | None = None) -> Overloaded | None:
        """The refusal `admit` would give even the smallest request of `share`'s tenant (a first engine call of
        one character) on every engine this replica has decided for, counted as `admit` counts it (or given to
        `record(engine, wait)` to count); None where any of them would admit it. For the admission gate
        (api/admission_gate.py), which does not know the request's engine: the refusal is that of the engine
        with the shortest wait, its Retry-After from the wait of a request as long as the tenant's last one
        there (a longer wait, the one `admit` gives)."""
        if self.max_wait_s <= 0 or not self.loads:
            return None
        waits: list[tuple[float, str]] = []
        now = self.clock()
        for engine in self.loads:
            refused, wait = self._decide(engine, share, 1, now)
            if not refused:
                return None
            waits.append((math.inf if wait is None else wait, engine))
        wait, engine = min(waits)
        load = self.loads[engine]
        load.tick(now)
        load.sweep(now)
        tenant = load.tenant(share.tenant)
        tenant.weight = share.weight
        if not math.isinf(wait) and tenant.first_chars > 1:  # Retry-After as `admit` gives its requests
            wait = self.expected_wait(engine, share, tenant.first_chars) or wait
        return self._refusal(engine, tenant, share, tier, None if math.isinf(wait) else wait, now, record)

    def _decide(self, engine: str, share: Share, first_chars: int, now: float) -> tuple[bool, float | None]:
        """Whether `admit` refuses a request of `share`'s tenant whose first engine call is `first_chars` long
        on `engine` now, and its expected wait (0 where the bound does not apply). Both tests only grow with
        `first_chars`: what refuse_early refuses for one character, admit refuses for any length."""
        if not self._bounded(self.load(engine), self._remote(engine)):
            return self._behind(engine, share, first_chars, now), 0.0
        wait = self.expected_wait(engine, share, first_chars)
        return wait is None or wait > self.max_wait_s or self._behind(engine, share, first_chars, now), wait

    def _behind(self, engine: str, share: Share, first_chars: int, now: float) -> bool:
        """Whether a new request of `share`'s tenant must give way to another tenant's next one: the engine is
        contended (the whole backlog and this request would not start within the bound in one queue) and some
        other contending tenant (one with callers it refused due back: more of its requests are on their way),
        with a backlog or a request that ended within KEEP_PLACE_S, would, by the engines' fair order, be served
        its next request first (its backlog and next request per weight below this tenant's with the new one).

        The bound holds the engine to about `max_wait_s` of work, which on a fast engine is only a few requests:
        as many as it runs at once (Piper's workers, an XTTS batch), so its fair queue has nothing to reorder
        and each tenant is served in proportion to the requests it has running, not to its weight. Each tenant
        passing the bound on its own wait, a light tenant's next request fits whenever the heavy one's backlog
        dips a little below its share, and two tenants weighted 3:1 held 3 and 2 requests as often as 3 and 1.
        And below `min_inflight` requests in flight, where the bound is not asked (on a slow engine, where the
        bound is less than a request, that is how every request gets in), whoever came first took the worker.
        Taken in the fair order instead, under contention the tenant furthest below its share gets the next
        place, so the requests running follow the weights. It only orders tenants that are both asking for
        more than the engine has room for; one nobody refused (a quiet tenant) is never waited for, so its
        idle share is lent at once. A contending tenant whose last request just ended keeps its place for a
        moment, for the caller that comes straight back with the next one (lent meanwhile, the place went to
        the heavier tenant for the whole of that request: 3.6:1 measured for 3:1); for longer, a tenant that
        stopped asking would hold the others back."""
        rate = self.rate(engine)
        if not rate:
            return False
        load = self.load(engine)
        remote = self._remote(engine)
        total = load.backlog_chars + (remote.backlog_chars if remote else 0)
        if (total + first_chars) / rate <= self.max_wait_s:
            return False
        backlogs = _backlogs(load, remote)
        mine = backlogs.pop(share.tenant, (0, share.weight))[0]
        finish = (mine + first_chars) / share.weight
        for name, (chars, weight) in backlogs.items():
            known = load.tenants.get(name)
            if known is None:  # another replica's tenant: contending while it has a backlog, its next as long
                if chars > 0 and (chars + first_chars) / weight < finish:
                    return True
            elif known.contending(now) and (chars > 0 or now - known.ended_at <= KEEP_PLACE_S) \
                    and (chars + known.first_chars) / weight < finish:
                return True
        return False

    def _bounded(self, load: EngineLoad, remote: RemoteEngine | None) -> bool:
        """Whether the bound applies: admission is on and at least `min_inflight` engine requests are in flight
        or waiting (fewer: everything is admitted, which is also how the rate is first measured)."""
        return self.max_wait_s > 0 and \
            load.inflight + load.waiting + (remote.inflight if remote else 0) >= self.min_inflight

    def _refusal(self, engine: str, tenant: TenantLoad, share: Share, tier: str, wait: float | None,
                 now: float, record: Recorder | None = None) -> Overloaded:
        """Count a refusal of `share`'s tenant on `engine` (or have `record` count it) and say when to come
        back."""
        if record is None:
            self._count(engine, "shed", share, tier, wait)
        else:
            record(engine, wait)
        # At least the time its own backlog needs to come back under the bound, jittered (x 1 to 1.5) so that
        # callers refused together, given the same floor, do not all come back in the same instant.
        floor = (1 if wait is None else max(1, math.ceil(wait - self.max_wait_s))) * self.rng.uniform(1.0, 1.5)
        retry = tenant.retry_after(now, floor, self._spacing(engine, share, tenant))
        tenant.decided(now)
        expected = "" if wait is None else f" a new request of yours would wait about {wait:.1f} s for " \
            f"its first audio (this server's bound is {self.max_wait_s:g} s);"
        return Overloaded("engine_overloaded", f"the {engine} engine is at capacity:{expected} retry in {retry} s",
                          headers={"Retry-After": str(retry)}, fields={"retry_after_s": retry})

    def _spacing(self, engine: str, share: Share, tenant: TenantLoad) -> float:
        """How far apart `share`'s refused callers are told to come back: the seconds the engine takes, at the
        tenant's weighted share beside the tenants with a backlog (this replica's and the others'), for one
        request as long as its last, over RETURN_PACE (a second before the rate is measured). Paced at exactly
        its share, a caller was rarely there when its place came free and the share lay idle for the others
        (a weight-1 tenant beside a weight-3 one served 1:7 through the gateway); twice as often, one usually
        is, for about one more refusal per admission, each far cheaper than the request it makes room for."""
        rate = self.rate(engine)
        if not rate:
            return 1.0
        weights = {name: t.weight for name, t in self.load(engine).tenants.items()
                   if t.backlog_chars > 0 and name != share.tenant}
        remote = self._remote(engine)
        if remote is not None:
            for name, (_, weight) in remote.tenants.items():
                if name != share.tenant:
                    weights.setdefault(name, weight)
        fraction = share.weight / (share.weight + sum(weights.values()))
        return tenant.first_chars / (rate * fraction) / RETURN_PACE

    def release(self, ticket: Ticket) -> None:
        """The request is over: a reservation it never used is given back."""
        self.load(ticket.engine).unreserve(ticket.request_id, ticket)

    def resize(self, ticket: Ticket, engine: str, chars: int) -> Ticket:
        """Make an admitted request's reservation exact: it was admitted on an estimate of its first engine call
        (before its plan) and its plan now says `engine` and `chars`. No second decision: the request stays
        admitted."""
        if ticket.engine == engine and ticket.chars == chars:
            return ticket
        self.release(ticket)
        exact = Ticket(engine, ticket.request_id, chars, ticket.tenant)
        self.load(engine).reserve(exact)
        return exact

    def started(self, engine: str, request_id: str, chars: int, tenant: str = "") -> None:
        load = self.load(engine)
        load.tick(self.clock())
        load.unreserve(request_id)
        own = load.tenant(tenant)
        own.inflight += 1
        own.inflight_chars += chars
        load.inflight += 1
        load.inflight_chars += chars

    def finished(self, engine: str, chars: int, *, completed: bool, tenant: str = "") -> None:
        load = self.load(engine)
        now = self.clock()
        load.tick(now)
        own = load.tenant(tenant)
        own.ended_at = now
        own.inflight -= 1
        own.inflight_chars -= chars
        load.inflight -= 1
        load.inflight_chars -= chars
        if completed:
            load.completed(chars)

    def _count(self, engine: str, outcome: str, share: Share, tier: str, wait: float | None) -> None:
        if self.metrics is not None:
            self.metrics.admission_decisions.labels(engine=engine, outcome=outcome).inc()
            self.metrics.tenant_decision(engine, share.tenant, tier, outcome, wait)

    def engine(self, port: EnginePort) -> MeteredEngine:
        from control_plane.services.metered_engine import MeteredEngine

        return MeteredEngine(port, self)


def _backlogs(load: EngineLoad, remote: RemoteEngine | None) -> dict[str, tuple[float, float]]:
    """Each tenant's (backlog characters, weight) on one engine, the other replicas' included."""
    local: dict[str, tuple[float, float]] = {name: (t.backlog_chars, t.weight) for name, t in load.tenants.items()}
    return merged_backlogs(local, remote) if remote is not None and remote.tenants else local
