"""The admission gate's refusals, counted and logged in batches: `RefusalTally`.

A burst of refusals is answered one after another on the one event loop, so whatever each refusal does before
the next one is answered is the next one's wait. Counting it in six labelled series and making its JSON log
line were nearly a third of a gate refusal's CPU in its profile, and the log lines formatted by the writer's
thread meanwhile took the interpreter from the loop. So a refusal is only noted here (a dict lookup, two appends), and
the tally is flushed at most FLUSH_S later, when the metrics are scraped (`Metrics.before_scrape`), and when
the app closes:

- every counter and histogram a refusal moves is moved as if counted at once (tts_http_requests_total, the
  request duration, tts_errors_total, tts_admission_decisions_total, the per-tenant and per-tier series), so a
  scrape sees every refusal answered before it;
- the log gets one line per (route, status, error code, tenant, tier, engine) per flush, `"msg": "refused"`, with
  the count and the latencies, instead of one line per request: under overload a refused tenant makes
  hundreds of requests a second, each line alike. A refused request's id is still in its response (header and
  body) and in the line of any request the flow answers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from control_plane.logging import log_fields

log = logging.getLogger("tts_gateway.http")
FLUSH_S = 1.0  # a refusal is in the metrics and the log at most this late (a scrape sees it at once)


class RefusalKey(NamedTuple):
    method: str
    route: str
    status: int
    code: str
    tenant_id: str
    tier: str
    engine: str


@dataclass
class _Pending:
    latencies: list[float] = field(default_factory=list)  # seconds to the response headers
    waits: list[float] = field(default_factory=list)  # the expected waits that refused them, where known
    first_request_id: str = ""


class RefusalTally:
    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics
        self._pending: dict[RefusalKey, _Pending] = {}
        self._timer: asyncio.TimerHandle | None = None
        if metrics is not None:
            metrics.before_scrape.append(self.flush)

    def note(self, key: RefusalKey, request_id: str, latency_s: float, wait_s: float | None) -> None:
        """One refusal answered: counted and logged at the next flush."""
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(first_request_id=request_id)
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
        pending.latencies.append(latency_s)
        if wait_s is not None:
            pending.waits.append(wait_s)

    def flush(self) -> None:
        """Count and log every refusal noted since the last flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, {}
        for key, noted in pending.items():
            self._count(key, noted)
            latencies = sorted(noted.latencies)
            log_fields(log, logging.INFO, "refused", {
                "method": key.method, "route": key.route, "status": key.status, "code": key.code,
                "tenant_id": key.tenant_id, "tier": key.tier, "engine": key.engine, "count": len(latencies),
                "latency_ms_p50": round(latencies[len(latencies) // 2] * 1000, 1),
                "latency_ms_max": round(latencies[-1] * 1000, 1), "first_request_id": noted.first_request_id})

    def _count(self, key: RefusalKey, noted: _Pending) -> None:
        m = self.metrics
        if m is None:
            return
        n, status = len(noted.latencies), str(key.status)
        m.http_requests.labels(key.method, key.route, status).inc(n)
        latency = m.request_latency.labels(key.method, key.route, status)
        for seconds in noted.latencies:
            latency.observe(seconds)
        m.errors.labels(code=key.code).inc(n)
        m.admission_decisions.labels(engine=key.engine, outcome="shed").inc(n)
        m.tenant_decisions(key.engine, key.tenant_id, key.tier, "shed", n, noted.waits)
