"""What the other control-plane replicas have in flight on the engines, merged into this replica's admission.

One replica's admission (services/admission.py) sees only the work it sends itself. With several replicas in
front of the same engines, a tenant flooding through all of them would be judged by each against 1/N of its
backlog (N times its share in all), and a replica with nothing in flight would admit into an engine the others
already fill. So every replica publishes a snapshot of its load (adapters/admission_exchange.py carries it
through Redis) and merges the other live replicas' last snapshots into `PeerLoads.engines`, which admission
reads beside its own state: a tenant's backlog is the sum over the replicas, the in-flight count that
decides whether the bound applies at all is the engine's, and the rate is the engine's (below). The admit
path never waits for Redis: it reads the last merged view, a plain dict swapped whole by the exchange.

A snapshot, per engine: requests in flight or admitted (`inflight`), the replica's own measured rate (`rate`),
the characters completed and the busy seconds since the replica started (`done`, `busy`: cumulative
counters), and per tenant with a backlog its characters and weight (`tenants`).

**The engine's rate.** A replica measures the characters *its* streams complete per second *its* streams are
in flight. While other replicas send work to the same engine at the same time, that is only its part of the
engine: a lower bound of the engine's rate, and judging the whole backlog by it would refuse N times too
early. Summing the replicas' own rates is right only while all of them are busy at once: a replica that
measured the whole engine while alone still says so for seconds after the others start, and the sum
over-admits. What the engine does is the characters all replicas complete over the time the engine was busy.
Over one exchange the replicas' `done` counters say the first exactly; the busy time lies between the largest
of their `busy` increments and min(elapsed, their sum). The upper bound is taken: it is exact when the
replicas are busy at the same time (overload, the only time admission refuses anyone) and otherwise errs
towards a lower rate (more refusals, never more admissions). That measurement, averaged like the local one,
or the largest of the replicas' own rates where that is higher (each a lower bound too, and there at once for a
replica that just started and has measured nothing yet) is `RemoteEngine.rate`; admission uses the larger of it
and its own rate (the local one is the better while this replica alone has work).

**Staleness.** A peer's load is as old as its last snapshot plus one exchange: at most about two intervals
(ADMISSION_SHARE_INTERVAL_S, 0.2 s by default). Within that window replicas decide on each other's past: in
a burst arriving at all replicas at once each admits up to the bound on its own view, so the engine may get up
to N times the bound's worth for one interval before the shares hold again. A replica that dies stops
renewing its snapshot and drops out within its TTL; if the exchange fails the view is emptied and this
replica decides alone, as without Redis.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from control_plane.services.admission import Admission

RATE_TIME_CONSTANT_S = 5.0  # busy seconds over which an engine's rate is averaged (this replica's and all's)
SAMPLE_ELAPSED_S = 1.0  # exchanges gathered before a rate sample: peers' snapshots do not line up with ours


def smoothed_rate(rate: float | None, done: float, busy: float) -> float:
    """`rate` moved towards the sample done / busy (characters per busy second), weighted by how much busy
    time the sample covers: an exponentially weighted average over RATE_TIME_CONSTANT_S busy seconds."""
    sample = done / busy
    if rate is None:
        return sample
    return rate + (1.0 - math.exp(-busy / RATE_TIME_CONSTANT_S)) * (sample - rate)


@dataclass
class RemoteEngine:
    """The other live replicas' load on one engine, summed, and the engine's rate measured from all of them."""

    tenants: dict[str, tuple[int, float]] = field(default_factory=dict)  # tenant -> (backlog chars, weight)
    inflight: int = 0
    backlog_chars: int = 0
    rate: float | None = None


class EngineRate:
    """The engine's rate from every replica's cumulative (done, busy) counters (see the module docstring)."""

    def __init__(self) -> None:
        self.rate: float | None = None
        self._last: dict[str, tuple[float, float]] = {}
        self._done = self._busy = self._elapsed = 0.0

    def update(self, counters: Mapping[str, tuple[float, float]], elapsed: float) -> None:
        for replica, (done, busy) in counters.items():
            last = self._last.get(replica)
            if last is not None and done >= last[0] and busy >= last[1]:  # a new replica counts from its next one
                self._done += done - last[0]
                self._busy += busy - last[1]
        self._last = dict(counters)
        self._elapsed += elapsed
        if self._elapsed < SAMPLE_ELAPSED_S:
            return
        busy = min(self._elapsed, self._busy)
        if busy > 0 and self._done > 0:
            self.rate = smoothed_rate(self.rate, self._done, busy)
        self._done = self._busy = self._elapsed = 0.0


def snapshot(admission: Admission) -> dict[str, Any]:
    """This replica's load, as published to the others (JSON-ready)."""
    now = admission.clock()
    out: dict[str, Any] = {}
    for engine, load in list(admission.loads.items()):
        load.tick(now)  # the busy time up to now
        out[engine] = {"inflight": load.inflight + load.waiting, "rate": load.rate, "done": load.done_total,
                       "busy": round(load.busy_total, 4),
                       "tenants": {name: [t.backlog_chars, t.weight] for name, t in load.tenants.items()
                                   if t.backlog_chars > 0}}
    return out


class PeerLoads:
    """The last merged view of the other live replicas' loads; empty while this replica decides alone."""

    def __init__(self, replica_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.replica_id = replica_id
        self.clock = clock
        self.engines: dict[str, RemoteEngine] = {}
        self.replicas = 0  # other live replicas in the last merge
        self._rates: dict[str, EngineRate] = {}
        self._merged_at: float | None = None

    def merge(self, own: Mapping[str, Any], peers: Mapping[str, Mapping[str, Any]]) -> None:
        """Take this replica's snapshot and the other replicas' (by replica id) as the new view. A snapshot
        that does not parse is left out (a replica of another version), never fails the exchange."""
        now = self.clock()
        elapsed = 0.0 if self._merged_at is None else now - self._merged_at
        self._merged_at = now
        counters: dict[str, dict[str, tuple[float, float]]] = {
            engine: {self.replica_id: (float(s["done"]), float(s["busy"]))} for engine, s in own.items()}
        engines: dict[str, RemoteEngine] = {}
        live = 0
        for replica, snap in peers.items():
            try:
                parsed = {engine: _parse(s) for engine, s in snap.items()}
            except (AttributeError, KeyError, TypeError, ValueError):
                continue
            live += 1
            for engine, (inflight, own_rate, done, busy, tenants) in parsed.items():
                remote = engines.setdefault(engine, RemoteEngine())
                remote.inflight += inflight
                remote.rate = max(remote.rate or 0.0, own_rate) or None
                for tenant, (chars, weight) in tenants.items():
                    before = remote.tenants.get(tenant, (0, weight))[0]
                    remote.tenants[tenant] = (before + chars, weight)
                    remote.backlog_chars += chars
                counters.setdefault(engine, {})[replica] = (done, busy)
        for engine, replicas in counters.items():
            rate = self._rates.setdefault(engine, EngineRate())
            rate.update(replicas, elapsed)
            if engine in engines and rate.rate:
                engines[engine].rate = max(engines[engine].rate or 0.0, rate.rate)
        self.engines, self.replicas = engines, live  # swapped whole: admit never reads half a merge

    def clear(self) -> None:
        """Forget the others (the exchange failed): this replica decides alone until the next merge."""
        self.engines, self.replicas = {}, 0
        self._rates.clear()
        self._merged_at = None


def _parse(s: Mapping[str, Any]) -> tuple[int, float, float, float, dict[str, tuple[int, float]]]:
    tenants = {str(name): (int(chars), float(weight)) for name, (chars, weight) in s["tenants"].items()
               if int(chars) > 0 and float(weight) > 0}
    return int(s["inflight"]), float(s.get("rate") or 0.0), float(s["done"]), float(s["busy"]), tenants


def merged_backlogs(local: Mapping[str, tuple[float, float]], remote: RemoteEngine) -> dict[str, tuple[float, float]]:
    """Each tenant's backlog on the engine over all replicas, with its weight; `local`: this replica's
    (characters, weight) by tenant (its weight is taken where it knows the tenant: the weight comes from the
    same store everywhere, this replica's copy is the newest it has)."""
    merged: dict[str, tuple[float, float]] = dict(remote.tenants)
    for name, (chars, weight) in local.items():
        if name in merged:
            merged[name] = (merged[name][0] + chars, weight)
        elif chars > 0:
            merged[name] = (chars, weight)
    return merged
